import assert from "node:assert/strict";
import { SpanKind, SpanStatusCode } from "@opentelemetry/api";
import type { ReadableSpan } from "@opentelemetry/sdk-trace";
import type { RequestDescription, RequestResult, StageName } from "../../../gateway/telemetry/index.js";
import { AGENT_SPAN_ID, AGENT_TRACE_ID, AGENT_TRACEPARENT, byName, memoryTracing } from "./helpers.js";

const TOOL_CALL = { method: "tools/call", requestId: 7, tool: "echo", sessionId: "s-1", protocolVersion: "2025-11-25" } as const;
const ALLOWED: RequestResult = { outcome: "allowed", httpStatus: 200 };
const LOCAL_STAGES = ["edge", "identity", "decision", "limits", "audit"] as const;

/** One request through every stage, in the pipeline's order, each stage 1 ms long. */
async function fullRequest(traceparent?: string) {
  const t = memoryTracing();
  const request = t.tracing.startRequest({ server: "files", traceparent, clientAddress: "10.0.0.7", clientPort: 51234 });
  const run = (name: Exclude<StageName, "upstream">) => {
    const stage = request.stage(name);
    t.clock.advanceMs(1);
    stage.end();
  };
  run("edge");
  request.describe(TOOL_CALL);
  run("identity");
  run("decision");
  run("limits");
  const upstream = request.stage("upstream", { transport: "http", url: "http://files.internal:7001/mcp?token=secret" });
  const upstreamTraceparent = upstream.traceparent();
  t.clock.advanceMs(1);
  upstream.end();
  run("audit");
  request.end(ALLOWED);
  return { spans: await t.spans(), upstreamTraceparent, requestTraceparent: request.traceparent(), traceId: request.traceId() };
}

const childOf = (child: ReadableSpan, parent: ReadableSpan) => {
  assert.equal(child.spanContext().traceId, parent.spanContext().traceId, `${child.name}: same trace`);
  assert.equal(child.parentSpanContext?.spanId, parent.spanContext().spanId, `${child.name}: parent is ${parent.name}`);
};

