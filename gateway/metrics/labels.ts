/**
 * Bounded label values. Every label of every metric comes from a closed set fixed here or at
 * construction (the configured upstream names), so a scrape's series count has a ceiling no agent
 * can raise: anything outside a set is recorded as OTHER. No agent id, tool name, argument or
 * free-form message is ever a label value.
 */

/** What a value outside its label's set is recorded as. */
export const OTHER = "other";

/**
 * The MCP methods a request can be recorded under (the audit event's `mcp.method`): the
 * client→server requests and notifications of the protocol revisions the gateway serves, the
 * server→client requests an agent answers, and the gateway's own HTTP-level events.
 */
export const MCP_METHODS = [
  "initialize",
  "ping",
  "tools/list",
  "tools/call",
  "resources/list",
  "resources/templates/list",
  "resources/read",
  "resources/subscribe",
  "resources/unsubscribe",
  "prompts/list",
  "prompts/get",
  "completion/complete",
  "logging/setLevel",
  "tasks/get",
  "tasks/result",
  "tasks/cancel",
  "tasks/list",
  "notifications/initialized",
  "notifications/cancelled",
  "notifications/progress",
  "notifications/roots/list_changed",
  "roots/list",
  "sampling/createMessage",
  "elicitation/create",
  "portcullis/stream-open",
  "portcullis/session-end",
] as const;
export type McpMethodLabel = (typeof MCP_METHODS)[number] | typeof OTHER;

/** `error.data.code` of an upstream failure (docs/errors.md, `upstream_failed`). */
export const UPSTREAM_ERROR_CODES = [
  "upstream_unreachable",
  "upstream_timeout",
  "upstream_http_error",
  "upstream_bad_response",
  "upstream_session_lost",
  "upstream_closed",
  "upstream_auth_failed",
  "upstream_busy",
  "upstream_stream_paused",
] as const;
export type UpstreamErrorCode = (typeof UPSTREAM_ERROR_CODES)[number];

/** The stages of the request line (DESIGN.md), each timed on its own. */
export const PIPELINE_STAGES = ["edge", "identity", "decision", "limits", "upstream", "audit"] as const;
export type PipelineStage = (typeof PIPELINE_STAGES)[number];

/** Why a call was shed by the limits stage (the error codes of outcome `rate_limited`). */
export const RATE_LIMIT_REASONS = ["rate_limited", "ratelimit_unavailable", "upstream_busy"] as const;
export type RateLimitReason = (typeof RATE_LIMIT_REASONS)[number];

/** Sessions this replica holds, by the kind of upstream behind them (a stdio one is a child process). */
export const SESSION_KINDS = ["http", "stdio"] as const;
export type SessionKind = (typeof SESSION_KINDS)[number];

/** Longest bundle revision kept as a label value; a longer one is cut (revisions are the bundle author's strings). */
export const MAX_REVISION_LABEL_CHARS = 128;

/** A closed set of label values: `of(value)` is the value when it is in the set, else OTHER. */
export class LabelSet<T extends string> {
  private readonly values: ReadonlySet<string>;

  constructor(values: Iterable<T>) {
    this.values = new Set(values);
  }

  of(value: string | null | undefined): T | typeof OTHER {
    return typeof value === "string" && this.values.has(value) ? (value as T) : OTHER;
  }
}
