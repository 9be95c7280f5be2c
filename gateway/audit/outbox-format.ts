import { crc32 } from "node:zlib";
import type { OutboundMessage } from "./backlog.js";

/**
 * The on-disk line of the durable outbox (outbox.ts). One record per line:
 *
 *   <crc32 of the rest, 8 hex> <JSON [seq, appendedAtMs, decisionId, key]>\t<event JSON>\n
 *
 * The event JSON is the Kafka value as is (JSON.stringify never emits a raw newline or tab), so a
 * record is written and read without re-escaping. The checksum tells a torn or zero-filled tail
 * after a crash from a good record; the sequence number and append time survive restarts, so the
 * ack cursor and the age bound mean the same thing before and after one.
 */
export interface OutboxRecord {
  seq: number;
  /** Epoch ms at append: the age bound (audit.outbox.maxAgeSeconds) is measured from it. */
  time: number;
  msg: OutboundMessage;
}

const NL = 0x0a;

/** Bytes before the body: the checksum's 8 hex digits and a space. */
const HEAD = 9;

export function encodeRecord(r: OutboxRecord): Buffer {
  // One allocation, the value encoded straight into it (it is most of the record).
  const header = `${JSON.stringify([r.seq, r.time, r.msg.decisionId, r.msg.key])}\t`;
  const headerBytes = Buffer.byteLength(header, "utf8");
  const buf = Buffer.allocUnsafe(HEAD + headerBytes + Buffer.byteLength(r.msg.value, "utf8") + 1);
  buf.write(header, HEAD, "utf8");
  buf.write(r.msg.value, HEAD + headerBytes, "utf8");
  buf[buf.length - 1] = NL;
  buf.write(crc32(buf.subarray(HEAD, buf.length - 1)).toString(16).padStart(8, "0"), 0, "latin1");
  buf[HEAD - 1] = 0x20;
  return buf;
}

export interface DecodedRecord extends OutboxRecord {
  /** Offset just past this record's newline, relative to the decoded buffer. */
  end: number;
  /** Bytes of the line on disk, newline included. */
  bytes: number;
}

export interface DecodeResult {
  records: DecodedRecord[];
  /** Bytes of complete, valid lines at the start of the buffer. */
  valid: number;
  /** Why decoding stopped before the end of the buffer, if it did. */
  stop: "end" | "partial" | "corrupt";
}

/** Decodes complete lines from the start of `buf`, stopping at a torn (no newline) or bad one. */
export function decodeRecords(buf: Buffer, maxCount = Number.POSITIVE_INFINITY): DecodeResult {
  const records: DecodedRecord[] = [];
  let pos = 0;
  while (pos < buf.length && records.length < maxCount) {
    const nl = buf.indexOf(NL, pos);
    if (nl < 0) return { records, valid: pos, stop: "partial" };
    const rec = decodeLine(buf.subarray(pos, nl));
    if (!rec) return { records, valid: pos, stop: "corrupt" };
    const bytes = nl + 1 - pos;
    pos = nl + 1;
    records.push({ ...rec, end: pos, bytes });
  }
  return { records, valid: pos, stop: "end" };
}

function decodeLine(line: Buffer): OutboxRecord | null {
  if (line.length < 10 || line[8] !== 0x20) return null;
  const body = line.subarray(9);
  if (line.toString("latin1", 0, 8) !== crc32(body).toString(16).padStart(8, "0")) return null;
  const tab = body.indexOf(0x09);
  if (tab < 0) return null;
  let header: unknown;
  try {
    header = JSON.parse(body.toString("utf8", 0, tab));
  } catch {
    return null;
  }
  if (!Array.isArray(header) || header.length !== 4) return null;
  const [seq, time, decisionId, key] = header as unknown[];
  if (typeof seq !== "number" || typeof time !== "number" || typeof decisionId !== "string" || typeof key !== "string") return null;
  return { seq, time, msg: { decisionId, key, value: body.toString("utf8", tab + 1) } };
}

/** Segment files are named by the sequence number of their first record, zero-padded to sort. */
export function segmentName(base: number): string {
  return `${String(base).padStart(16, "0")}.seg`;
}

export function parseSegmentName(name: string): number | null {
  const m = /^(\d{16})\.seg$/.exec(name);
  return m ? Number(m[1]) : null;
}

/** The persisted "sent up to here" mark: the first unacknowledged record's position. */
export interface OutboxCursor {
  seq: number;
  segment: number;
  offset: number;
}

export function parseCursor(text: string): OutboxCursor | null {
  try {
    const c = JSON.parse(text) as Partial<OutboxCursor>;
    if (Number.isSafeInteger(c.seq) && Number.isSafeInteger(c.segment) && Number.isSafeInteger(c.offset) && (c.offset as number) >= 0) {
      return { seq: c.seq as number, segment: c.segment as number, offset: c.offset as number };
    }
  } catch {
    // A cursor that does not parse is treated as absent: everything on disk is resent.
  }
  return null;
}
