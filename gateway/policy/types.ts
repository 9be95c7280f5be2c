/**
 * Contract 3 (../../shared/DESIGN.md → docs/policy-authoring.md): what the gateway hands to
 * `mcp/authz/decision` and what it accepts back. Policy authors rely on exactly these names.
 */

/** The verified identity of the caller as policy sees it. */
export interface PolicyAgent {
  sub: string;
  iss: string;
  client_id: string | null;
  scopes: string[];
  roles: string[];
  /** Every verified claim of the token, unmodified. */
  claims: Record<string, unknown>;
}

/**
 * The JSON-RPC method exactly as the agent sent it (case-sensitive), or the list method for a
 * listed item. Every request and forwarded client notification is decided, unknown methods
 * included, so this is any string: the policy, not the type, says which methods are allowed.
 */
export type DecisionMethod = string;

export interface PolicyRequest {
  method: DecisionMethod;
  server: string;
  /** tools/call; tasks/get|result|cancel: the tool of the tools/call that created the task. */
  tool: string | null;
  /** tools/call, prompts/get; tasks/*: the creating call's arguments. Null elsewhere. */
  arguments: Record<string, unknown> | null;
  /** resources/read|subscribe|unsubscribe; completion/complete of a `ref/resource` (its URI template). */
  resource: string | null;
  /** prompts/get; completion/complete of a `ref/prompt`. */
  prompt: string | null;
  session_id: string | null;
  protocol_version: string | null;
  source_ip: string | null;
  /** RFC 3339 (milliseconds) time of the request, from the injected clock. */
  time: string;
}

/** The tool definition as the upstream declared it (null when the item is not a tool). */
export interface PolicyTool {
  name: string;
  description: string | null;
  input_schema: Record<string, unknown>;
  annotations: Record<string, unknown>;
  /** sha256 over the canonical JSON of the definition, for pinning ("sha256:<hex>"). */
  digest: string;
}

export interface PolicyInput {
  agent: PolicyAgent;
  request: PolicyRequest;
  tool: PolicyTool | null;
}

export interface RateLimitSpec {
  key: string;
  limit: number;
  window_seconds: number;
}

/** A validated decision. Only `toDecision` (policy/decision.ts) makes one from policy output. */
export interface Decision {
  allow: boolean;
  reasons: string[];
  message?: string;
  rate_limit?: RateLimitSpec;
  mask?: string[];
  /**
   * Scopes the request needs. On a deny of tools/call, resources/read or prompts/get whose token
   * lacks one of them, the gateway answers 403 insufficient_scope naming them, so the client can
   * step up (MCP authorization, scope challenges). Name them only when re-consent can fix the deny.
   */
  required_scopes?: string[];
  /**
   * Hold an allowed tools/call for a human (contract 7): the gateway forwards the identical call
   * (same agent, server, tool, arguments) once an approver approves it, within `ttl_seconds`.
   */
  require_approval?: { reason: string; ttl_seconds: number };
}

/** Why a decision is a deny that the policy did not ask for (fail closed). */
export type DecisionErrorCode =
  | "policy_undefined" // the entrypoint produced no result
  | "policy_malformed" // the result did not match the decision contract
  | "policy_eval_error"; // wasm evaluation threw

export interface DecisionOutcome {
  decision: Decision;
  /** Set when the gateway denied because of the policy's failure rather than its answer. */
  error?: { code: DecisionErrorCode; message: string };
  /** The raw result as the policy returned it (audited as `result`). */
  raw: unknown;
  /** Revision of the bundle that made this decision. */
  revision: string;
  /** Wall time spent in evaluation, milliseconds. */
  elapsedMs: number;
  /** Set in shadow mode (policy.shadow): the candidate's answer, audited, never enforced. */
  shadow?: ShadowOutcome;
}

/** What a shadow (candidate) bundle decided for the same input. */
export interface ShadowOutcome {
  revision: string;
  allow: boolean;
  /** The candidate's allow differs from the live one's. */
  differs: boolean;
  /** Set when the candidate failed (its fail-closed error code). */
  error?: string;
}

/**
 * One item of a listing (tools/list, resources/list, prompts/list) to decide: the request fields
 * that name it and, for a tool, its policy view. Build it with `listItem` (policy/list.ts).
 */
export interface PolicyListItem {
  fields: Pick<PolicyRequest, "tool" | "resource" | "prompt">;
  tool: PolicyTool | null;
}

/** The one decision seam: the proxy never touches wasm, and tests use a fake engine. */
export interface PolicyEngine {
  decide(input: PolicyInput): DecisionOutcome;
  /**
   * Decides every item of a listing in one pass: item i's outcome is exactly
   * `decide(itemInput(base, items[i]))` (policy/list.ts), in order. Optional: callers go through
   * `decideItemsWith`, which falls back to one decide() per item.
   */
  decideItems?(base: PolicyInput, items: readonly PolicyListItem[]): DecisionOutcome[];
  /** Revision of the active bundle. */
  readonly revision: string;
  /**
   * Whether the bundle exports mcp/authz/result (policy over results, docs/result-policy.md).
   * Required of every engine and wrapper, so none can silently switch result policy off.
   */
  readonly hasResultPolicy: boolean;
  /** Evaluates mcp/authz/result on `input` plus `result` (the CallToolResult as the upstream sent it); never throws. */
  decideResult(input: PolicyInput, result: Record<string, unknown>): ResultDecisionOutcome;
}

/**
 * One redaction a result decision asks for. `pointer` (RFC 6901, relative to the result) names
 * the value; without `match` the whole value is replaced, with it only each occurrence of that
 * exact substring inside the string value (the secret inside a longer text). `kind` says what was
 * found ("aws_access_key_id"), for the audit.
 */
export interface ResultRedaction {
  pointer: string;
  match?: string;
  kind?: string;
}

/** A validated result decision. Only `toResultDecision` makes one from policy output. */
export interface ResultDecision {
  /** false: the result is withheld and the agent gets an isError result with `message`. */
  allow: boolean;
  reasons: string[];
  message?: string;
  /** What to blank before the agent sees the result ([] when nothing). */
  redact: ResultRedaction[];
}

export interface ResultDecisionOutcome {
  decision: ResultDecision;
  /** Set when the gateway blocked because of the policy's failure rather than its answer. */
  error?: { code: DecisionErrorCode; message: string };
  // No `raw`, unlike DecisionOutcome: the policy's output carries the secrets it found (`match`).
  /** Revision of the bundle that made this decision. */
  revision: string;
  /** Time spent in evaluation, milliseconds. */
  elapsedMs: number;
}
