/**
 * Contract 4 (../../shared/DESIGN.md, docs/audit.md): one event per decision, in OPA's
 * decision-log shape plus MCP fields. SIEMs build on these names.
 */
export type AuditOutcome = "allowed" | "denied" | "rate_limited" | "unauthenticated" | "invalid" | "error";

/**
 * What stands where `finish` cut a value out of an event (docs/audit.md "Size limits"): the
 * size and sha256 of the JSON it replaced, the nesting depth past which it was cut, or why a
 * value could not be read.
 */
export type TruncationInfo = { bytes: number; sha256: string } | { depth: number } | { error: string };
export type TruncationMarker = { "portcullis.truncated": TruncationInfo };

/** `folded` of the summary event that stands for refusals not written one by one. */
export interface FoldedRefusals {
  /** How many events this summary stands for (none of them was written on its own). */
  count: number;
  /** `timestamp` of the first and of the last of them. */
  first: string;
  last: string;
  /** How many had each `error.code` ("none" for an event without error). */
  codes: Record<string, number>;
}

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
  /** A list request (tools/list, …): the names the agent was shown and those policy hid. */
  list?: { visible: string[] | TruncationMarker; hidden: string[] | TruncationMarker };
  tool_result?: ToolResultSummary;
  /**
   * Policy over results (mcp/authz/result): whether the result was let through and what was
   * redacted in it, by JSON pointer and size; never the redacted value itself.
   */
  result_policy?: ResultPolicySummary;
  /** A call held for a human approval (contract 7): the approval it waits on, or used. */
  approval?: { id: string; state: string };
  /**
   * A request to a federated endpoint (contract 5): its path; for a routed request the name the
   * agent used; for one that went to every member, what each member did (ok, denied, failed: code).
   */
  federation?: { endpoint: string; name?: string; members?: Record<string, string> };
  /** Address of the client that made the request. */
  requested_by?: string | null;
  latency_ms: { decision: number; upstream: number | null; total: number };
  /** Shadow mode (policy.shadow): what the candidate bundle decided; never enforced. */
  shadow?: { revision: string; allow: boolean; differs: boolean; error?: string };
  /**
   * JSON pointers of the parts of this event that were shortened or replaced to keep it within
   * `audit.maxEventBytes` (sorted). Absent when nothing was.
   */
  truncated?: string[];
  /** Only on the summary of refusals folded per source (audit.refusals). */
  folded?: FoldedRefusals;
  /**
   * Tamper evidence (docs/audit.md "Integrity"): position in this instance's hash chain. Set by
   * `AuditLog.record` in write order, so every event a sink receives carries it; optional in the
   * type only because `AuditRecord.finish` returns the event before the chain is assigned.
   */
  chain?: AuditChainFields;
}

/** The `chain` field of an event. */
export interface AuditChainFields {
  /** One per gateway process start: `seq` restarts at 1 in each epoch. */
  epoch: string;
  /** 1, 2, 3, … without gaps within an epoch. */
  seq: number;
  /** `hash` of the previous event of the epoch (64 zeros for seq 1). */
  prev: string;
  /** sha256 hex of this event's canonical JSON without `chain.hash`/`signature`/`key_id`. */
  hash: string;
  /** On checkpoints only: Ed25519 signature (base64) over the ASCII hex of `hash`. */
  signature?: string;
  key_id?: string;
}

import type { EncodedEvent } from "./jsonl.js";

/** Where events go. `write` resolves once the event is as durable as the sink makes it. */
export interface AuditSink {
  readonly name: string;
  /**
   * `encoded` is the event's JSON as AuditLog encoded it once for every sink (absent when a
   * caller writes to the sink directly); a sink that writes JSON uses it instead of encoding again.
   */
  write(event: AuditEvent, encoded?: EncodedEvent): Promise<void>;
  /**
   * Flushes what is buffered and releases resources. A sink that can give up on events (a
   * deadline passed with events still queued) reports how many it did not deliver.
   */
  close(): Promise<void | SinkCloseReport>;
  /** Back-pressure of a bounded sink (the Kafka outbox): rejects or waits when it is full. */
  admit?(): Promise<void>;
}

/** What a sink had accepted but not delivered when it closed (never reported as delivered). */
export interface SinkCloseReport {
  remaining: number;
}

/** What the result policy did to one tool result (docs/result-policy.md). */
export interface ResultPolicySummary {
  allow: boolean;
  reasons: string[];
  redacted: { pointer: string; kind?: string; bytes: number; scope: "match" | "value"; occurrences: number }[];
  unresolved: { pointer: string; kind?: string }[];
  error?: string;
}
