/**
 * A counting semaphore without a queue: `tryAcquire` fails at once when every slot is taken.
 * Used for `upstreams.NAME.maxConcurrent`: under overload the gateway sheds with a clear error
 * instead of piling calls onto an upstream that is already saturated.
 */
export class Semaphore {
  private used = 0;

  constructor(readonly capacity: number) {}

  /** A release function, or null when no slot is free. The release is idempotent. */
  tryAcquire(): (() => void) | null {
    if (this.used >= this.capacity) return null;
    this.used++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.used--;
    };
  }

  get inUse(): number {
    return this.used;
  }
}
