import type { HrTime } from "@opentelemetry/api";
import { InMemorySpanExporter, type ReadableSpan } from "@opentelemetry/sdk-trace";
import { startTracing, tracesConfigSchema, type Tracing, type TracingOptions } from "../../../gateway/telemetry/index.js";

/** A clock that moves only when told: every span time in a test is exact. Starts at 1,000 s past the epoch. */
export class ManualHrClock {
  private nanos = 1_000n * 1_000_000_000n;
  now = (): HrTime => [Number(this.nanos / 1_000_000_000n), Number(this.nanos % 1_000_000_000n)];
  advanceMs(ms: number): void {
    this.nanos += BigInt(ms) * 1_000_000n;
  }
}

export interface TracingUnderTest {
  tracing: Tracing;
  clock: ManualHrClock;
  /** Flushes, then every span exported so far. */
  spans(): Promise<ReadableSpan[]>;
}

/** Tracing on (defaults of an empty `telemetry.traces`), exporting to memory, on a manual clock. */
export function memoryTracing(traces: Record<string, unknown> = {}, options: Omit<TracingOptions, "exporter" | "now"> = {}): TracingUnderTest {
  const exporter = new InMemorySpanExporter();
  const clock = new ManualHrClock();
  const tracing = startTracing(tracesConfigSchema.parse(traces), { env: {}, ...options, exporter, now: clock.now });
  return {
    tracing,
    clock,
    async spans() {
      await tracing.flush();
      return exporter.getFinishedSpans();
    },
  };
}

export function byName(spans: readonly ReadableSpan[], name: string): ReadableSpan {
  const found = spans.filter((s) => s.name === name);
  if (found.length !== 1) throw new Error(`expected one span named "${name}", found ${found.length} among ${spans.map((s) => s.name).join(", ")}`);
  return found[0]!;
}

export const AGENT_TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736";
export const AGENT_SPAN_ID = "00f067aa0ba902b7";
export const AGENT_TRACEPARENT = `00-${AGENT_TRACE_ID}-${AGENT_SPAN_ID}-01`;