describe("telemetry: request spans", () => {
  it("a tools/call is one SERVER span named after the tool, with the MCP attributes", async () => {
    const { spans } = await fullRequest();
    const request = spans.find((s) => s.kind === SpanKind.SERVER);
    assert.ok(request, "a SERVER span");
    assert.equal(request.name, "tools/call echo");
    assert.deepEqual(request.attributes, {
      "mcp.method.name": "tools/call",
      "jsonrpc.request.id": "7",
      "gen_ai.tool.name": "echo",
      "gen_ai.operation.name": "execute_tool",
      "mcp.session.id": "s-1",
      "mcp.protocol.version": "2025-11-25",
      "network.transport": "tcp",
      "network.protocol.name": "http",
      "client.address": "10.0.0.7",
      "client.port": 51234,
      "portcullis.server": "files",
      "portcullis.outcome": "allowed",
      "http.response.status_code": 200,
    });
    assert.equal(request.status.code, SpanStatusCode.UNSET);
    assert.equal(request.parentSpanContext, undefined, "no traceparent from the agent: a new trace");
  });

  it("each stage is a child span of the request, the upstream one a CLIENT span to the upstream's host and port", async () => {
    const { spans } = await fullRequest();
    assert.equal(spans.length, 7);
    const request = spans.find((s) => s.kind === SpanKind.SERVER)!;
    for (const name of LOCAL_STAGES) {
      const stage = byName(spans, name);
      childOf(stage, request);
      assert.equal(stage.kind, SpanKind.INTERNAL);
      assert.equal(stage.attributes["portcullis.stage"], name);
    }
    const upstream = spans.find((s) => s.kind === SpanKind.CLIENT)!;
    childOf(upstream, request);
    assert.equal(upstream.name, "tools/call echo");
    assert.equal(upstream.attributes["portcullis.stage"], "upstream");
    assert.equal(upstream.attributes["mcp.method.name"], "tools/call");
    assert.equal(upstream.attributes["gen_ai.tool.name"], "echo");
    assert.equal(upstream.attributes["server.address"], "files.internal");
    assert.equal(upstream.attributes["server.port"], 7001);
    assert.equal(upstream.attributes["network.transport"], "tcp");
    assert.ok(!JSON.stringify(upstream.attributes).includes("secret"), "the upstream URL's query is not recorded");
  });

  it("the upstream stage's traceparent names the upstream span, in the request's trace", async () => {
    const { spans, upstreamTraceparent } = await fullRequest(AGENT_TRACEPARENT);
    const upstream = spans.find((s) => s.kind === SpanKind.CLIENT)!;
    assert.equal(upstreamTraceparent, `00-${AGENT_TRACE_ID}-${upstream.spanContext().spanId}-01`);
  });

  it("an agent's traceparent header is continued: same trace id, its span is the request span's parent", async () => {
    const { spans, requestTraceparent, traceId } = await fullRequest(AGENT_TRACEPARENT);
    const request = spans.find((s) => s.kind === SpanKind.SERVER)!;
    assert.equal(request.spanContext().traceId, AGENT_TRACE_ID);
    assert.equal(request.parentSpanContext?.spanId, AGENT_SPAN_ID);
    assert.equal(request.parentSpanContext?.isRemote, true);
    assert.ok(spans.every((s) => s.spanContext().traceId === AGENT_TRACE_ID), "every stage in the agent's trace");
    assert.equal(requestTraceparent, `00-${AGENT_TRACE_ID}-${request.spanContext().spanId}-01`);
    assert.equal(traceId, AGENT_TRACE_ID);
  });

  it("the stages keep their own times, including the edge's, which began before the body named the parent", async () => {
    const { spans } = await fullRequest(AGENT_TRACEPARENT);
    const request = spans.find((s) => s.kind === SpanKind.SERVER)!;
    const edge = byName(spans, "edge");
    assert.deepEqual(edge.startTime, request.startTime, "the edge starts on arrival, as the request does");
    assert.deepEqual(edge.endTime, [1000, 1_000_000]);
    assert.deepEqual(byName(spans, "identity").startTime, [1000, 1_000_000]);
    assert.deepEqual(request.endTime, [1000, 6_000_000], "six 1 ms stages");
  });

  it("params._meta.traceparent is the parent; a different traceparent header becomes a link", async () => {
    const t = memoryTracing();
    const header = `00-${"1".repeat(32)}-${"2".repeat(16)}-01`;
    const request = t.tracing.startRequest({ server: "files", traceparent: header });
    request.describe({ ...TOOL_CALL, metaTraceparent: AGENT_TRACEPARENT });
    request.end(ALLOWED);
    const [span] = await t.spans();
    assert.equal(span!.spanContext().traceId, AGENT_TRACE_ID);
    assert.equal(span!.parentSpanContext?.spanId, AGENT_SPAN_ID);
    assert.deepEqual(span!.links.map((l) => l.context.spanId), ["2".repeat(16)]);
  });

  it("the same context in the header and in _meta is a parent without a link", async () => {
    const t = memoryTracing();
    const request = t.tracing.startRequest({ server: "files", traceparent: AGENT_TRACEPARENT });
    request.describe({ ...TOOL_CALL, metaTraceparent: AGENT_TRACEPARENT });
    request.end(ALLOWED);
    const [span] = await t.spans();
    assert.equal(span!.parentSpanContext?.spanId, AGENT_SPAN_ID);
    assert.deepEqual(span!.links, []);
  });

  const invalid: Array<{ note: string; value: unknown }> = [
    { note: "not a traceparent at all", value: "hello" },
    { note: "upper-case hex", value: AGENT_TRACEPARENT.toUpperCase() },
    { note: "all-zero trace id", value: `00-${"0".repeat(32)}-${AGENT_SPAN_ID}-01` },
    { note: "all-zero span id", value: `00-${AGENT_TRACE_ID}-${"0".repeat(16)}-01` },
    { note: "version ff", value: `ff-${AGENT_TRACE_ID}-${AGENT_SPAN_ID}-01` },
    { note: "version 00 with a trailing part", value: `${AGENT_TRACEPARENT}-extra` },
    { note: "two headers joined by Node", value: `${AGENT_TRACEPARENT}, ${AGENT_TRACEPARENT}` },
    { note: "an array (repeated header)", value: [AGENT_TRACEPARENT, AGENT_TRACEPARENT] },
    { note: "a number", value: 42 },
    { note: "an object", value: { traceparent: AGENT_TRACEPARENT } },
    { note: "a string of 10,000 characters", value: `${AGENT_TRACEPARENT}-${"a".repeat(10_000)}` },
  ];
  for (const where of ["header", "_meta"] as const) {
    for (const c of invalid) {
      it(`an invalid traceparent (${where}: ${c.note}) is ignored: a new trace, no error`, async () => {
        const t = memoryTracing();
        const request = t.tracing.startRequest({ server: "files", traceparent: where === "header" ? c.value : undefined });
        request.describe({ ...TOOL_CALL, metaTraceparent: where === "_meta" ? c.value : undefined });
        const upstream = request.stage("upstream", { transport: "stdio" });
        const sent = upstream.traceparent();
        upstream.end();
        request.end(ALLOWED);
        const spans = await t.spans();
        const span = spans.find((s) => s.kind === SpanKind.SERVER)!;
        assert.equal(span.parentSpanContext, undefined);
        assert.deepEqual(span.links, []);
        assert.notEqual(span.spanContext().traceId, AGENT_TRACE_ID);
        assert.match(sent ?? "", new RegExp(`^00-${span.spanContext().traceId}-[0-9a-f]{16}-01$`));
      });
    }
  }

  it("the agent's tracestate is carried to the upstream beside the traceparent", async () => {
    const t = memoryTracing();
    const request = t.tracing.startRequest({ server: "files", traceparent: AGENT_TRACEPARENT, tracestate: "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE" });
    request.describe(TOOL_CALL);
    const upstream = request.stage("upstream", { transport: "stdio" });
    assert.equal(upstream.tracestate(), "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE");
    upstream.end();
    request.end(ALLOWED);
  });

  it("a stdio upstream is network.transport pipe, without a server address", async () => {
    const t = memoryTracing();
    const request = t.tracing.startRequest({ server: "everything" });
    request.describe(TOOL_CALL);
    request.stage("upstream", { transport: "stdio" }).end();
    request.end(ALLOWED);
    const upstream = (await t.spans()).find((s) => s.kind === SpanKind.CLIENT)!;
    assert.equal(upstream.attributes["network.transport"], "pipe");
    assert.equal(upstream.attributes["server.address"], undefined);
  });

  const names: Array<{ note: string; facts: RequestDescription; name: string; absent: string[]; present: Record<string, string> }> = [
    { note: "tools/list: the method alone, no gen_ai.operation.name", facts: { method: "tools/list", requestId: "a" }, name: "tools/list", absent: ["gen_ai.operation.name", "gen_ai.tool.name"], present: { "jsonrpc.request.id": "a" } },
    { note: "prompts/get: named after the prompt", facts: { method: "prompts/get", requestId: 1, prompt: "greet" }, name: "prompts/get greet", absent: ["gen_ai.operation.name"], present: { "gen_ai.prompt.name": "greet" } },
    { note: "resources/read: the URI is an attribute, never the name", facts: { method: "resources/read", requestId: 2, resourceUri: "file:///data/q3.csv" }, name: "resources/read", absent: [], present: { "mcp.resource.uri": "file:///data/q3.csv" } },
    { note: "a notification has no jsonrpc.request.id", facts: { method: "notifications/initialized", requestId: null }, name: "notifications/initialized", absent: ["jsonrpc.request.id"], present: {} },
  ];
  for (const c of names) {
    it(c.note, async () => {
      const t = memoryTracing();
      const request = t.tracing.startRequest({ server: "files" });
      request.describe(c.facts);
      request.end(ALLOWED);
      const [span] = await t.spans();
      assert.equal(span!.name, c.name);
      for (const key of c.absent) assert.equal(span!.attributes[key], undefined, key);
      for (const [key, value] of Object.entries(c.present)) assert.equal(span!.attributes[key], value, key);
    });
  }

  it("a request refused before its body parsed is a span named mcp with the refusal", async () => {
    const t = memoryTracing();
    const request = t.tracing.startRequest({ server: "files" });
    request.stage("edge").end({ errorCode: "parse_error", rpcErrorCode: -32700, message: "Parse error" });
    request.end({ outcome: "invalid", httpStatus: 400, errorCode: "parse_error", rpcErrorCode: -32700, message: "Parse error" });
    const spans = await t.spans();
    const span = byName(spans, "mcp");
    assert.equal(span.kind, SpanKind.SERVER);
    assert.equal(span.attributes["error.type"], "-32700");
    assert.equal(byName(spans, "edge").status.code, SpanStatusCode.ERROR);
  });

  it("extra attributes given before the span exists are on it", async () => {
    const t = memoryTracing();
    const request = t.tracing.startRequest({ server: "files" });
    request.setAttributes({ "portcullis.decision_id": "d-1" });
    request.describe(TOOL_CALL);
    request.setAttributes({ "portcullis.agent.client_id": "c-1" });
    request.end(ALLOWED);
    const [span] = await t.spans();
    assert.equal(span!.attributes["portcullis.decision_id"], "d-1");
    assert.equal(span!.attributes["portcullis.agent.client_id"], "c-1");
  });

  it("a traceparent handed out before describe fixes the span; _meta's context is then linked, the name still set", async () => {
    const t = memoryTracing();
    const request = t.tracing.startRequest({ server: "files" });
    const early = request.traceparent();
    request.describe({ ...TOOL_CALL, metaTraceparent: AGENT_TRACEPARENT });
    request.end(ALLOWED);
    const [span] = await t.spans();
    assert.equal(early, `00-${span!.spanContext().traceId}-${span!.spanContext().spanId}-01`);
    assert.equal(span!.name, "tools/call echo");
    assert.equal(span!.attributes["gen_ai.tool.name"], "echo");
    assert.deepEqual(span!.links.map((l) => l.context.spanId), [AGENT_SPAN_ID]);
  });

  it("stages still open when the request ends end with it; only the first end counts", async () => {
    const t = memoryTracing();
    const request = t.tracing.startRequest({ server: "files" });
    request.describe(TOOL_CALL);
    const upstream = request.stage("upstream", { transport: "stdio" });
    t.clock.advanceMs(5);
    request.end({ outcome: "error", httpStatus: 200, errorCode: "upstream_failed", toolError: true });
    t.clock.advanceMs(5);
    upstream.end({ errorCode: "too_late" });
    request.end(ALLOWED);
    const spans = await t.spans();
    assert.equal(spans.length, 2);
    const server = spans.find((s) => s.kind === SpanKind.SERVER)!;
    const client = spans.find((s) => s.kind === SpanKind.CLIENT)!;
    assert.deepEqual(client.endTime, server.endTime);
    assert.equal(client.attributes["portcullis.error.code"], undefined);
    assert.equal(server.attributes["portcullis.outcome"], "error");
    assert.equal(server.attributes["portcullis.error.code"], "upstream_failed");
  });
});

