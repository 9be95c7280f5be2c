/**
 * Contract 4 (../../shared/DESIGN.md, docs/audit.md): one event per decision, in OPA's
 * decision-log shape plus MCP fields. SIEMs build on these names.
 */
export type AuditOutcome = "allowed" | "denied" | "rate_limited" | "unauthenticated" | "error";

export interface ToolResultSummary {
  is_error: boolean;
  /** Size of the full serialized result, bytes. */
  bytes: number;
  /** sha256 (hex) of the full serialized result. */
  sha256: string;
  /** The serialized result, capped to the configured size. */
  content: string;
  truncated: boolean;
}

export interface AuditEvent {
  decision_id: string;
  /** RFC 3339 with nanoseconds, UTC. */
  timestamp: string;
  path: "mcp/authz/decision";
  labels: { id: string; version: string };
  bundles: Record<string, { revision: string }>;
  /** The policy input, masked (null for unauthenticated requests: there is no input). */
  input: unknown;
  /** The decision as the policy returned it (null when it did not run). */
  result: unknown;
  erased: string[];
  masked: string[];
  outcome: AuditOutcome;
  /** Set when the decision or the call failed: a stable code and a message. */
  error?: { code: string; message: string };
  agent: { sub: string | null; client_id: string | null };
  mcp: {
    server: string;
    method: string;
    tool: string | null;
    resource?: string | null;
    prompt?: string | null;
    session_id?: string | null;
    request_id?: string | number | null;
  };
  tool_result?: ToolResultSummary;
  /** Address of the client that made the request. */
  requested_by?: string | null;
  latency_ms: { decision: number; upstream: number | null; total: number };
}

/** Where events go. `write` resolves once the event is as durable as the sink makes it. */
export interface AuditSink {
  readonly name: string;
  write(event: AuditEvent): Promise<void>;
  /**
   * Flushes what is buffered and releases resources. A sink that can give up on events (a
   * deadline passed with events still queued) reports how many it did not deliver.
   */
  close(): Promise<void | SinkCloseReport>;
}

/** What a sink had accepted but not delivered when it closed (never reported as delivered). */
export interface SinkCloseReport {
  remaining: number;
}
