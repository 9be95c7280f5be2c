export type { Bucket, BucketSource, HitResult, LimitVerdict, WindowStore } from "./types.js";
export { LocalWindowStore } from "./local-store.js";
export { RedisWindowStore, HIT_SCRIPT, type RedisStoreOptions } from "./redis-store.js";
export { RateLimiter, createRateLimiter, type LimitRequest, type RateLimitSettings, type WindowLimit } from "./limiter.js";
export { Semaphore } from "./semaphore.js";
