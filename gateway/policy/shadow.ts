import { decideItemsWith } from "./list.js";
import { decideResultWith } from "./result-decision.js";
import type { DecisionOutcome, PolicyEngine, PolicyInput, PolicyListItem, ResultDecisionOutcome, ShadowOutcome } from "./types.js";

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
    let answer: DecisionOutcome | undefined;
    try {
      answer = candidate.decide(input);
    } catch {
      answer = undefined; // a real engine never throws; a broken one must not cost the answer
    }
    return { ...outcome, shadow: shadowOf(candidate.revision, outcome, answer) };
  }

  /** Both engines decide the listing in one pass each; item i carries the candidate's answer for item i. */
  decideItems(base: PolicyInput, items: readonly PolicyListItem[]): DecisionOutcome[] {
    const outcomes = decideItemsWith(this.live(), base, items);
    const candidate = this.candidate();
    if (candidate === undefined) return outcomes;
    let answers: readonly DecisionOutcome[] = [];
    try {
      answers = decideItemsWith(candidate, base, items);
    } catch {
      answers = []; // as in decide(): every item's shadow then records the failure
    }
    return outcomes.map((outcome, i) => ({ ...outcome, shadow: shadowOf(candidate.revision, outcome, answers[i]) }));
  }
}

/** The candidate's answer as it rides along; no answer (it threw) is a deny with policy_eval_error. */
function shadowOf(revision: string, live: DecisionOutcome, candidate: DecisionOutcome | undefined): ShadowOutcome {
  const allow = candidate?.decision.allow ?? false;
  const error = candidate === undefined ? "policy_eval_error" : candidate.error?.code;
  return { revision, allow, differs: allow !== live.decision.allow, ...(error !== undefined ? { error } : {}) };
}
