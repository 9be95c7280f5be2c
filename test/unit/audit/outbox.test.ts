import assert from "node:assert/strict";
import { appendFileSync, cpSync, mkdtempSync, readdirSync, readFileSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AuditBackpressureError, Outbox, type AuditLogger, type OutboxOptions } from "../../../gateway/audit/index.js";
import type { OutboundMessage } from "../../../gateway/audit/backlog.js";
import { encodeRecord } from "../../../gateway/audit/outbox-format.js";

const msg = (i: number, pad = 200): OutboundMessage => ({
  decisionId: `d-${i}`,
  key: i % 2 ? "alice" : "bob",
  value: JSON.stringify({ decision_id: `d-${i}`, note: "x".repeat(pad), tab: "a\tb", nl: "a\nb" }),
});
const ids = (ms: readonly OutboundMessage[]): string[] => ms.map((m) => m.decisionId);
const range = (from: number, to: number): string[] => Array.from({ length: to - from }, (_, k) => `d-${from + k}`);
const segmentsIn = (dir: string): string[] => readdirSync(dir).filter((f) => f.endsWith(".seg")).sort();

function collect(): { logger: AuditLogger; lines: Array<{ level: string; msg: string }> } {
  const lines: Array<{ level: string; msg: string }> = [];
  return { lines, logger: (level, m) => lines.push({ level, msg: m }) };
}

async function openBox(extra: Partial<OutboxOptions> = {}): Promise<{ box: Outbox; dir: string; log: ReturnType<typeof collect> }> {
  const dir = extra.dir ?? mkdtempSync(join(tmpdir(), "pc-outbox-"));
  const log = collect();
  const box = await Outbox.open({ logger: log.logger, ...extra, dir });
  return { box, dir, log };
}

/** Appends one by one, all in the same tick (one group commit), and waits for all of them. */
const appendAll = (box: Outbox, from: number, to: number): Promise<void[]> =>
  Promise.all(Array.from({ length: to - from }, (_, k) => box.append([msg(from + k)])));

