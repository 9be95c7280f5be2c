import type { Clock } from "../shared/clock.js";
import type { SharedRedis } from "../shared/redis.js";
import type { IntegrityConfig } from "./config.js";
import { IntegrityFile, type IntegrityFileOptions } from "./file-doc.js";
import { LocalApprovalStore } from "./local-approvals.js";
import { LocalPinStore } from "./local-pins.js";
import { RedisApprovalStore } from "./redis-approvals.js";
import { RedisPinStore } from "./redis-pins.js";
import type { ApprovalStore, PinStore } from "./types.js";

export interface IntegrityStores {
  pins: PinStore;
  approvals: ApprovalStore;
  /** Where they live, for logs and messages: the file, or the Redis key prefix. */
  location: string;
}

export interface IntegrityStoreDeps {
  clock: Pick<Clock, "now">;
  /** The shared connection (gateway/shared/redis.ts) when `store: redis`; its owner closes it. */
  redis?: SharedRedis;
  /** Local file tuning (tests). */
  file?: IntegrityFileOptions;
  /** Approval ids (tests); default `apr_` + 128 random bits. */
  newApprovalId?: () => string;
}

/** Both stores of the configured kind; the local ones share one file. */
export function createIntegrityStores(config: IntegrityConfig, deps: IntegrityStoreDeps): IntegrityStores {
  if (config.store === "redis") {
    if (!deps.redis) throw new Error("integrity.store is redis: pass the shared Redis connection (rateLimits.redis)");
    return {
      pins: new RedisPinStore(deps.redis, config.redisKeyPrefix, deps.clock),
      approvals: new RedisApprovalStore(deps.redis, config.redisKeyPrefix, deps.clock, deps.newApprovalId),
      location: `Redis keys ${config.redisKeyPrefix}*`,
    };
  }
  const file = new IntegrityFile(config.file, deps.file);
  return {
    pins: new LocalPinStore(file, deps.clock),
    approvals: new LocalApprovalStore(file, deps.clock, deps.newApprovalId),
    location: config.file,
  };
}
