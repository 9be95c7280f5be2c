import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { createIntegrityStores, INTEGRITY_DEFAULTS, pinOf, type IntegrityFileOptions, type IntegrityStores } from "../../../gateway/integrity/index.js";
import { integrityStoreContract, readFile, rejectsWith, TestClock } from "../../support/integrity-contract.js";

const dirs: string[] = [];
function tempFile(): string {
  const dir = mkdtempSync(join(tmpdir(), "pc-integrity-"));
  dirs.push(dir);
  return join(dir, "state", "integrity.json");
}

function localStores(file: string, clock: TestClock, opts: IntegrityFileOptions = { refreshMs: 0 }): IntegrityStores {
  return createIntegrityStores({ ...INTEGRITY_DEFAULTS, pinning: { ...INTEGRITY_DEFAULTS.pinning }, store: "local", file }, { clock, file: opts });
}

after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe("local integrity store (one JSON file): the store contract", () => {
  // Two store instances over one file stand for the gateway and the CLI (or two processes).
  integrityStoreContract(async () => {
    const file = tempFile();
    const clock = new TestClock();
    return { a: localStores(file, clock), b: localStores(file, clock), clock };
  });
});

describe("local integrity store: the file itself", () => {
  it("another process's change is seen at the next refresh, not before (one stat per interval)", async () => {
    const file = tempFile();
    const clock = new TestClock();
    let mono = 0;
    const writer = localStores(file, clock);
    const reader = localStores(file, clock, { refreshMs: 1000, monotonicMs: () => mono });
    assert.equal(await reader.pins.get("files", "read_file"), null);
    await writer.pins.pinFirstSeen(pinOf("files", readFile, "first_seen", clock.now()));
    mono += 999;
    assert.equal(await reader.pins.get("files", "read_file"), null, "within the interval the reader answers from memory");
    mono += 1;
    assert.equal((await reader.pins.get("files", "read_file"))?.tool, "read_file");
  });

  it("writes replace the file whole: valid JSON of version 1, no temporary or lock file left", async () => {
    const file = tempFile();
    const clock = new TestClock();
    const s = localStores(file, clock);
    await s.pins.pinFirstSeen(pinOf("files", readFile, "first_seen", clock.now()));
    await s.approvals.request({ agent: { iss: "i", sub: "alice" }, server: "files", tool: "t", argumentsDigest: `sha256:${"0".repeat(64)}` }, "r", 60);
    const doc = JSON.parse(readFileSync(file, "utf8")) as { version: number; pins: unknown[]; approvals: unknown[]; transitions: unknown[] };
    assert.equal(doc.version, 1);
    assert.equal(doc.pins.length, 1);
    assert.equal(doc.approvals.length, 1);
    assert.equal(doc.transitions.length, 1);
    assert.deepEqual(readdirSync(join(file, "..")), ["integrity.json"]);
  });

  it("a file that is not ours is store_corrupt, naming the file and the record", async () => {
    const clock = new TestClock();
    const file = tempFile();
    const s = localStores(file, clock);
    await s.pins.pinFirstSeen(pinOf("files", readFile, "first_seen", clock.now()));
    writeFileSync(file, "{not json");
    await rejectsWith(localStores(file, clock).pins.get("files", "read_file"), "store_corrupt", new RegExp(`${file.replace(/[/.]/g, "\\$&")}: not JSON`));
    writeFileSync(file, JSON.stringify({ version: 2, pins: [], drifts: [], approvals: [], transitions: [] }));
    await rejectsWith(localStores(file, clock).pins.list(), "store_corrupt", /version must be 1/);
    writeFileSync(file, JSON.stringify({ version: 1, pins: [{ server: "files", tool: "x", digest: "nope" }], drifts: [], approvals: [], transitions: [] }));
    await rejectsWith(localStores(file, clock).pins.list(), "store_corrupt", /pins\[0\]: not a tool-integrity record at digest/);
  });

  it("a lock left by a process that is gone is taken over", async () => {
    const file = tempFile();
    const clock = new TestClock();
    const s = localStores(file, clock);
    await s.pins.pinFirstSeen(pinOf("files", readFile, "first_seen", clock.now()));
    const gone = spawnSync(process.execPath, ["-e", ""]).pid;
    writeFileSync(`${file}.lock`, `${gone}\n`);
    assert.equal(await s.pins.revoke("files", "read_file"), true);
    assert.deepEqual(readdirSync(join(file, "..")), ["integrity.json"], "the stale lock is gone too");
  });

  it("a lock held by a live process makes a change wait, then fail as store_unavailable naming the lock", async () => {
    const file = tempFile();
    const clock = new TestClock();
    const s = localStores(file, clock, { refreshMs: 0, lockTimeoutMs: 60 });
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(`${file}.lock`, `${process.pid}\n`);
    await rejectsWith(s.pins.pinFirstSeen(pinOf("files", readFile, "first_seen", clock.now())), "store_unavailable", /locked by another process.*integrity\.json\.lock, pid \d+/);
  });

  it("a missing file is an empty store, created by the first change", async () => {
    const file = tempFile();
    const clock = new TestClock();
    const s = localStores(file, clock);
    assert.deepEqual(await s.pins.list(), []);
    assert.deepEqual(await s.approvals.list(), []);
    assert.deepEqual(await s.approvals.expireDue(), []);
    assert.deepEqual(await s.approvals.claimTransitions(10), []);
    assert.throws(() => readFileSync(file), /ENOENT/, "reads alone write nothing");
  });
});
