import { createHash, randomBytes } from "node:crypto";
import { canonicalJsonOfValue, MAX_APPROVAL_TTL_SECONDS } from "../policy/index.js";
import { IntegrityError } from "./errors.js";
import { foldName } from "./names.js";
import type { ApprovalBinding, ApprovalRequest } from "./types.js";

export { MAX_APPROVAL_TTL_SECONDS };

/** Decided, used and expired requests stay listable this long, then leave the store. */
export const DECIDED_RETENTION_MS = 7 * 86_400_000;

const MAX_REASON_CHARS = 1000;
const MAX_ACTOR_CHARS = 128;

/** `sha256:` + hex over canonical JSON (policy's encoding): the digest of a call's arguments. */
export function argumentsDigest(args: unknown): string {
  // A call without arguments is the call with `{}`: MCP treats them alike.
  const canonical = canonicalJsonOfValue(args === undefined || args === null ? {} : args);
  return `sha256:${createHash("sha256").update(canonical, "utf8").digest("hex")}`;
}

/** What an approval is bound to: this agent's call of this tool on this server with these arguments. */
export function approvalBinding(agent: { iss: string; sub: string }, server: string, tool: string, args: unknown): ApprovalBinding {
  return { agent: { iss: agent.iss, sub: agent.sub }, server, tool, argumentsDigest: argumentsDigest(args) };
}

/** One key per binding (hex sha256 of its canonical JSON), the index of the live request. */
export function bindingKey(b: ApprovalBinding): string {
  const canonical = canonicalJsonOfValue({ iss: b.agent.iss, sub: b.agent.sub, server: b.server, tool: b.tool, args: b.argumentsDigest });
  return createHash("sha256").update(canonical, "utf8").digest("hex");
}

export function sameBinding(r: ApprovalBinding, b: ApprovalBinding): boolean {
  return bindingKey(r) === bindingKey(b);
}

/** `apr_` + 128 random bits, URL-safe. */
export function newApprovalId(): string {
  return `apr_${randomBytes(16).toString("base64url")}`;
}

/** An operator's or approver's name as recorded: trimmed, 1-128 characters, no control characters. */
export function checkActor(name: string, what: string): string {
  const trimmed = name.trim();
  if (trimmed.length === 0) throw new IntegrityError("invalid_argument", `${what} name is empty`);
  if (trimmed.length > MAX_ACTOR_CHARS) throw new IntegrityError("invalid_argument", `${what} name is longer than ${MAX_ACTOR_CHARS} characters`);
  if (/\p{Cc}/u.test(trimmed)) throw new IntegrityError("invalid_argument", `${what} name contains control characters`);
  return trimmed;
}

/** An agent can never approve (or deny) its own request: names compared in folded form. */
export function isSelfDecision(request: ApprovalBinding, approver: string): boolean {
  return foldName(approver) === foldName(request.agent.sub);
}

export function selfApprovalError(r: ApprovalRequest, approver: string): IntegrityError {
  return new IntegrityError("self_approval", `approval ${r.id} was asked for by agent ${JSON.stringify(r.agent.sub)}: ${approver} cannot decide it (an agent can never approve its own request)`);
}

export function notPendingError(r: ApprovalRequest): IntegrityError {
  const by = r.approver ? ` by ${r.approver}` : "";
  return new IntegrityError("approval_not_pending", `approval ${r.id} is ${r.state}${by}, not pending`);
}

export function expiredError(r: ApprovalRequest): IntegrityError {
  return new IntegrityError("approval_expired", `approval ${r.id} expired at ${r.expiresAt}`);
}

export function notFoundError(id: string): IntegrityError {
  return new IntegrityError("approval_not_found", `no approval has id ${id} (approvals list shows them; decided ones are kept ${DECIDED_RETENTION_MS / 86_400_000} days)`);
}

/** Checks what `request()` is given; returns the reason as stored. */
export function checkRequestArgs(binding: ApprovalBinding, reason: string, ttlSeconds: number): string {
  for (const [field, v] of [["agent.iss", binding.agent.iss], ["agent.sub", binding.agent.sub], ["server", binding.server], ["tool", binding.tool]] as const) {
    if (typeof v !== "string" || v.length === 0) throw new IntegrityError("invalid_argument", `approval binding: ${field} is empty`);
  }
  if (!/^sha256:[0-9a-f]{64}$/.test(binding.argumentsDigest)) throw new IntegrityError("invalid_argument", "approval binding: argumentsDigest is not sha256:<64 hex>");
  if (!Number.isSafeInteger(ttlSeconds) || ttlSeconds < 1 || ttlSeconds > MAX_APPROVAL_TTL_SECONDS) {
    throw new IntegrityError("invalid_argument", `approval ttl_seconds must be an integer from 1 to ${MAX_APPROVAL_TTL_SECONDS}, not ${ttlSeconds}`);
  }
  return Array.from(reason).slice(0, MAX_REASON_CHARS).join("");
}
