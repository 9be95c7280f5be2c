import { constants, write } from "node:fs";
import { open, unlink, type FileHandle } from "node:fs/promises";
import { join } from "node:path";
import type { AuditBacklog, BacklogStats, OutboundMessage } from "./backlog.js";
import { stderrAuditLogger, type AuditLogger } from "./logger.js";
import { decodeRecords, encodeRecord, segmentName } from "./outbox-format.js";
import { Backpressure } from "./outbox-pressure.js";
import { CursorWriter, lockDir, recover } from "./outbox-recovery.js";
import { RecentWindow } from "./outbox-window.js";

export { AuditBackpressureError } from "./outbox-pressure.js";

/**
 * The durable outbox (docs/audit.md "Delivery"): a write-ahead log of segment files between
 * "the event is accepted" and "Kafka acknowledged it", behind the `AuditBacklog` seam so the
 * Kafka sender is the same one that drains the in-memory backlog.
 *
 * - `append` resolves after the record is on stable storage (O_DSYNC write). Group commit: every append
 *   made while a commit is in flight (or in the same tick) shares the next write and fsync.
 * - `peek` serves the oldest durable, unacknowledged records: from a bounded in-memory window of
 *   the newest records when the sender keeps up, from the segment files after an outage spilled
 *   past the window or after a restart.
 * - `ack` moves a cursor (persisted to `cursor.json`), deletes segments wholly behind it.
 * - Back-pressure: over `maxBytes` of unacknowledged records, or an oldest record older than
 *   `maxAgeSeconds`, `admit` refuses (onFull reject) or waits (onFull block). Never a drop.
 */
export interface OutboxOptions {
  dir: string;
  /** A segment is closed and a new one started past this size (default 64 MiB). */
  segmentBytes?: number;
  /** Bound on unacknowledged bytes (default 1 GiB). */
  maxBytes?: number;
  /** Bound on the age of the oldest unacknowledged event (default 86 400; 0 = none). */
  maxAgeSeconds?: number;
  onFull?: "reject" | "block";
  /** Newest records kept in memory so the sender does not re-read them (default 16 MiB). */
  memoryBytes?: number;
  now?: () => number;
  logger?: AuditLogger;
}

interface Rec {
  seq: number;
  seg: number;
  /** Offset just past the record in its segment. */
  end: number;
  bytes: number;
  time: number;
  msg: OutboundMessage;
}

/**
 * The appends that share one commit. They succeed or fail together, so they share one promise:
 * made by the group's first append, none per event.
 */
class Group {
  readonly recs: Rec[] = [];
  readonly bufs: Buffer[] = [];
  private done: Promise<void> | null = null;
  private settle: { resolve: () => void; reject: (e: Error) => void } | null = null;

  committed(): Promise<void> {
    this.done ??= new Promise<void>((resolve, reject) => {
      this.settle = { resolve, reject };
    });
    return this.done;
  }

  resolve(): void {
    this.settle?.resolve();
  }

  reject(err: Error): void {
    this.settle?.reject(err);
  }
}

export class Outbox implements AuditBacklog {
  private readonly dir: string;
  private readonly segmentBytes: number;
  private readonly maxBytes: number;
  private readonly maxAgeMs: number;
  private readonly onFull: "reject" | "block";
  private readonly now: () => number;
  private readonly log: AuditLogger;
  private unlock: () => Promise<void> = async () => undefined;

  /** Segment bases in order, and the final size of each closed one. */
  private segments: number[] = [];
  private readonly sealed = new Map<number, number>();
  private writeSeg = 0;
  private writeSize = 0;
  private nextSeq = 0;
  private fh: FileHandle | null = null;
  private fhSeg = -1;
  private reader: { seg: number; fh: FileHandle } | null = null;

  private group = new Group();
  private flushing: Promise<void> | null = null;
  private durable = { seg: 0, offset: 0 };
  private broken: Error | null = null;
  private closed = false;

  private head = { seq: 0, seg: 0, offset: 0 };
  private headTime: number | null = null;
  private lastPeek: Rec[] = [];
  private readonly mem: RecentWindow<Rec>;

  private pending = 0;
  private unacked = 0;
  private unackedBytes = 0;
  private counters = { appended: 0, acked: 0, fsyncs: 0, commits: 0 };
  private nonEmptyWaiters: Array<() => void> = [];
  private readonly pressure: Backpressure;
  private readonly cursor: CursorWriter;

