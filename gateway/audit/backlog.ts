/**
 * The seam between "an event was accepted" and "the single sender moves it to Kafka".
 *
 * Today the backlog is in memory (`MemoryBacklog`). The durable outbox (DESIGN.md contract 4)
 * will implement the same interface on disk: `append` resolves after the group-committed fsync,
 * `peek` reads unsent records in order, `ack` marks them sent after the broker's acknowledgement.
 * The sender relies only on this interface, so swapping the outbox in does not touch it.
 */

/** One event as it will go to Kafka, serialized once on arrival. */
export interface OutboundMessage {
  decisionId: string;
  key: string;
  value: string;
}

export interface AuditBacklog {
  /** Accepts messages; resolves once they are as durable as this backlog makes them. */
  append(messages: readonly OutboundMessage[]): Promise<void>;
  /**
   * The oldest unacknowledged messages, in order, at most `maxCount` and (except for a single
   * oversized message, which is returned alone) at most `maxBytes` of values. Repeated calls
   * without `ack` return the same messages: a failed batch is retried with identical content.
   */
  peek(maxCount: number, maxBytes: number): readonly OutboundMessage[] | Promise<readonly OutboundMessage[]>;
  /** Drops the first `count` messages of the last `peek`, after the broker acknowledged them. */
  ack(count: number): Promise<void>;
  /** Unacknowledged messages. */
  readonly size: number;
  /** Resolves when the backlog is non-empty (at once if it already is) or when `signal` aborts. */
  whenNonEmpty(signal: AbortSignal): Promise<void>;
  /**
   * Back-pressure (a bounded backlog such as the outbox): resolves when another event may be
   * accepted, waits (onFull block) or rejects with code `audit_backpressure` (onFull reject).
   */
  admit?(): Promise<void>;
  /**
   * Which bound a bounded backlog is past now (named by its config key), null while under all of
   * them: what makes `admit` refuse or wait. Read by the sink's health (kafka-health.ts).
   */
  fullReason?(): string | null;
  /** Flushes and releases files; called by the sink's close after its sender stopped. */
  close?(): Promise<void>;
  /** Counters for operators and tests (the outbox's `OutboxStats`). */
  stats?(): BacklogStats;
}

/** What a bounded, durable backlog reports (gateway/audit/outbox.ts). */
export interface BacklogStats {
  /** Appended, not yet on disk (waiting for the group commit). */
  pending: number;
  /** On disk, not yet acknowledged by Kafka. */
  unacked: number;
  unackedBytes: number;
  /** Age of the oldest unacknowledged event, ms (0 when none). */
  oldestAgeMs: number;
  appended: number;
  acked: number;
  /** fsync/fdatasync calls on segment data (group commit: far fewer than appends). */
  fsyncs: number;
  /** Group commits: one write and one fsync shared by every append of the group. */
  commits: number;
  /** Calls refused because the backlog was over its bound (onFull reject), each counted once. */
  refused: number;
  /** Calls currently waiting for room (onFull block). */
  blocked: number;
  full: boolean;
  segments: number;
}

/** The in-memory backlog: lost on a crash; the outbox issue replaces it. */
export class MemoryBacklog implements AuditBacklog {
  private items: OutboundMessage[] = [];
  // Index of the first unacknowledged item: acking advances it instead of shifting the array.
  private head = 0;
  private waiters: Array<() => void> = [];

  get size(): number {
    return this.items.length - this.head;
  }

  append(messages: readonly OutboundMessage[]): Promise<void> {
    for (const m of messages) this.items.push(m);
    if (messages.length > 0) {
      const waiters = this.waiters;
      this.waiters = [];
      for (const w of waiters) w();
    }
    return Promise.resolve();
  }

  peek(maxCount: number, maxBytes: number): readonly OutboundMessage[] {
    const out: OutboundMessage[] = [];
    let bytes = 0;
    for (let i = this.head; i < this.items.length && out.length < maxCount; i++) {
      const m = this.items[i] as OutboundMessage;
      const size = Buffer.byteLength(m.value) + Buffer.byteLength(m.key);
      if (out.length > 0 && bytes + size > maxBytes) break;
      out.push(m);
      bytes += size;
    }
    return out;
  }

  ack(count: number): Promise<void> {
    this.head = Math.min(this.items.length, this.head + count);
    // Compact now and then so memory is released after an outage drains.
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return Promise.resolve();
  }

  whenNonEmpty(signal: AbortSignal): Promise<void> {
    if (this.size > 0 || signal.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        signal.removeEventListener("abort", done);
        this.waiters = this.waiters.filter((w) => w !== done);
        resolve();
      };
      this.waiters.push(done);
      signal.addEventListener("abort", done, { once: true });
    });
  }
}
