import type { AssertedAgent } from "../upstream-auth/index.js";
import type { JsonRpcMessage, JsonRpcNotification, JsonRpcRequest, JsonRpcResponse } from "./jsonrpc.js";

/**
 * One gateway session's connection to one upstream MCP server. Each downstream session gets its
 * own upstream session, so upstream state (subscriptions, log level, server→client requests)
 * never crosses principals.
 */
/** `legacy`: the 2025 handshake and an upstream session; `modern`: 2026-07-28, stateless. */
export type UpstreamEra = "legacy" | "modern";

/**
 * What another replica needs to reach this connection's upstream session (sealed into the session
 * id, never shown in clear). HTTP: the upstream's session id, or for a 2026 upstream the envelope
 * the 2025 client's capabilities became. stdio: the process is this replica's, so what it takes to
 * start another one: the client's initialize parameters.
 */
export type UpstreamState =
  | { kind: "http"; era: UpstreamEra; sessionId: string | null; protocolVersion: string | null; envelope?: Record<string, unknown> }
  | { kind: "stdio"; init: Record<string, unknown> }
  /** A federated session (federation.ts): each member's own state. */
  | { kind: "federated"; members: Record<string, UpstreamState> };

export interface UpstreamConnection {
  /** The era the upstream speaks; settled by `initialize` (auto-detected or configured). */
  readonly era: UpstreamEra;
  /** Sends `initialize` and returns the upstream's answer; establishes the upstream session. */
  initialize(request: JsonRpcRequest, opts: RequestOptions): Promise<JsonRpcResponse>;
  /**
   * Sends a request. Messages the upstream sends in relation to it before its response
   * (progress, logging, server→client requests) go to `opts.onMessage`.
   */
  request(request: JsonRpcRequest, opts: RequestOptions): Promise<JsonRpcResponse>;
  /** Sends a notification, or a response to a server→client request. */
  send(message: JsonRpcNotification | JsonRpcResponse): Promise<void>;
  /**
   * Opens the server→client stream. Resolves "unsupported" when the upstream has none; `onEnd`
   * runs when the upstream ends an open stream.
   */
  listen(onMessage: (m: JsonRpcMessage) => void, signal: AbortSignal, onEnd: () => void, opts?: ListenOptions): Promise<"open" | "unsupported">;
  /** Ends the upstream session (DELETE for HTTP, terminating the process for stdio). */
  close(): Promise<void>;
  /** What `state` a connection on another replica is resumed from (after initialize). */
  state(): UpstreamState;
  /**
   * Lets go of this replica's hold on the session without ending it upstream (HTTP: streams
   * closed, the upstream session left for other replicas; stdio: the process ends, as only it can).
   */
  detach(): Promise<void>;
}

/**
 * Opens a connection to `server` for a client of `clientEra`: a new upstream session, or with
 * `resumeFrom` the one a sealed session id names (HTTP: the same upstream session; stdio: a new
 * process, started by the caller's initialize).
 */
export type ConnectUpstream = (server: string, clientEra?: UpstreamEra, resumeFrom?: UpstreamState) => UpstreamConnection;

/**
 * An SSE event of the upstream's, before its message (if any) goes to onMessage: its id and
 * retry are written on to the client so that it can resume (2025-11-25 resumable streams).
 */
export type SseEventHook = (id: string | null, retry: number | null, hasMessage: boolean) => void;

export interface ListenOptions {
  /** A reconnecting client's Last-Event-ID, passed on so the upstream replays what followed. */
  lastEventId?: string;
  onSseEvent?: SseEventHook;
}

export interface RequestOptions {
  timeoutMs: number;
  signal?: AbortSignal;
  onMessage?: (m: JsonRpcMessage) => void;
  onSseEvent?: SseEventHook;
  /** Negotiated protocol version to announce upstream (HTTP header). */
  protocolVersion?: string | null;
  /** The verified agent, for an upstream's identity assertion (never its token). */
  agent?: AssertedAgent | undefined;
  /** The decision that let this request through, named in the identity assertion. */
  decisionId?: string | undefined;
  /** The gateway's own request (catalog lookup): its id is the gateway's, never an agent's. */
  internal?: boolean;
  /** W3C trace context of the gateway's upstream span (telemetry): sent as `traceparent`/`tracestate` headers. */
  trace?: { traceparent: string; tracestate?: string | undefined } | undefined;
  /**
   * For a 2026 upstream: `Mcp-Param-*` headers, rebuilt from the decided arguments (and the
   * agent's unknown ones, passed on); ignored by a 2025 upstream.
   */
  headers?: Record<string, string>;
}

/** Why an upstream exchange failed; mapped to a JSON-RPC error and audit outcome `error`. */
export class UpstreamError extends Error {
  constructor(
    readonly code: "upstream_unreachable" | "upstream_timeout" | "upstream_http_error" | "upstream_bad_response" | "upstream_session_lost" | "upstream_closed" | "upstream_auth_failed" | "upstream_busy"
      /** The upstream ended a resumable stream (after a priming id) before answering: the client resumes with GET + Last-Event-ID. */
      | "upstream_stream_paused",
    message: string,
  ) {
    super(message);
    this.name = "UpstreamError";
  }
}
