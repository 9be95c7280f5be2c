import { randomUUID } from "node:crypto";

/**
 * Time and ids are injected so tests can pin them; nothing below the composition root calls
 * Date.now() or randomUUID() directly.
 */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  /** Monotonic nanoseconds, for latency measurement only. */
  monotonicNs(): bigint;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  monotonicNs: () => process.hrtime.bigint(),
};

export type IdSource = () => string;
export const randomIds: IdSource = () => randomUUID();

/** RFC 3339 UTC with nanosecond precision, as OPA's decision logs write it. */
export function rfc3339Nano(epochMs: number, subMsNs = 0): string {
  const iso = new Date(epochMs).toISOString(); // 2026-11-24T10:00:00.123Z
  const ns = String(subMsNs % 1_000_000).padStart(6, "0");
  return `${iso.slice(0, 23)}${ns}Z`;
}

/** Milliseconds between two monotonic readings, rounded to microseconds. */
export function elapsedMs(fromNs: bigint, toNs: bigint): number {
  return Math.round(Number(toNs - fromNs) / 1000) / 1000;
}
