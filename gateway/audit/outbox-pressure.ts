import type { AuditLogger } from "./logger.js";

/** Thrown when the outbox is over its bound in reject mode: the call is refused, not run. */
export class AuditBackpressureError extends Error {
  readonly code = "audit_backpressure";
  constructor(reason: string) {
    super(`audit outbox full (${reason}); request refused`);
    this.name = "AuditBackpressureError";
  }
}

/**
 * The outbox's back-pressure bookkeeping (audit.onFull): refusals are counted and logged (the
 * first, then at most every 10 s), blocked callers wait until `wake()` finds room, and the
 * transition back to "has room" is logged once.
 */
export class Backpressure {
  refused = 0;
  private waiters: Array<{ resolve: () => void; reject: (e: Error) => void }> = [];
  private wasFull = false;
  private lastRefusalLog = 0;

  constructor(
    private readonly fullReason: () => string | null,
    private readonly now: () => number,
    private readonly log: AuditLogger,
    private readonly dir: string,
  ) {}

  get blocked(): number {
    return this.waiters.length;
  }

  refuse(reason: string): AuditBackpressureError {
    this.refused++;
    const now = this.now();
    if (!this.wasFull || now - this.lastRefusalLog >= 10_000) {
      this.log("error", "audit outbox full: refusing calls until Kafka catches up", { dir: this.dir, reason, refusedTotal: this.refused });
      this.lastRefusalLog = now;
    }
    this.wasFull = true;
    return new AuditBackpressureError(reason);
  }

  /** Resolves once `hasRoom()` holds, checked on every `wake()` (acks) and every second (age). */
  wait(hasRoom: () => boolean): Promise<void> {
    if (!this.wasFull) this.log("warn", "audit outbox full: calls wait for room (onFull block)", { dir: this.dir, reason: this.fullReason() });
    this.wasFull = true;
    return new Promise<void>((resolve, reject) => {
      // The age bound can also clear with no ack (clock only): re-check now and then.
      const timer = setInterval(() => this.wake(), 1000);
      timer.unref();
      const waiter = {
        resolve: (): void => {
          if (!hasRoom()) return void this.waiters.push(waiter);
          clearInterval(timer);
          resolve();
        },
        reject: (e: Error): void => {
          clearInterval(timer);
          reject(e);
        },
      };
      this.waiters.push(waiter);
    });
  }

  wake(): void {
    if (this.wasFull && this.fullReason() === null) {
      this.wasFull = false;
      this.log("info", "audit outbox has room again", { dir: this.dir, refusedTotal: this.refused });
    }
    for (const w of this.waiters.splice(0)) w.resolve();
  }

  close(): void {
    for (const w of this.waiters.splice(0)) w.reject(new Error("audit outbox is closed"));
  }
}
