import assert from "node:assert/strict";
import { serializeInput } from "../../../gateway/policy/serialize.js";
import { buildPolicyInput, type PolicyInput, type PolicyRequest } from "../../../gateway/policy/index.js";

const identity = { sub: "alice", iss: "i", client_id: null, scopes: ["mcp:tools"], roles: ["analyst"], claims: { note: "é\u2028" } };
const request: PolicyRequest = {
  method: "tools/call",
  server: "demo",
  tool: "echo",
  arguments: { text: "hi 😀" },
  resource: null,
  prompt: null,
  session_id: null,
  protocol_version: null,
  source_ip: null,
  time: "2026-11-24T10:00:00.000Z",
};

const decode = (buf: ArrayBuffer): unknown => JSON.parse(Buffer.from(buf).toString("utf8"));

describe("serializeInput", () => {
  it("produces exactly the JSON of the input, as an exactly sized ArrayBuffer", () => {
    const input = buildPolicyInput(identity, request, { name: "echo", inputSchema: { type: "object" } });
    const buf = serializeInput(input);
    assert.ok(buf instanceof ArrayBuffer);
    assert.deepEqual(decode(buf), JSON.parse(JSON.stringify(input)));
    assert.equal(buf.byteLength, Buffer.byteLength(JSON.stringify(input)));
  });

  it("re-serialises the request every time", () => {
    const input = buildPolicyInput(identity, request, null);
    serializeInput(input);
    input.request.arguments = { text: "changed" };
    assert.deepEqual((decode(serializeInput(input)) as PolicyInput).request.arguments, { text: "changed" });
  });

  it("does not cache objects that are not frozen", () => {
    const agent = { ...identity };
    const input: PolicyInput = { agent, request, tool: null };
    serializeInput(input);
    agent.roles = ["admin"];
    assert.deepEqual((decode(serializeInput(input)) as PolicyInput).agent.roles, ["admin"]);
  });

  it("refuses inputs without agent and request objects", () => {
    for (const bad of [{ agent: null, request, tool: null }, { agent: identity, request: [], tool: null }, { agent: identity, request, tool: "x" }]) {
      assert.throws(() => serializeInput(bad as unknown as PolicyInput), TypeError);
    }
  });
});
