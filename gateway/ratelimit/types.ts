/**
 * The limits stage (DESIGN.md: decision → limits → forward). A request is checked against every
 * bucket that applies to it at once: all are counted, or none is, so a call refused by one bucket
 * never eats the quota of another.
 */

/** Where a bucket comes from: the decision's `rate_limit`, or a configured default. */
export type BucketSource = "policy" | "agent" | "tool";

export interface Bucket {
  /** Store key, already namespaced by source (see limiter.ts). */
  key: string;
  source: BucketSource;
  limit: number;
  windowMs: number;
}

/** The answer of a store for one request's buckets. */
export type HitResult =
  | { kind: "allowed" }
  /** `index` is the first bucket that is full; it frees up in `retryAfterMs`. */
  | { kind: "limited"; index: number; retryAfterMs: number }
  /** The shared store cannot be asked and `onRedisDown: refuse` is configured. */
  | { kind: "unavailable"; retryAfterMs: number };

/**
 * A counter store: fixed windows that start at a bucket's first hit and last `windowMs`
 * (the store's own clock decides, so replicas with skewed clocks agree).
 */
export interface WindowStore {
  hit(buckets: readonly Bucket[]): Promise<HitResult>;
  close(): Promise<void>;
}

/** Why a request was not let through; the proxy turns it into the agent's answer. */
export type LimitVerdict =
  | { kind: "allowed" }
  | { kind: "limited"; bucket: Bucket; retryAfterSeconds: number }
  | { kind: "unavailable"; retryAfterSeconds: number };
