import { z } from "zod";

/**
 * The `integrity` section of the gateway config (DESIGN.md contract 7; docs/tool-pinning.md,
 * docs/approvals.md). schema.ts adds it as `integrity: integritySectionSchema`; the CLI's
 * `tools` and `approvals` commands load only this section and `rateLimits` (integrity/cli-config.ts).
 */
export const INTEGRITY_DEFAULTS = {
  store: "local",
  file: "var/integrity.json",
  redisKeyPrefix: "portcullis:int:",
  pinning: { enabled: true, onDrift: "hide_and_refuse" },
} as const;

const pinningSchema = z
  .object({
    /** Off: no digests are pinned or compared (tool.digest is still in the policy input). */
    enabled: z.boolean().default(INTEGRITY_DEFAULTS.pinning.enabled),
    /** A drifted tool is hidden from lists and its calls refused (tool_drifted) until approved. */
    onDrift: z.enum(["hide_and_refuse"]).default(INTEGRITY_DEFAULTS.pinning.onDrift),
  })
  .strict();

export const integrityConfigSchema = z
  .object({
    /** `local`: the JSON file below (one host); `redis`: rateLimits.redis, shared by every replica. */
    store: z.enum(["local", "redis"]).default(INTEGRITY_DEFAULTS.store),
    /** The local store; a relative path is resolved from the config file's folder. */
    file: z.string().min(1).default(INTEGRITY_DEFAULTS.file),
    /** Prefix of the keys in Redis; a hash tag such as "{portcullis}:int:" keeps them in one Cluster slot. */
    redisKeyPrefix: z.string().default(INTEGRITY_DEFAULTS.redisKeyPrefix),
    pinning: pinningSchema.default(() => ({ ...INTEGRITY_DEFAULTS.pinning })),
  })
  .strict();

/** The section as it sits in the config: absent means every default. */
export const integritySectionSchema = integrityConfigSchema.default(() => ({ ...INTEGRITY_DEFAULTS, pinning: { ...INTEGRITY_DEFAULTS.pinning } }));

export type IntegrityConfig = z.output<typeof integrityConfigSchema>;

/** The cross-section rule, for the config's top-level refine: the Redis store is the rate limits' Redis. */
export const INTEGRITY_REDIS_RULE = {
  check: (c: { integrity: IntegrityConfig; rateLimits: { redis?: unknown } }): boolean => c.integrity.store !== "redis" || c.rateLimits.redis !== undefined,
  message: "store: redis needs rateLimits.redis.url (the same Redis as the rate limits)",
  path: ["integrity", "store"],
} as const;

/** Resolves the section's paths (the local file) with the config loader's resolver. */
export function resolveIntegrityPaths(section: IntegrityConfig, abs: (p: string) => string): void {
  section.file = abs(section.file);
}
