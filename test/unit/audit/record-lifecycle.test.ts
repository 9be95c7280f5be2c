/**
 * AuditRecord opened on arrival, before the request is known (describe), the `invalid` outcome,
 * and the one event of a list request (list, decisionInput).
 */
import assert from "node:assert/strict";
import { AuditChain, AuditRecord, sensitiveKeyMatcher, toOcsf, type AuditContext } from "../../../gateway/audit/index.js";
import { REDACTED } from "../../../gateway/audit/mask.js";
import { auditSchemaErrors } from "../../support/audit-schema.js";
import { allowOutcome, ManualClock, policyInput, sequentialIds } from "./helpers.js";

function context(over: Partial<AuditContext> = {}): { ctx: AuditContext; clock: ManualClock } {
  const clock = new ManualClock();
  return { clock, ctx: { instanceId: "gw-1", version: "0.1.0", clock, ids: sequentialIds("dec"), resultCapBytes: 64, bundleRevision: () => "rev-7", ...over } };
}

const sealed = (e: ReturnType<AuditRecord["finish"]>) => JSON.parse(JSON.stringify(new AuditChain({ epoch: "e" }).seal(e))) as unknown;

function listInput() {
  const input = policyInput();
  return { ...input, request: { ...input.request, method: "tools/list" as const, tool: null, arguments: null } };
}

describe("AuditRecord opened before the request is known", () => {
  it("opens without init: method and server are empty strings until described", () => {
    const { ctx } = context();
    const ev = new AuditRecord(ctx).finish("invalid");
    assert.deepEqual(ev.mcp, { server: "", method: "", tool: null, resource: null, prompt: null, session_id: null, request_id: null });
    assert.equal(ev.requested_by, null);
    assert.deepEqual(auditSchemaErrors(sealed(ev)), []);
  });

  it("takes fields from describe, several times, a later value replacing an earlier one and undefined keeping it", () => {
    const { ctx } = context();
    const rec = new AuditRecord(ctx, { requestedBy: "10.0.0.1" });
    rec.describe({ server: "files" });
    rec.describe({ method: "tools/call", requestId: "r-1", sessionId: "s-1" });
    rec.describe({ requestId: 9, server: undefined });
    const ev = rec.finish("denied");
    assert.deepEqual(ev.mcp, { server: "files", method: "tools/call", tool: null, resource: null, prompt: null, session_id: "s-1", request_id: 9 });
    assert.equal(ev.requested_by, "10.0.0.1");
  });

  it("ignores describe after finish", () => {
    const { ctx } = context();
    const rec = new AuditRecord(ctx, { server: "files", method: "tools/call" });
    const ev = rec.finish("error");
    assert.doesNotThrow(() => rec.describe({ server: "other" }));
    assert.equal(ev.mcp.server, "files");
  });

  it("describes a request refused at the edge as outcome invalid, with the active bundle and no input", () => {
    const { ctx } = context();
    const rec = new AuditRecord(ctx, { requestedBy: "10.0.0.9" });
    rec.fail("parse_error", "body is not JSON");
    const ev = rec.finish("invalid");
    assert.equal(ev.outcome, "invalid");
    assert.deepEqual(ev.error, { code: "parse_error", message: "body is not JSON" });
    assert.equal(ev.input, null);
    assert.deepEqual(ev.bundles, { "mcp-authz": { revision: "rev-7" } });
    assert.deepEqual(auditSchemaErrors(sealed(ev)), []);
    const ocsf = toOcsf(ev);
    assert.equal(ocsf.action, "Denied");
    assert.equal(ocsf.status, "Failure");
  });
});

describe("AuditRecord: one event per list request", () => {
  it("carries list {visible, hidden} right after mcp, and validates", () => {
    const { ctx } = context();
    const rec = new AuditRecord(ctx, { server: "files", method: "tools/list", requestId: 3 });
    rec.agent({ sub: "alice", client_id: "cli-1" });
    rec.decisionInput(listInput(), "rev-42", 0.12);
    rec.list(["read_file", "echo"], ["delete_record"]);
    rec.upstreamStarted();
    rec.upstreamFinished();
    const ev = rec.finish("allowed");
    assert.deepEqual(ev.list, { visible: ["read_file", "echo"], hidden: ["delete_record"] });
    const keys = Object.keys(JSON.parse(JSON.stringify(ev)) as object);
    assert.equal(keys[keys.indexOf("mcp") + 1], "list");
    assert.deepEqual(auditSchemaErrors(sealed(ev)), []);
  });

  it("decisionInput records the masked list input, the bundle revision and the evaluation time, without a result", () => {
    const { ctx } = context({ alwaysMask: ["/input/agent/claims/email"], maskKeys: sensitiveKeyMatcher() });
    const rec = new AuditRecord(ctx, { server: "files", method: "tools/list" });
    const input = listInput();
    rec.decisionInput(input, "rev-42", 0.5);
    rec.list([], ["a"]);
    const ev = rec.finish("allowed");
    assert.equal((ev.input as typeof input).agent.claims.email, REDACTED);
    assert.equal(input.agent.claims.email, "alice@example.com", "the caller's input is untouched");
    assert.deepEqual(ev.masked, ["/input/agent/claims/email"]);
    assert.equal(ev.result, null);
    assert.deepEqual(ev.bundles, { "mcp-authz": { revision: "rev-42" } });
    assert.equal(ev.latency_ms.decision, 0.5);
    assert.equal(ev.mcp.tool, null);
    assert.deepEqual(ev.agent, { sub: "alice", client_id: "cli-1" });
  });

  it("a list may instead carry a decision whose result is the summary", () => {
    const { ctx } = context();
    const rec = new AuditRecord(ctx, { server: "files", method: "tools/list" });
    rec.decision(listInput(), allowOutcome({ raw: { visible: 2, hidden: 1 } }));
    rec.list(["a", "b"], ["c"]);
    assert.deepEqual(rec.finish("allowed").result, { visible: 2, hidden: 1 });
  });

  const twice: Array<{ note: string; run: (r: AuditRecord) => void; error: RegExp }> = [
    { note: "list twice", run: (r) => (r.list([], []), r.list([], [])), error: /list recorded twice/ },
    { note: "decisionInput twice", run: (r) => (r.decisionInput(listInput(), "r", 0), r.decisionInput(listInput(), "r", 0)), error: /decision recorded twice/ },
    { note: "decision after decisionInput", run: (r) => (r.decisionInput(listInput(), "r", 0), r.decision(listInput(), allowOutcome())), error: /decision recorded twice/ },
  ];
  for (const c of twice) {
    it(`refuses ${c.note}`, () => assert.throws(() => c.run(new AuditRecord(context().ctx)), c.error));
  }

  it("copies the name lists: a later change by the caller does not reach the event", () => {
    const rec = new AuditRecord(context().ctx, { method: "tools/list" });
    const visible = ["a"];
    rec.list(visible, []);
    visible.push("b");
    assert.deepEqual(rec.finish("allowed").list?.visible, ["a"]);
  });
});
