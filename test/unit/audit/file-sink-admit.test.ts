/**
 * JsonlFileSink: U+2028/U+2029 escaped, admit() before a request is forwarded (failed appends,
 * free space), a torn tail repaired on open, a failed append cut back.
 */
import assert from "node:assert/strict";
import { writeSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { JsonlFileSink, type AuditEvent } from "../../../gateway/audit/index.js";
import { AuditUnavailableError, type FileSinkIo } from "../../../gateway/audit/file-sink.js";
import { ManualClock, sampleEvent, sequentialIds } from "./helpers.js";

type LogEntry = { level: string; msg: string; fields: Record<string, unknown> | undefined };
const collect = (into: LogEntry[]) => (level: string, msg: string, fields?: Record<string, unknown>) => void into.push({ level, msg, fields });

function enospc(): NodeJS.ErrnoException {
  return Object.assign(new Error("ENOSPC: no space left on device, write"), { code: "ENOSPC" });
}

async function rejectsUnavailable(p: Promise<unknown>, message: RegExp): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof AuditUnavailableError);
    assert.equal(err.code, "audit_unavailable");
    assert.match(err.message, message);
    return true;
  });
}

describe("JsonlFileSink: JSONL line separators", () => {
  let dir: string;
  beforeEach(async () => (dir = await mkdtemp(join(tmpdir(), "portcullis-jsonl-"))));
  afterEach(() => rm(dir, { recursive: true, force: true }));

  for (const fsync of [false, true]) {
    it(`writes U+2028 and U+2029 escaped, so one event stays one line (fsync ${fsync})`, async () => {
      const path = join(dir, "audit.jsonl");
      const sink = new JsonlFileSink(path, { fsync, minFreeBytes: 0 });
      const ev: AuditEvent = { ...sampleEvent(), mcp: { ...sampleEvent().mcp, tool: "a\u2028b\u2029c" } };
      await sink.write(ev);
      await sink.close();
      const text = await readFile(path, "utf8");
      assert.equal(/[\u2028\u2029]/.test(text), false, "no raw separator in the file");
      assert.ok(text.includes("a\\u2028b\\u2029c"));
      assert.equal(text.split(/\r?\n|\u2028|\u2029/).filter((l) => l !== "").length, 1);
      assert.equal((JSON.parse(text) as AuditEvent).mcp.tool, "a\u2028b\u2029c");
    });
  }
});

describe("JsonlFileSink: torn lines", () => {
  let dir: string;
  beforeEach(async () => (dir = await mkdtemp(join(tmpdir(), "portcullis-torn-"))));
  afterEach(() => rm(dir, { recursive: true, force: true }));

  const torn = [
    { note: "a partial line after complete ones", before: '{"a":1}\n{"b":', kept: '{"a":1}\n' },
    { note: "a file that is one partial line", before: '{"b":', kept: "" },
    { note: "a torn line longer than the 64 KiB read-back chunk", before: `{"a":1}\n${"x".repeat(200_000)}`, kept: '{"a":1}\n' },
    { note: "a complete file (nothing cut)", before: '{"a":1}\n', kept: '{"a":1}\n' },
  ];
  for (const c of torn) {
    it(`cuts ${c.note} on open, so the file is valid JSONL again`, async () => {
      const path = join(dir, "audit.jsonl");
      await writeFile(path, c.before);
      const logs: LogEntry[] = [];
      const sink = new JsonlFileSink(path, { logger: collect(logs), minFreeBytes: 0 });
      const ev = sampleEvent();
      await sink.write(ev);
      await sink.close();
      assert.equal(await readFile(path, "utf8"), `${c.kept}${JSON.stringify(ev)}\n`);
      const warned = logs.filter((l) => l.level === "warn");
      if (c.kept === c.before) assert.deepEqual(warned, []);
      else assert.deepEqual(warned, [{ level: "warn", msg: "audit file ended in a torn line: cut it", fields: { file: path, bytes: c.before.length - c.kept.length } }]);
    });
  }

  for (const fsync of [false, true]) {
    it(`cuts a failed partial append back to the size before it, and the next append lands whole (fsync ${fsync})`, async () => {
      const path = join(dir, "audit.jsonl");
      const first = sampleEvent(sequentialIds("a"));
      let failNext = false;
      // A full disk: half of the data is written, then ENOSPC.
      const io: Partial<FileSinkIo> = {
        writeSync: (fd, buf, off, len) => {
          if (!failNext || len === 0) return writeSync(fd, buf, off, len);
          if (len > 1) return writeSync(fd, buf, off, Math.floor(len / 2));
          throw enospc();
        },
        write: async (fd, buf, off, len) => {
          if (!failNext) return writeSync(fd, buf, off, len);
          const n = writeSync(fd, buf, off, Math.floor(len / 2));
          failNext = false; // the next call (the rest) fails
          throw Object.assign(enospc(), { written: n });
        },
      };
      const sink = new JsonlFileSink(path, { fsync, io, minFreeBytes: 0, logger: () => undefined });
      await sink.write(first);
      const before = await readFile(path, "utf8");
      failNext = true;
      await assert.rejects(sink.write(sampleEvent(sequentialIds("b"))), /ENOSPC/);
      assert.equal(await readFile(path, "utf8"), before, "no torn line left behind");
      failNext = false;
      const third = sampleEvent(sequentialIds("c"));
      await sink.write(third);
      await sink.close();
      assert.equal(await readFile(path, "utf8"), `${JSON.stringify(first)}\n${JSON.stringify(third)}\n`);
    });
  }
});