  private constructor(opts: OutboxOptions) {
    this.dir = opts.dir;
    this.segmentBytes = opts.segmentBytes ?? 64 * 1024 * 1024;
    this.maxBytes = opts.maxBytes ?? 1024 * 1024 * 1024;
    this.maxAgeMs = (opts.maxAgeSeconds ?? 86_400) * 1000;
    this.onFull = opts.onFull ?? "reject";
    this.mem = new RecentWindow<Rec>(opts.memoryBytes ?? 16 * 1024 * 1024);
    this.now = opts.now ?? Date.now;
    this.log = opts.logger ?? stderrAuditLogger;
    this.cursor = new CursorWriter(this.dir, this.log);
    this.pressure = new Backpressure(() => this.fullReason(), this.now, this.log, this.dir);
  }

  /** Opens (creating) the directory, recovers what a previous process left, starts a segment. */
  static async open(opts: OutboxOptions): Promise<Outbox> {
    const o = new Outbox(opts);
    o.unlock = await lockDir(opts.dir);
    try {
      const r = await recover(opts.dir, o.log);
      for (const s of r.segments) {
        o.segments.push(s.base);
        o.sealed.set(s.base, s.size);
      }
      o.head = { seq: r.head.seq, seg: r.head.segment, offset: r.head.offset };
      o.unacked = r.unacked;
      o.unackedBytes = r.unackedBytes;
      o.headTime = r.headTime;
      o.nextSeq = r.nextSeq;
      await o.startSegment(r.nextSeq);
      o.durable = { seg: o.writeSeg, offset: 0 };
      o.normalizeHead();
      await o.dropAcknowledgedSegments();
      if (r.unacked > 0) o.log("warn", "audit outbox: resending events not acknowledged before the last stop", { dir: opts.dir, events: r.unacked, bytes: r.unackedBytes });
      return o;
    } catch (err) {
      await o.unlock();
      throw err;
    }
  }

  /** Durable and unacknowledged: what the sender has to move. */
  get size(): number {
    return this.unacked;
  }

  append(messages: readonly OutboundMessage[]): Promise<void> {
    if (this.closed) return Promise.reject(new Error("audit outbox is closed"));
    if (this.broken) return Promise.reject(this.broken);
    if (messages.length === 0) return Promise.resolve();
    // A hard ceiling for appends that bypass admit() (refusals of unauthenticated requests).
    if (this.unackedBytes >= 2 * this.maxBytes) {
      if (this.onFull === "block") return this.pressure.wait(() => this.unackedBytes < 2 * this.maxBytes).then(() => this.append(messages));
      return Promise.reject(this.pressure.refuse("hard size limit"));
    }
    const time = this.now();
    if (this.pending + this.unacked === 0) this.headTime = time;
    for (const msg of messages) {
      const seq = this.nextSeq++;
      const buf = encodeRecord({ seq, time, msg });
      if (this.writeSize > 0 && this.writeSize + buf.length > this.segmentBytes) {
        // Roll: the file itself is created by the commit that first writes to it.
        this.sealed.set(this.writeSeg, this.writeSize);
        this.writeSeg = seq;
        this.writeSize = 0;
        this.segments.push(seq);
      }
      this.writeSize += buf.length;
      const rec: Rec = { seq, seg: this.writeSeg, end: this.writeSize, bytes: buf.length, time, msg };
      this.group.recs.push(rec);
      this.group.bufs.push(buf);
      this.mem.push(rec);
      this.pending++;
      this.unackedBytes += buf.length;
      this.counters.appended++;
    }
    const done = this.group.committed();
    this.kick();
    return done;
  }

  /** Starts the commit loop unless it runs; an append that raced its exit restarts it. */
  private kick(): void {
    if (this.flushing) return;
    this.flushing = this.flushLoop().finally(() => {
      this.flushing = null;
      if (this.group.recs.length > 0) this.kick();
    });
  }

  /** Back-pressure gate, called before a request is decided (the call is not run if refused). */
  admit(): Promise<void> {
    if (this.broken) return Promise.reject(this.broken);
    const reason = this.fullReason();
    if (reason === null) return Promise.resolve();
    if (this.onFull === "block") return this.pressure.wait(() => this.fullReason() === null);
    return Promise.reject(this.pressure.refuse(reason));
  }

  async peek(maxCount: number, maxBytes: number): Promise<readonly OutboundMessage[]> {
    let recs: Rec[] = [];
    if (this.unacked > 0) recs = this.fromMemory(maxCount, maxBytes) ?? (await this.fromDisk(maxCount, maxBytes));
    this.lastPeek = recs;
    if (recs[0]) this.headTime = recs[0].time;
    return recs.map((r) => r.msg);
  }

