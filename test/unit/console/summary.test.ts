import assert from "node:assert/strict";
import { ConsoleFeed } from "../../../gateway/console/index.js";
import { summarize } from "../../../gateway/console/summary.js";
import { auditEvent, type DecisionSpec } from "../../support/console-events.js";

const NOW = Date.UTC(2026, 10, 24, 11, 0, 0);
const HOUR = 3_600_000;
const MIN = 60_000;

function feedWith(specs: DecisionSpec[], options: { maxEvents?: number } = {}): ConsoleFeed {
  let clock = NOW - HOUR;
  const feed = new ConsoleFeed({ ...options, maxAgeMs: 2 * HOUR, now: () => clock });
  for (const s of specs) {
    clock = s.at;
    feed.push(auditEvent(s));
  }
  clock = NOW;
  return feed;
}

const spec = (over: Partial<DecisionSpec>): DecisionSpec => ({ agent: "alice", server: "files", tool: "read_file", outcome: "allowed", at: NOW - 10 * MIN, ...over });

describe("console summary", () => {
  const feed = feedWith([
    spec({ at: NOW - 90 * MIN, agent: "outside-the-hour" }),
    spec({ at: NOW - 50 * MIN }),
    spec({ at: NOW - 40 * MIN }),
    spec({ at: NOW - 30 * MIN, outcome: "denied", reasons: ["path outside /data"] }),
    spec({ at: NOW - 20 * MIN, agent: "bob", tool: "write_file", outcome: "denied", reasons: ["path outside /data", "writes need approval"] }),
    spec({ at: NOW - 15 * MIN, agent: "bob", server: "crm", tool: "export_contacts", outcome: "error", error: { code: "upstream_timeout", message: "no answer in 30 s" } }),
    spec({ at: NOW - 10 * MIN, agent: "bob", method: "tools/list", tool: null }),
    spec({ at: NOW - 5 * MIN, agent: null, outcome: "unauthenticated" }),
  ]);
  const s = summarize(feed.entries(), NOW, HOUR, feed.stats());

  it("covers the last hour only", () => {
    assert.equal(s.window.events, 7);
    assert.equal(s.window.from, new Date(NOW - HOUR).toISOString());
    assert.equal(s.window.to, new Date(NOW).toISOString());
    assert.ok(!s.calls.some((c) => c.agent === "outside-the-hour"));
    assert.equal(s.window.complete, true);
  });

  it("counts who called what, per agent × server × method × tool, the busiest first", () => {
    assert.deepEqual(s.calls[0], {
      agent: "alice", server: "files", method: "tools/call", tool: "read_file", total: 3,
      outcomes: { allowed: 2, denied: 1, rate_limited: 0, unauthenticated: 0, invalid: 0, error: 0 },
    });
    assert.ok(s.calls.some((c) => c.agent === "bob" && c.method === "tools/list" && c.tool === null && c.total === 1));
    assert.equal(s.calls.reduce((n, c) => n + c.total, 0), 7);
  });

  it("lists every refusal newest first with its reasons or error", () => {
    assert.deepEqual(s.denials.map((d) => [d.outcome, d.agent, d.tool]), [
      ["unauthenticated", null, null],
      ["error", "bob", "export_contacts"],
      ["denied", "bob", "write_file"],
      ["denied", "alice", "read_file"],
    ]);
    assert.deepEqual(s.denials[2]?.reasons, ["path outside /data", "writes need approval"]);
    assert.deepEqual(s.denials[1]?.error, { code: "upstream_timeout", message: "no answer in 30 s" });
  });

  it("counts denial reasons, falling back to the error code", () => {
    assert.deepEqual(s.denial_reasons, [
      { reason: "path outside /data", count: 2 },
      { reason: "token_expired", count: 1 },
      { reason: "upstream_timeout", count: 1 },
      { reason: "writes need approval", count: 1 },
    ]);
  });

  it("gives per-agent and per-tool totals with their refusals, for the charts", () => {
    assert.deepEqual(s.per_agent, [
      { agent: "alice", total: 3, refused: 1 },
      { agent: "bob", total: 3, refused: 2 },
      { agent: null, total: 1, refused: 1 },
    ]);
    assert.deepEqual(s.per_tool, [
      { server: "files", tool: "read_file", total: 3, refused: 1 },
      { server: "files", tool: "write_file", total: 1, refused: 1 },
      { server: "crm", tool: "export_contacts", total: 1, refused: 1 },
    ]);
    assert.deepEqual(s.outcomes, { allowed: 3, denied: 2, rate_limited: 0, unauthenticated: 1, invalid: 0, error: 1 });
  });

  it("says the window is incomplete when the feed dropped entries of it for lack of room", () => {
    const small = feedWith([spec({ at: NOW - 30 * MIN }), spec({ at: NOW - 20 * MIN }), spec({ at: NOW - 10 * MIN })], { maxEvents: 2 });
    const partial = summarize(small.entries(), NOW, HOUR, small.stats());
    assert.equal(partial.window.complete, false);
    assert.equal(partial.window.events, 2);
  });
});
