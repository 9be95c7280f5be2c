import { z } from "zod";

/**
 * The audit keys added for the tamper-evident, SIEM-ready stream (issue 4): Kafka TLS/SASL,
 * checkpoint signing, always-masked fields, the OCSF topic. Kept apart from schema.ts so that
 * file only names them. Every object is strict, like the rest of contract 2.
 */

/** `audit.kafka.ssl`: true (system CAs) or file paths; rejectUnauthorized is on unless turned off. */
export const kafkaSslSchema = z.union([
  z.boolean(),
  z
    .object({
      /** PEM file(s) of the CA(s) that signed the brokers' certificates. */
      ca: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]).optional(),
      /** Client certificate and key (PEM files), for brokers that require mutual TLS. */
      cert: z.string().min(1).optional(),
      key: z.string().min(1).optional(),
      passphrase: z.string().optional(),
      servername: z.string().min(1).optional(),
      rejectUnauthorized: z.boolean().default(true),
    })
    .strict()
    .refine((s) => (s.cert === undefined) === (s.key === undefined), "ssl.cert and ssl.key go together"),
]);

export const SASL_MECHANISMS = ["plain", "scram-sha-256", "scram-sha-512"] as const;

export const kafkaSaslSchema = z
  .object({
    mechanism: z.enum(SASL_MECHANISMS),
    username: z.string().min(1),
    password: z.string().min(1),
  })
  .strict();

/** `audit.signing`: Ed25519 checkpoints in the hash chain. */
export const auditSigningSchema = z
  .object({
    /** PEM file of an Ed25519 private key (openssl genpkey -algorithm ed25519). */
    privateKey: z.string().min(1),
    /** Every N-th event of the chain carries a signature. */
    checkpointEvery: z.number().int().positive().max(1_000_000).default(100),
    /** Optional `chain.key_id` on signed events (at most 128 characters: room is kept for it in every event). */
    keyId: z.string().min(1).max(128).optional(),
  })
  .strict();

/** `audit.mask`: always-masked fields on top of the decision's own `mask`. */
export const auditMaskSchema = z
  .object({
    /** JSON pointers (`/input/...`, `/result/...`) masked in every event. */
    paths: z.array(z.string().regex(/^\/(input|result)(\/|$)/, "mask paths start with /input or /result")).default([]),
    /** Extra argument key names masked wherever they occur in `input.request.arguments`. */
    keys: z.array(z.string().min(1)).default([]),
    /** Mask password/secret/token/api_key-like keys anywhere in the arguments. */
    defaultKeys: z.boolean().default(true),
  })
  .strict();

/**
 * `audit.maxEventBytes`: no event's JSONL line (chain included) is longer; larger parts are cut
 * (docs/audit.md "Size limits"). Keep it under the topic's `max.message.bytes` (Kafka's default
 * is 1 MiB). The minimum leaves room for an event whose every large part was cut.
 */
export const auditMaxEventBytesSchema = z
  .number()
  .int()
  .min(16 * 1024, "audit.maxEventBytes must be at least 16384 (16 KiB)")
  .max(64 * 1024 * 1024)
  .default(512 * 1024);

/** `audit.fileMinFreeBytes`: the file sink refuses new requests below this much free space; 0 turns it off. */
export const auditFileMinFreeBytesSchema = z.number().int().min(0).default(64 * 1024 * 1024);

/** `audit.refusals`: unauthenticated/invalid events per source and minute before they are folded; 0 = never fold. */
export const auditRefusalsSchema = z
  .object({ perSourcePerMinute: z.number().int().min(0).default(60) })
  .strict()
  .default({ perSourcePerMinute: 60 });

/** The defaults of the three keys above, for the default of the whole `audit` object. */
export const AUDIT_BOUNDS_DEFAULTS = { maxEventBytes: 512 * 1024, fileMinFreeBytes: 64 * 1024 * 1024, refusals: { perSourcePerMinute: 60 } };

/** Runs on the whole `audit.kafka` object: SASL PLAIN sends the password as is. */
export function saslNeedsTls(k: { ssl?: unknown; sasl?: { mechanism: string } }): boolean {
  return !(k.sasl?.mechanism === "plain" && (k.ssl === undefined || k.ssl === false));
}