  async ack(count: number): Promise<void> {
    const done = this.lastPeek.slice(0, Math.min(count, this.lastPeek.length));
    const last = done[done.length - 1];
    if (!last) return;
    this.head = { seq: last.seq + 1, seg: last.seg, offset: last.end };
    this.unacked -= done.length;
    for (const r of done) this.unackedBytes -= r.bytes;
    this.counters.acked += done.length;
    this.headTime = this.lastPeek[done.length]?.time ?? this.mem.at(this.head.seq)?.time ?? null; // unknown until the next peek
    this.lastPeek = [];
    this.mem.dropBefore(this.head.seq);
    this.normalizeHead();
    await this.dropAcknowledgedSegments();
    this.cursor.schedule({ seq: this.head.seq, segment: this.head.seg, offset: this.head.offset });
    this.pressure.wake();
  }

  whenNonEmpty(signal: AbortSignal): Promise<void> {
    if (this.unacked > 0 || signal.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        signal.removeEventListener("abort", done);
        this.nonEmptyWaiters = this.nonEmptyWaiters.filter((w) => w !== done);
        resolve();
      };
      this.nonEmptyWaiters.push(done);
      signal.addEventListener("abort", done, { once: true });
    });
  }

  stats(): BacklogStats {
    const oldest = this.headTime === null || this.unacked + this.pending === 0 ? 0 : Math.max(0, this.now() - this.headTime);
    return {
      pending: this.pending,
      unacked: this.unacked,
      unackedBytes: this.unackedBytes,
      oldestAgeMs: oldest,
      ...this.counters,
      refused: this.pressure.refused,
      blocked: this.pressure.blocked,
      full: this.fullReason() !== null,
      segments: this.segments.length,
    };
  }

  /** Waits for the last group commit, closes the files and releases the directory. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    while (this.flushing) await this.flushing;
    await this.cursor.flush();
    this.pressure.close();
    await this.fh?.close().catch(() => undefined);
    await this.reader?.fh.close().catch(() => undefined);
    this.fh = null;
    this.reader = null;
    await this.unlock();
  }

  // ---- writing ----

  private async flushLoop(): Promise<void> {
    // Let every append of this tick join the first commit.
    await new Promise<void>((r) => setImmediate(r));
    while (this.group.recs.length > 0) {
      const g = this.group;
      this.group = new Group();
      try {
        if (this.broken) throw this.broken;
        await this.commit(g);
        this.pending -= g.recs.length;
        this.unacked += g.recs.length;
        const last = g.recs[g.recs.length - 1] as Rec;
        this.durable = { seg: last.seg, offset: last.end };
        g.resolve();
        for (const w of this.nonEmptyWaiters.splice(0)) w();
      } catch (err) {
        // After a failed write or fsync the file's state is unknown (fsyncgate): stop accepting.
        this.broken ??= err instanceof Error ? err : new Error(String(err));
        this.pending -= g.recs.length;
        this.log("error", "audit outbox: write failed; refusing further events", { dir: this.dir, error: this.broken.message });
        g.reject(this.broken);
      }
    }
  }

  /**
   * One group: one write per segment touched (normally one). Segments are opened O_DSYNC, so the
   * write returns once the data is on stable storage: the write and the fdatasync in one system
   * call and one thread-pool round trip instead of two (measured in bench/audit-outbox.ts).
   */
  private async commit(g: Group): Promise<void> {
    let i = 0;
    while (i < g.recs.length) {
      const seg = (g.recs[i] as Rec).seg;
      let j = i;
      while (j < g.recs.length && (g.recs[j] as Rec).seg === seg) j++;
      if (seg !== this.fhSeg) {
        await this.fh?.close();
        await this.startSegment(seg);
      }
      const buf = j - i === 1 ? (g.bufs[i] as Buffer) : Buffer.concat(g.bufs.slice(i, j));
      const fd = (this.fh as FileHandle).fd;
      for (let off = 0; off < buf.length; this.counters.fsyncs++) off += await writeAt(fd, buf, off);
      i = j;
    }
    this.counters.commits++;
  }

  private async startSegment(base: number): Promise<void> {
    this.fh = await open(join(this.dir, segmentName(base)), constants.O_WRONLY | constants.O_CREAT | constants.O_APPEND | constants.O_DSYNC, 0o640);
    this.fhSeg = base;
    if (!this.segments.includes(base)) this.segments.push(base);
    if (this.writeSeg !== base && this.writeSize === 0) this.writeSeg = base;
    // The new file's directory entry must survive a power loss too.
    const d = await open(this.dir, "r");
    try {
      await d.sync();
    } finally {
      await d.close();
    }
  }

  // ---- reading ----

  /** Durable records from the memory window, or null when the head is not in it. */
  private fromMemory(maxCount: number, maxBytes: number): Rec[] | null {
    let bytes = 0;
    return this.mem.from(this.head.seq, (r, taken) => {
      const size = Buffer.byteLength(r.msg.value) + Buffer.byteLength(r.msg.key);
      if (taken >= maxCount || !this.isDurable(r) || (taken > 0 && bytes + size > maxBytes)) return false;
      bytes += size;
      return true;
    });
  }

  private isDurable(r: Rec): boolean {
    return r.seg < this.durable.seg || (r.seg === this.durable.seg && r.end <= this.durable.offset);
  }

  private readableEnd(seg: number): number {
    if (seg < this.durable.seg) return this.sealed.get(seg) ?? 0;
    return seg === this.durable.seg ? this.durable.offset : 0;
  }

  private async fromDisk(maxCount: number, maxBytes: number): Promise<Rec[]> {
    const out: Rec[] = [];
    let bytes = 0;
    let { seg, offset } = this.head;
    while (out.length < maxCount) {
      const end = this.readableEnd(seg);
      if (offset >= end) {
        const next = this.segments.find((b) => b > seg);
        if (next === undefined || seg >= this.durable.seg) break;
        seg = next;
        offset = 0;
        continue;
      }
      let want = Math.min(end - offset, Math.max(1024 * 1024, 2 * maxBytes));
      let buf = await this.readAt(seg, offset, want);
      let decoded = decodeRecords(buf, maxCount - out.length);
      if (decoded.records.length === 0 && decoded.stop === "partial" && want < end - offset) {
        want = end - offset; // one record larger than the read: read up to the durable end
        buf = await this.readAt(seg, offset, want);
        decoded = decodeRecords(buf, maxCount - out.length);
      }
      if (decoded.records.length === 0) throw new Error(`audit outbox: unreadable record in segment ${segmentName(seg)} at ${offset}`);
      for (const r of decoded.records) {
        const size = Buffer.byteLength(r.msg.value) + Buffer.byteLength(r.msg.key);
        if (out.length > 0 && bytes + size > maxBytes) return out;
        out.push({ seq: r.seq, seg, end: offset + r.end, bytes: r.bytes, time: r.time, msg: r.msg });
        bytes += size;
      }
      offset += decoded.valid;
    }
    return out;
  }

  private async readAt(seg: number, offset: number, length: number): Promise<Buffer> {
    if (this.reader?.seg !== seg) {
      await this.reader?.fh.close().catch(() => undefined);
      this.reader = { seg, fh: await open(join(this.dir, segmentName(seg)), "r") };
    }
    const buf = Buffer.alloc(length);
    const { bytesRead } = await this.reader.fh.read(buf, 0, length, offset);
    return buf.subarray(0, bytesRead);
  }

  /** Moves the head past closed segments it has wholly consumed. */
  private normalizeHead(): void {
    for (;;) {
      const size = this.sealed.get(this.head.seg);
      const next = this.segments.find((b) => b > this.head.seg);
      if (size === undefined || next === undefined || this.head.offset < size) return;
      this.head = { seq: this.head.seq, seg: next, offset: 0 };
    }
  }

  private async dropAcknowledgedSegments(): Promise<void> {
    while (this.segments.length > 0 && (this.segments[0] as number) < this.head.seg) {
      const base = this.segments.shift() as number;
      this.sealed.delete(base);
      if (this.reader?.seg === base) {
        await this.reader.fh.close().catch(() => undefined);
        this.reader = null;
      }
      await unlink(join(this.dir, segmentName(base))).catch((err: unknown) => this.log("warn", "audit outbox: cannot delete an acknowledged segment", { segment: base, error: String(err) }));
    }
  }

  // ---- back-pressure ----

  /** Which bound is passed, naming its config key (AuditBacklog.fullReason); null while under both. */
  fullReason(): string | null {
    if (this.unackedBytes >= this.maxBytes) return `${this.unackedBytes} bytes not yet acknowledged by Kafka, limit ${this.maxBytes} (audit.outbox.maxBytes)`;
    if (this.maxAgeMs > 0 && this.headTime !== null && this.unacked + this.pending > 0) {
      const age = this.now() - this.headTime;
      if (age > this.maxAgeMs) return `oldest event waiting ${Math.round(age / 1000)} s, limit ${this.maxAgeMs / 1000} s (audit.outbox.maxAgeSeconds)`;
    }
    return null;
  }
}

/**
 * One write of `buf` from `off` on: fs.write's callback form on the FileHandle's descriptor,
 * which costs the event loop less per commit than FileHandle.write's promise machinery.
 */
function writeAt(fd: number, buf: Buffer, off: number): Promise<number> {
  return new Promise((resolve, reject) => write(fd, buf, off, buf.length - off, null, (err, n) => (err ? reject(err) : resolve(n))));
}
