import assert from "node:assert/strict";
import { toDecision } from "../../../gateway/policy/index.js";
import { deny } from "../../fakes/policy.js";
import { Harness, metadataUrl, READ_FILE } from "./pipeline-harness.js";

describe("scope challenge (decision.required_scopes → 403 insufficient_scope)", () => {
  let h: Harness;
  afterEach(async () => {
    await h?.close();
  });

  const withScopes = (required: string[] | undefined) => {
    const d = deny("needs more");
    if (required !== undefined) d.decision.required_scopes = required;
    return d;
  };

  const cases: Array<{ note: string; required: string[] | undefined; method: string; params: Record<string, unknown>; status: number; scope?: string }> = [
    { note: "a call whose token lacks a named scope gets 403 with held + required scopes", required: ["files:read"], method: "tools/call", params: { name: "read_file", arguments: { path: "/x" } }, status: 403, scope: "mcp:tools files:read" },
    { note: "resources/read is challenged the same way", required: ["mcp:resources"], method: "resources/read", params: { uri: "demo://x" }, status: 403, scope: "mcp:tools mcp:resources" },
    { note: "scopes the token holds are no reason for a challenge: the ordinary denial", required: ["mcp:tools"], method: "tools/call", params: { name: "read_file", arguments: { path: "/x" } }, status: 200 },
    { note: "a deny that names no scope is answered in band", required: undefined, method: "tools/call", params: { name: "read_file", arguments: { path: "/x" } }, status: 200 },
  ];
  for (const c of cases) {
    it(c.note, async () => {
      h = await Harness.start({ script: { toolPages: [[READ_FILE]] }, decide: () => withScopes(c.required) });
      const sid = await h.initialize();
      h.audit.clear();
      const reply = await h.rpc(sid, c.method, c.params);
      assert.equal(reply.status, c.status, reply.text);
      const event = h.audit.only();
      assert.equal(event.outcome, "denied");
      assert.equal(h.upstream.requests(c.method).length, 0, "nothing forwarded");
      if (c.status === 403) {
        assert.equal(reply.headers.get("www-authenticate"), `Bearer resource_metadata="${metadataUrl("files")}", error="insufficient_scope", error_description="This request needs scope ${c.required!.join(" ")}", scope="${c.scope}"`);
        assert.equal(reply.json?.error?.code, -32600);
        assert.deepEqual(reply.json?.error?.data, { required_scopes: c.required });
        assert.equal((event as { error?: { code: string } }).error?.code, "insufficient_scope");
      } else {
        assert.equal(reply.headers.get("www-authenticate"), null);
      }
    });
  }

  const conversions: Array<{ note: string; raw: unknown; ok: boolean }> = [
    { note: "a list of scope tokens", raw: { allow: false, required_scopes: ["mcp:tools", "files:read"] }, ok: true },
    { note: "not an array", raw: { allow: false, required_scopes: "mcp:tools" }, ok: false },
    { note: "a scope with a space would split into two", raw: { allow: false, required_scopes: ["a b"] }, ok: false },
    { note: "a quote would break the header", raw: { allow: false, required_scopes: ['a"b'] }, ok: false },
    { note: "an empty scope", raw: { allow: false, required_scopes: [""] }, ok: false },
  ];
  for (const c of conversions) {
    it(`toDecision: required_scopes ${c.note}`, () => {
      const { error } = toDecision(c.raw);
      assert.equal(error === undefined, c.ok, JSON.stringify(error));
    });
  }
});
