import assert from "node:assert/strict";
import { SpanKind } from "@opentelemetry/api";
import { ExportResultCode, type ExportResult } from "@opentelemetry/core";
import type { ReadableSpan, SpanExporter } from "@opentelemetry/sdk-trace";
import type { LogLevel } from "../../../gateway/shared/log.js";
import { startTracing, tracesConfigSchema } from "../../../gateway/telemetry/index.js";
import { AGENT_SPAN_ID, AGENT_TRACE_ID, AGENT_TRACEPARENT, memoryTracing } from "./helpers.js";

const TOOL_CALL = { method: "tools/call", requestId: 1, tool: "echo" } as const;

describe("telemetry: tracing off", () => {
  it("without telemetry.traces tracing is off, and the upstream gets the agent's traceparent unchanged", async () => {
    const tracing = startTracing(undefined, { env: { OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318" } });
    assert.equal(tracing.enabled, false);
    assert.equal(tracing.settings, null);
    const request = tracing.startRequest({ server: "files", traceparent: AGENT_TRACEPARENT });
    request.describe(TOOL_CALL);
    const upstream = request.stage("upstream", { transport: "http", url: "http://127.0.0.1:7001/mcp" });
    assert.equal(upstream.traceparent(), AGENT_TRACEPARENT);
    assert.equal(request.traceId(), AGENT_TRACE_ID);
    upstream.end();
    request.end({ outcome: "allowed", httpStatus: 200 });
    await tracing.flush();
    await tracing.shutdown();
  });

  it("off, _meta's traceparent is the one passed on", () => {
    const tracing = startTracing(undefined);
    const request = tracing.startRequest({ server: "files", traceparent: `00-${"1".repeat(32)}-${"2".repeat(16)}-01` });
    request.describe({ ...TOOL_CALL, metaTraceparent: AGENT_TRACEPARENT });
    assert.equal(request.stage("upstream", { transport: "stdio" }).traceparent(), AGENT_TRACEPARENT);
  });

  it("off and no traceparent from the agent: nothing to send upstream", () => {
    const tracing = startTracing(undefined);
    const request = tracing.startRequest({ server: "files", traceparent: "garbage" });
    request.describe(TOOL_CALL);
    assert.equal(request.stage("upstream", { transport: "stdio" }).traceparent(), undefined);
    assert.equal(request.traceId(), undefined);
  });

  it("OTEL_SDK_DISABLED=true turns configured tracing off", () => {
    const tracing = startTracing(tracesConfigSchema.parse({}), { env: { OTEL_SDK_DISABLED: "true" } });
    assert.equal(tracing.enabled, false);
  });
});

describe("telemetry: sampling", () => {
  it("sampleRatio 0 records no new trace, yet the upstream still gets a traceparent of that trace (not sampled)", async () => {
    const t = memoryTracing({ sampleRatio: 0 });
    const request = t.tracing.startRequest({ server: "files" });
    request.describe(TOOL_CALL);
    const sent = request.stage("upstream", { transport: "stdio" }).traceparent();
    request.end({ outcome: "allowed", httpStatus: 200 });
    assert.deepEqual(await t.spans(), []);
    assert.match(sent ?? "", /^00-[0-9a-f]{32}-[0-9a-f]{16}-00$/);
  });

  it("a trace the agent sampled is recorded even at sampleRatio 0 (the agent's decision is kept)", async () => {
    const t = memoryTracing({ sampleRatio: 0 });
    const request = t.tracing.startRequest({ server: "files", traceparent: AGENT_TRACEPARENT });
    request.describe(TOOL_CALL);
    request.end({ outcome: "allowed", httpStatus: 200 });
    const spans = await t.spans();
    assert.equal(spans.length, 1);
    assert.equal(spans[0]!.parentSpanContext?.spanId, AGENT_SPAN_ID);
  });

  it("a trace the agent did not sample is not recorded; the upstream gets the trace id with the flag off", async () => {
    const t = memoryTracing({ sampleRatio: 1 });
    const request = t.tracing.startRequest({ server: "files", traceparent: AGENT_TRACEPARENT.replace(/-01$/, "-00") });
    request.describe(TOOL_CALL);
    const sent = request.stage("upstream", { transport: "stdio" }).traceparent();
    request.end({ outcome: "allowed", httpStatus: 200 });
    assert.deepEqual(await t.spans(), []);
    assert.match(sent ?? "", new RegExp(`^00-${AGENT_TRACE_ID}-[0-9a-f]{16}-00$`));
  });
});

describe("telemetry: resource and export", () => {
  it("spans carry service.name, service.version and service.instance.id", async () => {
    const t = memoryTracing({ serviceName: "gw-eu" }, { serviceVersion: "0.1.0", serviceInstanceId: "gw-eu-1" });
    const request = t.tracing.startRequest({ server: "files" });
    request.describe(TOOL_CALL);
    request.end({ outcome: "allowed", httpStatus: 200 });
    const [span] = await t.spans();
    assert.equal(span!.resource.attributes["service.name"], "gw-eu");
    assert.equal(span!.resource.attributes["service.version"], "0.1.0");
    assert.equal(span!.resource.attributes["service.instance.id"], "gw-eu-1");
    assert.equal(span!.instrumentationScope.name, "portcullis");
  });

  it("failing exports are logged once per failure streak, and the recovery once", async () => {
    const results: ExportResultCode[] = [ExportResultCode.FAILED, ExportResultCode.FAILED, ExportResultCode.SUCCESS, ExportResultCode.SUCCESS];
    const exported: ReadableSpan[][] = [];
    const exporter: SpanExporter = {
      export(spans, done: (r: ExportResult) => void) {
        exported.push(spans);
        const code = results.shift() ?? ExportResultCode.SUCCESS;
        done(code === ExportResultCode.FAILED ? { code, error: new Error("connect ECONNREFUSED 127.0.0.1:4318") } : { code });
      },
      shutdown: async () => undefined,
    };
    const lines: Array<{ level: LogLevel; msg: string; fields?: Record<string, unknown> }> = [];
    const tracing = startTracing(tracesConfigSchema.parse({ endpoint: "http://127.0.0.1:4318/v1/traces" }), {
      env: {},
      exporter,
      log: (level, msg, fields) => lines.push({ level, msg, fields }),
    });
    for (let i = 0; i < 4; i++) {
      const request = tracing.startRequest({ server: "files" });
      request.describe(TOOL_CALL);
      request.end({ outcome: "allowed", httpStatus: 200 });
      await tracing.flush();
    }
    await tracing.shutdown();
    assert.equal(exported.length, 4, "one export per flush");
    assert.deepEqual(
      lines.map((l) => `${l.level} ${l.msg}`),
      [
        "info tracing: exporting spans over OTLP/HTTP",
        "warn tracing: span export failed; spans are dropped until the endpoint accepts them again",
        "info tracing: span export works again",
      ],
    );
    assert.equal(lines[1]!.fields?.error, "connect ECONNREFUSED 127.0.0.1:4318");
    assert.equal(lines[0]!.fields?.endpoint, "http://127.0.0.1:4318/v1/traces");
  });

  it("shutdown exports what is left and can be called twice", async () => {
    const exported: ReadableSpan[] = [];
    const exporter: SpanExporter = {
      export(spans, done) {
        exported.push(...spans);
        done({ code: ExportResultCode.SUCCESS });
      },
      shutdown: async () => undefined,
    };
    const tracing = startTracing(tracesConfigSchema.parse({}), { env: {}, exporter });
    const request = tracing.startRequest({ server: "files" });
    request.describe(TOOL_CALL);
    request.end({ outcome: "allowed", httpStatus: 200 });
    await Promise.all([tracing.shutdown(), tracing.shutdown()]);
    assert.deepEqual(exported.map((s) => [s.name, s.kind]), [["tools/call echo", SpanKind.SERVER]]);
  });
});
