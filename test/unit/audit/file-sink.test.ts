import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { fsync as fsFsync, readFileSync, write as fsWrite } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { JsonlFileSink, type AuditEvent } from "../../../gateway/audit/index.js";
import { sampleEvent, sequentialIds } from "./helpers.js";

async function readLines(path: string): Promise<AuditEvent[]> {
  const text = await readFile(path, "utf8");
  assert.ok(text.endsWith("\n"), "file ends with a complete line");
  return text.trimEnd().split("\n").map((l) => JSON.parse(l) as AuditEvent);
}

describe("JsonlFileSink", () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "portcullis-audit-"));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("creates the parent directory and writes one parseable line per event", async () => {
    const path = join(dir, "nested/deeper/audit.jsonl");
    const sink = new JsonlFileSink(path);
    const ids = sequentialIds();
    const events = [sampleEvent(ids), sampleEvent(ids), sampleEvent(ids)];
    for (const e of events) await sink.write(e);
    await sink.close();
    assert.deepEqual(await readLines(path), events);
  });

  it("resolves a write only after its bytes are in the file", async () => {
    const path = join(dir, "audit.jsonl");
    const sink = new JsonlFileSink(path, { fsync: true });
    const ev = sampleEvent();
    await sink.write(ev);
    // Read synchronously before anything else can run: the line must already be there.
    assert.equal(readFileSync(path, "utf8"), `${JSON.stringify(ev)}\n`);
    await sink.close();
  });

  it("lands every one of many concurrent writes exactly once", async () => {
    const path = join(dir, "audit.jsonl");
    const sink = new JsonlFileSink(path, { fsync: true });
    const ids = sequentialIds("c");
    const events = Array.from({ length: 2000 }, () => sampleEvent(ids));
    await Promise.all(events.map((e) => sink.write(e)));
    // A second wave while nothing is in flight, to cross the batch boundary.
    await Promise.all(events.slice(0, 10).map((e) => sink.write({ ...e, decision_id: `${e.decision_id}-b` })));
    await sink.close();
    const got = (await readLines(path)).map((e) => e.decision_id);
    assert.equal(got.length, 2010);
    assert.equal(new Set(got).size, 2010);
    // Order of acceptance is kept: the file is an append log.
    assert.deepEqual(got.slice(0, 2000), events.map((e) => e.decision_id));
  });

  it("coalesces the events of one tick into one write and one fsync", async () => {
    const path = join(dir, "audit.jsonl");
    let writes = 0;
    let syncs = 0;
    // Counted through the sink's io seam, on top of the real file operations.
    const sink = new JsonlFileSink(path, {
      fsync: true,
      io: {
        write: (fd, buf, off, len) => {
          writes++;
          return new Promise((resolve, reject) => fsWrite(fd, buf, off, len, null, (err, n) => (err ? reject(err) : resolve(n))));
        },
        fsync: (fd) => {
          syncs++;
          return new Promise((resolve, reject) => fsFsync(fd, (err) => (err ? reject(err) : resolve())));
        },
      },
    });
    const ids = sequentialIds();
    await Promise.all(Array.from({ length: 100 }, () => sink.write(sampleEvent(ids))));
    assert.equal(writes, 1);
    assert.equal(syncs, 1);
    await sink.close();
    assert.equal((await readLines(path)).length, 100);
  });

  it("appends to an existing file", async () => {
    const path = join(dir, "audit.jsonl");
    await writeFile(path, '{"existing":true}\n');
    const sink = new JsonlFileSink(path);
    await sink.write(sampleEvent());
    await sink.close();
    const lines = (await readFile(path, "utf8")).trimEnd().split("\n");
    assert.equal(lines.length, 2);
    assert.equal(lines[0], '{"existing":true}');
  });

  it("rejects a write to an unwritable path instead of dropping it", async () => {
    const blocker = join(dir, "not-a-dir");
    await writeFile(blocker, "x");
    const sink = new JsonlFileSink(join(blocker, "audit.jsonl"));
    const results = await Promise.allSettled([sink.write(sampleEvent()), sink.write(sampleEvent())]);
    for (const r of results) {
      assert.equal(r.status, "rejected");
      assert.match(String((r as PromiseRejectedResult).reason), /ENOTDIR|EEXIST/);
    }
    await sink.close();
  });

  it("rejects writes after close", async () => {
    const sink = new JsonlFileSink(join(dir, "audit.jsonl"));
    await sink.close();
    await assert.rejects(sink.write(sampleEvent()), /closed/);
  });

  it("flushes pending writes on close", async () => {
    const path = join(dir, "audit.jsonl");
    const sink = new JsonlFileSink(path);
    const pending = [sink.write(sampleEvent()), sink.write(sampleEvent())];
    await sink.close();
    await Promise.all(pending);
    assert.equal((await readLines(path)).length, 2);
  });
});
