/**
 * Limits shared across gateway replicas through a real redis-server that this test run starts
 * (and stops) itself: two `portcullis serve` processes hold one limit of N between them, and the
 * store's configured behaviour when Redis goes away and comes back.
 */
import assert from "node:assert/strict";
import { readFileSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { LocalWindowStore, RedisWindowStore, type Bucket } from "../../gateway/ratelimit/index.js";
import { systemClock } from "../../gateway/shared/clock.js";
import { startFakeIdp, type FakeIdp } from "../fakes/jwks.js";
import { startSlowUpstream, type SlowUpstream } from "../fakes/slow-upstream.js";
import { mcpCall, mcpInitialize } from "../support/mcp-http.js";
import { redisServerAvailable, startRedis, type TestRedis } from "../support/redis.js";
import { spawnServe, type ServedGateway } from "../support/serve.js";
import { defaultBundle } from "../support/stack.js";

const quiet = () => undefined;

describe("rate limits shared through a real redis-server", function () {
  this.timeout(30_000);
  let redis: TestRedis;

  before(function () {
    // make tools installs redis-server; say so plainly rather than fail obscurely.
    if (!redisServerAvailable()) throw new Error("redis-server is not installed (make tools installs it)");
  });
  beforeEach(async () => {
    redis = await startRedis();
  });
  afterEach(async () => {
    await redis.stop();
  });

  describe("two gateway processes", () => {
    let idp: FakeIdp;
    let upstream: SlowUpstream;
    const gateways: ServedGateway[] = [];
    const N = 7;

    before(async () => {
      idp = await startFakeIdp({ audience: "http://gateway.test/mcp" });
      upstream = await startSlowUpstream();
    });
    after(async () => {
      await upstream.close();
      await idp.close();
    });
    afterEach(async () => {
      for (const g of gateways.splice(0)) await g.stop();
    });

    it(`hold one per-agent limit of ${N} between them, and audit the refusals as rate_limited`, async () => {
      const { bundle, dir } = await defaultBundle();
      const work = mkdtempSync(join(tmpdir(), "pc-rl-"));
      const config = (i: number) => ({
        auth: { issuer: idp.issuer, audience: idp.audience, jwksUri: idp.jwksUri, algorithms: ["RS256"] },
        policy: { bundle, verificationKey: join(dir, "pub.pem") },
        upstreams: { demo: { url: upstream.url } },
        audit: { file: join(work, `audit-${i}.jsonl`), instanceId: `gw-${i}` },
        rateLimits: { store: "redis", redis: { url: redis.url }, onRedisDown: "refuse", defaults: { perAgent: { limit: N, windowSeconds: 60 } } },
      });
      gateways.push(await spawnServe(config(1)), await spawnServe(config(2)));
      const token = idp.mint({ sub: "alice", roles: ["analyst"], scope: "mcp:tools" });
      const sessions = await Promise.all(gateways.map((g) => mcpInitialize(`${g.url}/mcp/demo`, token)));

      // 3N calls alternating between the replicas, concurrently in small waves.
      const answers = [];
      for (let wave = 0; wave < 3; wave++) {
        answers.push(
          ...(await Promise.all(
            Array.from({ length: N }, (_, i) => {
              const g = (wave * N + i) % 2;
              return mcpCall(`${gateways[g]!.url}/mcp/demo`, token, sessions[g]!, "echo", { text: `call ${wave}-${i}` });
            }),
          )),
        );
      }
      const ok = answers.filter((a) => a.body.result && !a.body.result.isError);
      const limited = answers.filter((a) => a.body.result?._meta?.["dev.portcullis/rate_limit"]);
      assert.equal(ok.length, N, "exactly N calls pass across both replicas");
      assert.equal(limited.length, 2 * N, "every other call is shed with the rate-limit hint");
      for (const a of limited) {
        assert.equal(a.status, 200);
        assert.equal(a.body.result.isError, true);
        const hint = a.body.result._meta["dev.portcullis/rate_limit"];
        assert.equal(hint.code, "rate_limited");
        assert.ok(hint.retry_after_seconds >= 1 && hint.retry_after_seconds <= 60, `retry hint ${hint.retry_after_seconds}`);
        assert.match(a.body.result.content[0].text, /Rate limit exceeded: per-agent limit \(7 per 60 s\)\. Retry after \d+ s\./);
      }
      assert.equal(upstream.started, N, "shed calls never reach the upstream");

      // Stop both so their audit files are flushed, then count outcomes across the two files.
      for (const g of gateways.splice(0)) assert.equal(await g.stop(), 0);
      const events = [1, 2].flatMap((i) =>
        readFileSync(join(work, `audit-${i}.jsonl`), "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l) as { outcome: string; mcp: { method: string }; error?: { code: string } }),
      );
      const calls = events.filter((e) => e.mcp.method === "tools/call");
      assert.equal(calls.length, 3 * N, "one audit event per call");
      assert.equal(calls.filter((e) => e.outcome === "allowed").length, N);
      const rl = calls.filter((e) => e.outcome === "rate_limited");
      assert.equal(rl.length, 2 * N);
      assert.ok(rl.every((e) => e.error?.code === "rate_limited"));
    });
  });

  describe("the store", () => {
    const bucket: Bucket = { key: "shared", source: "policy", limit: 4, windowMs: 60_000 };
    let prefix = "";
    beforeEach(() => (prefix = `it-${Math.random().toString(36).slice(2)}:`));
    const open = (onDown: "local" | "refuse") =>
      RedisWindowStore.start({ url: redis.url, keyPrefix: prefix, timeoutMs: 200, onDown, fallback: new LocalWindowStore(systemClock), log: quiet, clock: systemClock });

    it("counts atomically: 50 concurrent hits from two clients let exactly the limit through", async () => {
      const [a, b] = await Promise.all([open("refuse"), open("refuse")]);
      try {
        assert.equal(a.mode, "redis");
        const results = await Promise.all(Array.from({ length: 50 }, (_, i) => (i % 2 ? a : b).hit([bucket])));
        assert.equal(results.filter((r) => r.kind === "allowed").length, 4);
        const limited = results.find((r) => r.kind === "limited");
        assert.ok(limited && limited.kind === "limited" && limited.retryAfterMs > 59_000 && limited.retryAfterMs <= 60_000, "retry hint is the key's TTL");
      } finally {
        await Promise.all([a.close(), b.close()]);
      }
    });

    it("starts while Redis is down (refusing, as configured) and switches to the shared store once Redis is up", async () => {
      await redis.stop();
      const store = await RedisWindowStore.start({ url: redis.url, keyPrefix: prefix, timeoutMs: 200, onDown: "refuse", fallback: new LocalWindowStore(systemClock), log: quiet, clock: systemClock, connectWaitMs: 200 });
      try {
        const mode = (): string => store.mode;
        assert.equal(mode(), "refuse");
        assert.equal((await store.hit([bucket])).kind, "unavailable");
        await redis.restart();
        const deadline = Date.now() + 10_000;
        while (mode() !== "redis" && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
        assert.equal(mode(), "redis");
        assert.equal((await store.hit([bucket])).kind, "allowed");
      } finally {
        await store.close();
      }
    });

    const downCases = [
      { note: "onRedisDown: local counts locally while Redis is down", onDown: "local" as const, whileDown: ["allowed", "allowed", "allowed", "allowed", "limited"] },
      { note: "onRedisDown: refuse sheds every limited call while Redis is down", onDown: "refuse" as const, whileDown: ["unavailable", "unavailable", "unavailable", "unavailable", "unavailable"] },
    ];
    for (const c of downCases) {
      it(`${c.note}, and returns to the shared count when Redis is back`, async () => {
        const store = await open(c.onDown);
        try {
          assert.equal((await store.hit([bucket])).kind, "allowed");
          await redis.stop();
          const down = [];
          for (let i = 0; i < 5; i++) down.push((await store.hit([bucket])).kind);
          assert.deepEqual(down, c.whileDown);
          assert.equal(store.mode, c.onDown);
          // A fresh server has no keys: the shared count starts again once the client reconnects.
          await redis.restart();
          const deadline = Date.now() + 10_000;
          const mode = (): string => store.mode;
          while (mode() !== "redis" && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
          assert.equal(mode(), "redis", "reconnected");
          const after = [];
          for (let i = 0; i < 5; i++) after.push((await store.hit([bucket])).kind);
          assert.deepEqual(after, ["allowed", "allowed", "allowed", "allowed", "limited"]);
        } finally {
          await store.close();
        }
      });
    }
  });
});
