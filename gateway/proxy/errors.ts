import { RpcCode } from "./jsonrpc.js";

/**
 * Every way the edge or the session layer refuses a request, with its HTTP status and JSON-RPC
 * code, in one table. docs/errors.md documents each code; a unit test keeps the two in step.
 */
export const EDGE_ERRORS = {
  origin_forbidden: { status: 403, rpc: RpcCode.InvalidRequest, message: "Forbidden: Origin not allowed" },
  unsupported_media_type: { status: 415, rpc: RpcCode.InvalidRequest, message: "Content-Type must be application/json" },
  body_too_large: { status: 413, rpc: RpcCode.InvalidRequest, message: "Request body too large" },
  parse_error: { status: 400, rpc: RpcCode.ParseError, message: "Parse error: body is not valid JSON" },
  invalid_request: { status: 400, rpc: RpcCode.InvalidRequest, message: "Invalid Request" },
  unsupported_protocol_version: { status: 400, rpc: RpcCode.InvalidRequest, message: "Unsupported MCP-Protocol-Version" },
  session_required: { status: 400, rpc: RpcCode.InvalidRequest, message: "Bad Request: Mcp-Session-Id header is required" },
  session_not_found: { status: 404, rpc: RpcCode.SessionNotFound, message: "Session not found" },
  session_limit: { status: 503, rpc: RpcCode.InternalError, message: "Too many sessions; try again later" },
  unknown_server: { status: 404, rpc: RpcCode.InvalidRequest, message: "No such MCP server" },
  method_not_allowed: { status: 405, rpc: RpcCode.InvalidRequest, message: "Method not allowed" },
  stream_conflict: { status: 409, rpc: RpcCode.InvalidRequest, message: "A stream is already open for this session" },
  upstream_failed: { status: 502, rpc: RpcCode.InternalError, message: "Upstream MCP server failed" },
  // Answered in band (HTTP 200): the request was valid, the gateway cannot put it on record.
  audit_unavailable: { status: 200, rpc: RpcCode.InternalError, message: "Audit log unavailable; request refused" },
  // The durable audit outbox is over its bound (audit.onFull: reject): refused before deciding.
  audit_backpressure: { status: 200, rpc: RpcCode.InternalError, message: "Audit backlog full (Kafka behind); request refused, retry later" },
} as const;

export type EdgeErrorCode = keyof typeof EDGE_ERRORS;

export class EdgeError extends Error {
  constructor(
    readonly code: EdgeErrorCode,
    detail?: string,
  ) {
    super(detail ? `${EDGE_ERRORS[code].message}: ${detail}` : EDGE_ERRORS[code].message);
    this.name = "EdgeError";
  }
  get status(): number {
    return EDGE_ERRORS[this.code].status;
  }
  get rpcCode(): number {
    return EDGE_ERRORS[this.code].rpc;
  }
}
