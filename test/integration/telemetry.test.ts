import assert from "node:assert/strict";
import { startTracing, tracesConfigSchema, type RequestResult, type Tracing } from "../../gateway/telemetry/index.js";
import { collectorAvailable, startCollector, type CollectedSpan, type TestCollector } from "../support/collector.js";

/**
 * The telemetry module against a real OpenTelemetry Collector (make tools-otelcol): spans go out
 * over OTLP/HTTP through the real exporter and are read back from the collector's file exporter.
 */
const AGENT_TRACE_ID = "0af7651916cd43dd8448eb211c80319c";
const AGENT_SPAN_ID = "b7ad6b7169203331";
const AGENT_TRACEPARENT = `00-${AGENT_TRACE_ID}-${AGENT_SPAN_ID}-01`;
const ALLOWED: RequestResult = { outcome: "allowed", httpStatus: 200 };
const STAGES = ["edge", "identity", "decision", "limits", "audit"] as const;

describe("telemetry: spans exported to a real OpenTelemetry Collector", function () {
  this.timeout(30_000);
  let collector: TestCollector;
  let tracing: Tracing;

  before(async function () {
    // make tools builds it; say so plainly rather than fail obscurely.
    if (!collectorAvailable()) throw new Error("otelcol is not built (make tools-otelcol builds it into .tools/bin)");
    collector = await startCollector();
    tracing = startTracing(tracesConfigSchema.parse({ endpoint: collector.tracesEndpoint, serviceName: "portcullis-it" }), {
      env: {},
      serviceVersion: "0.1.0-test",
    });
  });

  after(async () => {
    await tracing?.shutdown();
    await collector?.stop();
  });

  /** A tools/call through every stage, the upstream over HTTP; returns the traceparent the upstream was given. */
  function toolCall(traceparent: string | undefined, requestId: number): { upstreamTraceparent: string | undefined; traceId: string | undefined } {
    const request = tracing.startRequest({ server: "files", traceparent, clientAddress: "127.0.0.1", clientPort: 40_000 + requestId });
    const edge = request.stage("edge");
    edge.end();
    request.describe({ method: "tools/call", requestId, tool: "read_file", sessionId: "sess-handle-1", protocolVersion: "2025-11-25" });
    for (const name of ["identity", "decision", "limits"] as const) request.stage(name).end();
    const upstream = request.stage("upstream", { transport: "http", url: "http://127.0.0.1:7001/mcp" });
    const upstreamTraceparent = upstream.traceparent();
    upstream.end();
    request.stage("audit").end();
    request.end(ALLOWED);
    return { upstreamTraceparent, traceId: request.traceId() };
  }

  const only = (spans: CollectedSpan[], accept: (s: CollectedSpan) => boolean, what: string): CollectedSpan => {
    const found = spans.filter(accept);
    assert.equal(found.length, 1, `one ${what} among ${spans.map((s) => s.name).join(", ")}`);
    return found[0]!;
  };

  it("a request continued from the agent's traceparent: the request span, its stage children and the upstream child", async () => {
    const { upstreamTraceparent } = toolCall(AGENT_TRACEPARENT, 1);
    await tracing.flush();
    const spans = await collector.waitForTrace(AGENT_TRACE_ID, 7);
    assert.equal(spans.length, 7);

    const request = only(spans, (s) => s.kind === "SERVER", "SERVER span");
    assert.equal(request.name, "tools/call read_file");
    assert.equal(request.parentSpanId, AGENT_SPAN_ID, "the agent's span is the parent");
    assert.deepEqual(
      Object.fromEntries(
        ["mcp.method.name", "gen_ai.tool.name", "gen_ai.operation.name", "jsonrpc.request.id", "mcp.session.id", "mcp.protocol.version", "network.transport", "client.address", "portcullis.server", "portcullis.outcome", "http.response.status_code"].map((k) => [k, request.attributes[k]]),
      ),
      {
        "mcp.method.name": "tools/call",
        "gen_ai.tool.name": "read_file",
        "gen_ai.operation.name": "execute_tool",
        "jsonrpc.request.id": "1",
        "mcp.session.id": "sess-handle-1",
        "mcp.protocol.version": "2025-11-25",
        "network.transport": "tcp",
        "client.address": "127.0.0.1",
        "portcullis.server": "files",
        "portcullis.outcome": "allowed",
        "http.response.status_code": 200,
      },
    );
    assert.equal(request.resource["service.name"], "portcullis-it");
    assert.equal(request.resource["service.version"], "0.1.0-test");
    assert.equal(request.scope, "portcullis");

    for (const name of STAGES) {
      const stage = only(spans, (s) => s.name === name, `${name} span`);
      assert.equal(stage.kind, "INTERNAL");
      assert.equal(stage.parentSpanId, request.spanId, `${name} is a child of the request span`);
      assert.ok(stage.startTimeUnixNano >= request.startTimeUnixNano && stage.endTimeUnixNano <= request.endTimeUnixNano, `${name} lies within the request`);
    }
    const upstream = only(spans, (s) => s.kind === "CLIENT", "CLIENT span");
    assert.equal(upstream.parentSpanId, request.spanId);
    assert.equal(upstream.name, "tools/call read_file");
    assert.equal(upstream.attributes["server.address"], "127.0.0.1");
    assert.equal(upstream.attributes["server.port"], 7001);
    assert.equal(upstreamTraceparent, `00-${AGENT_TRACE_ID}-${upstream.spanId}-01`, "the upstream request names the upstream span");
  });

  it("an invalid traceparent starts a new trace, and the request is traced all the same", async () => {
    const invalid = `00-${AGENT_TRACE_ID.toUpperCase()}-${AGENT_SPAN_ID}-01`;
    const { traceId, upstreamTraceparent } = toolCall(invalid, 2);
    assert.ok(traceId);
    assert.notEqual(traceId, AGENT_TRACE_ID);
    await tracing.flush();
    const spans = await collector.waitForTrace(traceId, 7);
    const request = only(spans, (s) => s.kind === "SERVER", "SERVER span");
    assert.equal(request.parentSpanId, undefined, "a root span");
    assert.equal(request.attributes["jsonrpc.request.id"], "2");
    assert.match(upstreamTraceparent ?? "", new RegExp(`^00-${traceId}-[0-9a-f]{16}-01$`));
  });

  it("a request continued from params._meta.traceparent links the traceparent header's context", async () => {
    const headerTraceparent = `00-${"5".repeat(32)}-${"6".repeat(16)}-01`;
    const request = tracing.startRequest({ server: "files", traceparent: headerTraceparent });
    request.describe({ method: "tools/list", requestId: 3, metaTraceparent: AGENT_TRACEPARENT.replace(AGENT_SPAN_ID, "c".repeat(16)) });
    request.end({ outcome: "error", httpStatus: 200, errorCode: "upstream_failed", rpcErrorCode: -32603, message: "Upstream MCP server failed" });
    await tracing.flush();
    const spans = await collector.waitForSpans((all) => all.some((s) => s.parentSpanId === "c".repeat(16)));
    const span = only(spans, (s) => s.parentSpanId === "c".repeat(16), "span under the _meta parent");
    assert.equal(span.traceId, AGENT_TRACE_ID);
    assert.equal(span.name, "tools/list");
    assert.deepEqual(span.links, [{ traceId: "5".repeat(32), spanId: "6".repeat(16) }]);
    assert.equal(span.attributes["error.type"], "-32603");
    assert.deepEqual(span.status, { code: "ERROR", message: "Upstream MCP server failed" });
  });

  it("OTEL_EXPORTER_OTLP_ENDPOINT alone points the exporter at the collector", async () => {
    const fromEnv = startTracing(tracesConfigSchema.parse({}), { env: { OTEL_EXPORTER_OTLP_ENDPOINT: collector.endpoint, OTEL_SERVICE_NAME: "from-env" } });
    try {
      assert.equal(fromEnv.settings?.endpoint, collector.tracesEndpoint);
      const request = fromEnv.startRequest({ server: "files" });
      request.describe({ method: "ping", requestId: 4 });
      request.end(ALLOWED);
      const traceId = request.traceId();
      assert.ok(traceId);
      await fromEnv.flush();
      const [span] = await collector.waitForTrace(traceId);
      assert.equal(span!.resource["service.name"], "from-env");
    } finally {
      await fromEnv.shutdown();
    }
  });
});
