import type { AuditOutcome } from "../audit/index.js";
import { RpcCode } from "./jsonrpc.js";

/**
 * The one error catalogue: every way the gateway refuses or fails a request, with its HTTP
 * status, JSON-RPC code, audit outcome and message. Answers are built from this table only
 * (`answers.ts`), and docs/errors.md documents every row (test/unit/proxy/errors-documented.test.ts
 * walks the table and checks each row's status and code columns).
 *
 * `inBand`: answered HTTP 200 (the request was valid; a `tools/call` gets a `CallToolResult` with
 * `isError: true`, other methods the JSON-RPC error), because the refusal is about this call, not
 * about the HTTP exchange. `status` is then 200.
 */
export interface CatalogueEntry {
  readonly status: number;
  readonly rpc: number;
  readonly outcome: AuditOutcome;
  readonly message: string;
  readonly inBand: boolean;
}

const edge = (status: number, rpc: number, message: string): CatalogueEntry => ({ status, rpc, outcome: "invalid", message, inBand: false });
const inBand = (rpc: number, outcome: AuditOutcome, message: string): CatalogueEntry => ({ status: 200, rpc, outcome, message, inBand: true });

export const ERRORS = {
  // ---- edge: refused before identity or decision (outcome invalid)
  origin_forbidden: edge(403, RpcCode.InvalidRequest, "Forbidden: Origin not allowed"),
  host_forbidden: edge(403, RpcCode.InvalidRequest, "Forbidden: Host not allowed"),
  unsupported_media_type: edge(415, RpcCode.InvalidRequest, "Content-Type must be application/json"),
  body_too_large: edge(413, RpcCode.InvalidRequest, "Request body too large"),
  parse_error: edge(400, RpcCode.ParseError, "Parse error: body is not valid JSON"),
  ambiguous_json: edge(400, RpcCode.InvalidRequest, "Invalid Request: duplicate or case-colliding member names"),
  json_too_deep: edge(400, RpcCode.InvalidRequest, "Invalid Request: JSON nests too deeply"),
  invalid_json_value: edge(400, RpcCode.InvalidRequest, "Invalid Request: number out of range or unpaired surrogate"),
  invalid_request: edge(400, RpcCode.InvalidRequest, "Invalid Request"),
  unsupported_protocol_version: edge(400, RpcCode.UnsupportedProtocolVersion, "Unsupported protocol version"),
  // 2026-07-28: the per-request envelope and the headers that mirror the body
  invalid_envelope: edge(400, RpcCode.InvalidParams, "Invalid _meta envelope for protocol revision 2026-07-28"),
  header_mismatch: edge(400, RpcCode.HeaderMismatch, "Bad Request: the request headers and body disagree"),
  missing_client_capability: edge(400, RpcCode.MissingRequiredClientCapability, "The request's client capabilities do not declare what it needs"),
  unknown_server: edge(404, RpcCode.InvalidRequest, "No such MCP server"),
  method_not_allowed: edge(405, RpcCode.InvalidRequest, "Method not allowed"),
  method_not_found: edge(404, RpcCode.MethodNotFound, "Method not found"),
  // ---- sessions (outcome invalid)
  session_required: edge(400, RpcCode.InvalidRequest, "Bad Request: Mcp-Session-Id header is required"),
  session_not_found: edge(404, RpcCode.SessionNotFound, "Session not found"),
  session_limit: edge(503, RpcCode.InternalError, "Too many sessions; try again later"),
  // Shared session store (sessions.store: redis) unreachable and sessions.onRedisDown: refuse.
  session_store_unavailable: { status: 503, rpc: RpcCode.InternalError, outcome: "error", message: "Session store unavailable; try again shortly", inBand: false },
  session_quota: edge(429, RpcCode.InternalError, "Too many sessions for this agent; end one first"),
  stream_conflict: edge(409, RpcCode.InvalidRequest, "A stream is already open for this session"),
  unexpected_response: edge(400, RpcCode.InvalidRequest, "Invalid Request: no server request is waiting for this response"),
  // ---- params (in band, outcome invalid): the method is known, its params are not usable
  invalid_params: { status: 200, rpc: RpcCode.InvalidParams, outcome: "invalid", message: "Invalid params", inBand: true },
  // ---- decisions (outcome denied)
  denied: inBand(RpcCode.InvalidParams, "denied", "Denied by policy"),
  method_denied: inBand(RpcCode.MethodNotFound, "denied", "Method not found"),
  unknown_tool: inBand(RpcCode.InvalidParams, "denied", "Unknown tool"),
  unknown_task: inBand(RpcCode.InvalidParams, "denied", "Unknown task"),
  // Approvals (contract 7): the decision holds this call for a human; the identical call goes through once approved.
  approval_required: inBand(RpcCode.InvalidParams, "denied", "This call needs a human approval"),
  // Tool integrity (contract 7): the tool's definition differs from the one pinned for it.
  tool_drifted: inBand(RpcCode.InvalidParams, "denied", "This tool's definition changed since it was approved; an operator must approve it before it can be called"),
  // Tool integrity (contract 7): the upstream lists another tool under this name (or one equal once normalised).
  tool_name_collision: inBand(RpcCode.InvalidParams, "denied", "This tool's name collides with another tool's on this server; neither can be called"),
  insufficient_scope: { status: 403, rpc: RpcCode.InvalidRequest, outcome: "denied", message: "Forbidden: insufficient scope", inBand: false },
  // ---- limits (outcome rate_limited)
  rate_limited: inBand(RpcCode.InternalError, "rate_limited", "Rate limit exceeded"),
  ratelimit_unavailable: inBand(RpcCode.InternalError, "rate_limited", "Rate limiter unavailable"),
  upstream_busy: inBand(RpcCode.InternalError, "rate_limited", "Upstream MCP server is at its concurrency limit"),
  // ---- upstream and audit (outcome error)
  upstream_failed: inBand(RpcCode.InternalError, "error", "Upstream MCP server failed"),
  // initialize and GET: no call to answer in band; the HTTP exchange itself failed.
  upstream_init_failed: { status: 502, rpc: RpcCode.InternalError, outcome: "error", message: "Upstream MCP server failed", inBand: false },
  audit_unavailable: inBand(RpcCode.InternalError, "error", "Audit log unavailable; request refused"),
  audit_backpressure: inBand(RpcCode.InternalError, "error", "Audit backlog full (Kafka behind); request refused, retry later"),
  internal_error: inBand(RpcCode.InternalError, "error", "Internal error"),
} as const satisfies Record<string, CatalogueEntry>;

export type ErrorCode = keyof typeof ERRORS;

/**
 * A refusal on its way to the agent: thrown by any stage, turned into the answer and the audit
 * outcome in one place (the pipeline's catch). `detail` is appended to the message the agent sees;
 * `data` goes into `error.data`; `audit` is the error recorded in the event (default: code and
 * message).
 */
export class Refusal extends Error {
  constructor(
    readonly code: ErrorCode,
    readonly detail?: string,
    /** Extra members of `error.data` (or of the in-band result's `_meta`). */
    readonly data?: Record<string, unknown>,
    /** Replaces the catalogue message for the agent (a policy's own denial message). */
    agentMessage?: string,
    /** HTTP headers of the answer (the scope challenge's WWW-Authenticate). */
    readonly headers?: Record<string, string>,
  ) {
    super(agentMessage ?? (detail ? `${ERRORS[code].message}: ${detail}` : ERRORS[code].message));
    this.name = "Refusal";
  }
  get entry(): CatalogueEntry {
    return ERRORS[this.code];
  }
}
