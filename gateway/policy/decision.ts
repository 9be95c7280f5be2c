import type { Decision, DecisionOutcome, RateLimitSpec } from "./types.js";

/** What toDecision returns: the decision, plus the error when the gateway denied on its own. */
export type ConvertedDecision = Pick<DecisionOutcome, "decision" | "error">;

const DECISION_KEYS = new Set(["allow", "reasons", "message", "rate_limit", "mask", "required_scopes", "require_approval"]);
/** Longest approval a decision may ask for (a week); a longer `ttl_seconds` is a malformed decision. */
export const MAX_APPROVAL_TTL_SECONDS = 7 * 86_400;
const RATE_LIMIT_KEYS = new Set(["key", "limit", "window_seconds"]);

/**
 * toDecision is the one place policy output becomes a Decision, and it fails closed: only an
 * object with `allow === true` whose every field matches contract 3 allows. `undefined` (an empty
 * result set) is `policy_undefined`; anything else that does not fit is `policy_malformed`.
 * Unknown keys are malformed too, so a misspelt `rate_limits` cannot silently drop a limit.
 * Hand-written checks rather than zod: this runs once per call and per listed item.
 */
export function toDecision(raw: unknown): ConvertedDecision {
  if (raw === undefined) {
    return failure("policy_undefined", "mcp/authz/decision is undefined for this input");
  }
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) {
    return failure("policy_malformed", `decision must be an object, got ${describe(raw)}`);
  }
  const obj = raw as Record<string, unknown>;
  for (const key in obj) {
    if (!DECISION_KEYS.has(key)) return failure("policy_malformed", `decision has unknown field "${key}"`);
  }
  if (typeof obj.allow !== "boolean") {
    return failure("policy_malformed", `decision.allow must be a boolean, got ${describe(obj.allow)}`);
  }

  const decision: Decision = { allow: obj.allow, reasons: [] };
  if (obj.reasons !== undefined) {
    if (!isStringArray(obj.reasons)) return failure("policy_malformed", "decision.reasons must be an array of strings");
    decision.reasons = obj.reasons;
  }
  if (obj.message !== undefined) {
    if (typeof obj.message !== "string") return failure("policy_malformed", "decision.message must be a string");
    decision.message = obj.message;
  }
  if (obj.rate_limit !== undefined) {
    const problem = rateLimitProblem(obj.rate_limit);
    if (problem !== undefined) return failure("policy_malformed", `decision.rate_limit ${problem}`);
    decision.rate_limit = obj.rate_limit as RateLimitSpec;
  }
  if (obj.mask !== undefined) {
    if (!isStringArray(obj.mask)) return failure("policy_malformed", "decision.mask must be an array of strings");
    const bad = obj.mask.find((p) => !isMaskPointer(p));
    if (bad !== undefined) {
      const reason = `decision.mask entry "${bad}" must be a JSON pointer under /input/ or /result/`;
      return failure("policy_malformed", reason);
    }
    decision.mask = obj.mask;
  }
  if (obj.required_scopes !== undefined) {
    // RFC 6750 §3 scope-token: it goes into a WWW-Authenticate header, so nothing else may pass.
    if (!isStringArray(obj.required_scopes) || obj.required_scopes.some((s) => !/^[\x21\x23-\x5B\x5D-\x7E]+$/.test(s))) {
      return failure("policy_malformed", "decision.required_scopes must be an array of OAuth scope tokens");
    }
    decision.required_scopes = obj.required_scopes;
  }
  if (obj.require_approval !== undefined) {
    const ra = obj.require_approval as Record<string, unknown> | null;
    if (ra === null || typeof ra !== "object" || Array.isArray(ra) || Object.keys(ra).some((k) => k !== "reason" && k !== "ttl_seconds")) {
      return failure("policy_malformed", "decision.require_approval must be an object {reason, ttl_seconds}");
    }
    if (typeof ra.reason !== "string" || ra.reason.length === 0) return failure("policy_malformed", "decision.require_approval.reason must be a non-empty string");
    if (typeof ra.ttl_seconds !== "number" || !Number.isSafeInteger(ra.ttl_seconds) || ra.ttl_seconds < 1 || ra.ttl_seconds > MAX_APPROVAL_TTL_SECONDS) {
      return failure("policy_malformed", `decision.require_approval.ttl_seconds must be an integer from 1 to ${MAX_APPROVAL_TTL_SECONDS}`);
    }
    decision.require_approval = { reason: ra.reason, ttl_seconds: ra.ttl_seconds };
  }
  return { decision };
}

/** The deny the gateway substitutes when the policy's answer cannot be used. */
export function failure(code: NonNullable<ConvertedDecision["error"]>["code"], message: string): ConvertedDecision {
  return { decision: { allow: false, reasons: [`${code}: ${message}`] }, error: { code, message } };
}

function rateLimitProblem(value: unknown): string | undefined {
  if (value === null || typeof value !== "object" || Array.isArray(value)) return "must be an object";
  const rl = value as Record<string, unknown>;
  for (const key in rl) if (!RATE_LIMIT_KEYS.has(key)) return `has unknown field "${key}"`;
  if (typeof rl.key !== "string" || rl.key === "") return "key must be a non-empty string";
  if (typeof rl.limit !== "number" || !Number.isSafeInteger(rl.limit) || rl.limit <= 0) {
    return "limit must be a positive integer";
  }
  if (typeof rl.window_seconds !== "number" || !Number.isFinite(rl.window_seconds) || rl.window_seconds <= 0) {
    return "window_seconds must be a positive number";
  }
  return undefined;
}

function isMaskPointer(p: string): boolean {
  return (p.startsWith("/input/") || p.startsWith("/result/"));
}

function isStringArray(value: unknown): value is string[] {
  if (!Array.isArray(value)) return false;
  for (const v of value) if (typeof v !== "string") return false;
  return true;
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (typeof value === "string") {
    return `the string ${JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value)}`;
  }
  return typeof value === "object" ? "an object" : `${typeof value} ${String(value)}`;
}
