import assert from "node:assert/strict";
import { Refusal } from "../../gateway/proxy/errors.js";
import { LocalSessionLedger, MAX_TASKS, RedisSessionLedger } from "../../gateway/proxy/session-ledger.js";
import { SharedRedis } from "../../gateway/shared/redis.js";
import { redisServerAvailable, startRedis, type TestRedis } from "../support/redis.js";

/** The session ledger several replicas share, against a real redis-server. */
describe("RedisSessionLedger: sessions' ends and tasks, shared through a real Redis", function () {
  this.timeout(30_000);
  let server: TestRedis;
  const opened: SharedRedis[] = [];

  before(async function () {
    if (!redisServerAvailable()) this.skip();
    server = await startRedis();
  });
  after(async () => {
    await Promise.all(opened.map((r) => r.close()));
    await server?.stop();
  });

  /** One replica's view: its own connection and local fallback, the shared prefix. */
  async function replica(onDown: "local" | "refuse" = "refuse", prefix = "t1:") {
    const redis = await SharedRedis.start({ url: server.url, timeoutMs: 200, log: () => undefined, clock: { now: () => Date.now() }, user: "test", downMode: onDown, connectWaitMs: 1000 });
    opened.push(redis);
    return new RedisSessionLedger(redis, prefix, onDown, new LocalSessionLedger(() => Date.now(), 3_600_000));
  }

  it("an end on one replica is seen by the others at once; idleness ends it everywhere", async () => {
    const [a, b] = [await replica(), await replica()];
    await a.start("s1", 60_000);
    await a.start("s2", 300);
    assert.equal(await b.touch("s1", 60_000), "alive");
    await b.end("s1");
    assert.equal(await a.touch("s1", 60_000), "ended");
    assert.deepEqual(await a.alive(["s1", "s2", "never"]), [false, true, false]);
    await new Promise((r) => setTimeout(r, 450));
    assert.equal(await b.touch("s2", 300), "ended", "idle past its TTL");
    assert.equal(await a.touch("never-started", 60_000), "ended", "a handle Redis never saw is not alive");
  });

  it("tasks are known on every replica, bounded per session", async () => {
    const [a, b] = [await replica("refuse", "t2:"), await replica("refuse", "t2:")];
    await a.putTask("s", "task-1", { tool: "export", arguments: { table: "q3" } }, 60_000);
    assert.deepEqual(await b.getTask("s", "task-1"), { tool: "export", arguments: { table: "q3" } });
    assert.equal(await b.getTask("s", "task-2"), undefined);
    assert.equal(await b.getTask("other", "task-1"), undefined, "another session's task");
    assert.deepEqual([...(await b.knownTasks("s", ["task-1", "task-2"]))], ["task-1"]);
    for (let i = 0; i < MAX_TASKS + 5; i++) await a.putTask("full", `t${i}`, { tool: "x", arguments: {} }, 60_000);
    const known = await b.knownTasks("full", [`t${MAX_TASKS - 1}`, `t${MAX_TASKS}`]);
    assert.deepEqual([...known], [`t${MAX_TASKS - 1}`], "past the bound a session records no more tasks");
  });

  it("claim(): a token is claimed once across replicas", async () => {
    const [a, b] = [await replica("refuse", "t3:"), await replica("refuse", "t3:")];
    const results = await Promise.all([a.claim("answer-1", 60_000), b.claim("answer-1", 60_000), a.claim("answer-1", 60_000)]);
    assert.deepEqual(results.filter(Boolean).length, 1);
  });

  it("Redis down: refuse answers session_store_unavailable; local serves on what the replica knows", async () => {
    const refusing = await replica("refuse", "t4:");
    const lenient = await replica("local", "t4:");
    await refusing.start("s", 60_000);
    await lenient.start("s", 60_000);
    await lenient.end("gone");
    await server.stop();
    try {
      await assert.rejects(refusing.touch("s", 60_000), (e: unknown) => e instanceof Refusal && e.code === "session_store_unavailable" && e.entry.status === 503);
      assert.equal(await lenient.touch("s", 60_000), "alive");
      assert.equal(await lenient.touch("gone", 60_000), "ended", "an end this replica made is still known");
      assert.equal(await refusing.alive(["s"]), null, "a sweep learns nothing, and ends nothing");
    } finally {
      await server.restart();
    }
  });
});
