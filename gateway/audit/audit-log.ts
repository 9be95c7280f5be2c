import { randomUUID } from "node:crypto";
import { AuditChain } from "./chain.js";
import { EncodedEvent } from "./jsonl.js";
import { stderrAuditLogger, type AuditLogger } from "./logger.js";
import { RefusalFolder, type RefusalFoldingOptions } from "./refusal-folding.js";
import type { AuditEvent, AuditSink } from "./types.js";

/** A sink that needs starting (connecting) before it delivers, like the Kafka sink. */
interface Startable {
  start(): Promise<void>;
}

function isStartable(s: AuditSink): s is AuditSink & Startable {
  return typeof (s as Partial<Startable>).start === "function";
}

export interface SinkCounts {
  written: number;
  failed: number;
}

/** Thrown by `record` when at least one sink failed; names every failed sink. */
export class AuditWriteError extends Error {
  readonly code = "audit_write_failed";
  readonly failures: ReadonlyArray<{ sink: string; error: Error }>;
  constructor(decisionId: string, failures: ReadonlyArray<{ sink: string; error: Error }>) {
    super(
      `audit event ${decisionId} not written to ${failures
        .map((f) => `${f.sink} (${f.error.message})`)
        .sort()
        .join(", ")}`,
    );
    this.name = "AuditWriteError";
    this.failures = failures;
  }
}

export interface AuditLogOptions {
  logger?: AuditLogger;
  chain?: AuditChain;
  /** audit.refusals: per-source folding of `unauthenticated`/`invalid` events; absent: none. */
  refusals?: RefusalFoldingOptions;
}

/** How often ended refusal windows are looked for (their summaries are written then). */
const REFUSAL_SWEEP_MS = 5_000;

/**
 * Fans each event out to every sink. A sink failure is logged and surfaces as a rejection: the
 * caller (the pipeline) decides whether a request may be answered without its audit event.
 * Every sink is attempted even when another one fails.
 */
export class AuditLog {
  private readonly sinks: readonly AuditSink[];
  private readonly log: AuditLogger;
  private readonly counts = new Map<string, SinkCounts>();

  private readonly chain: AuditChain;
  private readonly refusals: RefusalFolder | null;
  private sweep: NodeJS.Timeout | null = null;

  constructor(sinks: readonly AuditSink[], options: AuditLogOptions = {}) {
    this.sinks = sinks;
    this.log = options.logger ?? stderrAuditLogger;
    // Every event carries a chain position; without a configured one, an unsigned chain whose
    // epoch is this process's (the composition root passes its own, signed when configured).
    this.chain = options.chain ?? new AuditChain({ epoch: randomUUID() });
    const folder = options.refusals ? new RefusalFolder(options.refusals) : null;
    this.refusals = folder?.enabled ? folder : null;
    for (const s of sinks) this.counts.set(s.name, { written: 0, failed: 0 });
  }

  /** Starts the sinks that need it; they resolve even when their backend is down. */
  async start(): Promise<void> {
    await Promise.all(this.sinks.filter(isStartable).map((s) => s.start()));
  }

  /**
   * Writes the event to every sink. A refusal over its source's budget (audit.refusals) is
   * folded instead: counted into its source's summary, and this resolves at once (the request
   * was refused; nothing acted on it).
   */
  async record(unchained: AuditEvent): Promise<void> {
    if (this.refusals?.fold(unchained)) {
      this.startSweep();
      return;
    }
    if (this.refusals?.active) this.startSweep();
    await this.write(unchained);
  }

  /**
   * Writes the summaries of refusal windows that ended (all pending ones with `all`). Runs on an
   * unref'd timer; tests with a manual clock call it directly. Never rejects: a failed summary
   * is logged like any failed write.
   */
  async flushRefusals(all = false): Promise<void> {
    if (!this.refusals) return;
    for (const summary of this.refusals.due(all)) {
      await this.write(summary).catch(() => undefined);
    }
    if (!this.refusals.active) this.stopSweep();
  }

  /** Refusals folded so far, and how many of them the summaries written so far stand for. */
  refusalStats(): { folded: number; summarized: number } {
    return this.refusals?.stats() ?? { folded: 0, summarized: 0 };
  }

  private startSweep(): void {
    if (this.sweep) return;
    this.sweep = setInterval(() => void this.flushRefusals(), REFUSAL_SWEEP_MS);
    this.sweep.unref();
  }

  private stopSweep(): void {
    if (this.sweep) clearInterval(this.sweep);
    this.sweep = null;
  }

  private async write(unchained: AuditEvent): Promise<void> {
    // The chain is assigned here, synchronously and before any sink sees the event: this is the
    // single point every event passes in write order (docs/audit.md "Integrity").
    const event = this.chain.seal(unchained);
    // Encoded once for every sink that writes JSON (file line, Kafka value, outbox record).
    const encoded = new EncodedEvent(event);
    const results = await Promise.allSettled(this.sinks.map((s) => s.write(event, encoded)));
    const failures: Array<{ sink: string; error: Error }> = [];
    results.forEach((r, i) => {
      const sink = this.sinks[i] as AuditSink;
      const c = this.counts.get(sink.name) as SinkCounts;
      if (r.status === "fulfilled") {
        c.written++;
      } else {
        c.failed++;
        const error = r.reason instanceof Error ? r.reason : new Error(String(r.reason));
        failures.push({ sink: sink.name, error });
        this.log("error", "audit: sink write failed", {
          sink: sink.name,
          decisionId: event.decision_id,
          error: error.message,
        });
      }
    });
    if (failures.length > 0) throw new AuditWriteError(event.decision_id, failures);
  }

  /**
   * Back-pressure gate (audit.onFull), asked before a request is decided: resolves when every
   * bounded sink has room, waits while one is full in block mode, rejects with code
   * `audit_backpressure` in reject mode (the sink counts and logs the refusal).
   */
  async admit(): Promise<void> {
    await Promise.all(this.sinks.map((s) => s.admit?.()));
  }

  /** Each sink's own counters where it has them (KafkaSink: queued, sent, `outbox.refused`, …). */
  sinkStats(): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const s of this.sinks) {
      const stats = (s as { stats?: () => unknown }).stats;
      if (typeof stats === "function") out[s.name] = stats.call(s);
    }
    return out;
  }

  /** Per-sink counts of events written and failed, keyed by sink name. */
  stats(): Record<string, SinkCounts> {
    return Object.fromEntries([...this.counts].map(([k, v]) => [k, { ...v }]));
  }

  /**
   * Closes every sink (each flushes); a failing close is logged and does not stop the others.
   * Reports the events sinks accepted but did not deliver, so shutdown can say so.
   */
  async close(): Promise<{ remaining: number; bySink: Record<string, number> }> {
    // Folded refusals are on record before the sinks close: their summaries go out now.
    await this.flushRefusals(true);
    this.stopSweep();
    const results = await Promise.allSettled(this.sinks.map((s) => s.close()));
    const bySink: Record<string, number> = {};
    let remaining = 0;
    results.forEach((r, i) => {
      const name = (this.sinks[i] as AuditSink).name;
      if (r.status === "rejected") {
        this.log("error", "audit: sink close failed", {
          sink: name,
          error: r.reason instanceof Error ? r.reason.message : String(r.reason),
        });
      } else if (r.value && r.value.remaining > 0) {
        bySink[name] = r.value.remaining;
        remaining += r.value.remaining;
      }
    });
    return { remaining, bySink };
  }
}
