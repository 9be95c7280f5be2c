import { decideResultWith } from "./result-decision.js";
import type { DecisionOutcome, PolicyEngine, PolicyInput, ResultDecisionOutcome } from "./types.js";

/**
 * ShadowingEngine evaluates a candidate bundle beside the live one on every decision (shadow
 * mode). The answer is always the live engine's: the candidate's result only rides along in
 * `outcome.shadow` for the audit event, and a candidate that throws or is not loaded yet changes
 * nothing. Both engines are read through getters on every call, so both hot-reload. Results
 * are decided by the live engine alone: a candidate's result policy is not shadowed.
 */
export class ShadowingEngine implements PolicyEngine {
  constructor(
    private readonly live: () => PolicyEngine,
    private readonly candidate: () => PolicyEngine | undefined,
  ) {}

  get revision(): string {
    return this.live().revision;
  }

  get hasResultPolicy(): boolean {
    return this.live().hasResultPolicy === true;
  }

  decideResult(input: PolicyInput, result: Record<string, unknown>): ResultDecisionOutcome {
    return decideResultWith(this.live(), input, result);
  }

  decide(input: PolicyInput): DecisionOutcome {
    const outcome = this.live().decide(input);
    const candidate = this.candidate();
    if (candidate === undefined) return outcome;
    let allow = false;
    let error: string | undefined;
    try {
      const s = candidate.decide(input);
      allow = s.decision.allow;
      error = s.error?.code;
    } catch (err) {
      error = "policy_eval_error"; // a real engine never throws; a broken one must not cost the answer
      void err;
    }
    const shadow = { revision: candidate.revision, allow, differs: allow !== outcome.decision.allow, ...(error !== undefined ? { error } : {}) };
    return { ...outcome, shadow };
  }
}
