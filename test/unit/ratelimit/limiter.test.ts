import assert from "node:assert/strict";
import { LocalWindowStore, RateLimiter, type LimitRequest } from "../../../gateway/ratelimit/index.js";
import { ManualClock } from "../audit/helpers.js";

const alice: LimitRequest["agent"] = { iss: "https://idp.test/", sub: "alice" };

describe("rate limiter buckets", () => {
  const cases: Array<{ note: string; defaults: ConstructorParameters<typeof RateLimiter>[1]; req: LimitRequest; keys: string[] }> = [
    { note: "no decision limit and no defaults: no bucket", defaults: {}, req: { agent: alice, server: "demo", tool: "echo" }, keys: [] },
    {
      note: "the decision's rate_limit is its own namespaced bucket",
      defaults: {},
      req: { agent: alice, server: "demo", tool: "echo", policy: { key: "alice:demo:echo", limit: 5, window_seconds: 60 } },
      keys: ["p:alice:demo:echo"],
    },
    {
      note: "per-agent default is keyed by issuer and subject",
      defaults: { perAgent: { limit: 100, windowSeconds: 60 } },
      req: { agent: alice, server: "demo", tool: "echo" },
      keys: ["a:https://idp.test/|alice"],
    },
    {
      note: "per-tool default is shared by all agents of the tool",
      defaults: { perTool: { limit: 100, windowSeconds: 60 } },
      req: { agent: alice, server: "demo", tool: "echo" },
      keys: ["t:demo/echo"],
    },
    {
      note: "per-tool default does not apply to a request without a tool (resources/read)",
      defaults: { perTool: { limit: 100, windowSeconds: 60 }, perAgent: { limit: 9, windowSeconds: 1 } },
      req: { agent: alice, server: "demo", tool: null },
      keys: ["a:https://idp.test/|alice"],
    },
  ];
  for (const c of cases) {
    it(c.note, () => {
      const limiter = new RateLimiter(new LocalWindowStore(new ManualClock()), c.defaults);
      assert.deepEqual(limiter.buckets(c.req).map((b) => b.key), c.keys);
    });
  }

  it("a policy key that looks like a default's key cannot drain it", async () => {
    const limiter = new RateLimiter(new LocalWindowStore(new ManualClock()), { perTool: { limit: 1, windowSeconds: 60 } });
    const hostile: LimitRequest = { agent: alice, server: "x", tool: null, policy: { key: "t:demo/echo", limit: 1, window_seconds: 60 } };
    assert.equal((await limiter.check(hostile)).kind, "allowed");
    assert.equal((await limiter.check({ agent: alice, server: "demo", tool: "echo" })).kind, "allowed");
  });

  it("reports the full bucket and a whole-second retry hint, never 0", async () => {
    const clock = new ManualClock();
    const limiter = new RateLimiter(new LocalWindowStore(clock), { perAgent: { limit: 1, windowSeconds: 10 } });
    const req: LimitRequest = { agent: alice, server: "demo", tool: "echo" };
    assert.equal((await limiter.check(req)).kind, "allowed");
    clock.advanceMs(9_800);
    const v = await limiter.check(req);
    assert.equal(v.kind, "limited");
    if (v.kind !== "limited") return;
    assert.equal(v.bucket.source, "agent");
    assert.equal(v.retryAfterSeconds, 1);
  });
});
