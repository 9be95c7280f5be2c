import assert from "node:assert/strict";
import { ConsoleFeed, type ConsoleEntry } from "../../../gateway/console/index.js";
import { auditEvent, type DecisionSpec } from "../../support/console-events.js";

const T0 = Date.UTC(2026, 10, 24, 10, 0, 0);

/** A feed on a clock the test moves. */
function feedAt(options: { maxEvents?: number; maxAgeMs?: number } = {}) {
  const clock = { ms: T0 };
  const feed = new ConsoleFeed({ ...options, now: () => clock.ms });
  return { feed, clock };
}

const call = (over: Partial<DecisionSpec> = {}): DecisionSpec => ({ agent: "alice", server: "files", tool: "read_file", outcome: "allowed", at: T0, ...over });

describe("ConsoleFeed", () => {
  describe("bounds", () => {
    it("keeps at most maxEvents entries, dropping the oldest first", () => {
      const { feed } = feedAt({ maxEvents: 3 });
      for (let i = 1; i <= 5; i++) feed.push(auditEvent(call({ arguments: { n: i } })));
      const kept = feed.entries();
      assert.deepEqual(kept.map((e) => e.seq), [3, 4, 5]);
      assert.deepEqual(kept.map((e) => e.arguments), ['{"n":3}', '{"n":4}', '{"n":5}']);
      assert.equal(feed.stats().evictedByCount, 2);
      assert.equal(feed.stats().size, 3);
    });

    it("drops entries that arrived more than maxAgeMs ago, on push and on read", () => {
      const { feed, clock } = feedAt({ maxAgeMs: 60_000 });
      feed.push(auditEvent(call({ agent: "old" })));
      clock.ms += 30_000;
      feed.push(auditEvent(call({ agent: "middle" })));
      clock.ms += 31_000; // "old" is now 61 s old
      assert.deepEqual(feed.entries().map((e) => e.agent), ["middle"]);
      clock.ms += 60_000;
      assert.deepEqual(feed.entries(), []);
      assert.equal(feed.stats().evictedByCount, 0, "ageing out is not an eviction for lack of room");
    });

    it("keeps counting seq across evictions and wraps its ring correctly many times over", () => {
      const { feed } = feedAt({ maxEvents: 4 });
      for (let i = 1; i <= 23; i++) feed.push(auditEvent(call()));
      assert.deepEqual(feed.entries().map((e) => e.seq), [20, 21, 22, 23]);
    });

    it("refuses bounds that are not positive integers, naming the option", () => {
      assert.throws(() => new ConsoleFeed({ maxEvents: 0 }), /maxEvents must be a positive integer/);
      assert.throws(() => new ConsoleFeed({ maxAgeMs: 1.5 }), /maxAgeMs must be a positive integer/);
    });
  });

  describe("filters", () => {
    const { feed } = feedAt();
    feed.push(auditEvent(call({ agent: "alice", server: "files", tool: "read_file", outcome: "allowed", at: T0 - 50_000 })));
    feed.push(auditEvent(call({ agent: "bob", server: "files", tool: "write_file", outcome: "denied", reasons: ["writes need approval"], at: T0 - 40_000 })));
    feed.push(auditEvent(call({ agent: "alice", server: "crm", tool: "export_contacts", outcome: "denied", reasons: ["bulk export"], at: T0 - 30_000 })));
    feed.push(auditEvent(call({ agent: "alice", server: "files", tool: "read_file", outcome: "rate_limited", at: T0 - 20_000 })));
    feed.push(auditEvent(call({ agent: null, server: "files", outcome: "unauthenticated", at: T0 - 10_000 })));

    const cases: Array<{ note: string; filter: Parameters<ConsoleFeed["entries"]>[0]; seqs: number[] }> = [
      { note: "no filter selects everything", filter: {}, seqs: [1, 2, 3, 4, 5] },
      { note: "agent", filter: { agent: "alice" }, seqs: [1, 3, 4] },
      { note: "server", filter: { server: "crm" }, seqs: [3] },
      { note: "tool", filter: { tool: "read_file" }, seqs: [1, 4] },
      { note: "outcome", filter: { outcome: "denied" }, seqs: [2, 3] },
      { note: "since (the event's own timestamp, inclusive)", filter: { since: T0 - 30_000 }, seqs: [3, 4, 5] },
      { note: "all of them at once", filter: { agent: "alice", server: "files", tool: "read_file", outcome: "rate_limited", since: T0 - 25_000 }, seqs: [4] },
      { note: "a value nothing has", filter: { agent: "mallory" }, seqs: [] },
    ];
    for (const c of cases) {
      it(`selects by ${c.note}`, () => {
        assert.deepEqual(feed.entries(c.filter).map((e) => e.seq), c.seqs);
      });
    }

    it("selects only entries after a given seq (a stream resuming)", () => {
      assert.deepEqual(feed.entries({ agent: "alice" }, 3).map((e) => e.seq), [4]);
    });
  });

  describe("subscribe", () => {
    it("calls a listener with every entry pushed after it subscribed, until it unsubscribes", () => {
      const { feed } = feedAt();
      feed.push(auditEvent(call({ agent: "before" })));
      const seen: ConsoleEntry[] = [];
      const unsubscribe = feed.subscribe((e) => seen.push(e));
      feed.push(auditEvent(call({ agent: "during-1" })));
      feed.push(auditEvent(call({ agent: "during-2" })));
      unsubscribe();
      feed.push(auditEvent(call({ agent: "after" })));
      assert.deepEqual(seen.map((e) => e.agent), ["during-1", "during-2"]);
      assert.equal(feed.subscribers, 0);
    });

    it("keeps delivering to the other listeners when one throws, and reports the error", () => {
      const errors: unknown[] = [];
      const feed = new ConsoleFeed({ onListenerError: (err) => errors.push(err) });
      const seen: string[] = [];
      feed.subscribe(() => {
        throw new Error("broken listener");
      });
      feed.subscribe((e) => seen.push(e.decision_id));
      assert.doesNotThrow(() => feed.push(auditEvent(call())));
      assert.equal(seen.length, 1);
      assert.equal(errors.length, 1);
      assert.match(String(errors[0]), /broken listener/);
      assert.equal(feed.entries().length, 1, "the entry is kept even though a listener threw");
    });

    it("treats the same function subscribed twice as two subscriptions", () => {
      const feed = new ConsoleFeed();
      let calls = 0;
      const listener = () => void calls++;
      const first = feed.subscribe(listener);
      feed.subscribe(listener);
      first();
      feed.push(auditEvent(call()));
      assert.equal(calls, 1);
    });
  });

  describe("entries", () => {
    it("carry the decision's reasons and message, the event's error, and the masked arguments", () => {
      const feed = new ConsoleFeed();
      feed.push(auditEvent(call({ outcome: "denied", reasons: ["path outside /data", "weekend"], message: "read_file is limited to /data", arguments: { path: "/etc/passwd" } })));
      feed.push(auditEvent(call({ outcome: "error", error: { code: "upstream_unavailable", message: "connect ECONNREFUSED" } })));
      const [denied, failed] = feed.entries() as [ConsoleEntry, ConsoleEntry];
      assert.deepEqual(denied.reasons, ["path outside /data", "weekend"]);
      assert.equal(denied.message, "read_file is limited to /data");
      assert.equal(denied.arguments, '{"path":"/etc/passwd"}');
      assert.equal(denied.bundle, "rev-console-1");
      assert.deepEqual(failed.error, { code: "upstream_unavailable", message: "connect ECONNREFUSED" });
    });

    it("never keep the tool's output, and cap the arguments", () => {
      const feed = new ConsoleFeed();
      const secret = "tool output the console must not hold";
      feed.push(auditEvent(call({ arguments: { blob: "x".repeat(5000) }, result: { content: [{ type: "text", text: secret }] } })));
      const [entry] = feed.entries() as [ConsoleEntry];
      assert.ok(!JSON.stringify(entry).includes(secret));
      assert.ok(entry.arguments !== null && entry.arguments.length <= 1024, `arguments are ${entry.arguments?.length} characters`);
      assert.ok(entry.arguments.endsWith("…"));
    });

    it("name the agent null for a request without a valid token", () => {
      const feed = new ConsoleFeed();
      feed.push(auditEvent(call({ agent: null, outcome: "unauthenticated" })));
      const [entry] = feed.entries() as [ConsoleEntry];
      assert.equal(entry.agent, null);
      assert.equal(entry.outcome, "unauthenticated");
      assert.equal(entry.error?.code, "token_expired");
    });
  });
});
