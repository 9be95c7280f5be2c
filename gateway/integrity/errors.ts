/**
 * Why a store refused or failed. Codes are stable (docs/tool-pinning.md, docs/approvals.md); the
 * message says what to do and is written for an operator at the CLI.
 */
export const INTEGRITY_ERROR_CODES = [
  /** `tools approve` for a tool with no drifted definition on record. */
  "no_drift_seen",
  /** The drift on record is another definition than the one being approved. */
  "drift_changed",
  /** `tools revoke` for a tool with no pin. */
  "not_pinned",
  "approval_not_found",
  /** The approver is the agent that asked (names compared after NFKC and case folding). */
  "self_approval",
  /** Already approved, denied, used or expired. */
  "approval_not_pending",
  "approval_expired",
  /** A bad operator or approver name, binding, reason or TTL. */
  "invalid_argument",
  /** The store cannot be read or written now (Redis unreachable, file locked or unwritable). */
  "store_unavailable",
  /** The store holds something that is not one of ours (a hand-edited file, a foreign key). */
  "store_corrupt",
] as const;

export type IntegrityErrorCode = (typeof INTEGRITY_ERROR_CODES)[number];

export class IntegrityError extends Error {
  constructor(
    readonly code: IntegrityErrorCode,
    message: string,
  ) {
    super(message);
    this.name = "IntegrityError";
  }
}

export function isIntegrityError(err: unknown, code?: IntegrityErrorCode): err is IntegrityError {
  return err instanceof IntegrityError && (code === undefined || err.code === code);
}
