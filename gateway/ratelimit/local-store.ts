import type { Clock } from "../shared/clock.js";
import type { Bucket, HitResult, WindowStore } from "./types.js";

interface Window {
  count: number;
  resetAtMs: number;
}

/** Expired windows are dropped every this many hits, so idle keys do not accumulate. */
const SWEEP_EVERY = 1024;

/**
 * Fixed windows in this process's memory: one gateway's limits, or every replica's fallback when
 * Redis is down. A window opens at a bucket's first hit and closes `windowMs` later, exactly like
 * the Redis script (a key with a TTL), so switching stores does not change what a limit means.
 */
export class LocalWindowStore implements WindowStore {
  private readonly windows = new Map<string, Window>();
  private hits = 0;

  constructor(private readonly clock: Pick<Clock, "now">) {}

  hit(buckets: readonly Bucket[]): Promise<HitResult> {
    return Promise.resolve(this.hitSync(buckets));
  }

  hitSync(buckets: readonly Bucket[]): HitResult {
    const now = this.clock.now();
    if (++this.hits % SWEEP_EVERY === 0) this.sweep(now);
    // Check every bucket first, count only when all have room.
    for (let i = 0; i < buckets.length; i++) {
      const b = buckets[i]!;
      const w = this.windows.get(b.key);
      if (w && w.resetAtMs > now && w.count >= b.limit) return { kind: "limited", index: i, retryAfterMs: w.resetAtMs - now };
    }
    for (const b of buckets) {
      const w = this.windows.get(b.key);
      if (w && w.resetAtMs > now) w.count++;
      else this.windows.set(b.key, { count: 1, resetAtMs: now + b.windowMs });
    }
    return { kind: "allowed" };
  }

  /** Number of live windows (tests, metrics). */
  get size(): number {
    return this.windows.size;
  }

  close(): Promise<void> {
    this.windows.clear();
    return Promise.resolve();
  }

  private sweep(now: number): void {
    for (const [key, w] of this.windows) if (w.resetAtMs <= now) this.windows.delete(key);
  }
}
