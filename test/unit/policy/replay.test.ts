import assert from "node:assert/strict";
import { replayDecisions, replayFails, type PolicyInput, type ReplayReport } from "../../../gateway/policy/index.js";
import { allow, deny, FakePolicyEngine } from "../../fakes/policy.js";
import { policyInput } from "../audit/helpers.js";

/** A recorded decision event (contract 4's fields replay reads). */
function event(id: string, opts: { sub?: string; tool?: string; allowed: boolean; masked?: string[]; revision?: string }): Record<string, unknown> {
  const input = policyInput() as PolicyInput;
  const tool = opts.tool ?? "read_file";
  return {
    decision_id: id,
    bundles: { "mcp-authz": { revision: opts.revision ?? "r1" } },
    input: { ...input, agent: { ...input.agent, sub: opts.sub ?? "alice" }, request: { ...input.request, tool } },
    result: { allow: opts.allowed, reasons: [] },
    masked: opts.masked ?? [],
    agent: { sub: opts.sub ?? "alice", client_id: null },
    mcp: { server: "files", method: "tools/call", tool },
  };
}

describe("replayDecisions", () => {
  // The candidate denies delete_record and allows everything else.
  const candidate = new FakePolicyEngine((i) => (i.request.tool === "delete_record" ? deny("no", ["deletes are off"]) : allow()));
  candidate.revision = "cand";

  it("tallies allow→deny and deny→allow per tool and per agent, with the candidate's reasons", () => {
    const r = replayDecisions(
      [
        event("1", { allowed: true }),
        event("2", { allowed: false }),
        event("3", { sub: "root", tool: "delete_record", allowed: true, revision: "r2" }),
        event("4", { sub: "root", tool: "delete_record", allowed: false }),
      ],
      candidate,
    );
    assert.deepEqual(r.totals, { unchanged: 2, allow_to_deny: 1, deny_to_allow: 1 });
    assert.deepEqual(r.by_tool["files/delete_record"], { unchanged: 1, allow_to_deny: 1, deny_to_allow: 0 });
    assert.deepEqual(r.by_agent.alice, { unchanged: 1, allow_to_deny: 0, deny_to_allow: 1 });
    assert.deepEqual(r.changes.map((c) => [c.decision_id, c.from, c.to, c.reasons]), [["2", "deny", "allow", []], ["3", "allow", "deny", ["deletes are off"]]]);
    assert.deepEqual([r.candidate_revision, r.recorded_revisions], ["cand", ["r1", "r2"]]);
  });

  const skips: Array<{ note: string; record: unknown; field: keyof ReplayReport["skipped"] }> = [
    { note: "a line that is not JSON (null)", record: null, field: "unparseable" },
    { note: "an object without decision_id", record: { input: {} }, field: "unparseable" },
    { note: "an unauthenticated event (input null)", record: { ...event("9", { allowed: false }), input: null, result: null }, field: "not_a_decision" },
    { note: "a bundle refusal event", record: { decision_id: "b", input: null, result: null, mcp: { server: "", method: "portcullis/bundle-reload", tool: null } }, field: "not_a_decision" },
  ];
  for (const s of skips) {
    it(`skips ${s.note}`, () => {
      const r = replayDecisions([s.record], candidate);
      assert.equal(r.skipped[s.field], 1);
      assert.equal(r.replayed, 0);
    });
  }

  it("deduplicates on decision_id (at-least-once delivery) and counts masked inputs", () => {
    const e = event("1", { allowed: true, masked: ["/input/request/arguments/password"] });
    const r = replayDecisions([e, e], candidate);
    assert.deepEqual([r.records, r.replayed, r.skipped.duplicate, r.with_masked_fields], [2, 1, 1, 1]);
  });

  it("treats a recorded result that was not a valid allow as a deny (fail closed, as the gateway did)", () => {
    const r = replayDecisions([{ ...event("1", { allowed: true }), result: { allow: "yes" } }], candidate);
    assert.deepEqual(r.totals, { unchanged: 0, allow_to_deny: 0, deny_to_allow: 1 });
  });

  const gates: Array<{ note: string; a2d: number; d2a: number; failOn: "allow-to-deny" | "any" | undefined; fails: boolean }> = [
    { note: "no gate never fails", a2d: 3, d2a: 3, failOn: undefined, fails: false },
    { note: "allow-to-deny fails on an allow→deny", a2d: 1, d2a: 0, failOn: "allow-to-deny", fails: true },
    { note: "allow-to-deny passes deny→allow", a2d: 0, d2a: 2, failOn: "allow-to-deny", fails: false },
    { note: "any fails on deny→allow", a2d: 0, d2a: 1, failOn: "any", fails: true },
    { note: "any passes when nothing changed", a2d: 0, d2a: 0, failOn: "any", fails: false },
  ];
  for (const g of gates) {
    it(`--fail-on: ${g.note}`, () => {
      const report = replayDecisions([], candidate);
      report.totals = { unchanged: 0, allow_to_deny: g.a2d, deny_to_allow: g.d2a };
      assert.equal(replayFails(report, g.failOn), g.fails);
    });
  }
});
