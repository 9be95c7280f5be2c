import { mkdir, open, readdir, readFile, rename, truncate, unlink, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import type { AuditLogger } from "./logger.js";
import { decodeRecords, parseCursor, parseSegmentName, segmentName, type DecodedRecord, type OutboxCursor } from "./outbox-format.js";

/**
 * Opening an outbox directory after a clean stop or a crash (SIGKILL, power loss): take the lock,
 * find the first unacknowledged record from the persisted cursor, validate every record after it
 * and cut a torn last line. What it returns is the state the outbox resumes from.
 */
export interface RecoveredSegment {
  base: number;
  /** Bytes of valid records (a torn tail has been cut from the last segment). */
  size: number;
}

export interface Recovered {
  segments: RecoveredSegment[];
  /** First unacknowledged record (or the end of the data when everything was acknowledged). */
  head: { seq: number; segment: number; offset: number };
  unacked: number;
  unackedBytes: number;
  /** Append time of the first unacknowledged record, for the age bound. */
  headTime: number | null;
  /** Sequence number for the next append (larger than every segment base on disk). */
  nextSeq: number;
}

// Directories this process holds: a second outbox on the same directory would interleave writes.
const heldDirs = new Set<string>();

export async function lockDir(dir: string): Promise<() => Promise<void>> {
  const abs = resolve(dir);
  if (heldDirs.has(abs)) throw new Error(`audit outbox ${abs} is already open in this process`);
  await mkdir(abs, { recursive: true });
  const lock = join(abs, "lock");
  try {
    const fh = await open(lock, "wx");
    await fh.writeFile(String(process.pid));
    await fh.close();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    const pid = Number((await readFile(lock, "utf8").catch(() => "")).trim());
    // A lock left by a killed gateway is taken over; one held by a live process is not.
    if (Number.isSafeInteger(pid) && pid > 0 && pid !== process.pid && isAlive(pid)) {
      throw new Error(`audit outbox ${abs} is in use by process ${pid}`);
    }
    await writeFile(lock, String(process.pid));
  }
  heldDirs.add(abs);
  return async () => {
    heldDirs.delete(abs);
    await unlink(lock).catch(() => undefined);
  };
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

export async function recover(dir: string, log: AuditLogger): Promise<Recovered> {
  const bases = (await readdir(dir))
    .map(parseSegmentName)
    .filter((b): b is number => b !== null)
    .sort((a, b) => a - b);
  const cursor = parseCursor(await readFile(join(dir, "cursor.json"), "utf8").catch(() => ""));

  // Where sending resumes: the cursor's segment, or the first segment after it when that one was
  // deleted (wholly acknowledged). Without a cursor, everything on disk is unacknowledged.
  let startIdx = 0;
  let startOffset = 0;
  if (cursor) {
    const at = bases.indexOf(cursor.segment);
    if (at >= 0) {
      startIdx = at;
      startOffset = cursor.offset;
    } else {
      startIdx = bases.findIndex((b) => b > cursor.segment);
      if (startIdx < 0) startIdx = bases.length;
    }
  }
  // Segments before the start were acknowledged; a crash between ack and unlink leaves them.
  for (const b of bases.slice(0, startIdx)) await unlink(join(dir, segmentName(b))).catch(() => undefined);

  const out: Recovered = { segments: [], head: { seq: cursor?.seq ?? 0, segment: -1, offset: 0 }, unacked: 0, unackedBytes: 0, headTime: null, nextSeq: cursor?.seq ?? 0 };
  let first: DecodedRecord | null = null;
  let lastSeq = -1;
  const live = bases.slice(startIdx);
  for (const [i, base] of live.entries()) {
    const path = join(dir, segmentName(base));
    const buf = await readFile(path);
    let from = i === 0 ? startOffset : 0;
    // The cursor must sit on a record boundary of a file that still has it; otherwise resend the
    // whole segment (duplicates are allowed, loss is not).
    if (from > buf.length || (from > 0 && buf[from - 1] !== 0x0a)) {
      log("warn", "audit outbox: ack cursor does not match its segment; resending the segment", { segment: base, offset: from });
      from = 0;
    }
    const decoded = decodeRecords(buf.subarray(from));
    const size = from + decoded.valid;
    if (decoded.stop !== "end") {
      const last = i === live.length - 1;
      log(last ? "warn" : "error", `audit outbox: ${decoded.stop} record in segment; ${last ? "cutting the torn tail" : "skipping the rest of the segment"}`, {
        segment: base,
        validBytes: size,
        droppedBytes: buf.length - size,
      });
      if (last) await truncate(path, size);
    }
    if (i === 0) out.head = { seq: decoded.records[0]?.seq ?? cursor?.seq ?? base, segment: base, offset: from };
    for (const r of decoded.records) {
      first ??= r;
      lastSeq = r.seq;
      out.unacked++;
      out.unackedBytes += r.bytes;
    }
    out.segments.push({ base, size });
  }
  out.headTime = first?.time ?? null;
  const lastBase = bases[bases.length - 1] ?? -1;
  out.nextSeq = Math.max(out.nextSeq, lastSeq + 1, lastBase + 1);
  if (out.segments.length === 0) out.head = { seq: out.nextSeq, segment: out.nextSeq, offset: 0 };
  return out;
}

/**
 * Persists the ack cursor (`cursor.json`) at most every 100 ms and at close, not per batch: a
 * stale cursor only resends already-acknowledged events (at-least-once), while a rename per batch
 * competes with the appends' synchronous writes for the disk. Not fsynced for the same reason;
 * a SIGKILL keeps the page cache, so a restarted gateway reads the last rename.
 */
export class CursorWriter {
  private latest: OutboxCursor | null = null;
  private timer: NodeJS.Timeout | null = null;
  private writing: Promise<void> = Promise.resolve();

  constructor(
    private readonly dir: string,
    private readonly log: AuditLogger,
    private readonly intervalMs = 100,
  ) {}

  schedule(cursor: OutboxCursor): void {
    this.latest = cursor;
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.writing = this.writing.then(() => this.write());
    }, this.intervalMs);
    this.timer.unref();
  }

  async flush(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.writing;
    await this.write();
  }

  private async write(): Promise<void> {
    const c = this.latest;
    if (!c) return;
    const tmp = join(this.dir, "cursor.json.tmp");
    try {
      await writeFile(tmp, JSON.stringify(c));
      await rename(tmp, join(this.dir, "cursor.json"));
    } catch (err) {
      this.log("warn", "audit outbox: cannot write the ack cursor (a restart resends more)", { dir: this.dir, error: String(err) });
    }
  }
}
