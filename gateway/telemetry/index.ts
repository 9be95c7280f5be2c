// The telemetry stage's front door (README.md): tracing for the pipeline, and the config section it reads.
export { startTracing, type Tracing, type TracingOptions } from "./tracing.js";
export type { LocalStageName, RequestArrival, RequestDescription, RequestResult, RequestSpan, StageName, StageSpan } from "./request-span.js";
export type { SpanResult, UpstreamTarget } from "./attributes.js";
export {
  DEFAULT_SERVICE_NAME,
  DEFAULT_TRACES_ENDPOINT,
  resolveTracesSettings,
  telemetryConfigSchema,
  tracesConfigSchema,
  type TelemetryConfig,
  type TracesConfig,
  type TracesSettings,
} from "./config.js";
