import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import { rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import {
  BundleReloader,
  signBundleFiles,
  writeTarGz,
  type BundleReloaderOptions,
  type LoadedBundle,
  type PolicyEngine,
  type ReloadRefusal,
} from "../../../gateway/policy/index.js";
import { allow } from "../../fakes/policy.js";
import { generateKeyPair, makeTempDir, type KeyPairPem } from "../../support/bundles.js";

/** A signed bundle with a junk module: the engine is a fake built from the manifest's revision. */
function bundleBytes(keys: KeyPairPem, revision: string, opts: { tamper?: boolean } = {}): Buffer {
  const files = new Map<string, Buffer>([
    ["/data.json", Buffer.from(JSON.stringify({ revision }))],
    ["/policy.wasm", Buffer.from("\0asm\u0001\0\0\0")],
    ["/.manifest", Buffer.from(JSON.stringify({ revision, roots: [""], wasm: [{ entrypoint: "mcp/authz/decision", module: "/policy.wasm" }] }))],
  ]);
  const signed = signBundleFiles(files, { privateKeyPem: keys.privateKeyPem, algorithm: "ES256" });
  if (opts.tamper === true) signed.set("/data.json", Buffer.from('{"revision":"evil"}'));
  return writeTarGz(signed);
}

const fakeEngine = async (b: LoadedBundle): Promise<PolicyEngine> => ({
  revision: b.revision,
  decide: () => ({ ...allow(), revision: b.revision }),
  hasResultPolicy: false,
  decideResult: () => assert.fail("no result policy"),
});

async function writeAtomically(path: string, bytes: Buffer): Promise<void> {
  await writeFile(`${path}.tmp`, bytes);
  await rename(`${path}.tmp`, path);
}

describe("BundleReloader", () => {
  let dir: string;
  let keys: KeyPairPem;
  const reloaders: BundleReloader[] = [];
  before(async () => {
    dir = await makeTempDir("pc-reloader-");
    keys = generateKeyPair("ec-p256");
  });
  after(async () => {
    for (const r of reloaders) r.stop();
    await rm(dir, { recursive: true, force: true });
  });

  function reloader(source: string, over: Partial<BundleReloaderOptions> = {}): { r: BundleReloader; refusals: ReloadRefusal[]; swaps: string[]; logs: string[] } {
    const refusals: ReloadRefusal[] = [];
    const swaps: string[] = [];
    const logs: string[] = [];
    const r = new BundleReloader({
      source,
      verification: { verificationKeyPem: keys.publicKeyPem },
      intervalMs: 0,
      maxBackoffMs: 1000,
      watch: false,
      log: (level, msg) => logs.push(`${level}: ${msg}`),
      createEngine: fakeEngine,
      onRefused: (x) => refusals.push(x),
      onSwapped: (from, to) => swaps.push(`${from}->${to}`),
      ...over,
    });
    reloaders.push(r);
    return { r, refusals, swaps, logs };
  }

  it("loads the first bundle on start and reports ok with its revision", async () => {
    const file = join(dir, "start.tar.gz");
    await writeFile(file, bundleBytes(keys, "r1"));
    const { r } = reloader(file);
    await r.start();
    assert.equal(r.engine.revision, "r1");
    assert.deepEqual([r.status().state, r.status().revision, r.status().swaps], ["ok", "r1", 0]);
  });

  it("swaps to a new good bundle, and reports unchanged when nothing changed", async () => {
    const file = join(dir, "swap.tar.gz");
    await writeFile(file, bundleBytes(keys, "r1"));
    const { r, swaps } = reloader(file);
    await r.start();
    assert.equal(await r.reload("poll"), "unchanged");
    await writeAtomically(file, bundleBytes(keys, "r2"));
    assert.equal(await r.reload("poll"), "swapped");
    assert.equal(r.engine.revision, "r2");
    assert.deepEqual(swaps, ["r1->r2"]);
  });

  it("refuses a tampered bundle once, keeps serving the last good one, then takes the next good one", async () => {
    const file = join(dir, "tamper.tar.gz");
    await writeFile(file, bundleBytes(keys, "r1"));
    const { r, refusals, logs } = reloader(file);
    await r.start();
    const before = r.engine;
    const bad = bundleBytes(keys, "r2", { tamper: true });
    await writeAtomically(file, bad);
    assert.equal(await r.reload("watch"), "refused");
    assert.equal(r.engine, before, "the active engine is untouched");
    assert.equal(r.status().state, "error");
    assert.equal(r.status().lastError?.code, "bundle_digest_mismatch");
    assert.deepEqual(refusals.map((x) => [x.code, x.activeRevision, x.trigger]), [["bundle_digest_mismatch", "r1", "watch"]]);
    assert.ok(logs.some((l) => /^error: policy bundle refused; the last good bundle stays active/.test(l)), logs.join("\n"));
    // The same bad bytes seen again by a poll are not reported again.
    await writeAtomically(file, Buffer.from(bad));
    assert.equal(await r.reload("poll"), "refused");
    assert.equal(refusals.length, 1);
    await writeAtomically(file, bundleBytes(keys, "r3"));
    assert.equal(await r.reload("poll"), "swapped");
    assert.deepEqual([r.status().state, r.revision], ["ok", "r3"]);
  });

  it("status().confirmedAtMs moves with each check that loads or finds the bundle unchanged, not with a failed one", async () => {
    const file = join(dir, "confirmed.tar.gz");
    await writeFile(file, bundleBytes(keys, "r1"));
    let now = 1_000;
    const { r } = reloader(file, { now: () => now });
    await r.start();
    assert.equal(r.status().confirmedAtMs, 1_000);
    now = 2_000;
    assert.equal(await r.reload("manual"), "unchanged");
    assert.equal(r.status().confirmedAtMs, 2_000);
    now = 3_000;
    await writeAtomically(file, bundleBytes(keys, "r2", { tamper: true }));
    assert.equal(await r.reload("manual"), "refused");
    now = 4_000;
    await rm(file);
    assert.equal(await r.reload("manual"), "unavailable");
    assert.deepEqual([r.status().confirmedAtMs, r.status().lastCheckMs], [2_000, 4_000], "failed checks leave it");
    now = 5_000;
    await writeFile(file, bundleBytes(keys, "r3"));
    assert.equal(await r.reload("manual"), "swapped");
    assert.equal(r.status().confirmedAtMs, 5_000);
  });

  it("fails start for a missing required bundle, and waits (not_ready) for an optional one", async () => {
    const file = join(dir, "later.tar.gz");
    const required = reloader(file).r;
    await assert.rejects(required.start(), (err: Error & { code?: string }) => err.code === "bundle_unreadable" && err.message.includes("no such file"));
    const optional = reloader(file).r;
    await optional.start({ required: false });
    assert.equal(optional.status().state, "not_ready");
    assert.equal(optional.engineOrUndefined, undefined);
    await writeFile(file, bundleBytes(keys, "late"));
    assert.equal(await optional.reload("poll"), "swapped");
    assert.equal(optional.revision, "late");
  });

  it("notices a replaced file by itself (watch or poll) within a second", async () => {
    const file = join(dir, "watched.tar.gz");
    await writeFile(file, bundleBytes(keys, "w1"));
    const { r } = reloader(file, { intervalMs: 200, watch: true });
    await r.start();
    await writeAtomically(file, bundleBytes(keys, "w2"));
    const deadline = Date.now() + 2000;
    while (r.revision !== "w2" && Date.now() < deadline) await new Promise((res) => setTimeout(res, 20));
    assert.equal(r.revision, "w2");
  });

  it("shares one check between concurrent reloads", async () => {
    const file = join(dir, "coalesce.tar.gz");
    await writeFile(file, bundleBytes(keys, "c1"));
    let builds = 0;
    const { r } = reloader(file, { createEngine: async (b) => (builds++, fakeEngine(b)) });
    await r.start();
    await writeAtomically(file, bundleBytes(keys, "c2"));
    const results = await Promise.all([r.reload("signal"), r.reload("signal"), r.reload("signal")]);
    assert.deepEqual(results, ["swapped", "swapped", "swapped"]);
    assert.equal(builds, 2, "one build at start, one for the swap");
  });

  describe("rollback", () => {
    async function started(name: string, revision: string, over: Partial<BundleReloaderOptions> = {}): Promise<ReturnType<typeof reloader> & { publish: (rev: string) => Promise<void> }> {
      const file = join(dir, `${name}.tar.gz`);
      await writeFile(file, bundleBytes(keys, revision));
      const h = reloader(file, over);
      await h.r.start();
      return { ...h, publish: (rev) => writeAtomically(file, bundleBytes(keys, rev)) };
    }

    it("refuses a validly signed bundle with a lower revision as bundle_rollback, once, and keeps serving", async () => {
      const { r, refusals, logs, publish } = await started("rollback-lower", "41");
      await publish("42");
      assert.equal(await r.reload("poll"), "swapped");
      const before = r.engine;
      await publish("7");
      assert.equal(await r.reload("watch"), "refused");
      assert.equal(r.engine, before, "the active engine is untouched");
      assert.deepEqual([r.status().state, r.status().lastError?.code], ["error", "bundle_rollback"]);
      assert.deepEqual(
        refusals.map((x) => [x.code, x.message, x.activeRevision]),
        [["bundle_rollback", `${join(dir, "rollback-lower.tar.gz")}: /.manifest: revision "7" is lower than the active "42" (integers); set policy.allowRollback: true to accept it`, "42"]],
      );
      assert.ok(logs.some((l) => /^error: policy bundle refused; the last good bundle stays active/.test(l)), logs.join("\n"));
      assert.equal(await r.reload("signal"), "refused", "the same bytes, read again, stay refused");
      assert.equal(refusals.length, 1, "and are reported once");
      await publish("43");
      assert.equal(await r.reload("poll"), "swapped");
      assert.deepEqual([r.status().state, r.revision], ["ok", "43"]);
    });

    it("refuses a revision this process served before, even when revisions have no order", async () => {
      const { r, refusals, publish } = await started("rollback-served", "3f2a9c1");
      await publish("4b0e7d2");
      assert.equal(await r.reload("poll"), "swapped");
      await publish("3f2a9c1");
      assert.equal(await r.reload("signal"), "refused");
      assert.equal(r.revision, "4b0e7d2");
      assert.deepEqual(refusals.map((x) => [x.code, x.trigger]), [["bundle_rollback", "signal"]]);
      assert.match(refusals[0]!.message, /revision "3f2a9c1" was served before the active "4b0e7d2"/);
    });

    it("takes the current revision again (a re-signed bundle swaps as before) and unordered new ones", async () => {
      const { r, refusals, swaps, publish } = await started("rollback-same", "abc");
      await publish("abc"); // ES256 signatures differ each time: new bytes, same revision
      assert.equal(await r.reload("poll"), "swapped");
      await publish("def");
      assert.equal(await r.reload("poll"), "swapped");
      assert.deepEqual(refusals, []);
      assert.deepEqual(swaps, ["abc->abc", "abc->def"]);
    });

    it("checks the signature first: a tampered old bundle keeps its own code", async () => {
      const file = join(dir, "rollback-tampered.tar.gz");
      await writeFile(file, bundleBytes(keys, "5"));
      const { r, refusals } = reloader(file);
      await r.start();
      await writeAtomically(file, bundleBytes(keys, "4", { tamper: true }));
      assert.equal(await r.reload("poll"), "refused");
      assert.deepEqual(refusals.map((x) => x.code), ["bundle_digest_mismatch"]);
    });

    it("accepts lower and already served revisions with allowRollback", async () => {
      const { r, refusals, swaps, publish } = await started("rollback-allowed", "2026-11-24T10:00:00Z", { allowRollback: true });
      await publish("2026-11-25T10:00:00Z");
      assert.equal(await r.reload("poll"), "swapped");
      await publish("2026-11-24T10:00:00Z");
      assert.equal(await r.reload("poll"), "swapped");
      await publish("2026-01-01T00:00:00Z");
      assert.equal(await r.reload("poll"), "swapped");
      assert.deepEqual(refusals, []);
      assert.equal(swaps.length, 3);
      assert.equal(r.revision, "2026-01-01T00:00:00Z");
    });

    it("never calls the first bundle a rollback, nor a shadow's first load after a failed start", async () => {
      const file = join(dir, "rollback-late.tar.gz");
      const { r, refusals } = reloader(file);
      await r.start({ required: false });
      await writeFile(file, bundleBytes(keys, "1"));
      assert.equal(await r.reload("poll"), "swapped");
      await writeAtomically(file, bundleBytes(keys, "2"));
      assert.equal(await r.reload("poll"), "swapped");
      // "" (no revision) has no order; it would be refused only if "before the first bundle" counted as served.
      await writeAtomically(file, bundleBytes(keys, ""));
      assert.equal(await r.reload("poll"), "swapped");
      assert.deepEqual(refusals, []);
    });
  });

  describe("from a URL", () => {
    let server: Server;
    let url: string;
    let body: Buffer;
    let etag = '"v1"';
    let status = 200;
    const seen: Array<string | undefined> = [];
    before(async () => {
      server = createServer((req, res) => {
        seen.push(req.headers["if-none-match"]);
        if (status !== 200) return void res.writeHead(status).end();
        if (req.headers["if-none-match"] === etag) return void res.writeHead(304).end();
        res.writeHead(200, { etag, "content-type": "application/gzip" }).end(body);
      });
      await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
      const a = server.address();
      url = `http://127.0.0.1:${typeof a === "object" && a ? a.port : 0}/bundles/mcp-authz.tar.gz`;
    });
    after(() => new Promise<void>((resolve) => server.close(() => resolve())));

    it("polls with If-None-Match, takes a new ETag's bundle, and backs off while the server fails", async () => {
      body = bundleBytes(keys, "u1");
      const { r } = reloader(url);
      await r.start();
      assert.equal(r.revision, "u1");
      assert.equal(await r.reload("poll"), "unchanged");
      assert.equal(seen.at(-1), '"v1"', "the poll is conditional");
      status = 503;
      assert.equal(await r.reload("poll"), "unavailable");
      assert.equal(await r.reload("poll"), "unavailable");
      assert.deepEqual([r.status().state, r.status().consecutiveFailures, r.revision], ["error", 2, "u1"]);
      status = 200;
      body = bundleBytes(keys, "u2");
      etag = '"v2"';
      assert.equal(await r.reload("poll"), "swapped");
      assert.deepEqual([r.status().state, r.status().consecutiveFailures, r.revision], ["ok", 0, "u2"]);
    });
  });
});
