import { z } from "zod";
import { configSchema, loadConfigSections } from "../config/index.js";
import { INTEGRITY_REDIS_RULE, integritySectionSchema, resolveIntegrityPaths, type IntegrityConfig } from "./config.js";

const sectionsSchema = z
  .object({ integrity: integritySectionSchema, rateLimits: configSchema.shape.rateLimits })
  .refine(INTEGRITY_REDIS_RULE.check, { message: INTEGRITY_REDIS_RULE.message, path: [...INTEGRITY_REDIS_RULE.path] });

export interface IntegrityCliConfig {
  /** The config file, for messages. */
  file: string;
  integrity: IntegrityConfig;
  /** rateLimits.redis, when the store is Redis. */
  redis?: { url: string; timeoutMs: number };
}

/**
 * What `portcullis tools|approvals --config FILE` need: the `integrity` section and the Redis of
 * `rateLimits`. Only their `${VAR}`s must be set, so an operator's shell needs none of the
 * gateway's other secrets.
 */
export function loadIntegrityCliConfig(file: string, env: NodeJS.ProcessEnv = process.env): IntegrityCliConfig {
  const s = loadConfigSections(file, sectionsSchema, (v, abs) => resolveIntegrityPaths(v.integrity, abs), env);
  const redis = s.integrity.store === "redis" ? s.rateLimits.redis : undefined;
  return { file, integrity: s.integrity, ...(redis && { redis: { url: redis.url, timeoutMs: redis.timeoutMs } }) };
}
