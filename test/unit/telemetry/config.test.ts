import assert from "node:assert/strict";
import { DEFAULT_TRACES_ENDPOINT, resolveTracesSettings, telemetryConfigSchema, tracesConfigSchema } from "../../../gateway/telemetry/index.js";

describe("telemetry config", () => {
  it("an empty traces section gets its defaults", () => {
    assert.deepEqual(tracesConfigSchema.parse({}), { sampleRatio: 1, headers: {} });
  });

  const refused: Array<{ note: string; section: unknown; path: string; message: RegExp }> = [
    { note: "an unknown key (strict)", section: { traces: { endpoin: "http://c:4318/v1/traces" } }, path: "traces", message: /endpoin/ },
    { note: "an unknown sibling of traces", section: { trace: {} }, path: "", message: /trace/ },
    { note: "a gRPC-style endpoint without a scheme", section: { traces: { endpoint: "collector:4317" } }, path: "traces.endpoint", message: /http:\/\/ or https:\/\/ URL/ },
    { note: "a non-http scheme", section: { traces: { endpoint: "grpc://collector:4317" } }, path: "traces.endpoint", message: /http:\/\/ or https:\/\/ URL/ },
    { note: "a sample ratio above 1", section: { traces: { sampleRatio: 1.5 } }, path: "traces.sampleRatio", message: /1/ },
    { note: "a negative sample ratio", section: { traces: { sampleRatio: -0.1 } }, path: "traces.sampleRatio", message: /0/ },
    { note: "a header that is not a string", section: { traces: { headers: { "x-token": 5 } } }, path: "traces.headers.x-token", message: /string/ },
  ];
  for (const c of refused) {
    it(`refuses ${c.note}, naming the field`, () => {
      const r = telemetryConfigSchema.safeParse(c.section);
      assert.equal(r.success, false);
      const issue = r.error!.issues[0]!;
      assert.equal(issue.path.join("."), c.path);
      assert.match(issue.message + JSON.stringify(issue), c.message);
    });
  }

  const resolved: Array<{ note: string; traces: Record<string, unknown>; env: NodeJS.ProcessEnv; endpoint: string; source: string; serviceName?: string }> = [
    { note: "the config's endpoint wins over the environment", traces: { endpoint: "http://a:4318/v1/traces" }, env: { OTEL_EXPORTER_OTLP_ENDPOINT: "http://b:4318" }, endpoint: "http://a:4318/v1/traces", source: "config" },
    { note: "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is used as is", traces: {}, env: { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "https://t.example/otlp", OTEL_EXPORTER_OTLP_ENDPOINT: "http://b:4318" }, endpoint: "https://t.example/otlp", source: "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT" },
    { note: "OTEL_EXPORTER_OTLP_ENDPOINT gets /v1/traces appended", traces: {}, env: { OTEL_EXPORTER_OTLP_ENDPOINT: "http://b:4318" }, endpoint: "http://b:4318/v1/traces", source: "OTEL_EXPORTER_OTLP_ENDPOINT" },
    { note: "OTEL_EXPORTER_OTLP_ENDPOINT with a path and a trailing slash", traces: {}, env: { OTEL_EXPORTER_OTLP_ENDPOINT: "http://b:4318/otel/" }, endpoint: "http://b:4318/otel/v1/traces", source: "OTEL_EXPORTER_OTLP_ENDPOINT" },
    { note: "nothing named: the OTLP/HTTP default", traces: {}, env: { OTEL_EXPORTER_OTLP_ENDPOINT: "  " }, endpoint: DEFAULT_TRACES_ENDPOINT, source: "default" },
    { note: "OTEL_SERVICE_NAME when the config names no service", traces: {}, env: { OTEL_SERVICE_NAME: "edge-gw" }, endpoint: DEFAULT_TRACES_ENDPOINT, source: "default", serviceName: "edge-gw" },
    { note: "the config's service name wins", traces: { serviceName: "gw" }, env: { OTEL_SERVICE_NAME: "edge-gw" }, endpoint: DEFAULT_TRACES_ENDPOINT, source: "default", serviceName: "gw" },
  ];
  for (const c of resolved) {
    it(`resolves: ${c.note}`, () => {
      const s = resolveTracesSettings(tracesConfigSchema.parse(c.traces), c.env);
      assert.ok(s);
      assert.equal(s.endpoint, c.endpoint);
      assert.equal(s.endpointSource, c.source);
      assert.equal(s.serviceName, c.serviceName ?? "portcullis");
    });
  }

  it("no traces section: off, whatever the environment says", () => {
    assert.equal(resolveTracesSettings(undefined, { OTEL_EXPORTER_OTLP_ENDPOINT: "http://b:4318" }), null);
  });

  it("OTEL_SDK_DISABLED=true (any case): off", () => {
    assert.equal(resolveTracesSettings(tracesConfigSchema.parse({}), { OTEL_SDK_DISABLED: "TRUE" }), null);
    assert.ok(resolveTracesSettings(tracesConfigSchema.parse({}), { OTEL_SDK_DISABLED: "false" }));
  });

  it("an environment endpoint that is not an http(s) URL is an error naming the variable", () => {
    assert.throws(() => resolveTracesSettings(tracesConfigSchema.parse({}), { OTEL_EXPORTER_OTLP_ENDPOINT: "collector:4317" }), /OTEL_EXPORTER_OTLP_ENDPOINT: must be an http:\/\/ or https:\/\/ URL/);
  });
});
