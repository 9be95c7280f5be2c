import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { approvalBinding, createIntegrityStores, INTEGRITY_DEFAULTS, pinOf, toolDefinitionOf, type IntegrityStores } from "../../gateway/integrity/index.js";
import { SharedRedis } from "../../gateway/shared/redis.js";
import { runPortcullis, showRun } from "../support/cli.js";
import { integrityStoreContract, readFile, readFileRugPulled, rejectsWith, TestClock } from "../support/integrity-contract.js";
import { redisServerAvailable, startRedis, type TestRedis } from "../support/redis.js";

/** Pins and approvals every replica shares, against a real redis-server (started by the test). */
describe("Redis integrity store: shared by every replica", function () {
  this.timeout(60_000);
  let server: TestRedis;
  const opened: SharedRedis[] = [];
  let prefixes = 0;
  const dir = mkdtempSync(join(tmpdir(), "pc-integrity-redis-"));

  before(async function () {
    if (!redisServerAvailable()) this.skip();
    server = await startRedis();
  });
  after(async () => {
    await Promise.all(opened.map((r) => r.close()));
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  /** One replica: its own connection, the shared prefix. */
  async function replica(prefix: string, clock: { now(): number }): Promise<IntegrityStores> {
    const redis = await SharedRedis.start({ url: server.url, timeoutMs: 1000, log: () => undefined, clock: { now: () => Date.now() }, user: "test", downMode: "refuse", connectWaitMs: 2000 });
    opened.push(redis);
    return createIntegrityStores({ ...INTEGRITY_DEFAULTS, pinning: { ...INTEGRITY_DEFAULTS.pinning }, store: "redis", redisKeyPrefix: prefix }, { clock, redis });
  }

  describe("the store contract", () => {
    integrityStoreContract(async () => {
      const prefix = `t${++prefixes}:`;
      const clock = new TestClock();
      return { a: await replica(prefix, clock), b: await replica(prefix, clock), clock };
    });
  });

  function configFile(prefix: string): string {
    const file = join(dir, `${prefix.replace(/\W/g, "")}.yaml`);
    writeFileSync(file, ["auth: { issuer: '${NOT_NEEDED_BY_THE_CLI}' }", `rateLimits: { redis: { url: "${server.url}" } }`, `integrity: { store: redis, redisKeyPrefix: "${prefix}" }`, ""].join("\n"));
    return file;
  }

  it("portcullis tools approve and approvals approve in another process change what the replicas see", async () => {
    const prefix = "cli1:";
    const clock = { now: () => Date.now() };
    const gateway = await replica(prefix, clock);
    const config = configFile(prefix);
    await gateway.pins.pinFirstSeen(pinOf("files", readFile, "first_seen", clock.now()));
    const drift = await gateway.pins.noteDrift("files", "read_file", toolDefinitionOf(readFileRugPulled));

    const listed = await runPortcullis(["tools", "list", "--config", config]);
    assert.equal(listed.code, 0, showRun(listed));
    assert.match(listed.stdout, /files +read_file +drifted .*first_seen/);
    assert.match(listed.stdout, /drifted since .* to sha256:[0-9a-f]{64}: description changed/);

    const approved = await runPortcullis(["tools", "approve", "--config", config, "--server", "files", "--tool", "read_file", "--as", "ops-bob", "--digest", drift!.digest.slice(0, 20)]);
    assert.equal(approved.code, 0, showRun(approved));
    const pin = await gateway.pins.get("files", "read_file");
    assert.equal(pin?.digest, drift!.digest);
    assert.equal(pin?.pinnedBy, "operator:ops-bob");

    const request = await gateway.approvals.request(approvalBinding({ iss: "https://idp/", sub: "alice" }, "files", "delete_file", { path: "/d" }), "deletes are reviewed", 600);
    const self = await runPortcullis(["approvals", "approve", request.id, "--config", config, "--as", "Alice"]);
    assert.equal(self.code, 1, showRun(self));
    assert.match(self.stderr, /an agent can never approve its own request/);
    const ok = await runPortcullis(["approvals", "approve", request.id, "--config", config, "--as", "bob"]);
    assert.equal(ok.code, 0, showRun(ok));
    assert.equal((await gateway.approvals.consume(approvalBinding({ iss: "https://idp/", sub: "alice" }, "files", "delete_file", { path: "/d" })))?.id, request.id);
  });

  it("while Redis is down the stores fail closed (store_unavailable) and the CLI says which Redis (exit 1)", async () => {
    const prefix = "down:";
    const stores = await replica(prefix, { now: () => Date.now() });
    const config = configFile(prefix);
    await server.stop();
    try {
      await rejectsWith(stores.pins.get("files", "read_file"), "store_unavailable", /Redis/);
      await rejectsWith(stores.approvals.consume(approvalBinding({ iss: "i", sub: "alice" }, "files", "t", {})), "store_unavailable");
      const r = await runPortcullis(["tools", "list", "--config", config]);
      assert.equal(r.code, 1, showRun(r));
      assert.match(r.stderr, new RegExp(`cannot reach Redis at redis://127\\.0\\.0\\.1:${server.port}.*rateLimits\\.redis\\.url in ${config.replace(/[/.]/g, "\\$&")}`));
    } finally {
      await server.restart();
    }
  });
});
