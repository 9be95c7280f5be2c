/**
 * A fake policy engine: decide() is a function the test passes, and every input is recorded.
 *
 *   const engine = new FakePolicyEngine((input) => (input.request.tool === "delete_record" ? deny("no") : allow()));
 *   engine.decideWith(() => policyFailure("policy_undefined"));   // swap the function mid-test
 *   engine.inputsFor("tools/list");                                // what policy saw, per method
 */
import type { Decision, DecisionErrorCode, DecisionOutcome, PolicyEngine, PolicyInput, ResultDecisionOutcome } from "../../gateway/policy/index.js";

export type DecideFn = (input: PolicyInput) => DecisionOutcome;

export const FAKE_REVISION = "rev-fake-1";

export class FakePolicyEngine implements PolicyEngine {
  readonly inputs: PolicyInput[] = [];
  revision = FAKE_REVISION;
  /** Methods allowed without asking the test's function (the pipeline harness: initialize). */
  readonly alwaysAllow = new Set<string>();

  constructor(private fn: DecideFn = () => allow()) {}

  decide(input: PolicyInput): DecisionOutcome {
    this.inputs.push(input);
    return this.alwaysAllow.has(input.request.method) ? allow() : this.fn(input);
  }

  /** Result policy: off unless a test sets `resultFn`. */
  resultFn: ((input: PolicyInput, result: Record<string, unknown>) => ResultDecisionOutcome) | null = null;
  readonly resultInputs: { input: PolicyInput; result: Record<string, unknown> }[] = [];

  get hasResultPolicy(): boolean {
    return this.resultFn !== null;
  }

  decideResult(input: PolicyInput, result: Record<string, unknown>): ResultDecisionOutcome {
    this.resultInputs.push({ input, result });
    return this.resultFn ? this.resultFn(input, result) : { decision: { allow: true, reasons: [], redact: [] }, revision: FAKE_REVISION, elapsedMs: 0 };
  }

  decideWith(fn: DecideFn): void {
    this.fn = fn;
  }

  inputsFor(method: string): PolicyInput[] {
    return this.inputs.filter((i) => i.request.method === method);
  }
}

/** An allow, as toDecision would return it for `{ allow: true, … }`. */
export function allow(over: Partial<Decision> = {}): DecisionOutcome {
  const decision: Decision = { allow: true, reasons: [], ...over };
  return { decision, raw: { ...decision }, revision: FAKE_REVISION, elapsedMs: 0.25 };
}

/** A deny the policy asked for; `message` is shown to the agent, `reasons` only audited. */
export function deny(message?: string, reasons: string[] = ["denied by the test policy"]): DecisionOutcome {
  const decision: Decision = message === undefined ? { allow: false, reasons } : { allow: false, reasons, message };
  return { decision, raw: { ...decision }, revision: FAKE_REVISION, elapsedMs: 0.25 };
}

/** What the policy returned for each failure, as the real engine would see it. */
const RAW_FOR_FAILURE: Record<DecisionErrorCode, unknown> = {
  policy_undefined: undefined,
  policy_malformed: { allow: "yes" },
  policy_eval_error: undefined,
};

/** A deny the gateway substituted because the policy failed (fail closed), as policy/decision.ts builds it. */
export function policyFailure(code: DecisionErrorCode, message = `${code} raised by the fake engine`): DecisionOutcome {
  return {
    decision: { allow: false, reasons: [`${code}: ${message}`] },
    error: { code, message },
    raw: RAW_FOR_FAILURE[code],
    revision: FAKE_REVISION,
    elapsedMs: 0.25,
  };
}
