import assert from "node:assert/strict";
import { parseConfig } from "../../../gateway/config/index.js";

/** Issue 5 items 1, 2 and 7: rate limits, upstream concurrency, slow-client timeouts, shutdown. */
const base = (over: Record<string, unknown> = {}, upstream: Record<string, unknown> = {}) => ({
  auth: { issuer: "https://idp.test/", audience: "https://gw.test/mcp", jwksUri: "https://idp.test/jwks.json" },
  policy: { bundle: "b.tar.gz", verificationKey: "k.pem" },
  upstreams: { files: { url: "http://127.0.0.1:7001/mcp", ...upstream } },
  ...over,
});

describe("config: rate limits, upstream protection and shutdown", () => {
  it("defaults: local store, no default buckets, 256 calls per upstream, 10 s / 30 s slow-client timeouts, 30 s drain", () => {
    const c = parseConfig(base(), "gw.yaml", {});
    assert.deepEqual(c.rateLimits, { store: "local", onRedisDown: "local", defaults: {} });
    assert.equal((c.upstreams.files as { maxConcurrent: number }).maxConcurrent, 256);
    assert.equal(c.edge.headersTimeoutMs, 10_000);
    assert.equal(c.edge.requestTimeoutMs, 30_000);
    assert.deepEqual(c.shutdown, { drainTimeoutMs: 30_000 });
  });

  it("fills Redis defaults and expands ${VAR} in its URL", () => {
    const c = parseConfig(
      base({ rateLimits: { store: "redis", redis: { url: "redis://:${REDIS_PASSWORD}@redis.internal:6379" }, onRedisDown: "refuse", defaults: { perAgent: { limit: 10, windowSeconds: 1 } } } }),
      "gw.yaml",
      { REDIS_PASSWORD: "pw" },
    );
    assert.deepEqual(c.rateLimits.redis, { url: "redis://:pw@redis.internal:6379", keyPrefix: "portcullis:rl:", timeoutMs: 250 });
    assert.equal(c.rateLimits.onRedisDown, "refuse");
    assert.deepEqual(c.rateLimits.defaults.perAgent, { limit: 10, windowSeconds: 1 });
  });

  const refused: Array<{ note: string; raw: unknown; field: RegExp }> = [
    { note: "store: redis without redis.url", raw: base({ rateLimits: { store: "redis" } }), field: /rateLimits\.redis/ },
    { note: "an unknown store", raw: base({ rateLimits: { store: "memcached" } }), field: /rateLimits\.store/ },
    { note: "an unknown onRedisDown behaviour", raw: base({ rateLimits: { onRedisDown: "allow" } }), field: /rateLimits\.onRedisDown/ },
    { note: "a Redis URL that is not redis://", raw: base({ rateLimits: { store: "redis", redis: { url: "http://redis:6379" } } }), field: /rateLimits\.redis\.url/ },
    { note: "a zero limit", raw: base({ rateLimits: { defaults: { perTool: { limit: 0, windowSeconds: 60 } } } }), field: /rateLimits\.defaults\.perTool\.limit/ },
    { note: "a misspelt default (perUser)", raw: base({ rateLimits: { defaults: { perUser: { limit: 1, windowSeconds: 1 } } } }), field: /rateLimits\.defaults/ },
    { note: "maxConcurrent 0", raw: base({}, { maxConcurrent: 0 }), field: /upstreams\.files/ },
    { note: "a negative drain timeout", raw: base({ shutdown: { drainTimeoutMs: -1 } }), field: /shutdown\.drainTimeoutMs/ },
  ];
  for (const c of refused) {
    it(`refuses ${c.note}, naming the field`, () => {
      assert.throws(() => parseConfig(c.raw, "gw.yaml", {}), (err: Error) => c.field.test(err.message) && /gw\.yaml/.test(err.message));
    });
  }
});
