import type { AuditOutcome } from "../audit/index.js";

/** Every outcome an audit event can carry (contract 4), in the order the page lists them. */
export const OUTCOMES: readonly AuditOutcome[] = ["allowed", "denied", "rate_limited", "unauthenticated", "invalid", "error"];

/**
 * What the console keeps of one audit event: the fields an operator reads, never the tool's output
 * (`tool_result.content`) and never the full policy input. An event may be up to
 * `audit.maxEventBytes` (512 KiB by default); an entry is a few KiB at most, so the feed's memory is
 * bounded by its event count.
 */
export interface ConsoleEntry {
  /** Position in this feed, 1, 2, 3, … (the SSE `id`, so a stream can resume after it). */
  seq: number;
  decision_id: string;
  /** The event's own timestamp (RFC 3339 with nanoseconds). */
  timestamp: string;
  outcome: AuditOutcome;
  /** The agent's `sub`; null when the request carried no valid token. */
  agent: string | null;
  client_id: string | null;
  server: string;
  method: string;
  tool: string | null;
  /** The resource URI or prompt name of a `resources/read` or `prompts/get`. */
  target: string | null;
  /** `result.reasons` of the decision (strings only, capped). */
  reasons: string[];
  /** `result.message`, what the agent was told. */
  message: string | null;
  /** `error` of the event (a failed decision or call). */
  error: { code: string; message: string } | null;
  /** JSON of `input.request.arguments` as audited (masked), capped at ARGUMENTS_CAP characters. */
  arguments: string | null;
  /** Revision of the bundle that decided. */
  bundle: string | null;
  latency_ms: number;
  /** A list request: how many names the agent was shown and how many policy hid. */
  list: { visible: number; hidden: number } | null;
  /** An allowed call whose upstream answered with `isError`. */
  tool_error: boolean;
}

/** What `events` and `stream` select on; an absent field selects everything. */
export interface ConsoleFilter {
  agent?: string;
  server?: string;
  tool?: string;
  outcome?: AuditOutcome;
  /** Epoch milliseconds: only events whose timestamp is at or after it. */
  since?: number;
}

/** The active policy bundle as the composition root knows it. */
export interface ConsoleBundleInfo {
  revision: string;
  /** RFC 3339; when the gateway loaded it. */
  loadedAt?: string;
}

/**
 * EXTENSION POINT (tool integrity, contract 7): what the tool-integrity work plugs in. The shapes
 * below are the console's proposal; that issue may widen them. Without `ConsoleOptions.integrity`
 * the API answers these sections with `available: false` and empty lists, and the page hides them.
 */
export interface DriftedTool {
  server: string;
  tool: string;
  /** The pinned digest (`sha256:…`) and the one the upstream now serves. */
  pinned_digest: string;
  current_digest: string;
  /** RFC 3339; when the drift was first seen. */
  detected_at: string;
}

export interface PendingApproval {
  id: string;
  agent: string;
  server: string;
  tool: string;
  /** `require_approval.reason` of the decision. */
  reason: string;
  /** RFC 3339. */
  requested_at: string;
  expires_at: string;
}

export interface ConsoleIntegrity {
  drifted(): Promise<readonly DriftedTool[]>;
  approvals(): Promise<readonly PendingApproval[]>;
  /** Resolves false when no pending approval has that id (unknown, expired or already decided). */
  approve(id: string, approver: string): Promise<boolean>;
}

/** The operator an `authorize` call admitted. */
export interface ConsoleOperator {
  sub: string;
}
