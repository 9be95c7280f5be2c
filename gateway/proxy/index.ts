export { McpEndpoint, SUPPORTED_PROTOCOL_VERSIONS, type McpEndpointDeps, type AuditSinkLike } from "./mcp-endpoint.js";
export { createHttpServer, type HttpAppOptions } from "./http-app.js";
export { HttpUpstreamPool } from "./upstream-http.js";
export { StdioUpstreamConnection } from "./upstream-stdio.js";
export { EDGE_ERRORS, EdgeError, type EdgeErrorCode } from "./errors.js";
export type { UpstreamConnection } from "./upstream.js";
export type { ToolDefinition } from "./session.js";
// Traffic control (issue 5): limits stage answers, per-upstream concurrency, graceful drain.
export { LIMIT_ERRORS, RATE_LIMIT_META_KEY, guardUpstreams, withConcurrencyLimit } from "./limits.js";
export { InFlight } from "./drain.js";
