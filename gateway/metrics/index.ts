// The metrics stage's front door: the composition root and the proxy import from here only.
export {
  GatewayMetrics,
  REQUEST_BUCKETS,
  STAGE_BUCKETS,
  type ExchangeObservation,
  type Exposition,
  type GatewayMetricsOptions,
  type RateLimitObservation,
  type RequestObservation,
  type UpstreamObservation,
} from "./gateway-metrics.js";
export {
  MCP_METHODS,
  OTHER,
  PIPELINE_STAGES,
  RATE_LIMIT_REASONS,
  SESSION_KINDS,
  UPSTREAM_ERROR_CODES,
  type McpMethodLabel,
  type PipelineStage,
  type RateLimitReason,
  type SessionKind,
  type UpstreamErrorCode,
} from "./labels.js";
export type { BundleReading, JwksReading, MetricSourceName, MetricSources, OutboxReading } from "./sources.js";
