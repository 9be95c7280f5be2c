import assert from "node:assert/strict";
import { LocalWindowStore, type Bucket, type HitResult } from "../../../gateway/ratelimit/index.js";
import { ManualClock } from "../audit/helpers.js";

const bucket = (key: string, limit: number, windowMs = 60_000, source: Bucket["source"] = "policy"): Bucket => ({ key, source, limit, windowMs });

describe("local rate-limit store (fixed windows, injected clock)", () => {
  const cases: Array<{ note: string; steps: Array<{ advanceMs?: number; buckets: Bucket[]; expect: HitResult["kind"]; retryAfterMs?: number; index?: number }> }> = [
    {
      note: "N calls pass, the N+1th is limited until the window ends",
      steps: [
        { buckets: [bucket("k", 2)], expect: "allowed" },
        { advanceMs: 10_000, buckets: [bucket("k", 2)], expect: "allowed" },
        { advanceMs: 5_000, buckets: [bucket("k", 2)], expect: "limited", retryAfterMs: 45_000, index: 0 },
        { advanceMs: 44_999, buckets: [bucket("k", 2)], expect: "limited", retryAfterMs: 1 },
        { advanceMs: 1, buckets: [bucket("k", 2)], expect: "allowed" },
      ],
    },
    {
      note: "keys are independent",
      steps: [
        { buckets: [bucket("a", 1)], expect: "allowed" },
        { buckets: [bucket("b", 1)], expect: "allowed" },
        { buckets: [bucket("a", 1)], expect: "limited" },
      ],
    },
    {
      note: "a call refused by one bucket does not use up the others (all or none)",
      steps: [
        { buckets: [bucket("full", 1)], expect: "allowed" },
        { buckets: [bucket("roomy", 2), bucket("full", 1)], expect: "limited", index: 1 },
        { buckets: [bucket("roomy", 2), bucket("full", 1)], expect: "limited", index: 1 },
        // "roomy" was never counted above: both of its calls are still there.
        { buckets: [bucket("roomy", 2)], expect: "allowed" },
        { buckets: [bucket("roomy", 2)], expect: "allowed" },
        { buckets: [bucket("roomy", 2)], expect: "limited" },
      ],
    },
    {
      note: "the first full bucket in order is reported",
      steps: [
        { buckets: [bucket("x", 1), bucket("y", 1)], expect: "allowed" },
        { buckets: [bucket("x", 1), bucket("y", 1)], expect: "limited", index: 0 },
      ],
    },
  ];
  for (const c of cases) {
    it(c.note, async () => {
      const clock = new ManualClock();
      const store = new LocalWindowStore(clock);
      for (const [i, s] of c.steps.entries()) {
        if (s.advanceMs) clock.advanceMs(s.advanceMs);
        const r = await store.hit(s.buckets);
        assert.equal(r.kind, s.expect, `step ${i}`);
        if (r.kind === "limited" && s.retryAfterMs !== undefined) assert.equal(r.retryAfterMs, s.retryAfterMs, `step ${i} retry`);
        if (r.kind === "limited" && s.index !== undefined) assert.equal(r.index, s.index, `step ${i} index`);
      }
    });
  }

  it("drops expired windows so idle keys do not accumulate", async () => {
    const clock = new ManualClock();
    const store = new LocalWindowStore(clock);
    for (let i = 0; i < 1000; i++) await store.hit([bucket(`k${i}`, 5, 1000)]);
    assert.equal(store.size, 1000);
    clock.advanceMs(1001);
    for (let i = 0; i < 100; i++) await store.hit([bucket("live", 1000, 1000)]);
    assert.equal(store.size, 1, "only the live key is left after the sweep");
  });
});
