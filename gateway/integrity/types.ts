/**
 * Tool integrity (DESIGN.md contract 7): what the stores hold and the two seams the gateway and
 * the CLI call, PinStore and ApprovalStore. Each has a local-file and a Redis implementation with
 * the same semantics (test/unit/integrity/, test/integration/integrity-redis.test.ts).
 */

/**
 * The fields of a tool definition that its digest covers (policy `toolDigest`): absent fields are
 * absent here too, so the digest of a stored definition is the digest the upstream's listing had.
 */
export interface ToolDefinition {
  name: string;
  title?: string;
  description?: string;
  inputSchema?: unknown;
  outputSchema?: unknown;
  annotations?: unknown;
}

/** Who pinned a definition: the first sighting, policy data naming its digest, or an operator. */
export type PinnedBy = "first_seen" | "policy_data" | `operator:${string}`;

export interface ToolPin {
  server: string;
  tool: string;
  /** `sha256:` + hex over the canonical JSON of `definition` (policy `toolDigest`). */
  digest: string;
  definition: ToolDefinition;
  /** RFC 3339. */
  pinnedAt: string;
  pinnedBy: PinnedBy;
}

/** The definition fields diffDefinitions compares (the name is the pin's key, never a change). */
export type DefinitionField = "title" | "description" | "inputSchema" | "outputSchema" | "annotations";

/** One changed field of a drifted definition, for the audit event and `tools list`. */
export interface FieldChange {
  field: DefinitionField;
  change: "added" | "removed" | "changed";
  /** JSON pointer (RFC 6901) of the first differing leaf inside a schema or annotations object. */
  path?: string;
  /** The old and new values at `path` (or of the field), as JSON, at most 200 characters. */
  before?: string;
  after?: string;
}

/** A definition that differs from the pin, as an upstream listed it (what `tools approve` approves). */
export interface DriftRecord {
  server: string;
  tool: string;
  /** Digest of `definition`, the drifted one. */
  digest: string;
  definition: ToolDefinition;
  /** The pin's digest when the drift was seen. */
  pinnedDigest: string;
  changes: FieldChange[];
  /** RFC 3339: when this drifted digest was first seen. */
  seenAt: string;
}

export interface PinStore {
  /** True when every replica sees the same pins (Redis). */
  readonly shared: boolean;
  get(server: string, tool: string): Promise<ToolPin | null>;
  /** Pins `pin` unless the tool is pinned already; returns the pin in force (another replica's, if it won). */
  pinFirstSeen(pin: ToolPin): Promise<ToolPin>;
  /**
   * pinFirstSeen for every pin of a listing at once (one write of the local file, not one per tool:
   * a first listing of 1,000 tools rewrote the file 1,000 times). Returns the pins in force, in order.
   */
  pinAllFirstSeen(pins: readonly ToolPin[]): Promise<ToolPin[]>;
  /**
   * Pins the drifted definition an upstream listed (`pinnedBy: operator:NAME`) and drops the drift.
   * Refused (IntegrityError) unless a drift of exactly this definition was seen: `no_drift_seen`,
   * `drift_changed` when the drift seen since is another definition.
   */
  approve(server: string, tool: string, definition: ToolDefinition, operator: string): Promise<ToolPin>;
  /** Drops the pin and any drift; the next sighting pins afresh. False when there was nothing. */
  revoke(server: string, tool: string): Promise<boolean>;
  /** Pins, sorted by server then tool; of one server when given. */
  list(server?: string): Promise<ToolPin[]>;
  /**
   * Records that `definition` differs from the tool's pin (diffed against the pin). Returns the
   * drift on record (the earlier one when the same digest was seen before), or null when the tool
   * is unpinned or the definition is the pinned one (nothing drifted).
   */
  noteDrift(server: string, tool: string, definition: ToolDefinition): Promise<DriftRecord | null>;
  getDrift(server: string, tool: string): Promise<DriftRecord | null>;
  /** Drifts, sorted by server then tool. */
  drifts(server?: string): Promise<DriftRecord[]>;
  /** Forgets a drift (the upstream serves the pinned definition again). False when there was none. */
  clearDrift(server: string, tool: string): Promise<boolean>;
}

export type ApprovalState = "pending" | "approved" | "denied" | "used" | "expired";

/** The call an approval is for: the same agent's identical call (same server, tool and arguments). */
export interface ApprovalBinding {
  agent: { iss: string; sub: string };
  server: string;
  tool: string;
  /** `sha256:` + hex over the canonical JSON of the call's arguments (approvalBinding). */
  argumentsDigest: string;
}

export interface ApprovalRequest extends ApprovalBinding {
  /** `apr_` + 128 random bits, base64url. */
  id: string;
  /** The decision's `require_approval.reason`. */
  reason: string;
  ttlSeconds: number;
  /** RFC 3339. The request can be approved and then used until expiresAt = createdAt + ttlSeconds. */
  createdAt: string;
  expiresAt: string;
  state: ApprovalState;
  /** Who approved or denied it, and when. */
  approver?: string;
  decidedAt?: string;
  /** The approver's note (`approvals deny --reason`). */
  note?: string;
  usedAt?: string;
}

/** The audit event each transition becomes (gateway-side). */
export type ApprovalEvent = "approval_required" | "approved" | "denied" | "used" | "expired";

export interface ApprovalTransition {
  /** `<approval id>:<event>`: unique, each state is reached once. */
  id: string;
  event: ApprovalEvent;
  approvalId: string;
  /** RFC 3339. */
  at: string;
  /** The approver (approved, denied). */
  actor?: string;
  note?: string;
  /** The request just after the transition. */
  request: ApprovalRequest;
  /** False while in the store; claimTransitions hands each out once, audited: true. */
  audited: boolean;
}

export interface ApprovalStore {
  readonly shared: boolean;
  /** The live (pending or approved, unexpired) request for this binding, else a new pending one. */
  request(binding: ApprovalBinding, reason: string, ttlSeconds: number): Promise<ApprovalRequest>;
  get(id: string): Promise<ApprovalRequest | null>;
  /** Refused (IntegrityError): approval_not_found, self_approval, approval_not_pending, approval_expired. */
  approve(id: string, approver: string): Promise<ApprovalRequest>;
  deny(id: string, approver: string, note?: string): Promise<ApprovalRequest>;
  /** The approved, unexpired request for exactly this binding, now `used`; returned once, then null. */
  consume(binding: ApprovalBinding): Promise<ApprovalRequest | null>;
  /** Requests newest first, of the given states when given. */
  list(filter?: { state?: readonly ApprovalState[] }): Promise<ApprovalRequest[]>;
  /** Pending and approved requests past their expiry become `expired`; returns them. */
  expireDue(nowMs?: number): Promise<ApprovalRequest[]>;
  /** Up to `limit` unaudited transitions, oldest first, each handed to exactly one caller. */
  claimTransitions(limit: number): Promise<ApprovalTransition[]>;
}