describe("telemetry: how a request ended", () => {
  const cases: Array<{ note: string; result: RequestResult; errorType: string | undefined; status: SpanStatusCode; extra?: Record<string, unknown> }> = [
    { note: "allowed, 200: no error", result: ALLOWED, errorType: undefined, status: SpanStatusCode.UNSET },
    {
      note: "a JSON-RPC error: its code is error.type and rpc.response.status_code, its message the status",
      result: { outcome: "error", httpStatus: 200, errorCode: "internal_error", rpcErrorCode: -32603, message: "Internal error" },
      errorType: "-32603",
      status: SpanStatusCode.ERROR,
      extra: { "rpc.response.status_code": "-32603", "portcullis.error.code": "internal_error" },
    },
    {
      note: "a denial answered as an isError tool result: tool_error, the gateway's code beside it",
      result: { outcome: "denied", httpStatus: 200, errorCode: "denied", toolError: true },
      errorType: "tool_error",
      status: SpanStatusCode.ERROR,
      extra: { "portcullis.outcome": "denied", "portcullis.error.code": "denied" },
    },
    { note: "a gateway code alone", result: { outcome: "rate_limited", httpStatus: 429, errorCode: "session_quota" }, errorType: "session_quota", status: SpanStatusCode.ERROR },
    { note: "401 without a body: the HTTP status", result: { outcome: "unauthenticated", httpStatus: 401 }, errorType: "401", status: SpanStatusCode.ERROR },
  ];
  for (const c of cases) {
    it(c.note, async () => {
      const t = memoryTracing();
      const request = t.tracing.startRequest({ server: "files" });
      request.describe(TOOL_CALL);
      request.end(c.result);
      const [span] = await t.spans();
      assert.equal(span!.attributes["error.type"], c.errorType);
      assert.equal(span!.attributes["http.response.status_code"], c.result.httpStatus);
      assert.equal(span!.status.code, c.status);
      if (c.result.message) assert.equal(span!.status.message, c.result.message);
      for (const [k, v] of Object.entries(c.extra ?? {})) assert.equal(span!.attributes[k], v, k);
    });
  }
});
