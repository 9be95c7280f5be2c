import type { Logger } from "./log.js";

/** A long-lived part of the gateway, as the composition root sees it once it has started. */
export interface Part {
  readonly name: string;
  /** Releases what the part holds; must not throw for a part that is already stopped. */
  stop(): Promise<void>;
  /** What the part can say about itself now (for status endpoints and readiness). */
  status(): Record<string, unknown>;
}

/**
 * The one lifecycle of the gateway's long-lived parts. Parts are added in the order they
 * started; `stop` stops them in the reverse order (what started last depends on what started
 * before it), each exactly once, and keeps stopping the rest when one fails. A start that fails
 * half-way stops what had started, so a failed `serve` leaves no timer or socket behind.
 */
export class Lifecycle {
  private readonly parts: Part[] = [];
  private stopping: Promise<void> | null = null;

  constructor(private readonly log: Logger) {}

  add<T extends Part>(part: T): T {
    if (this.stopping) throw new Error(`lifecycle: ${part.name} added after stop`);
    this.parts.push(part);
    return part;
  }

  status(): Record<string, Record<string, unknown>> {
    const out: Record<string, Record<string, unknown>> = {};
    for (const p of this.parts) {
      try {
        out[p.name] = p.status();
      } catch (err) {
        out[p.name] = { error: String(err) };
      }
    }
    return out;
  }

  stop(): Promise<void> {
    this.stopping ??= (async () => {
      for (const p of [...this.parts].reverse()) {
        try {
          await p.stop();
        } catch (err) {
          this.log("error", "stopping a part failed", { part: p.name, error: String(err) });
        }
      }
    })();
    return this.stopping;
  }
}
