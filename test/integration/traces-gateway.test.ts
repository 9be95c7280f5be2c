import assert from "node:assert/strict";
import type { IncomingHttpHeaders } from "node:http";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { startDemoUpstream } from "../../demo/upstream.js";
import { collectorAvailable, startCollector, type TestCollector } from "../support/collector.js";
import { startGatewayFor } from "../support/stack.js";

/** Traces through a real gateway into a real OpenTelemetry Collector (contract 6). */
describe("traces: a span per request and stage, continued from the agent, parent of the upstream's", function () {
  this.timeout(60_000);
  let collector: TestCollector;
  before(async function () {
    if (!collectorAvailable()) this.skip();
    collector = await startCollector();
  });
  after(async () => collector?.stop());

  it("continues the agent's traceparent, names MCP attributes, and sends the upstream span as the upstream's traceparent", async () => {
    const seen: IncomingHttpHeaders[] = [];
    const demo = await startDemoUpstream({ onRequest: (h) => seen.push(h) });
    const g = await startGatewayFor({ demo: { url: demo.url } }, { telemetry: { traces: { endpoint: collector.tracesEndpoint, serviceName: "portcullis-test" } } });
    const traceId = "4bf92f3577b34da6a3ce929d0e0e4736";
    const parent = "00f067aa0ba902b7";
    const client = new Client({ name: "traces-test", version: "1" });
    try {
      await client.connect(new StreamableHTTPClientTransport(new URL(g.url("demo")), { requestInit: { headers: { Authorization: `Bearer ${g.token("alice", ["analyst"])}`, traceparent: `00-${traceId}-${parent}-01` } } }));
      seen.length = 0;
      await client.callTool({ name: "echo", arguments: { text: "traced" } });
      const spans = await collector.waitForSpans((all) => all.some((s) => s.traceId === traceId && s.name.startsWith("tools/call") && s.kind === "SERVER"));
      const mine = spans.filter((s) => s.traceId === traceId);
      const call = mine.find((s) => s.kind === "SERVER" && s.name.startsWith("tools/call"))!;
      assert.equal(call.parentSpanId, parent, "the agent's span is the parent");
      assert.equal(call.attributes["mcp.method.name"], "tools/call");
      assert.equal(call.attributes["gen_ai.tool.name"], "echo");
      assert.equal(typeof call.attributes["mcp.session.id"], "string");
      assert.equal(call.resource["service.name"], "portcullis-test");
      const children = mine.filter((s) => s.parentSpanId === call.spanId);
      for (const stage of ["edge", "identity", "decision", "limits", "audit"]) assert.ok(children.some((c) => c.name.includes(stage)), `a ${stage} span under the call: ${children.map((c) => c.name).join(", ")}`);
      const upstream = children.find((c) => c.kind === "CLIENT");
      assert.ok(upstream, "an upstream CLIENT span");
      const sent = seen.find((h) => typeof h.traceparent === "string");
      assert.ok(sent, "the upstream got a traceparent");
      assert.equal(sent.traceparent, `00-${traceId}-${upstream.spanId}-01`, "naming the gateway's upstream span, not the agent's");
    } finally {
      await client.close().catch(() => undefined);
      await g.close();
      await demo.close();
    }
  });
});
