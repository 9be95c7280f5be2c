/**
 * audit.refusals: unauthenticated/invalid events folded per source beyond a budget, summarized
 * once a minute (and at close), nothing dropped.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { AuditLog, AuditRecord, type AuditContext, type AuditEvent, type AuditOutcome, type AuditSink } from "../../../gateway/audit/index.js";
import { REFUSALS_FOLDED_CODE } from "../../../gateway/audit/refusal-folding.js";
import { auditSchemaErrors } from "../../support/audit-schema.js";
import { runs } from "../hostile/arbitraries.js";
import { ManualClock, sequentialIds } from "./helpers.js";

class MemorySink implements AuditSink {
  readonly name = "memory";
  events: AuditEvent[] = [];
  async write(e: AuditEvent): Promise<void> {
    this.events.push(e);
  }
  async close(): Promise<void> {}
}

function setup(perSourcePerMinute: number) {
  const clock = new ManualClock();
  const ctx: AuditContext = { instanceId: "gw-1", version: "0.1.0", clock, ids: sequentialIds("d"), resultCapBytes: 64, bundleRevision: () => "rev-3" };
  const sink = new MemorySink();
  const log = new AuditLog([sink], { refusals: { perSourcePerMinute, context: ctx } });
  const refuse = (source: string | null, outcome: AuditOutcome = "unauthenticated", code = "auth_missing_token") => {
    const rec = new AuditRecord(ctx, { server: "files", method: "tools/call", requestedBy: source });
    rec.fail(code, "refused");
    return log.record(rec.finish(outcome));
  };
  const summaries = () => sink.events.filter((e) => e.error?.code === REFUSALS_FOLDED_CODE);
  const singles = () => sink.events.filter((e) => e.error?.code !== REFUSALS_FOLDED_CODE);
  return { clock, ctx, sink, log, refuse, summaries, singles };
}

describe("AuditLog: refusals folded per source", () => {
  it("writes the first N of a source's minute, folds the rest into one summary when the minute ends", async () => {
    const { clock, log, refuse, summaries, singles } = setup(3);
    for (let i = 0; i < 7; i++) await refuse("10.0.0.1");
    clock.advanceMs(1);
    for (let i = 0; i < 3; i++) await refuse("10.0.0.1", "unauthenticated", "token_expired");
    assert.equal(singles().length, 3);
    assert.deepEqual(summaries(), []);
    clock.advanceMs(30_000);
    await log.flushRefusals();
    assert.deepEqual(summaries(), [], "not before the minute is over");
    clock.advanceMs(30_000);
    await log.flushRefusals();
    const [s] = summaries();
    assert.equal(summaries().length, 1);
    assert.equal(s?.outcome, "unauthenticated");
    assert.deepEqual(s?.error, { code: "refusals_folded", message: "7 refusals from 10.0.0.1 folded" });
    assert.deepEqual(s?.folded, { count: 7, first: "2026-11-24T10:00:00.123000000Z", last: "2026-11-24T10:00:00.124000000Z", codes: { auth_missing_token: 4, token_expired: 3 } });
    assert.equal(s?.requested_by, "10.0.0.1");
    assert.deepEqual(s?.mcp, { server: "files", method: "tools/call", tool: null });
    assert.deepEqual(s?.bundles, { "mcp-authz": { revision: "rev-3" } });
    assert.deepEqual(auditSchemaErrors(JSON.parse(JSON.stringify(s))), []);
    assert.deepEqual(log.refusalStats(), { folded: 7, summarized: 7 });
  });

  it("does not spend chain positions on folded events", async () => {
    const { clock, log, refuse, sink } = setup(1);
    for (let i = 0; i < 5; i++) await refuse("a");
    clock.advanceMs(60_000);
    await log.flushRefusals();
    assert.deepEqual(sink.events.map((e) => e.chain?.seq), [1, 2]);
  });

  it("keeps sources apart, unknown sources (null) in one bucket, and names them", async () => {
    const { clock, log, refuse, summaries } = setup(1);
    for (const s of ["a", "a", "b", null, null, null]) await refuse(s);
    clock.advanceMs(60_000);
    await log.flushRefusals();
    assert.deepEqual(summaries().map((e) => e.error?.message).sort(), ["1 refusals from a folded", "2 refusals from an unknown source folded"]);
    assert.equal(summaries().find((e) => e.folded?.count === 2)?.requested_by, null);
  });

  it("gives a mixed summary the outcome invalid and an empty method when they differ", async () => {
    const { ctx, clock, log, refuse, summaries } = setup(1);
    await refuse("a");
    await refuse("a", "unauthenticated");
    await refuse("a", "invalid", "parse_error");
    const other = new AuditRecord(ctx, { server: "files", method: "ping", requestedBy: "a" });
    await log.record(other.finish("invalid"));
    clock.advanceMs(60_000);
    await log.flushRefusals();
    const [s] = summaries();
    assert.equal(s?.outcome, "invalid");
    assert.deepEqual(s?.folded?.codes, { auth_missing_token: 1, none: 1, parse_error: 1 });
    assert.equal(s?.mcp.method, "");
  });

  it("never folds decisions", async () => {
    const { ctx, log, sink } = setup(1);
    for (const outcome of ["allowed", "denied", "rate_limited", "error"] as const) {
      for (let i = 0; i < 3; i++) await log.record(new AuditRecord(ctx, { requestedBy: "a" }).finish(outcome));
    }
    assert.equal(sink.events.length, 12);
  });

  it("folds nothing with perSourcePerMinute 0", async () => {
    const { refuse, sink } = setup(0);
    for (let i = 0; i < 100; i++) await refuse("a");
    assert.equal(sink.events.length, 100);
  });

  it("writes pending summaries at close", async () => {
    const { log, refuse, summaries } = setup(2);
    for (let i = 0; i < 5; i++) await refuse("a");
    await log.close();
    assert.equal(summaries()[0]?.folded?.count, 3);
  });

  it("starts a new window after the minute, the ended one summarized", async () => {
    const { clock, log, refuse, summaries, singles } = setup(2);
    for (let i = 0; i < 4; i++) await refuse("a");
    clock.advanceMs(61_000);
    for (let i = 0; i < 3; i++) await refuse("a");
    await log.flushRefusals();
    assert.equal(singles().length, 4);
    assert.deepEqual(summaries().map((s) => s.folded?.count), [2]);
    await log.close();
    assert.deepEqual(summaries().map((s) => s.folded?.count), [2, 1]);
  });

  it(`counts add up: written refusals plus folded counts equal every refusal recorded (${runs(200)} runs)`, async () => {
    const step = fc.record({ source: fc.constantFrom("a", "b", "c", null), outcome: fc.constantFrom<AuditOutcome>("unauthenticated", "invalid", "allowed"), advanceMs: fc.constantFrom(0, 0, 0, 1_000, 20_000, 61_000) });
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 0, max: 5 }), fc.array(step, { maxLength: 60 }), async (limit, steps) => {
        const { clock, log, refuse, summaries, singles } = setup(limit);
        for (const s of steps) {
          clock.advanceMs(s.advanceMs);
          await refuse(s.source, s.outcome);
          if (s.advanceMs > 0) await log.flushRefusals();
        }
        await log.close();
        const refusals = steps.filter((s) => s.outcome !== "allowed").length;
        const written = singles().filter((e) => e.outcome !== "allowed").length;
        const folded = summaries().reduce((n, e) => n + (e.folded?.count ?? 0), 0);
        assert.equal(written + folded, refusals);
        assert.deepEqual(log.refusalStats(), { folded, summarized: folded });
      }),
      { numRuns: runs(200) },
    );
  });
});
