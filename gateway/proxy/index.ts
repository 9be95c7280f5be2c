// The proxy stage's front door: the endpoint, the HTTP front, upstream connections, the catalogue.
export { McpEndpoint, SUPPORTED_PROTOCOL_VERSIONS, type McpEndpointDeps, type AuditSinkLike, type ExchangeDone } from "./pipeline.js";
export { createHttpServer, type HttpAppOptions } from "./http-app.js";
export { HttpUpstreamPool } from "./upstream-http.js";
export { StdioUpstreamConnection } from "./upstream-stdio.js";
export { ERRORS, Refusal, type ErrorCode, type CatalogueEntry } from "./errors.js";
export type { ConnectUpstream, UpstreamConnection, UpstreamEra, UpstreamState } from "./upstream.js";
export { SessionSealer, type SealKey, type SealedSession } from "./session-seal.js";
export { LocalSessionLedger, RedisSessionLedger, type SessionLedger } from "./session-ledger.js";
export type { CallApprovals, CallBinding, ToolDefinition, ToolPinning, ToolVerdict } from "./session.js";
export { RATE_LIMIT_META_KEY, guardUpstreams, withConcurrencyLimit } from "./limits.js";
export { InFlight } from "./drain.js";
export { originPolicy, type OriginPolicy } from "./origin-policy.js";
export { endpointPath, federatedEndpoints, federatedName, FEDERATED_ROOT, type FederatedEndpoint } from "./federation.js";
