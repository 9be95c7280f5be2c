import assert from "node:assert/strict";
import { replayDecisions, replayFails, type PolicyInput, type ReplayReport } from "../../../gateway/policy/index.js";
import { LIST_ITEM_FIELDS } from "../../../gateway/policy/replay.js";
import { LIST_METHODS } from "../../../gateway/proxy/methods.js";
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

/** What stands where the gateway cut a part of an event for size (docs/audit.md "Size limits"). */
const SIZE_MARKER = { "portcullis.truncated": { bytes: 70_000, sha256: "ab".repeat(32) } };

/**
 * A recorded list request (contract 4): one event, `input` the list request's own (no item, no
 * tool), `result` null, and the names the agent was shown and those policy hid.
 */
function listEvent(id: string, opts: { method?: string; sub?: string; visible: string[] | object; hidden: string[] | object; masked?: string[] }): Record<string, unknown> {
  const input = policyInput() as PolicyInput;
  const method = opts.method ?? "tools/list";
  const sub = opts.sub ?? "alice";
  return {
    decision_id: id,
    bundles: { "mcp-authz": { revision: "r1" } },
    input: { ...input, agent: { ...input.agent, sub }, request: { ...input.request, method, tool: null, resource: null, prompt: null, arguments: null }, tool: null },
    result: null,
    masked: opts.masked ?? [],
    outcome: "allowed",
    agent: { sub, client_id: null },
    mcp: { server: "files", method, tool: null, resource: null, prompt: null },
    list: { visible: opts.visible, hidden: opts.hidden },
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
    { note: "an unauthenticated event (input null)", record: { ...event("9", { allowed: false }), input: null, result: null, outcome: "unauthenticated" }, field: "not_a_decision" },
    { note: "an invalid request refused before a decision (input null)", record: { ...event("9", { allowed: false }), input: null, result: null, outcome: "invalid", mcp: { server: "files", method: "tools/call", tool: null } }, field: "not_a_decision" },
    { note: "a bundle refusal event", record: { decision_id: "b", input: null, result: null, mcp: { server: "", method: "portcullis/bundle-reload", tool: null } }, field: "not_a_decision" },
    { note: "a list request that failed upstream (input null: nothing was listed or decided)", record: { ...listEvent("9", { visible: [], hidden: [] }), input: null, list: undefined }, field: "not_a_decision" },
    { note: "an event whose input was cut for size", record: { ...event("9", { allowed: true }), input: SIZE_MARKER, truncated: ["/input"] }, field: "truncated" },
    // The marker is not a valid decision: replayed, it would read as a recorded deny.
    { note: "an event whose result was cut for size", record: { ...event("9", { allowed: true }), result: SIZE_MARKER, truncated: ["/result"] }, field: "truncated" },
    { note: "a list event without its list (the items are unknown)", record: { ...listEvent("9", { visible: ["a"], hidden: [] }), list: undefined }, field: "unparseable" },
    { note: "a list whose names are not strings", record: listEvent("9", { visible: [1, 2], hidden: [] }), field: "unparseable" },
    { note: "a list on a method that lists nothing", record: { ...event("9", { allowed: true }), list: { visible: ["a"], hidden: [] } }, field: "unparseable" },
  ];
  for (const s of skips) {
    it(`skips ${s.note}`, () => {
      const asked = new FakePolicyEngine(() => allow());
      const r = replayDecisions([s.record], asked);
      assert.equal(r.skipped[s.field], 1);
      assert.deepEqual([r.replayed, r.decisions, asked.inputs.length], [0, 0, 0]);
    });
  }

  it("replays each item of a list event as one decision: shown = recorded allow, hidden = recorded deny", () => {
    const seen = new FakePolicyEngine((i) => (i.request.tool === "delete_record" || i.request.tool === "drop_table" ? deny("no", ["deletes are off"]) : allow()));
    const r = replayDecisions([listEvent("L", { visible: ["read_file", "delete_record"], hidden: ["drop_table", "echo"] })], seen);
    assert.deepEqual([r.replayed, r.decisions, r.list_items], [1, 4, { replayed: 4, without_tool_definition: 4, incomplete_lists: 0 }]);
    assert.deepEqual(r.totals, { unchanged: 2, allow_to_deny: 1, deny_to_allow: 1 });
    assert.deepEqual(r.by_tool["files/delete_record"], { unchanged: 0, allow_to_deny: 1, deny_to_allow: 0 });
    assert.deepEqual(r.by_tool["files/echo"], { unchanged: 0, allow_to_deny: 0, deny_to_allow: 1 });
    assert.deepEqual(r.by_agent.alice, { unchanged: 2, allow_to_deny: 1, deny_to_allow: 1 });
    assert.deepEqual(
      r.changes.map((c) => [c.decision_id, c.tool, c.from, c.to, c.listed_by, c.without_tool_definition]),
      [["L", "files/delete_record", "allow", "deny", "tools/list", true], ["L", "files/echo", "deny", "allow", "tools/list", true]],
    );
    // Each item's input: the list's, with the item set and no tool definition.
    assert.deepEqual(seen.inputs.map((i) => [i.request.method, i.request.tool, i.tool]), [["tools/list", "read_file", null], ["tools/list", "delete_record", null], ["tools/list", "drop_table", null], ["tools/list", "echo", null]]);
    assert.deepEqual({ ...seen.inputs[0]!.request, tool: null }, (listEvent("L", { visible: [], hidden: [] }).input as PolicyInput).request);
  });

  const itemInputs: Array<{ method: string; expect: { method: string; tool: string | null; resource: string | null; prompt: string | null } }> = [
    { method: "tools/list", expect: { method: "tools/list", tool: "x", resource: null, prompt: null } },
    { method: "resources/list", expect: { method: "resources/list", tool: null, resource: "x", prompt: null } },
    // Templates are decided as resources, as the gateway does.
    { method: "resources/templates/list", expect: { method: "resources/list", tool: null, resource: "x", prompt: null } },
    { method: "prompts/list", expect: { method: "prompts/list", tool: null, resource: null, prompt: "x" } },
  ];
  for (const c of itemInputs) {
    it(`an item of ${c.method} is evaluated with request.method ${c.expect.method} and its name in the item field`, () => {
      const seen = new FakePolicyEngine(() => allow());
      const r = replayDecisions([listEvent("L", { method: c.method, visible: ["x"], hidden: [] })], seen);
      const { method, tool, resource, prompt } = seen.inputs[0]!.request;
      assert.deepEqual({ method, tool, resource, prompt }, c.expect);
      assert.equal(seen.inputs[0]!.tool, null);
      assert.equal(r.list_items.without_tool_definition, c.method === "tools/list" ? 1 : 0);
      assert.equal(r.changes.length, 0);
    });
  }

  it("decides list items exactly as the gateway does (LIST_ITEM_FIELDS matches gateway/proxy LIST_METHODS)", () => {
    const field = { tools: "tool", resources: "resource", resourceTemplates: "resource", prompts: "prompt" } as const;
    const fromProxy = Object.fromEntries(Object.entries(LIST_METHODS).map(([m, l]) => [m, { field: field[l.field], method: l.itemMethod }]));
    assert.deepEqual({ ...LIST_ITEM_FIELDS }, fromProxy);
  });

  it("counts an item once per listing and once per call (echo listed twice and called once: three decisions)", () => {
    const r = replayDecisions([listEvent("L1", { visible: ["echo"], hidden: [] }), event("C", { tool: "echo", allowed: true }), listEvent("L2", { visible: ["echo"], hidden: [] })], new FakePolicyEngine(() => deny()));
    assert.deepEqual(r.by_tool["files/echo"], { unchanged: 0, allow_to_deny: 3, deny_to_allow: 0 });
    assert.deepEqual([r.replayed, r.decisions, r.list_items.replayed], [3, 3, 2]);
    assert.equal(replayFails(r, "allow-to-deny"), true);
  });

  it("a list whose shown or hidden names were cut for size replays the rest and says it is incomplete", () => {
    const r = replayDecisions([listEvent("L", { visible: ["read_file"], hidden: SIZE_MARKER })], new FakePolicyEngine(() => allow()));
    assert.deepEqual([r.replayed, r.decisions, r.list_items.incomplete_lists, r.skipped.unparseable], [1, 1, 1, 0]);
  });

  it("deduplicates a re-delivered list event, and counts its masked input once", () => {
    const e = listEvent("L", { visible: ["a", "b"], hidden: [], masked: ["/input/agent/claims/email"] });
    const r = replayDecisions([e, e], new FakePolicyEngine(() => allow()));
    assert.deepEqual([r.records, r.replayed, r.decisions, r.skipped.duplicate, r.with_masked_fields], [2, 1, 2, 1, 1]);
  });

  it("replays a request without an item (initialize) as one decision under server/method", () => {
    const input = policyInput() as PolicyInput;
    const init = { ...event("I", { allowed: true }), input: { ...input, request: { ...input.request, method: "initialize", tool: null, arguments: null } }, mcp: { server: "files", method: "initialize", tool: null } };
    const r = replayDecisions([init], new FakePolicyEngine(() => deny()));
    assert.deepEqual(r.by_tool["files/initialize"], { unchanged: 0, allow_to_deny: 1, deny_to_allow: 0 });
    assert.equal(r.changes[0]!.listed_by, undefined);
  });

  it("replays a per-item list event (the shape before one event per list) as one decision", () => {
    const input = policyInput() as PolicyInput;
    const old = { ...event("O", { allowed: true }), input: { ...input, request: { ...input.request, method: "tools/list", arguments: null } }, mcp: { server: "files", method: "tools/list", tool: "read_file" } };
    const r = replayDecisions([old], new FakePolicyEngine(() => allow()));
    assert.deepEqual([r.replayed, r.decisions, r.list_items.replayed, r.totals.unchanged], [1, 1, 0, 1]);
  });

  it("counts events whose arguments were cut for size (evaluated with the marker in their place)", () => {
    const e = event("1", { allowed: true });
    const cut = { ...e, input: { ...(e.input as PolicyInput), request: { ...(e.input as PolicyInput).request, arguments: SIZE_MARKER } }, truncated: ["/input/request/arguments"] };
    const r = replayDecisions([cut, event("2", { allowed: true })], candidate);
    assert.deepEqual([r.replayed, r.with_truncated_arguments], [2, 1]);
  });

  it("deduplicates on decision_id (at-least-once delivery) and counts masked inputs", () => {
    const e = event("1", { allowed: true, masked: ["/input/request/arguments/password"] });
    const r = replayDecisions([e, e], candidate);
    assert.deepEqual([r.records, r.replayed, r.decisions, r.skipped.duplicate, r.with_masked_fields], [2, 1, 1, 1, 1]);
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
