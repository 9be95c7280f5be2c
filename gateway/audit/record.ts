import type { Clock, IdSource } from "../shared/clock.js";
import { elapsedMs, rfc3339Nano } from "../shared/clock.js";
import type { DecisionOutcome, PolicyInput } from "../policy/index.js";
import { applyMasks } from "./mask.js";
import { summarizeToolResult } from "./result-summary.js";
import { sensitiveArgumentPointers, type KeyMatcher } from "./sensitive-keys.js";
import type { AuditEvent, AuditOutcome, ToolResultSummary } from "./types.js";

/** What every record of one gateway instance shares; built once at the composition root. */
export interface AuditContext {
  instanceId: string;
  version: string;
  clock: Clock;
  ids: IdSource;
  /** Cap on `tool_result.content`, bytes. */
  resultCapBytes: number;
  /** Key of `bundles` in the event (default "mcp-authz"). */
  bundleName?: string;
  /** JSON pointers masked in every event on top of the decision's own `mask` (may be empty). */
  alwaysMask?: string[];
  /** Argument keys masked wherever they occur (sensitiveKeyMatcher); null or absent: none. */
  maskKeys?: KeyMatcher | null;
  /** The active bundle revision, for events whose decision never ran (unauthenticated). */
  bundleRevision?: () => string | null;
}

export interface AuditRecordInit {
  server: string;
  method: string;
  requestId?: string | number | null;
  sessionId?: string | null;
  /** Address of the client. */
  requestedBy?: string | null;
}

const DEFAULT_BUNDLE = "mcp-authz";

/**
 * The audit event of one request, opened on arrival and filled in by each stage
 * (STYLE.md pattern 9). The pipeline calls `finish` in exactly one `finally`, so every exit path
 * yields exactly one event; `finish` throws on a second call to make a double emit loud.
 *
 * Stage calls that arrive after `finish` (a late upstream answer after a timeout) are ignored:
 * the event is already out, and the response path must not throw because of it.
 */
export class AuditRecord {
  readonly decisionId: string;
  private readonly ctx: AuditContext;
  private readonly init: AuditRecordInit;
  private readonly timestamp: string;
  private readonly startNs: bigint;
  private done = false;

  private agentSub: string | null = null;
  private agentClientId: string | null = null;
  private input: unknown = null;
  private result: unknown = null;
  private masked: string[] = [];
  private bundles: Record<string, { revision: string }> = {};
  private decisionMs = 0;
  private tool: string | null = null;
  private resource: string | null = null;
  private prompt: string | null = null;
  private requestSessionId: string | null = null;
  private error: { code: string; message: string } | undefined;
  private upstreamStartNs: bigint | null = null;
  private upstreamEndNs: bigint | null = null;
  private summary: ToolResultSummary | undefined;
  private decided = false;
  private shadow: AuditEvent["shadow"];

  constructor(ctx: AuditContext, init: AuditRecordInit) {
    this.ctx = ctx;
    this.init = init;
    // Read the clocks first: the timestamp is the arrival time and total latency starts here.
    this.startNs = ctx.clock.monotonicNs();
    this.timestamp = rfc3339Nano(ctx.clock.now());
    this.decisionId = ctx.ids();
  }

  get finished(): boolean {
    return this.done;
  }

  agent(a: { sub: string; client_id: string | null }): void {
    if (this.done) return;
    this.agentSub = a.sub;
    this.agentClientId = a.client_id;
  }

  /**
   * Records the decision: the masked input, the raw result, the bundle revision and the
   * evaluation time. One decision per record: the event is one decision in OPA's shape.
   */
  decision(input: PolicyInput, outcome: DecisionOutcome): void {
    if (this.done) return;
    if (this.decided) throw new Error(`audit record ${this.decisionId}: decision recorded twice`);
    this.decided = true;

    const pointers = [
      ...(outcome.decision.mask ?? []),
      ...(this.ctx.alwaysMask ?? []),
      ...sensitiveArgumentPointers(input.request.arguments, this.ctx.maskKeys ?? null),
    ];
    const m = applyMasks({ input, result: outcome.raw ?? null }, pointers);
    this.input = m.input;
    this.result = m.result;
    this.masked = m.masked;
    this.bundles = { [this.ctx.bundleName ?? DEFAULT_BUNDLE]: { revision: outcome.revision } };
    this.decisionMs = outcome.elapsedMs;
    if (outcome.shadow !== undefined) this.shadow = { ...outcome.shadow };
    this.tool = input.request.tool;
    this.resource = input.request.resource;
    this.prompt = input.request.prompt;
    this.requestSessionId = input.request.session_id;
    // The identity stage normally called agent() already; this keeps the event whole if not.
    if (this.agentSub === null) this.agent({ sub: input.agent.sub, client_id: input.agent.client_id });
    if (outcome.error) this.recordError(outcome.error.code, outcome.error.message);
  }

  upstreamStarted(): void {
    if (this.done) return;
    this.upstreamStartNs = this.ctx.clock.monotonicNs();
  }

  upstreamFinished(): void {
    if (this.done || this.upstreamStartNs === null) return;
    this.upstreamEndNs = this.ctx.clock.monotonicNs();
  }

  toolResult(result: unknown): void {
    if (this.done) return;
    this.summary = summarizeToolResult(result, this.ctx.resultCapBytes);
  }

  fail(code: string, message: string): void {
    if (this.done) return;
    this.recordError(code, message);
  }

  finish(outcome: AuditOutcome): AuditEvent {
    if (this.done) throw new Error(`audit record ${this.decisionId}: finished twice`);
    this.done = true;
    const endNs = this.ctx.clock.monotonicNs();
    // An upstream that never answered (timeout, abort) still cost the time we waited for it.
    const upstream =
      this.upstreamStartNs === null ? null : elapsedMs(this.upstreamStartNs, this.upstreamEndNs ?? endNs);

    // Built in contract 4's field order so the JSON reads like the documented example.
    return {
      decision_id: this.decisionId,
      timestamp: this.timestamp,
      path: "mcp/authz/decision",
      labels: { id: this.ctx.instanceId, version: this.ctx.version },
      bundles: this.decided ? this.bundles : this.activeBundles(),
      input: this.input,
      result: this.result,
      erased: [],
      masked: this.masked,
      outcome,
      ...(this.error ? { error: this.error } : {}),
      agent: { sub: this.agentSub, client_id: this.agentClientId },
      mcp: {
        server: this.init.server,
        method: this.init.method,
        tool: this.tool,
        resource: this.resource,
        prompt: this.prompt,
        session_id: this.init.sessionId ?? this.requestSessionId,
        request_id: this.init.requestId ?? null,
      },
      ...(this.summary ? { tool_result: this.summary } : {}),
      requested_by: this.init.requestedBy ?? null,
      latency_ms: { decision: this.decisionMs, upstream, total: elapsedMs(this.startNs, endNs) },
      ...(this.shadow ? { shadow: this.shadow } : {}),
    };
  }

  /** Without a decision the event still names the bundle that was active (SIEM correlation). */
  private activeBundles(): Record<string, { revision: string }> {
    const revision = this.ctx.bundleRevision?.() ?? null;
    return revision === null ? {} : { [this.ctx.bundleName ?? DEFAULT_BUNDLE]: { revision } };
  }

  /** The first failure is kept: later ones are usually its consequences, not the cause. */
  private recordError(code: string, message: string): void {
    if (this.error === undefined) this.error = { code, message };
  }
}
