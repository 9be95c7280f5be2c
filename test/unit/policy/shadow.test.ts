import assert from "node:assert/strict";
import { AuditRecord, bundleRefusedEvent, BUNDLE_REFUSED_METHOD } from "../../../gateway/audit/index.js";
import { itemInput, listItem, ShadowingEngine, type DecisionOutcome, type PolicyEngine } from "../../../gateway/policy/index.js";
import { allow, deny, FakePolicyEngine, policyFailure } from "../../fakes/policy.js";
import { ManualClock, policyInput, sequentialIds } from "../audit/helpers.js";

const engine = (revision: string, fn: () => DecisionOutcome): PolicyEngine => {
  const e = new FakePolicyEngine(() => ({ ...fn(), revision }));
  e.revision = revision;
  return e;
};
const throwing: PolicyEngine = {
  revision: "cand-broken",
  hasResultPolicy: false,
  decideResult: () => {
    throw new Error("not asked");
  },
  decide: () => {
    throw new Error("boom");
  },
};

describe("ShadowingEngine (policy.shadow)", () => {
  const cases: Array<{ note: string; live: () => DecisionOutcome; candidate: PolicyEngine | undefined; allow: boolean; shadow: DecisionOutcome["shadow"] }> = [
    { note: "both allow: no difference", live: allow, candidate: engine("cand", allow), allow: true, shadow: { revision: "cand", allow: true, differs: false } },
    { note: "the candidate would deny an allowed call", live: allow, candidate: engine("cand", () => deny("no")), allow: true, shadow: { revision: "cand", allow: false, differs: true } },
    { note: "the candidate would allow a denied call; the deny stands", live: () => deny("no"), candidate: engine("cand", allow), allow: false, shadow: { revision: "cand", allow: true, differs: true } },
    { note: "the candidate fails closed", live: allow, candidate: engine("cand", () => policyFailure("policy_undefined")), allow: true, shadow: { revision: "cand", allow: false, differs: true, error: "policy_undefined" } },
    { note: "the candidate throws; the answer is unaffected", live: allow, candidate: throwing, allow: true, shadow: { revision: "cand-broken", allow: false, differs: true, error: "policy_eval_error" } },
    { note: "no candidate loaded yet: no shadow field", live: allow, candidate: undefined, allow: true, shadow: undefined },
  ];
  for (const c of cases) {
    it(c.note, () => {
      const live = engine("live-1", c.live);
      const shadowing = new ShadowingEngine(() => live, () => c.candidate);
      const outcome = shadowing.decide(policyInput());
      assert.equal(outcome.decision.allow, c.allow);
      assert.equal(outcome.revision, "live-1");
      assert.equal(shadowing.revision, "live-1");
      assert.deepEqual(outcome.shadow, c.shadow);
    });
  }

  it("decides a listing with both engines, item by item", () => {
    const live = new FakePolicyEngine((i) => (i.request.tool === "drop" ? deny("no") : allow()));
    live.revision = "live-1";
    const cand = new FakePolicyEngine((i) => (i.request.tool === "echo" ? deny("no") : allow()));
    cand.revision = "cand";
    const base = policyInput();
    const items = ["echo", "drop", "add"].map((name) => listItem({ tool: name }, { name }));
    const outcomes = new ShadowingEngine(() => live, () => cand).decideItems(base, items);
    assert.deepEqual(outcomes.map((o) => o.decision.allow), [true, false, true]);
    assert.deepEqual(outcomes.map((o) => o.shadow), [
      { revision: "cand", allow: false, differs: true },
      { revision: "cand", allow: true, differs: true },
      { revision: "cand", allow: true, differs: false },
    ]);
    assert.deepEqual(cand.inputs, items.map((item) => itemInput(base, item)), "the candidate saw each item's input");
    const alone = new ShadowingEngine(() => live, () => undefined).decideItems(base, items);
    assert.deepEqual(alone.map((o) => o.shadow), [undefined, undefined, undefined]);
    const broken = new ShadowingEngine(() => live, () => throwing).decideItems(base, items);
    assert.deepEqual(broken.map((o) => [o.decision.allow, o.shadow?.error]), [[true, "policy_eval_error"], [false, "policy_eval_error"], [true, "policy_eval_error"]]);
  });

  it("puts the candidate's answer in the audit event's shadow field", () => {
    const clock = new ManualClock();
    const ctx = { instanceId: "gw-1", version: "0.1.0", clock, ids: sequentialIds(), resultCapBytes: 1024 };
    const record = new AuditRecord(ctx, { server: "files", method: "tools/call" });
    const live = engine("live-1", allow);
    record.decision(policyInput(), new ShadowingEngine(() => live, () => engine("cand-2", () => deny("no"))).decide(policyInput()));
    const event = record.finish("allowed");
    assert.deepEqual(event.shadow, { revision: "cand-2", allow: false, differs: true });
    assert.deepEqual(event.bundles, { "mcp-authz": { revision: "live-1" } });
  });
});

describe("bundleRefusedEvent", () => {
  it("is an error event naming the code, the source and the revision that keeps serving", () => {
    const ctx = { instanceId: "gw-1", version: "0.1.0", clock: new ManualClock(), ids: sequentialIds("ev"), resultCapBytes: 1024 };
    const e = bundleRefusedEvent(ctx, { source: "/b/new.tar.gz", code: "bundle_digest_mismatch", message: "/b/new.tar.gz: /data.json: digest mismatch", activeRevision: "r1", role: "policy" });
    assert.equal(e.outcome, "error");
    assert.deepEqual(e.error, { code: "bundle_digest_mismatch", message: "policy bundle refused: /b/new.tar.gz: /data.json: digest mismatch" });
    assert.deepEqual(e.bundles, { "mcp-authz": { revision: "r1" } });
    assert.deepEqual([e.mcp.method, e.mcp.resource, e.input, e.result], [BUNDLE_REFUSED_METHOD, "/b/new.tar.gz", null, null]);
  });
});
