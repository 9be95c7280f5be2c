import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { appendFileSync, mkdtempSync, renameSync, rmSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { followJsonlFile } from "../../../gateway/audit/readers.js";
import type { StoredRecord } from "../../../gateway/audit/verify.js";
import { repoRoot } from "../../support/bundles.js";
import { sampleEvent, sequentialIds } from "./helpers.js";

/** Waits until `cond` holds, polling; fails after `ms`. */
async function until(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) assert.fail("timed out waiting");
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe("followJsonlFile (audit tail --file --follow)", () => {
  const dir = mkdtempSync(join(tmpdir(), "pc-follow-"));
  after(() => rmSync(dir, { recursive: true, force: true }));
  let n = 0;

  function follow(fromBeginning: boolean, file: string): { texts: string[]; notes: string[]; stop: () => Promise<void> } {
    const texts: string[] = [];
    const notes: string[] = [];
    const ctl = new AbortController();
    const done = followJsonlFile(file, fromBeginning, ctl.signal, (r: StoredRecord) => texts.push(r.text), { pollMs: 10, onRestart: (why) => notes.push(why) });
    return { texts, notes, stop: async () => (ctl.abort(), await done) };
  }

  it("prints only lines appended after it starts, each once its newline is written", async () => {
    const file = join(dir, `f${++n}.jsonl`);
    writeFileSync(file, '{"old":1}\n');
    const f = follow(false, file);
    await new Promise((r) => setTimeout(r, 50));
    appendFileSync(file, '{"new":1}\n{"half":');
    await until(() => f.texts.length === 1);
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(f.texts, ['{"new":1}'], "a half-written line is not delivered");
    appendFileSync(file, "2}\n");
    await until(() => f.texts.length === 2);
    await f.stop();
    assert.deepEqual(f.texts, ['{"new":1}', '{"half":2}']);
  });

  it("from the beginning: the lines already there, then the new ones", async () => {
    const file = join(dir, `f${++n}.jsonl`);
    writeFileSync(file, '{"a":1}\n\n{"b":2}\n');
    const f = follow(true, file);
    await until(() => f.texts.length === 2);
    appendFileSync(file, '{"c":3}\n');
    await until(() => f.texts.length === 3);
    await f.stop();
    assert.deepEqual(f.texts, ['{"a":1}', '{"b":2}', '{"c":3}']);
  });

  it("starts over on a rotated (replaced) or truncated file, and waits for a file that is not there yet", async () => {
    const file = join(dir, `f${++n}.jsonl`);
    const f = follow(false, file);
    await new Promise((r) => setTimeout(r, 30));
    writeFileSync(file, '{"created":1}\n');
    await until(() => f.texts.length === 1);
    renameSync(file, `${file}.1`);
    writeFileSync(file, '{"rotated":1}\n');
    await until(() => f.texts.length === 2);
    truncateSync(file, 0);
    await until(() => f.notes.length === 2);
    appendFileSync(file, '{"after-truncate":1}\n');
    await until(() => f.texts.length === 3);
    await f.stop();
    assert.deepEqual(f.texts, ['{"created":1}', '{"rotated":1}', '{"after-truncate":1}']);
    assert.match(f.notes[0]!, /was replaced/);
    assert.match(f.notes[1]!, /was truncated/);
  });

  it("the CLI follows a file with filters until SIGTERM, and exits 0", async () => {
    const file = join(dir, `f${++n}.jsonl`);
    const ids = sequentialIds("ev");
    writeFileSync(file, `${JSON.stringify(sampleEvent(ids, "carol"))}\n`);
    const child = spawn(process.execPath, [join(repoRoot(), "dist/gateway/cli/main.js"), "audit", "tail", "--file", file, "--follow", "--from-beginning", "--agent", "bob", "--format", "text"], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (c: Buffer) => (out += c.toString()));
    const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
    try {
      // --from-beginning: whether the append lands before or after the follower starts, bob's event is printed once.
      appendFileSync(file, [sampleEvent(ids, "alice"), sampleEvent(ids, "bob")].map((e) => `${JSON.stringify(e)}\n`).join(""));
      await until(() => out.includes("\n"), 10_000);
      await new Promise((r) => setTimeout(r, 100)); // nothing else arrives
    } finally {
      child.kill("SIGTERM");
    }
    assert.equal(await exited, 0);
    assert.match(out, /^\S+ allowed +bob +files\/tools\/call read_file ev-3\n$/);
  }).timeout(15_000);
});
