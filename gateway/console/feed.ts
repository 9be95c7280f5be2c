import type { AuditEvent } from "../audit/index.js";
import { matches, toEntry } from "./entry.js";
import type { ConsoleEntry, ConsoleFilter } from "./types.js";

export interface ConsoleFeedOptions {
  /** At most this many entries are kept (the oldest go first). Default 10,000. */
  maxEvents?: number;
  /** Entries older than this (by arrival) are dropped. Default one hour. */
  maxAgeMs?: number;
  /** Epoch milliseconds; injected so tests can move time. Default Date.now. */
  now?: () => number;
  /** Called when a listener throws; the feed carries on. Default: ignore. */
  onListenerError?: (err: unknown) => void;
}

export type ConsoleListener = (entry: ConsoleEntry) => void;

export const DEFAULT_MAX_EVENTS = 10_000;
export const DEFAULT_MAX_AGE_MS = 60 * 60 * 1000;

/** What the feed holds and what it has let go, for the summary's `window.complete`. */
export interface FeedStats {
  size: number;
  /** Entries dropped because the buffer was full (not because they aged out). */
  evictedByCount: number;
  /** Arrival time (epoch ms) of the newest entry dropped for lack of room; null when none was. */
  lastEvictedAt: number | null;
}

/**
 * The console's memory of recent decisions: a ring buffer bounded both by count and by age, fed
 * with every audit event the gateway writes, with listeners for the live stream.
 *
 * `push` runs on the audit path of every request, so it is cheap and never throws: a listener
 * that throws is reported to `onListenerError` and the others still run.
 */
export class ConsoleFeed {
  readonly maxEvents: number;
  readonly maxAgeMs: number;
  private readonly now: () => number;
  private readonly onListenerError: (err: unknown) => void;
  /** Ring of `maxEvents` slots; `head` is the oldest, `size` how many are filled. */
  private readonly slots: Array<{ entry: ConsoleEntry; arrivedAt: number } | undefined>;
  private head = 0;
  private size = 0;
  private seq = 0;
  private evictedByCount = 0;
  private lastEvictedAt: number | null = null;
  private readonly listeners = new Set<ConsoleListener>();

  constructor(options: ConsoleFeedOptions = {}) {
    this.maxEvents = positiveInteger(options.maxEvents ?? DEFAULT_MAX_EVENTS, "maxEvents");
    this.maxAgeMs = positiveInteger(options.maxAgeMs ?? DEFAULT_MAX_AGE_MS, "maxAgeMs");
    this.now = options.now ?? Date.now;
    this.onListenerError = options.onListenerError ?? (() => undefined);
    this.slots = new Array(this.maxEvents);
  }

  /** Takes one written audit event (AuditLog's fan-out calls it for every event). */
  push(event: AuditEvent): void {
    const arrivedAt = this.now();
    this.expire(arrivedAt);
    const entry = toEntry(event, ++this.seq);
    if (this.size === this.maxEvents) {
      this.lastEvictedAt = this.slots[this.head]?.arrivedAt ?? arrivedAt;
      this.evictedByCount++;
      this.head = (this.head + 1) % this.maxEvents;
      this.size--;
    }
    this.slots[(this.head + this.size) % this.maxEvents] = { entry, arrivedAt };
    this.size++;
    for (const listener of this.listeners) {
      try {
        listener(entry);
      } catch (err) {
        this.onListenerError(err);
      }
    }
  }

  /**
   * The retained entries that match, oldest first. With `afterSeq`, only those pushed after that
   * one (a stream resuming from its Last-Event-ID).
   */
  entries(filter: ConsoleFilter = {}, afterSeq = 0): ConsoleEntry[] {
    this.expire(this.now());
    const out: ConsoleEntry[] = [];
    for (let i = 0; i < this.size; i++) {
      const entry = (this.slots[(this.head + i) % this.maxEvents] as { entry: ConsoleEntry }).entry;
      if (entry.seq > afterSeq && matches(entry, filter)) out.push(entry);
    }
    return out;
  }

  /** Calls `listener` with every entry pushed from now on; the returned function stops that. */
  subscribe(listener: ConsoleListener): () => void {
    // A wrapper per call, so the same function subscribed twice is two subscriptions.
    const own: ConsoleListener = (entry) => listener(entry);
    this.listeners.add(own);
    return () => {
      this.listeners.delete(own);
    };
  }

  get subscribers(): number {
    return this.listeners.size;
  }

  stats(): FeedStats {
    this.expire(this.now());
    return { size: this.size, evictedByCount: this.evictedByCount, lastEvictedAt: this.lastEvictedAt };
  }

  /** Drops entries that arrived more than maxAgeMs before `now` (arrival order is the ring's order). */
  private expire(now: number): void {
    const cutoff = now - this.maxAgeMs;
    while (this.size > 0) {
      const oldest = this.slots[this.head] as { arrivedAt: number };
      if (oldest.arrivedAt >= cutoff) break;
      this.slots[this.head] = undefined;
      this.head = (this.head + 1) % this.maxEvents;
      this.size--;
    }
  }
}

function positiveInteger(value: number, name: string): number {
  if (!Number.isInteger(value) || value < 1) throw new Error(`ConsoleFeed: ${name} must be a positive integer, got ${value}`);
  return value;
}
