import type { AuditOutcome, AuditRecord } from "../audit/index.js";
import type { DecisionOutcome } from "../policy/index.js";
import { Semaphore, type LimitVerdict, type RateLimiter } from "../ratelimit/index.js";
import { rpcError, rpcResult, RpcCode, type JsonRpcId, type JsonRpcResponse } from "./jsonrpc.js";
import { UpstreamError, type UpstreamConnection } from "./upstream.js";

/**
 * The limits stage's refusals, with their JSON-RPC code (answered in band, HTTP 200, like the
 * policy's denials: the request was valid, the gateway sheds it). docs/errors.md documents each;
 * test/unit/ratelimit/errors-documented.test.ts keeps them in step.
 */
export const LIMIT_ERRORS = {
  rate_limited: { rpc: RpcCode.InternalError, message: "Rate limit exceeded" },
  ratelimit_unavailable: { rpc: RpcCode.InternalError, message: "Rate limiter unavailable" },
  upstream_busy: { rpc: RpcCode.InternalError, message: "Upstream MCP server is at its concurrency limit" },
} as const;
export type LimitErrorCode = keyof typeof LIMIT_ERRORS;

/** `_meta` key of the retry hint on a shed `tools/call` result. */
export const RATE_LIMIT_META_KEY = "dev.portcullis/rate_limit";
const DECISION_META_KEY = "dev.portcullis/decision";

export interface Shed {
  code: LimitErrorCode;
  retryAfterSeconds: number;
  /** What was full, for the agent and the audit: "policy bucket alice:demo:echo (60 per 60 s)". */
  detail: string;
}

/** The limits stage for one allowed decision: null when the request may go on. */
export async function checkRateLimits(
  limiter: RateLimiter | undefined,
  identity: { iss: string; sub: string },
  server: string,
  tool: string | null,
  decided: DecisionOutcome,
): Promise<Shed | null> {
  if (!limiter) return null;
  const verdict: LimitVerdict = await limiter.check({ agent: identity, server, tool, policy: decided.decision.rate_limit });
  if (verdict.kind === "allowed") return null;
  if (verdict.kind === "unavailable") {
    return { code: "ratelimit_unavailable", retryAfterSeconds: verdict.retryAfterSeconds, detail: "the shared rate-limit store is unreachable" };
  }
  const b = verdict.bucket;
  const name = b.source === "policy" ? `policy bucket ${b.key.slice(2)}` : b.source === "agent" ? "per-agent limit" : `per-tool limit of ${tool ?? "?"}`;
  return { code: "rate_limited", retryAfterSeconds: verdict.retryAfterSeconds, detail: `${name} (${b.limit} per ${b.windowMs / 1000} s)` };
}

/** A shed upstream exchange (maxConcurrent reached) as a Shed, else null. */
export function shedFromError(err: unknown): Shed | null {
  if (err instanceof UpstreamError && err.code === "upstream_busy") return { code: "upstream_busy", retryAfterSeconds: 1, detail: err.message };
  return null;
}

/**
 * The agent's answer and the audit outcome for a shed request. A `tools/call` gets a
 * `CallToolResult` with `isError` (the model can read the hint and wait); other methods get a
 * JSON-RPC error carrying the same hint in `error.data`.
 */
export function shedAnswer(id: JsonRpcId, isToolCall: boolean, shed: Shed, record: AuditRecord): { outcome: AuditOutcome; answer: JsonRpcResponse } {
  record.fail(shed.code, shed.detail);
  const message = `${LIMIT_ERRORS[shed.code].message}: ${shed.detail}. Retry after ${shed.retryAfterSeconds} s.`;
  const hint = { code: shed.code, retry_after_seconds: shed.retryAfterSeconds };
  const answer = isToolCall
    ? rpcResult(id, {
        content: [{ type: "text", text: message }],
        isError: true,
        _meta: { [RATE_LIMIT_META_KEY]: hint, [DECISION_META_KEY]: { decision_id: record.decisionId, outcome: "rate_limited" } },
      })
    : rpcError(id, LIMIT_ERRORS[shed.code].rpc, message, { ...hint, decision_id: record.decisionId });
  return { outcome: "rate_limited", answer };
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
    initialize: (request, opts) => guarded(() => conn.initialize(request, opts)),
    request: (request, opts) => guarded(() => conn.request(request, opts)),
    // Notifications and the server→client stream hold no call slot.
    send: (message) => conn.send(message),
    listen: (onMessage, signal, onEnd) => conn.listen(onMessage, signal, onEnd),
    close: () => conn.close(),
  };
}

/** Wraps an upstream connection factory so each upstream holds at most its `maxConcurrent` calls. */
export function guardUpstreams(
  upstreams: Record<string, { maxConcurrent?: number }>,
  connect: (server: string) => UpstreamConnection,
): (server: string) => UpstreamConnection {
  const slots = new Map<string, Semaphore>();
  for (const [name, u] of Object.entries(upstreams)) if (u.maxConcurrent !== undefined) slots.set(name, new Semaphore(u.maxConcurrent));
  return (server) => {
    const conn = connect(server);
    const s = slots.get(server);
    return s ? withConcurrencyLimit(conn, s, server) : conn;
  };
}
