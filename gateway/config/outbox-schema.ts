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

/** What a full outbox does to new calls: refuse them (default) or make them wait. Never drop. */
export const auditOnFullSchema = z.enum(["reject", "block"]).default("reject");

export type AuditOutboxConfig = Exclude<z.infer<typeof auditOutboxSchema>, false>;

/**
 * Called by the loader: with `audit.kafka` and no `audit.outbox`, the outbox is on with its
 * defaults (lossless by default); its directory is resolved like every other path in the file.
 */
export function resolveOutbox(audit: { kafka?: unknown; outbox?: AuditOutboxConfig | false }, abs: (p: string) => string): void {
  if (audit.outbox === false || !audit.kafka) return;
  audit.outbox = { ...OUTBOX_DEFAULTS, ...(audit.outbox ?? {}) };
  audit.outbox.dir = abs(audit.outbox.dir);
}
