import { AuditRecord, type AuditEvent, type AuditOutcome } from "../../gateway/audit/index.js";
import type { PolicyInput } from "../../gateway/policy/index.js";
import type { Clock } from "../../gateway/shared/clock.js";

/** One decision as the console tests want it; everything else is what the pipeline would fill in. */
export interface DecisionSpec {
  /** null: a request without a valid token (outcome unauthenticated). */
  agent: string | null;
  server: string;
  /** Default tools/call. */
  method?: string;
  tool?: string | null;
  outcome: AuditOutcome;
  reasons?: string[];
  message?: string;
  error?: { code: string; message: string };
  arguments?: Record<string, unknown>;
  /** Epoch ms of the request's arrival (the event's timestamp). */
  at: number;
  /** Tool result for an allowed call (default a short text result). */
  result?: unknown;
  revision?: string;
}

class FixedClock implements Clock {
  private ns = 1_000_000_000n;
  constructor(private readonly ms: number) {}
  now(): number {
    return this.ms;
  }
  monotonicNs(): bigint {
    this.ns += 700_000n; // each reading 0.7 ms later: every stage takes a little time
    return this.ns;
  }
}

let ids = 0;

/**
 * A complete audit event built by the gateway's own AuditRecord, the way the pipeline builds one
 * for each outcome (so the console is tested on the real event shape, masking and bounds included).
 */
export function auditEvent(spec: DecisionSpec): AuditEvent {
  const method = spec.method ?? "tools/call";
  const tool = spec.tool === undefined ? (method === "tools/call" ? "read_file" : null) : spec.tool;
  const rec = new AuditRecord(
    {
      instanceId: "gw-console-test",
      version: "0.0.0-test",
      clock: new FixedClock(spec.at),
      ids: () => `00000000-0000-4000-8000-${String(++ids).padStart(12, "0")}`,
      resultCapBytes: 256,
      bundleRevision: () => spec.revision ?? "rev-console-1",
    },
    { server: spec.server, method, requestId: ids, requestedBy: "127.0.0.1", sessionId: "sess-console" },
  );
  if (spec.outcome === "unauthenticated" || spec.agent === null) {
    rec.fail(spec.error?.code ?? "token_expired", spec.error?.message ?? "jwt expired");
    return rec.finish(spec.outcome);
  }
  rec.agent({ sub: spec.agent, client_id: `${spec.agent}-cli` });
  const allow = spec.outcome === "allowed" || spec.outcome === "rate_limited" || spec.outcome === "error";
  const decision = {
    allow,
    reasons: spec.reasons ?? [],
    ...(spec.message !== undefined ? { message: spec.message } : {}),
    ...(spec.outcome === "rate_limited" ? { rate_limit: { key: `${spec.agent}:${tool}`, limit: 5, window_seconds: 60 } } : {}),
  };
  rec.decision(policyInput(spec, method, tool), { decision, raw: decision, revision: spec.revision ?? "rev-console-1", elapsedMs: 0.04 });
  if (spec.error) rec.fail(spec.error.code, spec.error.message);
  if (spec.outcome === "allowed") {
    rec.upstreamStarted();
    rec.upstreamFinished();
    rec.toolResult(spec.result ?? { content: [{ type: "text", text: "ok" }] });
  }
  return rec.finish(spec.outcome);
}

function policyInput(spec: DecisionSpec, method: string, tool: string | null): PolicyInput {
  const sub = spec.agent ?? "";
  return {
    agent: { sub, iss: "https://idp.example.com/", client_id: `${sub}-cli`, scopes: ["mcp:tools"], roles: ["analyst"], claims: { sub } },
    request: {
      method,
      server: spec.server,
      tool,
      arguments: spec.arguments ?? {},
      resource: null,
      prompt: null,
      session_id: "sess-console",
      protocol_version: "2025-11-25",
      source_ip: "127.0.0.1",
      time: new Date(spec.at).toISOString(),
    },
    tool: null,
  };
}
