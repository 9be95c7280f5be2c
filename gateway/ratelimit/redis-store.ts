import { createClient } from "redis";
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
/** After a failed or slow command on a live connection, Redis is tried again this much later. */
const PROBE_AFTER_MS = 1000;

/**
 * Limits shared by every gateway replica through one Redis. While Redis is unreachable (not
 * connected, an error, or slower than `timeoutMs`) each request is decided by `onDown`; the client
 * keeps reconnecting in the background and the shared limits resume as soon as it is back.
 */
export class RedisWindowStore implements WindowStore {
  private readonly client: ReturnType<typeof createClient>;
  private down = true;
  private retryAtMs = 0;
  private closed = false;

  private constructor(private readonly opts: RedisStoreOptions) {
    this.client = createClient({
      url: opts.url,
      // Fail fast while disconnected instead of queueing: the limits stage must not stall calls.
      disableOfflineQueue: true,
      socket: {
        connectTimeout: Math.max(opts.timeoutMs, 1000),
        reconnectStrategy: (retries: number) => Math.min(50 * 2 ** retries, 2000),
      },
    });
    // node-redis emits 'error' on every failed (re)connect; without a listener it would crash.
    this.client.on("error", (err: unknown) => this.markDown(err));
    this.client.on("ready", () => this.markUp());
  }

  static async start(opts: RedisStoreOptions): Promise<RedisWindowStore> {
    const store = new RedisWindowStore(opts);
    // connect() settles on the first success; until then requests take the down path.
    const connected = store.client.connect().then(
      () => true,
      () => false,
    );
    const wait = opts.connectWaitMs ?? 2000;
    let timer: NodeJS.Timeout | undefined;
    const ok = await Promise.race([connected, new Promise<boolean>((r) => (timer = setTimeout(() => r(false), wait)))]);
    clearTimeout(timer);
    if (!ok) opts.log("warn", "rate limits: Redis unreachable at start", { url: redact(opts.url), onRedisDown: opts.onDown });
    return store;
  }

  /** "redis" while the shared store answers, else the configured down behaviour. */
  get mode(): "redis" | "local" | "refuse" {
    return this.down || !this.client.isReady ? this.opts.onDown : "redis";
  }

  async hit(buckets: readonly Bucket[]): Promise<HitResult> {
    if (buckets.length === 0) return { kind: "allowed" };
    if (this.client.isReady && (!this.down || this.opts.clock.now() >= this.retryAtMs)) {
      try {
        const result = await this.eval(buckets);
        this.markUp();
        return result;
      } catch (err) {
        this.markDown(err);
      }
    }
    if (this.opts.onDown === "refuse") return { kind: "unavailable", retryAfterMs: REFUSE_RETRY_MS };
    return this.opts.fallback.hitSync(buckets);
  }

  async close(): Promise<void> {
    this.closed = true;
    try {
      // close() waits for pending replies, which a hung server never sends: only when ready.
      if (this.client.isReady) await this.client.close();
      else this.client.destroy();
    } catch {
      // Already closed or never connected: nothing to release.
    }
  }

  private async eval(buckets: readonly Bucket[]): Promise<HitResult> {
    const args: string[] = ["EVAL", HIT_SCRIPT, String(buckets.length)];
    for (const b of buckets) args.push(this.opts.keyPrefix + b.key);
    for (const b of buckets) args.push(String(b.limit), String(Math.max(1, Math.round(b.windowMs))));
    const reply = await this.client.sendCommand<unknown>(args, { timeout: this.opts.timeoutMs });
    if (!Array.isArray(reply) || (reply[0] !== 1 && reply[0] !== 0)) throw new Error(`unexpected script reply ${JSON.stringify(reply)}`);
    if (reply[0] === 1) return { kind: "allowed" };
    const index = Number(reply[1]) - 1;
    const ttl = Number(reply[2]);
    if (!Number.isInteger(index) || index < 0 || index >= buckets.length) throw new Error(`unexpected bucket index ${String(reply[1])}`);
    return { kind: "limited", index, retryAfterMs: Number.isFinite(ttl) && ttl > 0 ? ttl : buckets[index]!.windowMs };
  }

  private markDown(err: unknown): void {
    if (this.closed) return;
    if (!this.down) this.opts.log("warn", "rate limits: Redis unavailable", { error: String(err), onRedisDown: this.opts.onDown });
    this.down = true;
    this.retryAtMs = this.opts.clock.now() + PROBE_AFTER_MS;
  }

  private markUp(): void {
    if (this.down) this.opts.log("info", "rate limits: Redis connected", { url: redact(this.opts.url) });
    this.down = false;
  }
}

/** The URL without its password, for logs. */
function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = "***";
    return u.toString();
  } catch {
    return "(invalid url)";
  }
}
