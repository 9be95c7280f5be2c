import assert from "node:assert/strict";
import { createServer, type Server, type Socket } from "node:net";
import { LocalWindowStore, RedisWindowStore, type Bucket } from "../../../gateway/ratelimit/index.js";
import { freePort } from "../../support/stack.js";
import { ManualClock } from "../audit/helpers.js";

const b: Bucket = { key: "k", source: "agent", limit: 2, windowMs: 60_000 };

/** A TCP server that accepts connections and never answers: a hung Redis. */
async function blackHole(): Promise<{ url: string; close(): Promise<void> }> {
  const sockets: Socket[] = [];
  const server: Server = createServer((s) => {
    sockets.push(s);
    s.resume();
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as { port: number }).port;
  return {
    url: `redis://127.0.0.1:${port}`,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

describe("Redis rate-limit store while Redis is unreachable", () => {
  const logs: string[] = [];
  const log = (_l: string, msg: string) => void logs.push(msg);

  const cases = [
    { note: "nothing listens on the port, onRedisDown: local", target: "closed" as const, onDown: "local" as const },
    { note: "nothing listens on the port, onRedisDown: refuse", target: "closed" as const, onDown: "refuse" as const },
    { note: "a server that never answers (hung Redis), onRedisDown: local", target: "hung" as const, onDown: "local" as const },
    { note: "a server that never answers (hung Redis), onRedisDown: refuse", target: "hung" as const, onDown: "refuse" as const },
  ];
  for (const c of cases) {
    it(`${c.note}: ${c.onDown === "local" ? "counts locally, so the limit still holds" : "refuses with a retry hint"}, without stalling`, async () => {
      const hole = c.target === "hung" ? await blackHole() : null;
      const url = hole?.url ?? `redis://127.0.0.1:${await freePort()}`;
      const clock = new ManualClock();
      const store = await RedisWindowStore.start({ url, keyPrefix: "t:", timeoutMs: 100, onDown: c.onDown, fallback: new LocalWindowStore(clock), log, clock, connectWaitMs: 150 });
      try {
        assert.equal(store.mode, c.onDown);
        const t0 = performance.now();
        const results = [];
        for (let i = 0; i < 3; i++) results.push(await store.hit([b]));
        assert.ok(performance.now() - t0 < 500, "requests never wait on the unreachable store");
        if (c.onDown === "local") assert.deepEqual(results.map((r) => r.kind), ["allowed", "allowed", "limited"]);
        else {
          assert.deepEqual(results.map((r) => r.kind), ["unavailable", "unavailable", "unavailable"]);
          assert.equal(results[0]!.kind === "unavailable" && results[0]!.retryAfterMs > 0, true);
        }
        assert.ok(logs.some((m) => m.includes("unreachable at start")), "the operator is told");
      } finally {
        await store.close();
        await hole?.close();
      }
    });
  }
});
