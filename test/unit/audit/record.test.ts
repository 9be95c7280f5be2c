import assert from "node:assert/strict";
import { AuditRecord, type AuditContext } from "../../../gateway/audit/index.js";
import { REDACTED } from "../../../gateway/audit/mask.js";
import { ManualClock, allowOutcome, policyInput, sequentialIds } from "./helpers.js";

function context(over: Partial<AuditContext> = {}): { ctx: AuditContext; clock: ManualClock } {
  const clock = new ManualClock();
  return {
    clock,
    ctx: { instanceId: "gw-1", version: "0.1.0", clock, ids: sequentialIds("dec"), resultCapBytes: 64, ...over },
  };
}

const init = { server: "files", method: "tools/call", requestId: 7, sessionId: "sess-1", requestedBy: "127.0.0.1" };

describe("AuditRecord", () => {
  it("assigns the decision id and arrival timestamp at construction", () => {
    const { ctx, clock } = context();
    const rec = new AuditRecord(ctx, init);
    clock.advanceMs(50);
    const ev = rec.finish("error");
    assert.equal(rec.decisionId, "dec-1");
    assert.equal(ev.decision_id, "dec-1");
    assert.equal(ev.timestamp, "2026-11-24T10:00:00.123000000Z");
    assert.equal(ev.path, "mcp/authz/decision");
    assert.deepEqual(ev.labels, { id: "gw-1", version: "0.1.0" });
  });

  it("finishes exactly once", () => {
    const { ctx } = context();
    const rec = new AuditRecord(ctx, init);
    assert.equal(rec.finished, false);
    rec.finish("allowed");
    assert.equal(rec.finished, true);
    assert.throws(() => rec.finish("error"), /finished twice/);
  });

  it("ignores stage calls that arrive after finish", () => {
    const { ctx } = context();
    const rec = new AuditRecord(ctx, init);
    rec.upstreamStarted();
    const ev = rec.finish("error");
    assert.doesNotThrow(() => {
      rec.upstreamFinished();
      rec.toolResult({ content: [] });
      rec.fail("late", "late");
      rec.decision(policyInput(), allowOutcome());
    });
    assert.equal(ev.tool_result, undefined);
  });

  it("shapes an unauthenticated request with null input, result and subject", () => {
    const { ctx, clock } = context();
    const rec = new AuditRecord(ctx, { server: "files", method: "tools/call", requestedBy: "127.0.0.1" });
    rec.fail("auth_missing_token", "no bearer token");
    clock.advanceMs(1.5);
    const ev = rec.finish("unauthenticated");
    assert.deepEqual(ev, {
      decision_id: "dec-1",
      timestamp: "2026-11-24T10:00:00.123000000Z",
      path: "mcp/authz/decision",
      labels: { id: "gw-1", version: "0.1.0" },
      bundles: {},
      input: null,
      result: null,
      erased: [],
      masked: [],
      outcome: "unauthenticated",
      error: { code: "auth_missing_token", message: "no bearer token" },
      agent: { sub: null, client_id: null },
      mcp: {
        server: "files",
        method: "tools/call",
        tool: null,
        resource: null,
        prompt: null,
        session_id: null,
        request_id: null,
      },
      requested_by: "127.0.0.1",
      latency_ms: { decision: 0, upstream: null, total: 1.5 },
    });
  });

  it("records the decision: input, raw result, bundle revision, latency and MCP names", () => {
    const { ctx } = context({ bundleName: "custom" });
    const rec = new AuditRecord(ctx, init);
    rec.agent({ sub: "alice", client_id: "cli-1" });
    const raw = { allow: true, reasons: ["ok"], extra: "kept as returned" };
    rec.decision(policyInput(), allowOutcome({ raw, elapsedMs: 0.031 }));
    const ev = rec.finish("allowed");
    assert.deepEqual(ev.input, policyInput());
    assert.deepEqual(ev.result, raw);
    assert.deepEqual(ev.bundles, { custom: { revision: "rev-42" } });
    assert.equal(ev.latency_ms.decision, 0.031);
    assert.deepEqual(ev.agent, { sub: "alice", client_id: "cli-1" });
    assert.deepEqual(ev.mcp, {
      server: "files",
      method: "tools/call",
      tool: "read_file",
      resource: null,
      prompt: null,
      session_id: "sess-1",
      request_id: 7,
    });
    assert.equal(ev.error, undefined);
  });

  it("uses the default bundle name and takes the agent from the input when identity did not set it", () => {
    const { ctx } = context();
    const rec = new AuditRecord(ctx, init);
    rec.decision(policyInput(), allowOutcome());
    const ev = rec.finish("allowed");
    assert.deepEqual(ev.bundles, { "mcp-authz": { revision: "rev-42" } });
    assert.deepEqual(ev.agent, { sub: "alice", client_id: "cli-1" });
  });

  it("masks the input per the decision's mask plus the always-mask list, without touching the caller's input", () => {
    const { ctx } = context({ alwaysMask: ["/input/agent/claims/email"] });
    const rec = new AuditRecord(ctx, init);
    const input = policyInput({ path: "/data/x", password: "hunter2" });
    const outcome = allowOutcome({
      decision: { allow: true, reasons: [], mask: ["/input/request/arguments/password"] },
    });
    rec.decision(input, outcome);
    const ev = rec.finish("allowed");
    const masked = ev.input as typeof input;
    assert.equal(masked.request.arguments?.password, REDACTED);
    assert.equal(masked.request.arguments?.path, "/data/x");
    assert.equal(masked.agent.claims.email, REDACTED);
    assert.deepEqual(ev.masked, ["/input/agent/claims/email", "/input/request/arguments/password"]);
    assert.equal(input.request.arguments?.password, "hunter2");
    assert.equal(input.agent.claims.email, "alice@example.com");
  });

  it("records a policy failure as the event error", () => {
    const { ctx } = context();
    const rec = new AuditRecord(ctx, init);
    rec.decision(
      policyInput(),
      allowOutcome({
        decision: { allow: false, reasons: [] },
        raw: undefined,
        error: { code: "policy_undefined", message: "no result" },
      }),
    );
    rec.fail("later", "a consequence");
    const ev = rec.finish("error");
    assert.deepEqual(ev.error, { code: "policy_undefined", message: "no result" });
    assert.equal(ev.result, null);
  });

  it("refuses a second decision on the same record", () => {
    const { ctx } = context();
    const rec = new AuditRecord(ctx, init);
    rec.decision(policyInput(), allowOutcome());
    assert.throws(() => rec.decision(policyInput(), allowOutcome()), /decision recorded twice/);
  });

  it("measures upstream and total latency on the monotonic clock", () => {
    const { ctx, clock } = context();
    const rec = new AuditRecord(ctx, init);
    clock.advanceMs(0.5);
    rec.decision(policyInput(), allowOutcome());
    rec.upstreamStarted();
    clock.advanceMs(3.1);
    rec.upstreamFinished();
    clock.advanceMs(0.25);
    const ev = rec.finish("allowed");
    assert.deepEqual(ev.latency_ms, { decision: 0.02, upstream: 3.1, total: 3.85 });
    assert.equal(ev.timestamp, "2026-11-24T10:00:00.123000000Z", "timestamp is arrival, not finish");
  });

  it("counts an upstream that never answered up to finish", () => {
    const { ctx, clock } = context();
    const rec = new AuditRecord(ctx, init);
    rec.upstreamStarted();
    clock.advanceMs(30);
    rec.fail("upstream_timeout", "no answer in 30s");
    assert.equal(rec.finish("error").latency_ms.upstream, 30);
  });

  it("summarizes the tool result with the configured cap", () => {
    const { ctx } = context({ resultCapBytes: 10 });
    const rec = new AuditRecord(ctx, init);
    rec.toolResult({ content: [{ type: "text", text: "a long answer" }], isError: true });
    const ev = rec.finish("allowed");
    assert.equal(ev.tool_result?.is_error, true);
    assert.equal(ev.tool_result?.truncated, true);
    assert.equal(ev.tool_result?.content, '{"content"');
  });

  it("serializes to JSON in contract 4 field order", () => {
    const { ctx } = context();
    const rec = new AuditRecord(ctx, init);
    rec.decision(policyInput(), allowOutcome());
    rec.toolResult({ content: [] });
    const keys = Object.keys(JSON.parse(JSON.stringify(rec.finish("allowed"))) as object);
    assert.deepEqual(keys, [
      "decision_id", "timestamp", "path", "labels", "bundles", "input", "result", "erased", "masked",
      "outcome", "agent", "mcp", "tool_result", "requested_by", "latency_ms",
    ]);
  });
});
