import { isJsonPointer } from "../shared/json-pointer.js";
import { RESULT_ENTRYPOINT } from "./bundle.js";
import type { DecisionErrorCode, PolicyEngine, PolicyInput, ResultDecision, ResultDecisionOutcome, ResultRedaction } from "./types.js";

/** What toResultDecision returns: the decision, plus the error when the gateway blocked on its own. */
export type ConvertedResultDecision = Pick<ResultDecisionOutcome, "decision" | "error">;

const RESULT_DECISION_KEYS = new Set(["allow", "reasons", "message", "redact"]);
const REDACTION_KEYS = new Set(["pointer", "match", "kind"]);
// `kind` goes into the audit event and metrics labels: a short name, never free text.
const KIND = /^[A-Za-z0-9_.:-]{1,64}$/;

/**
 * toResultDecision is the one place mcp/authz/result output becomes a ResultDecision, and it fails
 * closed like toDecision: only an object with `allow === true` whose every field fits lets the
 * result through, redacted as it says. An undefined result (the entrypoint exists but no rule
 * matched this input) blocks too: a bundle that declares a result policy and has no answer must
 * not hand the agent an unchecked result. Unknown keys, a redaction that is not an RFC 6901
 * pointer, an empty `match` or a malformed `kind` block the result (`policy_malformed`), so a
 * misspelt `redacts` cannot silently let a secret through. Messages describe the shape of a bad
 * value, never its text: the output may hold the secrets the policy found.
 *
 * `redact` entries are either a pointer string (the whole value) or `{pointer, match?, kind?}`.
 */
export function toResultDecision(raw: unknown): ConvertedResultDecision {
  if (raw === undefined) return resultFailure("policy_undefined", `${RESULT_ENTRYPOINT} is undefined for this input`);
  if (!isPlainObject(raw)) return resultFailure("policy_malformed", `result decision must be an object, got ${shape(raw)}`);
  for (const key in raw) {
    if (!RESULT_DECISION_KEYS.has(key)) return resultFailure("policy_malformed", `result decision has unknown field ${quoteKey(key)}`);
  }
  if (typeof raw.allow !== "boolean") {
    return resultFailure("policy_malformed", `result decision.allow must be a boolean, got ${shape(raw.allow)}`);
  }
  const decision: ResultDecision = { allow: raw.allow, reasons: [], redact: [] };
  if (raw.reasons !== undefined) {
    if (!isStringArray(raw.reasons)) return resultFailure("policy_malformed", "result decision.reasons must be an array of strings");
    decision.reasons = raw.reasons;
  }
  if (raw.message !== undefined) {
    if (typeof raw.message !== "string") return resultFailure("policy_malformed", "result decision.message must be a string");
    decision.message = raw.message;
  }
  if (raw.redact !== undefined) {
    if (!Array.isArray(raw.redact)) return resultFailure("policy_malformed", `result decision.redact must be an array, got ${shape(raw.redact)}`);
    for (const [i, entry] of raw.redact.entries()) {
      const converted = toRedaction(entry);
      if (typeof converted === "string") return resultFailure("policy_malformed", `result decision.redact[${i}]${converted.startsWith(".") ? "" : " "}${converted}`);
      decision.redact.push(converted);
    }
  }
  return { decision };
}

/** The block the gateway substitutes when the result policy's answer cannot be used. */
export function resultFailure(code: DecisionErrorCode, message: string): ConvertedResultDecision {
  return { decision: { allow: false, reasons: [`${code}: ${message}`], redact: [] }, error: { code, message } };
}

/**
 * decideResultWith is how a caller holding any PolicyEngine asks about a result, failing closed:
 * an engine without a result policy lets the result through untouched (there is nothing to
 * enforce); one that claims a result policy but cannot evaluate it, or throws, blocks it.
 */
export function decideResultWith(engine: PolicyEngine, input: PolicyInput, result: Record<string, unknown>): ResultDecisionOutcome {
  if (engine.hasResultPolicy !== true) return noResultPolicy(engine.revision);
  const failed = (message: string): ResultDecisionOutcome => ({ ...resultFailure("policy_eval_error", message), revision: engine.revision, elapsedMs: 0 });
  if (engine.decideResult === undefined) return failed(`the engine reports ${RESULT_ENTRYPOINT} but cannot evaluate it`);
  try {
    return engine.decideResult(input, result);
  } catch (err) {
    return failed(err instanceof Error ? err.message : String(err)); // a real engine never throws; a broken one must not let the result through
  }
}

/** The answer for a bundle without mcp/authz/result: the result passes as the upstream sent it. */
export function noResultPolicy(revision: string): ResultDecisionOutcome {
  return { decision: { allow: true, reasons: [`the bundle has no ${RESULT_ENTRYPOINT} entrypoint`], redact: [] }, revision, elapsedMs: 0 };
}

/** One `redact` entry, or why it is malformed. */
function toRedaction(entry: unknown): ResultRedaction | string {
  if (typeof entry === "string") {
    return isJsonPointer(entry) ? { pointer: entry } : `${describePointer(entry)} is not a JSON pointer into the result (RFC 6901, e.g. "/content/0/text")`;
  }
  if (!isPlainObject(entry)) return `must be a JSON pointer or an object {pointer, match?, kind?}, got ${shape(entry)}`;
  for (const key in entry) if (!REDACTION_KEYS.has(key)) return `has unknown field ${quoteKey(key)}`;
  if (typeof entry.pointer !== "string") return `.pointer must be a string, got ${shape(entry.pointer)}`;
  if (!isJsonPointer(entry.pointer)) return `.pointer ${describePointer(entry.pointer)} is not a JSON pointer into the result (RFC 6901, e.g. "/content/0/text")`;
  const redaction: ResultRedaction = { pointer: entry.pointer };
  if (entry.match !== undefined) {
    if (typeof entry.match !== "string" || entry.match === "") return `.match must be a non-empty string, got ${shape(entry.match)}`;
    redaction.match = entry.match;
  }
  if (entry.kind !== undefined) {
    if (typeof entry.kind !== "string" || !KIND.test(entry.kind)) return `.kind must be a short name (${KIND.source}), got ${shape(entry.kind)}`;
    redaction.kind = entry.kind;
  }
  return redaction;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

function isStringArray(value: unknown): value is string[] {
  return Array.isArray(value) && value.every((v) => typeof v === "string");
}

/**
 * A bad pointer is quoted only when it starts with "/" and is short: it then names a place. Any
 * other string may be the value itself (`redact := [match]`), so only its length is given.
 */
function describePointer(pointer: string): string {
  return pointer.startsWith("/") && pointer.length <= 80 ? JSON.stringify(pointer) : `(${shape(pointer)}, not starting with "/")`;
}

function quoteKey(key: string): string {
  return key.length <= 40 ? JSON.stringify(key) : `of ${key.length} characters`;
}

/** The type of a bad value, never its content. */
function shape(value: unknown): string {
  if (value === undefined) return "undefined";
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (typeof value === "string") return value === "" ? "an empty string" : `a string of ${value.length} character${value.length === 1 ? "" : "s"}`;
  if (typeof value === "object") return "an object";
  return `a ${typeof value}`;
}
