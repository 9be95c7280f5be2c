import { ProxyTracerProvider, type HrTime } from "@opentelemetry/api";
import { ExportResultCode, hrTime, type ExportResult } from "@opentelemetry/core";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http";
import { defaultResource, resourceFromAttributes } from "@opentelemetry/resources";
import { BatchSpanProcessor, ParentBasedSampler, TraceIdRatioBasedSampler, TracerProvider, type ReadableSpan, type SpanExporter } from "@opentelemetry/sdk-trace";
import { ATTR_SERVICE_NAME, ATTR_SERVICE_VERSION } from "@opentelemetry/semantic-conventions";
import { silentLogger, type Logger } from "../shared/log.js";
import { resolveTracesSettings, type TracesConfig, type TracesSettings } from "./config.js";
import { GatewayRequestSpan, type RequestArrival, type RequestSpan, type SpanSource } from "./request-span.js";

/** The gateway's tracing: one `RequestSpan` per agent request, exported over OTLP/HTTP in batches. */
export interface Tracing {
  /** False when `telemetry.traces` is absent (or OTEL_SDK_DISABLED=true): spans are then no-ops that pass the agent's traceparent on. */
  readonly enabled: boolean;
  /** What tracing runs with; null when it is off. */
  readonly settings: TracesSettings | null;
  /** At arrival, before the body is read (see RequestSpan.describe for what comes after). */
  startRequest(arrival: RequestArrival): RequestSpan;
  /** Exports every ended span now. Never rejects: a failed export is logged (and its spans dropped). */
  flush(): Promise<void>;
  /** Exports what is left and stops; bounded by the export timeout, never rejects. Idempotent. */
  shutdown(): Promise<void>;
}

export interface TracingOptions {
  /** Where OTEL_* variables are read; default process.env. */
  readonly env?: NodeJS.ProcessEnv;
  readonly log?: Logger;
  /** `service.version` (the gateway's version). */
  readonly serviceVersion?: string;
  /** `service.instance.id` (the gateway instance id of the audit labels). */
  readonly serviceInstanceId?: string;
  /** Spans go here instead of OTLP/HTTP (tests: the SDK's InMemorySpanExporter). */
  readonly exporter?: SpanExporter;
  /** The clock of every span's start and end; default the SDK's (wall clock at high resolution). */
  readonly now?: () => HrTime;
}

/**
 * How long one export may take, and so how long `shutdown` may wait on an unreachable endpoint:
 * short enough for a pod's termination grace period, long enough for a distant backend.
 */
const EXPORT_TIMEOUT_MS = 5_000;
const INSTRUMENTATION_SCOPE = "portcullis";

/**
 * Starts tracing from `telemetry.traces` (undefined: off). Never touches the OpenTelemetry
 * globals (no global tracer provider, propagator or context manager): spans are parented
 * explicitly, so several gateways (or tests) in one process do not see each other's.
 */
export function startTracing(config: TracesConfig | undefined, options: TracingOptions = {}): Tracing {
  const log = options.log ?? silentLogger;
  const now = options.now ?? (() => hrTime());
  const settings = resolveTracesSettings(config, options.env ?? process.env);
  if (!settings) {
    // The API's no-op tracer: a span is the parent's context itself, so traceparent() passes the agent's on.
    const tracer = new ProxyTracerProvider().getTracer(INSTRUMENTATION_SCOPE);
    return new GatewayTracing(false, null, { tracer, now }, async () => undefined, async () => undefined);
  }
  const exporter = new WatchedExporter(
    options.exporter ?? new OTLPTraceExporter({ url: settings.endpoint, headers: { ...settings.headers }, timeoutMillis: EXPORT_TIMEOUT_MS }),
    log,
    settings.endpoint,
  );
  const provider = new TracerProvider({
    resource: defaultResource().merge(
      resourceFromAttributes({
        [ATTR_SERVICE_NAME]: settings.serviceName,
        ...(options.serviceVersion ? { [ATTR_SERVICE_VERSION]: options.serviceVersion } : {}),
        // The registry's name (service.instance.id is still a development attribute).
        ...(options.serviceInstanceId ? { "service.instance.id": options.serviceInstanceId } : {}),
      }),
    ),
    // A continued trace keeps the agent's decision; a new one is kept with probability sampleRatio.
    sampler: new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(settings.sampleRatio) }),
    spanProcessors: [new BatchSpanProcessor({ exporter, exportTimeoutMillis: EXPORT_TIMEOUT_MS })],
  });
  log("info", "tracing: exporting spans over OTLP/HTTP", {
    endpoint: settings.endpoint,
    endpointFrom: settings.endpointSource,
    serviceName: settings.serviceName,
    sampleRatio: settings.sampleRatio,
  });
  const tracer = provider.getTracer(INSTRUMENTATION_SCOPE, options.serviceVersion);
  let stopped: Promise<void> | null = null;
  return new GatewayTracing(
    true,
    settings,
    { tracer, now },
    // The batch processor rejects with the exporter's error, which WatchedExporter has logged already.
    () => provider.forceFlush().catch(() => undefined),
    () => (stopped ??= provider.shutdown().catch(() => undefined)),
  );
}

class GatewayTracing implements Tracing {
  constructor(
    readonly enabled: boolean,
    readonly settings: TracesSettings | null,
    private readonly source: SpanSource,
    private readonly flushSpans: () => Promise<void>,
    private readonly stop: () => Promise<void>,
  ) {}

  startRequest(arrival: RequestArrival): RequestSpan {
    return new GatewayRequestSpan(this.source, arrival);
  }

  flush(): Promise<void> {
    return this.flushSpans();
  }

  shutdown(): Promise<void> {
    return this.stop();
  }
}

/**
 * Says in the gateway's log when exports start failing (once, not per batch) and when they
 * recover; the spans of failed exports are dropped, never retried into memory without bound.
 */
class WatchedExporter implements SpanExporter {
  private failing = false;

  constructor(
    private readonly inner: SpanExporter,
    private readonly log: Logger,
    private readonly endpoint: string,
  ) {}

  export(spans: ReadableSpan[], done: (result: ExportResult) => void): void {
    this.inner.export(spans, (result) => {
      if (result.code !== ExportResultCode.SUCCESS) {
        if (!this.failing) {
          this.log("warn", "tracing: span export failed; spans are dropped until the endpoint accepts them again", {
            endpoint: this.endpoint,
            error: result.error?.message ?? "unknown error",
          });
        }
        this.failing = true;
      } else if (this.failing) {
        this.failing = false;
        this.log("info", "tracing: span export works again", { endpoint: this.endpoint });
      }
      done(result);
    });
  }

  shutdown(): Promise<void> {
    return this.inner.shutdown();
  }

  forceFlush(): Promise<void> {
    return this.inner.forceFlush?.() ?? Promise.resolve();
  }
}
