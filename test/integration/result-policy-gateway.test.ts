import assert from "node:assert/strict";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { startDemoUpstream } from "../../demo/upstream.js";
import { startGatewayFor } from "../support/stack.js";

/** Policy over results through a real gateway, with the starter rules built by the real opa. */
describe("result policy in the gateway: a secret in a tool result is redacted before the agent sees it", function () {
  this.timeout(30_000);

  it("blanks only the fake key in the text, and audits where and how much, never the key", async () => {
    const demo = await startDemoUpstream();
    const g = await startGatewayFor({ demo: { url: demo.url } });
    const client = new Client({ name: "result-policy-test", version: "1" });
    const key = "AKIAIOSFODNN7EXAMPLE";
    try {
      await client.connect(new StreamableHTTPClientTransport(new URL(g.url("demo")), { requestInit: { headers: { Authorization: `Bearer ${g.token("alice", ["analyst"])}` } } }));
      // The demo's echo returns what it is given: an upstream that leaks a cloud key in its answer.
      const result = await client.callTool({ name: "echo", arguments: { text: `deploy with ${key} today` } });
      const text = (result.content as { type: string; text: string }[])[0]!.text;
      assert.doesNotMatch(text, new RegExp(key));
      assert.match(text, /^deploy with .*REDACTED.* today$/, "the prose around the key survives");
      const clean = await client.callTool({ name: "echo", arguments: { text: "nothing secret here" } });
      assert.deepEqual(clean.content, [{ type: "text", text: "nothing secret here" }], "a clean result passes untouched");
      const calls = g.auditEvents().filter((e) => e.mcp.method === "tools/call");
      const redacted = calls[0]!;
      assert.equal(redacted.result_policy?.allow, true);
      assert.deepEqual(redacted.result_policy?.redacted.map((r) => [r.pointer, r.scope, r.bytes]), [["/content/0/text", "match", key.length]]);
      assert.doesNotMatch(JSON.stringify(redacted.tool_result), new RegExp(key), "the audited result is the one the agent saw");
      assert.doesNotMatch(JSON.stringify(redacted.result_policy), new RegExp(key));
      assert.equal(calls[1]!.result_policy, undefined, "nothing to say about a clean result");
    } finally {
      await client.close().catch(() => undefined);
      await g.close();
      await demo.close();
    }
  });
});
