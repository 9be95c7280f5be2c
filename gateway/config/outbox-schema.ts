import { join } from "node:path";
import { z } from "zod";

/**
 * `audit.outbox` and `audit.onFull` (issue 4, items 1-2; gateway/audit/outbox.ts). Kept apart from
 * schema.ts so that file only names them.
 */
export const OUTBOX_DEFAULTS = {
  dir: "var/outbox",
  segmentBytes: 64 * 1024 * 1024,
  maxBytes: 1024 * 1024 * 1024,
  maxAgeSeconds: 86_400,
} as const;

/** `false` opts out (in-memory queue, lost on a crash); absent with `audit.kafka` = the defaults. */
export const auditOutboxSchema = z.union([
  z.literal(false),
  z
    .object({
      /** Directory of the write-ahead log; relative paths are resolved from the config file. */
      dir: z.string().min(1).default(OUTBOX_DEFAULTS.dir),
      /** A new segment file is started past this size; segments are deleted once acknowledged. */
      segmentBytes: z.number().int().min(4096).default(OUTBOX_DEFAULTS.segmentBytes),
      /** Bound on events not yet acknowledged by Kafka, bytes on disk. */
      maxBytes: z.number().int().min(4096).default(OUTBOX_DEFAULTS.maxBytes),
      /** Bound on the age of the oldest unacknowledged event; 0 = no age bound. */
      maxAgeSeconds: z.number().int().min(0).default(OUTBOX_DEFAULTS.maxAgeSeconds),
    })
    .strict(),
]);

/** File name of the dead-letter file's default location, inside the outbox directory. */
export const DEAD_LETTER_FILE_NAME = "dead-letter.jsonl";

/**
 * `audit.kafka.deadLetterFile`: where the sender moves an event Kafka refuses permanently (too
 * large, invalid; gateway/audit/kafka-refusal.ts) so later events keep flowing. Default: the
 * outbox directory's `dead-letter.jsonl` (filled in by resolveOutbox); relative to the config file.
 */
export const auditDeadLetterFileSchema = z.string().min(1);

/** What a full outbox does to new calls: refuse them (default) or make them wait. Never drop. */
export const auditOnFullSchema = z.enum(["reject", "block"]).default("reject");

export type AuditOutboxConfig = Exclude<z.infer<typeof auditOutboxSchema>, false>;

/**
 * Called by the loader: with `audit.kafka` and no `audit.outbox`, the outbox is on with its
 * defaults (lossless by default); its directory is resolved like every other path in the file.
 * `audit.kafka.deadLetterFile` defaults to `dead-letter.jsonl` in that directory (in the default
 * outbox directory when the outbox is off).
 */
export function resolveOutbox(
  audit: { kafka?: { deadLetterFile?: string | undefined } | undefined; outbox?: AuditOutboxConfig | false | undefined },
  abs: (p: string) => string,
): void {
  if (!audit.kafka) return;
  let dir = abs(OUTBOX_DEFAULTS.dir);
  if (audit.outbox !== false) {
    audit.outbox = { ...OUTBOX_DEFAULTS, ...(audit.outbox ?? {}) };
    audit.outbox.dir = dir = abs(audit.outbox.dir);
  }
  audit.kafka.deadLetterFile = audit.kafka.deadLetterFile ? abs(audit.kafka.deadLetterFile) : join(dir, DEAD_LETTER_FILE_NAME);
}
