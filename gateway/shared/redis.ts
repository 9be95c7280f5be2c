import { createClient } from "redis";
import type { Clock } from "./clock.js";
import type { Logger } from "./log.js";

export interface SharedRedisOptions {
  url: string;
  /** A command that takes longer counts as Redis being down for that request. */
  timeoutMs: number;
  log: Logger;
  clock: Pick<Clock, "now">;
  /** Who uses this connection, in log lines ("rate limits", "sessions"). */
  user: string;
  /** Logged with the down warning: what the user does meanwhile. */
  downMode: string;
  /** How long `start` waits for the first connection before serving in the down mode. */
  connectWaitMs?: number;
}

/** Thrown by `command` while Redis cannot be asked: the caller takes its down path. */
export class RedisUnavailable extends Error {
  constructor(reason: string) {
    super(reason);
    this.name = "RedisUnavailable";
  }
}

/** After a failed or slow command on a live connection, Redis is tried again this much later. */
const PROBE_AFTER_MS = 1000;

/**
 * One Redis connection shared by the replicas' state (rate-limit windows, session liveness).
 * It never queues: while Redis is unreachable (not connected, an error, or slower than
 * `timeoutMs`) a command fails at once with RedisUnavailable; the client keeps reconnecting in
 * the background and commands go through as soon as it is back.
 */
export class SharedRedis {
  private readonly client: ReturnType<typeof createClient>;
  private down = true;
  private retryAtMs = 0;
  private closed = false;

  private constructor(private readonly opts: SharedRedisOptions) {
    this.client = createClient({
      url: opts.url,
      // Fail fast while disconnected instead of queueing: a request must not stall on Redis.
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

  static async start(opts: SharedRedisOptions): Promise<SharedRedis> {
    const redis = new SharedRedis(opts);
    // connect() settles on the first success; until then commands take the down path.
    const connected = redis.client.connect().then(
      () => true,
      () => false,
    );
    const wait = opts.connectWaitMs ?? 2000;
    let timer: NodeJS.Timeout | undefined;
    const ok = await Promise.race([connected, new Promise<boolean>((r) => (timer = setTimeout(() => r(false), wait)))]);
    clearTimeout(timer);
    if (!ok) opts.log("warn", `${opts.user}: Redis unreachable at start`, { url: redactUrl(opts.url), onRedisDown: opts.downMode });
    return redis;
  }

  /** False while Redis is known to be unreachable (commands would fail at once). */
  get up(): boolean {
    return !this.down && this.client.isReady;
  }

  async command(args: string[]): Promise<unknown> {
    if (!this.client.isReady || (this.down && this.opts.clock.now() < this.retryAtMs)) throw new RedisUnavailable("Redis is unreachable");
    try {
      const reply = await this.client.sendCommand<unknown>(args, { timeout: this.opts.timeoutMs });
      this.markUp();
      return reply;
    } catch (err) {
      this.markDown(err);
      throw new RedisUnavailable(String(err));
    }
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

  private markDown(err: unknown): void {
    if (this.closed) return;
    if (!this.down) this.opts.log("warn", `${this.opts.user}: Redis unavailable`, { error: String(err), onRedisDown: this.opts.downMode });
    this.down = true;
    this.retryAtMs = this.opts.clock.now() + PROBE_AFTER_MS;
  }

  private markUp(): void {
    if (this.down) this.opts.log("info", `${this.opts.user}: Redis connected`, { url: redactUrl(this.opts.url) });
    this.down = false;
  }
}

/** The URL without its password, for logs. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = "***";
    return u.toString();
  } catch {
    return "(invalid url)";
  }
}
