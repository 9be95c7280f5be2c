/**
 * What sealed sessions cost (issue 10), next to the proxy figures of gateway-cost.ts:
 * - seal: once per session, at initialize;
 * - open: once per session per replica (the first request a replica sees of it);
 * - the per-request check that the session is still alive: a Map lookup with one replica, one
 *   Redis round trip (PEXPIRE) with the shared ledger of several replicas.
 *
 *   node dist/bench/sessions.js [iterations]
 */
import { randomBytes } from "node:crypto";
import { spawnSync } from "node:child_process";
import { LocalSessionLedger, RedisSessionLedger } from "../gateway/proxy/session-ledger.js";
import { SessionSealer, type SealedSession } from "../gateway/proxy/session-seal.js";
import { SharedRedis } from "../gateway/shared/redis.js";
import { startRedis } from "../test/support/redis.js";

const ITERATIONS = Number(process.argv[2] ?? 20_000);
const WARMUP = 2_000;

const SESSION: SealedSession = {
  handle: randomBytes(16).toString("base64url"),
  iss: "https://idp.example.com/",
  sub: "agent-7f3a9c",
  server: "files",
  iat: 1_800_000_000,
  exp: 1_800_086_400,
  protocolVersion: "2025-11-25",
  upstream: { kind: "http", era: "legacy", sessionId: randomBytes(16).toString("hex"), protocolVersion: "2025-11-25" },
};

async function measure(label: string, iterations: number, fn: () => unknown): Promise<void> {
  for (let i = 0; i < WARMUP; i++) await fn();
  const samples = new Float64Array(iterations);
  for (let i = 0; i < iterations; i++) {
    const t0 = process.hrtime.bigint();
    await fn();
    samples[i] = Number(process.hrtime.bigint() - t0) / 1000;
  }
  samples.sort();
  const at = (q: number): number => samples[Math.min(samples.length - 1, Math.floor(q * samples.length))] ?? NaN;
  const fmt = (v: number): string => v.toFixed(1).padStart(7);
  console.log(`${label.padEnd(52)} p50 ${fmt(at(0.5))} µs  p99 ${fmt(at(0.99))} µs`);
}

async function main(): Promise<void> {
  const sealer = new SessionSealer([{ id: "k2", key: randomBytes(32) }, { id: "k1", key: randomBytes(32) }]);
  const token = sealer.sealSession(SESSION);
  console.log(`sealed sessions: ${ITERATIONS} iterations after ${WARMUP} warm-up; a session id is ${token.length} characters`);
  await measure("seal (initialize, once per session)", ITERATIONS, () => sealer.sealSession(SESSION));
  await measure("open (first request of a session on a replica)", ITERATIONS, () => sealer.openSession(token));
  const serverRequest = { session: SESSION.handle, id: 7, method: "sampling/createMessage", exp: 1_800_003_600 };
  await measure("seal a server→client request id (per such request)", ITERATIONS, () => sealer.seal("server-request/1", serverRequest));
  const local = new LocalSessionLedger(() => Date.now(), 86_400_000);
  await local.start(SESSION.handle, 1_800_000);
  await measure("alive check, one replica (every session request)", ITERATIONS, () => local.touch(SESSION.handle, 1_800_000));
  if (spawnSync("redis-server", ["--version"], { stdio: "ignore" }).status !== 0) {
    console.log("alive check, shared ledger: skipped (no redis-server; make tools installs it)");
    return;
  }
  const server = await startRedis();
  const redis = await SharedRedis.start({ url: server.url, timeoutMs: 250, log: () => undefined, clock: { now: () => Date.now() }, user: "bench", downMode: "refuse" });
  try {
    const shared = new RedisSessionLedger(redis, "bench:s:", "refuse", new LocalSessionLedger(() => Date.now(), 86_400_000));
    await shared.start(SESSION.handle, 1_800_000);
    await measure("alive check, shared ledger in Redis (every session request)", Math.min(ITERATIONS, 10_000), () => shared.touch(SESSION.handle, 1_800_000));
  } finally {
    await redis.close();
    await server.stop();
  }
}

await main();
