import type { DecisionOutcome } from "../policy/index.js";
import { Semaphore, type LimitVerdict, type RateLimiter } from "../ratelimit/index.js";
import { Refusal } from "./errors.js";
import { UpstreamError, type ConnectUpstream, type UpstreamConnection } from "./upstream.js";

/** `_meta` key of the retry hint on a shed `tools/call` result (and `error.data` members otherwise). */
export const RATE_LIMIT_META_KEY = "dev.portcullis/rate_limit";

/**
 * The limits stage for one allowed decision: resolves when the request may go on, throws the
 * refusal (rate_limited, ratelimit_unavailable) with its retry hint otherwise.
 */
export async function checkRateLimits(
  limiter: RateLimiter | undefined,
  identity: { iss: string; sub: string },
  server: string,
  tool: string | null,
  decided: DecisionOutcome,
): Promise<void> {
  if (!limiter) return;
  const verdict: LimitVerdict = await limiter.check({ agent: identity, server, tool, policy: decided.decision.rate_limit });
  if (verdict.kind === "allowed") return;
  if (verdict.kind === "unavailable") throw shed("ratelimit_unavailable", verdict.retryAfterSeconds, "the shared rate-limit store is unreachable");
  const b = verdict.bucket;
  const name = b.source === "policy" ? `policy bucket ${b.key.slice(2)}` : b.source === "agent" ? "per-agent limit" : `per-tool limit of ${tool ?? "?"}`;
  throw shed("rate_limited", verdict.retryAfterSeconds, `${name} (${b.limit} per ${b.windowMs / 1000} s)`);
}

/** A shed request: the agent reads the hint and waits (`retry_after_seconds`). */
export function shed(code: "rate_limited" | "ratelimit_unavailable" | "upstream_busy", retryAfterSeconds: number, detail: string): Refusal {
  return new Refusal(code, `${detail}. Retry after ${retryAfterSeconds} s.`, { code, retry_after_seconds: retryAfterSeconds });
}

/**
 * `upstreams.NAME.maxConcurrent`: at most `slots.capacity` exchanges in flight to one upstream,
 * across all sessions. An exchange over the limit fails at once with `upstream_busy` rather than
 * queueing behind a saturated upstream (queues under overload only add latency, then time out).
 */
export function withConcurrencyLimit(conn: UpstreamConnection, slots: Semaphore, server: string): UpstreamConnection {
  const guarded = async <T>(run: () => Promise<T>): Promise<T> => {
    const release = slots.tryAcquire();
    if (!release) throw new UpstreamError("upstream_busy", `upstream ${server} has ${slots.capacity} calls in flight (upstreams.${server}.maxConcurrent)`);
    try {
      return await run();
    } finally {
      release();
    }
  };
  return {
    get era() {
      return conn.era;
    },
    initialize: (request, opts) => guarded(() => conn.initialize(request, opts)),
    request: (request, opts) => guarded(() => conn.request(request, opts)),
    // Notifications and the server→client stream hold no call slot.
    send: (message) => conn.send(message),
    listen: (onMessage, signal, onEnd, opts) => conn.listen(onMessage, signal, onEnd, opts),
    close: () => conn.close(),
    state: () => conn.state(),
    detach: () => conn.detach(),
  };
}

/** Wraps an upstream connection factory so each upstream holds at most its `maxConcurrent` calls. */
export function guardUpstreams(
  upstreams: Record<string, { maxConcurrent?: number }>,
  connect: ConnectUpstream,
): ConnectUpstream {
  const slots = new Map<string, Semaphore>();
  for (const [name, u] of Object.entries(upstreams)) if (u.maxConcurrent !== undefined) slots.set(name, new Semaphore(u.maxConcurrent));
  return (server, clientEra, resumeFrom) => {
    const conn = connect(server, clientEra, resumeFrom);
    const s = slots.get(server);
    return s ? withConcurrencyLimit(conn, s, server) : conn;
  };
}
