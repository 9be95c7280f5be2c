import type { RateLimitSpec } from "../policy/index.js";
import type { Clock } from "../shared/clock.js";
import type { Logger } from "../shared/log.js";
import { LocalWindowStore } from "./local-store.js";
import { RedisWindowStore } from "./redis-store.js";
import type { Bucket, LimitVerdict, WindowStore } from "./types.js";

export interface WindowLimit {
  limit: number;
  windowSeconds: number;
}

/** `rateLimits` of the config (gateway/config/schema.ts), as the limiter needs it. */
export interface RateLimitSettings {
  store: "local" | "redis";
  redis?: { url: string; keyPrefix: string; timeoutMs: number } | undefined;
  onRedisDown: "local" | "refuse";
  defaults: { perAgent?: WindowLimit | undefined; perTool?: WindowLimit | undefined };
}

/** What the limits stage knows about one request after an allow decision. */
export interface LimitRequest {
  agent: { iss: string; sub: string };
  server: string;
  /** The tool of a `tools/call`; per-tool defaults apply only to tool calls. */
  tool: string | null;
  /** The decision's `rate_limit`, if it named one. */
  policy?: RateLimitSpec | undefined;
}

/**
 * The buckets of one request and the store that counts them. Bucket keys are namespaced by
 * source, so a policy key can never collide with (or drain) a configured default's bucket.
 */
export class RateLimiter {
  constructor(
    private readonly store: WindowStore,
    private readonly defaults: RateLimitSettings["defaults"],
  ) {}

  buckets(req: LimitRequest): Bucket[] {
    const out: Bucket[] = [];
    if (req.policy) {
      out.push({ key: `p:${req.policy.key}`, source: "policy", limit: req.policy.limit, windowMs: req.policy.window_seconds * 1000 });
    }
    const a = this.defaults.perAgent;
    // iss + sub: two issuers may both have an "alice".
    if (a) out.push({ key: `a:${req.agent.iss}|${req.agent.sub}`, source: "agent", limit: a.limit, windowMs: a.windowSeconds * 1000 });
    const t = this.defaults.perTool;
    if (t && req.tool !== null) out.push({ key: `t:${req.server}/${req.tool}`, source: "tool", limit: t.limit, windowMs: t.windowSeconds * 1000 });
    return out;
  }

  async check(req: LimitRequest): Promise<LimitVerdict> {
    const buckets = this.buckets(req);
    if (buckets.length === 0) return { kind: "allowed" };
    const r = await this.store.hit(buckets);
    switch (r.kind) {
      case "allowed":
        return r;
      case "limited":
        return { kind: "limited", bucket: buckets[r.index]!, retryAfterSeconds: Math.max(1, Math.ceil(r.retryAfterMs / 1000)) };
      case "unavailable":
        return { kind: "unavailable", retryAfterSeconds: Math.max(1, Math.ceil(r.retryAfterMs / 1000)) };
    }
  }

  close(): Promise<void> {
    return this.store.close();
  }
}

/** Builds the limiter the config asks for; with Redis, waits briefly for the first connection. */
export async function createRateLimiter(settings: RateLimitSettings, deps: { clock: Pick<Clock, "now">; log: Logger }): Promise<RateLimiter> {
  const local = new LocalWindowStore(deps.clock);
  if (settings.store === "local") return new RateLimiter(local, settings.defaults);
  if (!settings.redis) throw new Error("rateLimits.store is redis but rateLimits.redis.url is not set");
  const store = await RedisWindowStore.start({
    url: settings.redis.url,
    keyPrefix: settings.redis.keyPrefix,
    timeoutMs: settings.redis.timeoutMs,
    onDown: settings.onRedisDown,
    fallback: local,
    log: deps.log,
    clock: deps.clock,
  });
  return new RateLimiter(store, settings.defaults);
}
