import assert from "node:assert/strict";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { startDemoUpstream } from "../../demo/upstream.js";
import { startGatewayFor } from "../support/stack.js";

/** GET /metrics through a real gateway, after real SDK calls (contract 6). */
describe("metrics: /metrics counts what the gateway decided, with bounded labels", function () {
  this.timeout(30_000);

  it("counts decisions by outcome, server and method; times requests and stages; reads sessions and the bundle at scrape time", async () => {
    const demo = await startDemoUpstream();
    const g = await startGatewayFor({ demo: { url: demo.url } });
    const client = new Client({ name: "metrics-test", version: "1" });
    try {
      await client.connect(new StreamableHTTPClientTransport(new URL(g.url("demo")), { requestInit: { headers: { Authorization: `Bearer ${g.token("alice", ["analyst"])}` } } }));
      await client.callTool({ name: "echo", arguments: { text: "a" } });
      await client.callTool({ name: "echo", arguments: { text: "b" } });
      await client.callTool({ name: "delete_record", arguments: { id: "1" } }).catch(() => undefined);
      // An unknown server and a made-up method collapse into bounded label values.
      await fetch(g.url("nope"), { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
      const res = await fetch(`${g.gateway.url}/metrics`);
      assert.equal(res.status, 200);
      assert.match(res.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
      const text = await res.text();
      const value = (series: string): number => {
        const line = text.split("\n").find((l) => l.startsWith(series + " "));
        assert.ok(line, `no series ${series} in:\n${text.split("\n").filter((l) => l.startsWith(series.split("{")[0]!)).join("\n")}`);
        return Number(line.slice(series.length + 1));
      };
      assert.equal(value('portcullis_decisions_total{outcome="allowed",server="demo",method="tools/call"}'), 2);
      assert.equal(value('portcullis_decisions_total{outcome="denied",server="demo",method="tools/call"}'), 1);
      assert.equal(value('portcullis_decisions_total{outcome="allowed",server="demo",method="initialize"}'), 1);
      assert.ok(value('portcullis_request_duration_seconds_count{outcome="allowed",server="demo",method="tools/call"}') === 2);
      for (const stage of ["edge", "identity", "decision", "audit", "limits"]) assert.ok(value(`portcullis_stage_duration_seconds_count{stage="${stage}"}`) >= 1, stage);
      assert.ok(value('portcullis_upstream_duration_seconds_count{server="demo"}') >= 2);
      assert.equal(value('portcullis_sessions{kind="http"}'), 1);
      assert.equal(value('portcullis_bundle_info{revision="test-rev-1"}'), 1);
      assert.ok(value("portcullis_jwks_age_seconds") >= 0);
      assert.ok(text.includes("portcullis_process_cpu_seconds_total"), "Node process metrics");
      // No agent id, tool name or argument is ever a label.
      assert.doesNotMatch(text, /alice|echo|delete_record|nope"/);
    } finally {
      await client.close().catch(() => undefined);
      await g.close();
      await demo.close();
    }
  });
});
