import { constants } from "node:fs";
import { mkdir, open, stat } from "node:fs/promises";
import { dirname } from "node:path";
import type { OutboundMessage } from "./backlog.js";
import type { KafkaRefusal } from "./kafka-refusal.js";

/**
 * The dead-letter file (`audit.kafka.deadLetterFile`, default `dead-letter.jsonl` in the outbox
 * directory): where the Kafka sender puts an event the broker refuses permanently
 * (kafka-refusal.ts), so the events behind it keep flowing. One JSON line per event, appended
 * and fdatasync'ed before the outbox cursor moves past the event: a crash in between only writes
 * it twice (deduplicate on `decision_id`), never loses it. docs/siem.md says how to replay it.
 *
 * The line:
 *   {"dead_lettered_at": RFC 3339, "topic", "decision_id", "key", "reason", "error": {type, code,
 *    message}, "value_bytes", "event": the Kafka value as JSON (or "value": the string when the
 *    value is not JSON)}
 */
export interface DeadLetterLine {
  dead_lettered_at: string;
  topic: string;
  decision_id: string;
  key: string;
  reason: string;
  error: { type: string; code: number | null; message: string };
  value_bytes: number;
  event?: unknown;
  value?: string;
}

export function deadLetterLine(msg: OutboundMessage, topic: string, refusal: KafkaRefusal, at: Date): DeadLetterLine {
  const line: DeadLetterLine = {
    dead_lettered_at: at.toISOString(),
    topic,
    decision_id: msg.decisionId,
    key: msg.key,
    reason: refusal.reason,
    error: { type: refusal.type, code: refusal.code, message: refusal.message },
    value_bytes: Buffer.byteLength(msg.value),
  };
  try {
    line.event = JSON.parse(msg.value) as unknown;
  } catch {
    line.value = msg.value; // a custom encoder's non-JSON value: kept verbatim
  }
  return line;
}

/**
 * One JSONL line. JSON.stringify leaves U+2028 and U+2029 raw, and line-oriented readers that
 * follow Unicode line breaks (Python's splitlines, some editors and log shippers) would split the
 * record there: they are escaped, which keeps the line valid JSON with the same value.
 */
export function encodeDeadLetterLine(line: DeadLetterLine): string {
  return `${JSON.stringify(line).replace(/[\u2028\u2029]/g, (c) => (c === "\u2028" ? "\\u2028" : "\\u2029"))}\n`;
}

// Appends to one path are serialized in this process, so two sinks sharing a file (the native and
// the OCSF topic) never interleave partial writes.
const queues = new Map<string, Promise<void>>();

export class DeadLetterFile {
  constructor(readonly path: string) {}

  /** Appends `line`, durably (fdatasync, and the directory when the file is new). Rejects on any failure. */
  append(line: DeadLetterLine): Promise<void> {
    const previous = queues.get(this.path) ?? Promise.resolve();
    const run = previous.then(() => appendDurably(this.path, Buffer.from(encodeDeadLetterLine(line))));
    const settled = run.catch(() => undefined);
    queues.set(this.path, settled);
    void settled.then(() => {
      if (queues.get(this.path) === settled) queues.delete(this.path);
    });
    return run;
  }
}

async function appendDurably(path: string, data: Buffer): Promise<void> {
  const dir = dirname(path);
  await mkdir(dir, { recursive: true, mode: 0o750 });
  const isNew = await stat(path).then(
    () => false,
    () => true,
  );
  const fh = await open(path, constants.O_WRONLY | constants.O_CREAT | constants.O_APPEND, 0o640);
  try {
    const before = (await fh.stat()).size;
    try {
      for (let off = 0; off < data.length; ) off += (await fh.write(data, off, data.length - off)).bytesWritten;
      await fh.datasync();
    } catch (err) {
      // A torn line would glue itself to the next attempt's line: cut it off (best effort).
      await fh.truncate(before).catch(() => undefined);
      throw err;
    }
  } finally {
    await fh.close();
  }
  if (isNew) {
    // The new file's directory entry must survive a power loss too.
    const d = await open(dir, "r");
    try {
      await d.sync();
    } finally {
      await d.close();
    }
  }
}
