import { RedisUnavailable, SharedRedis } from "../shared/redis.js";
import type { Clock } from "../shared/clock.js";
import type { Logger } from "../shared/log.js";
import type { LocalWindowStore } from "./local-store.js";
import type { Bucket, HitResult, WindowStore } from "./types.js";

/**
 * Check-then-count over all of one request's buckets in one atomic step (a Lua script runs alone
 * on the server): either every bucket is counted or none is. A window is a key with a TTL, so the
 * Redis server's clock, not each replica's, decides when it ends.
 * Returns {1} when allowed, {0, index (1-based), pttl} when bucket `index` is full.
 */
export const HIT_SCRIPT = `
for i = 1, #KEYS do
  local n = tonumber(redis.call('GET', KEYS[i]) or '0')
  if n >= tonumber(ARGV[2 * i - 1]) then
    local ttl = redis.call('PTTL', KEYS[i])
    if ttl < 0 then
      redis.call('PEXPIRE', KEYS[i], ARGV[2 * i])
      ttl = tonumber(ARGV[2 * i])
    end
    return {0, i, ttl}
  end
end
for i = 1, #KEYS do
  if redis.call('INCR', KEYS[i]) == 1 then redis.call('PEXPIRE', KEYS[i], ARGV[2 * i]) end
end
return {1}
`;

export interface RedisStoreOptions {
  url: string;
  /** Prefix of every key; a hash tag such as "{portcullis}:" keeps all keys in one Cluster slot. */
  keyPrefix: string;
  /** A command that takes longer counts as Redis being down for that request. */
  timeoutMs: number;
  /** What to do while Redis cannot be asked: count locally, or refuse every limited request. */
  onDown: "local" | "refuse";
  /** The local store used while Redis is down (onDown: local). */
  fallback: LocalWindowStore;
  log: Logger;
  clock: Pick<Clock, "now">;
  /** How long `start` waits for the first connection before serving in the down mode. */
  connectWaitMs?: number;
}

/** Retry hint given to agents while the shared store is down and onDown is "refuse". */
const REFUSE_RETRY_MS = 1000;

/**
 * Limits shared by every gateway replica through one Redis. While Redis is unreachable (not
 * connected, an error, or slower than `timeoutMs`) each request is decided by `onDown`; the
 * connection (gateway/shared/redis.ts) keeps reconnecting and the shared limits resume as soon as
 * it is back.
 */
export class RedisWindowStore implements WindowStore {
  private constructor(
    private readonly opts: RedisStoreOptions,
    private readonly redis: SharedRedis,
  ) {}

  static async start(opts: RedisStoreOptions): Promise<RedisWindowStore> {
    const redis = await SharedRedis.start({
      url: opts.url,
      timeoutMs: opts.timeoutMs,
      log: opts.log,
      clock: opts.clock,
      user: "rate limits",
      downMode: opts.onDown,
      ...(opts.connectWaitMs !== undefined && { connectWaitMs: opts.connectWaitMs }),
    });
    return new RedisWindowStore(opts, redis);
  }

  /** "redis" while the shared store answers, else the configured down behaviour. */
  get mode(): "redis" | "local" | "refuse" {
    return this.redis.up ? "redis" : this.opts.onDown;
  }

  async hit(buckets: readonly Bucket[]): Promise<HitResult> {
    if (buckets.length === 0) return { kind: "allowed" };
    try {
      return await this.eval(buckets);
    } catch (err) {
      if (!(err instanceof RedisUnavailable)) throw err;
    }
    if (this.opts.onDown === "refuse") return { kind: "unavailable", retryAfterMs: REFUSE_RETRY_MS };
    return this.opts.fallback.hitSync(buckets);
  }

  close(): Promise<void> {
    return this.redis.close();
  }

  private async eval(buckets: readonly Bucket[]): Promise<HitResult> {
    const args: string[] = ["EVAL", HIT_SCRIPT, String(buckets.length)];
    for (const b of buckets) args.push(this.opts.keyPrefix + b.key);
    for (const b of buckets) args.push(String(b.limit), String(Math.max(1, Math.round(b.windowMs))));
    const reply = await this.redis.command(args);
    if (!Array.isArray(reply) || (reply[0] !== 1 && reply[0] !== 0)) throw new RedisUnavailable(`unexpected script reply ${JSON.stringify(reply)}`);
    if (reply[0] === 1) return { kind: "allowed" };
    const index = Number(reply[1]) - 1;
    const ttl = Number(reply[2]);
    if (!Number.isInteger(index) || index < 0 || index >= buckets.length) throw new RedisUnavailable(`unexpected bucket index ${String(reply[1])}`);
    return { kind: "limited", index, retryAfterMs: Number.isFinite(ttl) && ttl > 0 ? ttl : buckets[index]!.windowMs };
  }
}
