import type { Clock, IdSource } from "../shared/clock.js";
import { rfc3339Nano } from "../shared/clock.js";
import { capString } from "./bounds.js";
import type { UnchainedAuditEvent } from "./chain.js";
import type { AuditOutcome } from "./types.js";

/**
 * Per-source folding of refusals (docs/audit.md "Refusals"): events with outcome
 * `unauthenticated` or `invalid` cost a client nothing to cause, so beyond
 * `perSourcePerMinute` per source (`requested_by`; null is one source) in a minute they are
 * counted instead of written, and one summary event per source and minute stands for them.
 * Nothing is dropped: the summaries' `folded.count` plus the events written add up to every
 * refusal recorded.
 */
export interface RefusalFoldingOptions {
  /** 0: no folding (every refusal is written). */
  perSourcePerMinute: number;
  /** For the summary events: the instance's labels, clock, ids and active bundle. */
  context: {
    instanceId: string;
    version: string;
    clock: Clock;
    ids: IdSource;
    bundleName?: string;
    bundleRevision?: () => string | null;
  };
}

export const REFUSALS_FOLDED_CODE = "refusals_folded";
const WINDOW_MS = 60_000;
/** Sources tracked at once; refusals from further sources share one bucket until windows end. */
export const MAX_TRACKED_SOURCES = 10_000;
/** Distinct `error.code`s counted per summary; more are counted under "other". */
const MAX_CODES = 32;
const OVERFLOW = Symbol("other sources");

type SourceKey = string | null | typeof OVERFLOW;

interface Bucket {
  source: SourceKey;
  windowStart: number;
  /** Refusals seen in this window, written or folded. */
  seen: number;
  folded: number;
  first: string;
  last: string;
  outcome: AuditOutcome | null;
  codes: Map<string, number>;
  server: string | null;
  method: string | null;
  uniform: boolean;
}

export function isRefusal(outcome: AuditOutcome): boolean {
  return outcome === "unauthenticated" || outcome === "invalid";
}

export class RefusalFolder {
  private readonly limit: number;
  private readonly ctx: RefusalFoldingOptions["context"];
  private readonly buckets = new Map<SourceKey, Bucket>();
  /** Buckets whose window ended with folded events, waiting for their summary to be written. */
  private readonly ended: Bucket[] = [];
  private foldedTotal = 0;
  private summarizedTotal = 0;
  private lastFullSweep = Number.NEGATIVE_INFINITY;

  constructor(opts: RefusalFoldingOptions) {
    this.limit = Math.max(0, Math.floor(opts.perSourcePerMinute));
    this.ctx = opts.context;
  }

  get enabled(): boolean {
    return this.limit > 0;
  }

  /** Whether anything is tracked (the sweep timer runs only then). */
  get active(): boolean {
    return this.buckets.size > 0 || this.ended.length > 0;
  }

  /** True when `event` is folded: counted here, not to be written on its own. */
  fold(event: UnchainedAuditEvent): boolean {
    if (this.limit === 0 || !isRefusal(event.outcome)) return false;
    const now = this.ctx.clock.now();
    let key: SourceKey = event.requested_by ?? null;
    let bucket = this.buckets.get(key);
    if (bucket !== undefined && now - bucket.windowStart >= WINDOW_MS) {
      this.close(bucket);
      bucket = undefined;
    }
    if (bucket === undefined) {
      // A full map is swept at most once a second: a flood of new sources must not make every
      // refusal scan ten thousand buckets.
      if (this.buckets.size >= MAX_TRACKED_SOURCES && now - this.lastFullSweep >= 1000) {
        this.lastFullSweep = now;
        this.expire(now);
      }
      if (this.buckets.size >= MAX_TRACKED_SOURCES) {
        key = OVERFLOW;
        bucket = this.buckets.get(OVERFLOW);
        if (bucket !== undefined && now - bucket.windowStart >= WINDOW_MS) {
          this.close(bucket);
          bucket = undefined;
        }
      }
    }
    if (bucket === undefined) {
      bucket = { source: key, windowStart: now, seen: 0, folded: 0, first: "", last: "", outcome: null, codes: new Map(), server: null, method: null, uniform: true };
      this.buckets.set(key, bucket);
    }
    bucket.seen++;
    if (bucket.seen <= this.limit) return false;
    this.add(bucket, event);
    return true;
  }

  /** Summaries due now: windows that ended (every pending one when `all`, at close). */
  due(all = false): UnchainedAuditEvent[] {
    this.expire(all ? Number.POSITIVE_INFINITY : this.ctx.clock.now());
    const ended = this.ended.splice(0, this.ended.length);
    return ended.map((b) => this.summary(b));
  }

  stats(): { folded: number; summarized: number } {
    return { folded: this.foldedTotal, summarized: this.summarizedTotal };
  }

  private add(b: Bucket, e: UnchainedAuditEvent): void {
    b.folded++;
    this.foldedTotal++;
    if (b.folded === 1) b.first = e.timestamp;
    b.last = e.timestamp;
    b.outcome = b.outcome === null || b.outcome === e.outcome ? e.outcome : "invalid";
    const code = capString(e.error?.code ?? "none", 64);
    const slot = b.codes.has(code) || b.codes.size < MAX_CODES ? code : "other";
    b.codes.set(slot, (b.codes.get(slot) ?? 0) + 1);
    if (b.folded === 1) {
      b.server = e.mcp.server;
      b.method = e.mcp.method;
    } else if (b.server !== e.mcp.server || b.method !== e.mcp.method) {
      b.uniform = false;
    }
  }

  private close(b: Bucket): void {
    this.buckets.delete(b.source);
    if (b.folded > 0) this.ended.push(b);
  }

  private expire(now: number): void {
    for (const b of [...this.buckets.values()]) if (now - b.windowStart >= WINDOW_MS) this.close(b);
  }

  private summary(b: Bucket): UnchainedAuditEvent {
    this.summarizedTotal += b.folded;
    const ctx = this.ctx;
    const revision = ctx.bundleRevision?.() ?? null;
    const source = b.source === OVERFLOW || b.source === null ? null : capString(b.source, 256);
    const from = b.source === OVERFLOW ? "other sources" : (source ?? "an unknown source");
    return {
      decision_id: ctx.ids(),
      timestamp: rfc3339Nano(ctx.clock.now()),
      path: "mcp/authz/decision",
      labels: { id: capString(ctx.instanceId, 256), version: capString(ctx.version, 256) },
      bundles: revision === null ? {} : { [ctx.bundleName ?? "mcp-authz"]: { revision: capString(revision, 256) } },
      input: null,
      result: null,
      erased: [],
      masked: [],
      outcome: b.outcome ?? "invalid",
      error: { code: REFUSALS_FOLDED_CODE, message: `${b.folded} refusals from ${from} folded` },
      agent: { sub: null, client_id: null },
      // The request's server and method when every folded refusal had the same ones.
      mcp: { server: b.uniform ? (b.server ?? "") : "", method: b.uniform ? (b.method ?? "") : "", tool: null },
      requested_by: source,
      latency_ms: { decision: 0, upstream: null, total: 0 },
      folded: { count: b.folded, first: b.first, last: b.last, codes: Object.fromEntries([...b.codes].sort(([a], [c]) => (a < c ? -1 : a > c ? 1 : 0))) },
    };
  }
}