describe("JsonlFileSink.admit", () => {
  let dir: string;
  beforeEach(async () => (dir = await mkdtemp(join(tmpdir(), "portcullis-admit-"))));
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it("admits with real free space, and opens the file on the way", async () => {
    const path = join(dir, "audit.jsonl");
    const sink = new JsonlFileSink(path, { minFreeBytes: 1 });
    await sink.admit();
    assert.equal(await readFile(path, "utf8"), "");
    await sink.close();
  });

  it("refuses when the file cannot be opened", async () => {
    await writeFile(join(dir, "not-a-dir"), "x");
    const sink = new JsonlFileSink(join(dir, "not-a-dir", "audit.jsonl"), { minFreeBytes: 0 });
    await rejectsUnavailable(sink.admit(), /cannot append \((ENOTDIR|EEXIST)\)/);
    await sink.close();
  });

  it("refuses after a failed append while a probe fails too, and admits again once the file is writable", async () => {
    let broken = false;
    const io: Partial<FileSinkIo> = {
      writeSync: (fd, buf, off, len) => {
        if (broken) throw Object.assign(new Error("EIO: i/o error, write"), { code: "EIO" });
        return writeSync(fd, buf, off, len);
      },
    };
    const logs: LogEntry[] = [];
    const sink = new JsonlFileSink(join(dir, "audit.jsonl"), { io, minFreeBytes: 0, logger: collect(logs) });
    await sink.admit();
    broken = true;
    await assert.rejects(sink.write(sampleEvent()), /EIO/);
    await rejectsUnavailable(sink.admit(), /cannot append \(EIO\)/);
    await rejectsUnavailable(sink.admit(), /EIO/);
    broken = false;
    await sink.admit();
    await sink.write(sampleEvent());
    await sink.close();
    assert.ok(logs.some((l) => l.msg === "audit file writable again"));
  });

  it("admits after a failed append when the probe succeeds (the append error was transient)", async () => {
    let fail = true;
    const io: Partial<FileSinkIo> = {
      writeSync: (fd, buf, off, len) => {
        if (fail && len > 0) {
          fail = false;
          throw enospc();
        }
        return writeSync(fd, buf, off, len);
      },
    };
    const sink = new JsonlFileSink(join(dir, "audit.jsonl"), { io, minFreeBytes: 0, logger: () => undefined });
    await assert.rejects(sink.write(sampleEvent()), /ENOSPC/);
    await sink.admit();
    await sink.close();
  });

  describe("free space (audit.fileMinFreeBytes)", () => {
    function spaceSink(min: number) {
      const clock = new ManualClock();
      const state = { free: 1024 * 1024 * 1024, calls: 0, error: null as Error | null };
      const logs: LogEntry[] = [];
      const sink = new JsonlFileSink(join(dir, "audit.jsonl"), {
        minFreeBytes: min,
        clock,
        logger: collect(logs),
        io: {
          statfs: async () => {
            state.calls++;
            if (state.error) throw state.error;
            return { bavail: BigInt(state.free / 4096), bsize: 4096n };
          },
        },
      });
      return { sink, clock, state, logs };
    }

    it("refuses below the minimum, says so once, and admits again when space is back", async () => {
      const { sink, clock, state, logs } = spaceSink(64 * 1024 * 1024);
      state.free = 16 * 1024 * 1024;
      await rejectsUnavailable(sink.admit(), /16777216 bytes free, below audit\.fileMinFreeBytes \(67108864\)/);
      await rejectsUnavailable(sink.admit(), /below/);
      assert.equal(logs.filter((l) => l.level === "warn").length, 1);
      // A write still goes through: the reserve is for events of requests already forwarded.
      await sink.write(sampleEvent());
      state.free = 128 * 1024 * 1024;
      clock.advanceMs(10_000);
      await sink.admit();
      assert.ok(logs.some((l) => l.msg === "audit file system has room again"));
      await sink.close();
    });

    it("samples free space at most once a second, refreshing in the background", async () => {
      const { sink, clock, state } = spaceSink(1024);
      await sink.admit();
      await sink.admit();
      clock.advanceMs(999);
      await sink.admit();
      assert.equal(state.calls, 1);
      state.free = 0;
      clock.advanceMs(500);
      await sink.admit(); // served from the sample (1.5 s old), a refresh starts
      assert.equal(state.calls, 2);
      await new Promise((r) => setImmediate(r));
      await rejectsUnavailable(sink.admit(), /0 bytes free/);
      await sink.close();
    });

    it("fails closed when free space cannot be read, naming the way out", async () => {
      const { sink, state } = spaceSink(1024);
      state.error = Object.assign(new Error("ENOSYS"), { code: "ENOSYS" });
      await rejectsUnavailable(sink.admit(), /cannot read the free space \(ENOSYS\); audit\.fileMinFreeBytes: 0 turns the check off/);
      await sink.close();
    });

    it("does not look at free space when the minimum is 0", async () => {
      const { sink, state } = spaceSink(0);
      state.free = 0;
      await sink.admit();
      assert.equal(state.calls, 0);
      await sink.close();
    });
  });
});