describe("audit outbox (durable backlog for the Kafka sender)", () => {
  describe("append, peek and ack", () => {
    it("serves records in append order across segments, repeats a peek until acked, deletes acked segments", async () => {
      const { box, dir } = await openBox({ segmentBytes: 4096 });
      await appendAll(box, 0, 60);
      assert.equal(box.size, 60);
      assert.ok(segmentsIn(dir).length >= 4, `expected several segments, got ${segmentsIn(dir).length}`);
      const first = await box.peek(25, 1e9);
      assert.deepEqual(ids(first), range(0, 25));
      assert.deepEqual(ids(await box.peek(25, 1e9)), range(0, 25), "a second peek without ack returns the same batch");
      await box.ack(25);
      assert.equal(box.size, 35);
      assert.deepEqual(ids(await box.peek(100, 1e9)), range(25, 60));
      await box.ack(35);
      assert.equal(box.size, 0);
      assert.equal(segmentsIn(dir).length, 1, "only the segment being written remains");
      assert.deepEqual(await box.peek(10, 1e9), []);
      await box.close();
    });

    it("bounds a batch by bytes but always returns at least one (oversized) record", async () => {
      const { box } = await openBox();
      await box.append([msg(0, 5000), msg(1, 10)]);
      assert.deepEqual(ids(await box.peek(10, 100)), ["d-0"]);
      await box.ack(1);
      assert.deepEqual(ids(await box.peek(10, 1000)), ["d-1"]);
      await box.close();
    });

    it("reads from the segment files once the in-memory window has spilled", async () => {
      const { box } = await openBox({ segmentBytes: 4096, memoryBytes: 1000 });
      await appendAll(box, 0, 40);
      const table = [
        { note: "from disk, inside the first segment", count: 3, want: range(0, 3) },
        { note: "from disk, across segment boundaries", count: 30, want: range(3, 33) },
        { note: "the tail, back in memory", count: 30, want: range(33, 40) },
      ];
      for (const c of table) {
        assert.deepEqual(ids(await box.peek(c.count, 1e9)), c.want, c.note);
        await box.ack(c.count);
      }
      await box.close();
    });
  });

  describe("group commit", () => {
    it("shares one fsync among the appends of one tick, and fsyncs each awaited append alone", async () => {
      const { box } = await openBox();
      await appendAll(box, 0, 200);
      const grouped = box.stats();
      assert.equal(grouped.appended, 200);
      assert.ok(grouped.fsyncs <= 2, `200 same-tick appends cost ${grouped.fsyncs} fsyncs`);
      for (let i = 200; i < 205; i++) await box.append([msg(i)]);
      assert.equal(box.stats().fsyncs - grouped.fsyncs, 5, "sequential appends cannot share");
      await box.close();
    });

    it("resolves an append only when its record is on disk", async () => {
      const { box, dir } = await openBox();
      const p = box.append([msg(7)]);
      assert.equal(box.size, 0, "not counted as sendable before the commit");
      await p;
      const seg = join(dir, segmentsIn(dir)[0] as string);
      assert.match(readFileSync(seg, "utf8"), /"d-7"/);
      assert.equal(box.size, 1);
      await box.close();
    });
  });

  describe("recovery", () => {
    const torn = [
      { note: "a torn last line (no newline)", tail: (b: Buffer) => b.subarray(0, 40) },
      { note: "a zero-filled tail", tail: () => Buffer.alloc(64) },
      { note: "a line whose checksum does not match", tail: (b: Buffer) => Buffer.from(b.toString().replace("d-99", "d-98")) },
    ];
    for (const c of torn) {
      it(`keeps every whole record and cuts ${c.note}`, async () => {
        const { box, dir } = await openBox();
        await appendAll(box, 0, 10);
        await box.close();
        const seg = join(dir, segmentsIn(dir)[0] as string);
        const good = statSync(seg).size;
        appendFileSync(seg, c.tail(encodeRecord({ seq: 99, time: 1, msg: msg(99) })));
        const again = await openBox({ dir });
        assert.equal(again.box.size, 10);
        assert.deepEqual(ids(await again.box.peek(100, 1e9)), range(0, 10));
        assert.equal(statSync(seg).size, good, "the bad tail is truncated");
        assert.ok(again.log.lines.some((l) => l.level === "warn" && /torn tail/.test(l.msg)), "the cut is logged");
        await again.box.append([msg(10)]);
        await again.box.ack(10);
        assert.deepEqual(ids(await again.box.peek(100, 1e9)), ["d-10"], "appends after recovery follow");
        await again.box.close();
      });
    }

    it("persists the ack position: a restart resends only what Kafka did not acknowledge", async () => {
      const { box, dir } = await openBox({ segmentBytes: 4096 });
      await appendAll(box, 0, 30);
      await box.peek(12, 1e9);
      await box.ack(12);
      await box.close();
      const again = await openBox({ dir, segmentBytes: 4096 });
      assert.equal(again.box.size, 18);
      assert.deepEqual(ids(await again.box.peek(100, 1e9)), range(12, 30));
      await again.box.ack(18);
      await again.box.close();
      const third = await openBox({ dir });
      assert.equal(third.box.size, 0, "nothing is resent once all was acknowledged");
      assert.equal(segmentsIn(dir).length, 1);
      await third.box.close();
    });

    it("a crash image (the directory copied while open, no close) resends only the unacknowledged tail", async () => {
      const { box, dir } = await openBox({ segmentBytes: 4096 });
      await appendAll(box, 0, 30);
      await box.peek(20, 1e9);
      await box.ack(20);
      await new Promise((r) => setTimeout(r, 150)); // past the cursor's write interval
      const image = `${dir}-image`;
      cpSync(dir, image, { recursive: true });
      const crashed = await openBox({ dir: image, segmentBytes: 4096 });
      assert.equal(crashed.box.size, 10);
      assert.deepEqual(ids(await crashed.box.peek(100, 1e9)), range(20, 30));
      await crashed.box.close();
      await box.close();
    });

    it("refuses a second outbox on a directory this process already holds", async () => {
      const { box, dir } = await openBox();
      await assert.rejects(Outbox.open({ dir }), /already open in this process/);
      await box.close();
    });
  });

  describe("back-pressure (never a silent drop)", () => {
    it("onFull reject: over maxBytes, admit refuses with audit_backpressure and counts each refusal", async () => {
      const { box, log } = await openBox({ maxBytes: 4096 });
      await appendAll(box, 0, 20);
      for (let i = 0; i < 3; i++) await assert.rejects(box.admit(), (e: unknown) => e instanceof AuditBackpressureError && e.code === "audit_backpressure");
      assert.equal(box.stats().refused, 3);
      assert.equal(box.stats().full, true);
      assert.equal(log.lines.filter((l) => /refusing calls/.test(l.msg)).length, 1, "logged once, not per refusal");
      await box.peek(20, 1e9);
      await box.ack(20);
      await box.admit();
      assert.equal(box.stats().full, false);
      await box.close();
    });

    it("onFull reject: an oldest event older than maxAgeSeconds also refuses", async () => {
      let now = 1_000_000;
      const { box } = await openBox({ maxAgeSeconds: 60, now: () => now });
      await box.append([msg(0)]);
      await box.admit();
      now += 61_000;
      await assert.rejects(box.admit(), /oldest event waiting 61 s/);
      await box.peek(1, 1e9);
      await box.ack(1);
      await box.admit();
      await box.close();
    });

    it("onFull block: admit waits until Kafka's acknowledgement makes room", async () => {
      const { box } = await openBox({ maxBytes: 4096, onFull: "block" });
      await appendAll(box, 0, 20);
      let admitted = false;
      const waiting = box.admit().then(() => (admitted = true));
      await new Promise((r) => setTimeout(r, 30));
      assert.equal(admitted, false);
      assert.equal(box.stats().blocked, 1);
      await box.peek(20, 1e9);
      await box.ack(20);
      await waiting;
      assert.equal(box.stats().refused, 0);
      await box.close();
    });
  });
});
