import type { Clock, IdSource } from "../shared/clock.js";
import { elapsedMs, rfc3339Nano } from "../shared/clock.js";
import type { DecisionOutcome, PolicyInput } from "../policy/index.js";
import { asText, boundedJson, capString, inspectJson, NORMAL_CAPS, TIGHT_CAPS, type StringCaps } from "./bounds.js";
import { eventBudget, fitEvent, setTruncated } from "./event-budget.js";
import type { AuditLogger } from "./logger.js";
import { applyMasks } from "./mask.js";
import { reportMaskMisses } from "./mask-misses.js";
import { summarizeToolResult } from "./result-summary.js";
import { sensitiveArgumentPointers, type KeyMatcher } from "./sensitive-keys.js";
import type { AuditEvent, AuditOutcome, ResultPolicySummary, ToolResultSummary } from "./types.js";

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
  /** `audit.maxEventBytes`: no event's JSONL line, chain included, is longer (default 512 KiB). */
  maxEventBytes?: number;
  /** Warnings of the audit stage (a mask pointer that matched nothing). */
  log?: AuditLogger;
}

/** What is known of the request; every field may also come later through `describe`. */
export interface AuditRecordInit {
  server?: string;
  /** The JSON-RPC method; `mcp.method` is "" while it is unknown (a body that did not parse). */
  method?: string;
  requestId?: string | number | null;
  sessionId?: string | null;
  /** Address of the client. */
  requestedBy?: string | null;
}

const DEFAULT_BUNDLE = "mcp-authz";
/** REDACTED with its quotes is 14 bytes; a masked value may have been shorter than that. */
const MASK_BOUND = 16;

/**
 * The audit event of one request, opened on arrival and filled in by each stage
 * (STYLE.md pattern 9). The pipeline calls `finish` in exactly one `finally`, so every exit path
 * yields exactly one event; `finish` throws on a second call to make a double emit loud.
 *
 * Stage calls that arrive after `finish` (a late upstream answer after a timeout) are ignored:
 * the event is already out, and the response path must not throw because of it.
 *
 * `finish` itself never throws otherwise, and what it returns is bounded by construction
 * (docs/audit.md "Size limits"): plain JSON data that canonical JSON encodes, whose JSONL line
 * with its chain stays within `maxEventBytes`.
 */
export class AuditRecord {
  readonly decisionId: string;
  private readonly ctx: AuditContext;
  private readonly timestamp: string;
  private readonly startNs: bigint;
  private done = false;

  private server = "";
  private method = "";
  private requestId: string | number | null = null;
  private sessionId: string | null = null;
  private requestedBy: string | null = null;

  private agentSub: string | null = null;
  private agentClientId: string | null = null;
  private input: unknown = null;
  private result: unknown = null;
  /** Upper bounds of the JSON size of `input` and `result` as recorded (bounds.ts). */
  private inputBound = 4;
  private resultBound = 4;
  /** Parts of input/result already cut by the nesting cap. */
  private cutSections: string[] = [];
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
  private listed: { visible: string[]; hidden: string[] } | undefined;
  private resultPolicySummary: ResultPolicySummary | undefined;
  private approvalNote: { id: string; state: string } | undefined;
  private federationNote: { endpoint: string; name?: string; members?: Record<string, string> } | undefined;
  private shadow: AuditEvent["shadow"];

  constructor(ctx: AuditContext, init: AuditRecordInit = {}) {
    this.ctx = ctx;
    // Read the clocks first: the timestamp is the arrival time and total latency starts here.
    this.startNs = ctx.clock.monotonicNs();
    this.timestamp = rfc3339Nano(ctx.clock.now());
    this.decisionId = ctx.ids();
    this.describe(init);
  }

  get finished(): boolean {
    return this.done;
  }

  /**
   * Fills in what the record was opened without (it opens on arrival, before the body is
   * parsed or the session found). Callable any number of times; a field left undefined keeps
   * its value. Ignored after finish.
   */
  describe(fields: AuditRecordInit): void {
    if (this.done) return;
    if (fields.server !== undefined) this.server = asText(fields.server);
    if (fields.method !== undefined) this.method = asText(fields.method);
    if (fields.requestId !== undefined) this.requestId = typeof fields.requestId === "number" || fields.requestId === null ? fields.requestId : asText(fields.requestId);
    if (fields.sessionId !== undefined) this.sessionId = fields.sessionId === null ? null : asText(fields.sessionId);
    if (fields.requestedBy !== undefined) this.requestedBy = fields.requestedBy === null ? null : asText(fields.requestedBy);
  }

  agent(a: { sub: string; client_id: string | null }): void {
    if (this.done) return;
    this.agentSub = asText(a.sub);
    this.agentClientId = a.client_id === null ? null : asText(a.client_id);
  }

  /**
   * Records the decision: the masked input, the raw result, the bundle revision and the
   * evaluation time. One decision per record: the event is one decision in OPA's shape.
   */
  decision(input: PolicyInput, outcome: DecisionOutcome): void {
    if (this.done) return;
    this.claimDecision();
    this.recordInput(input, outcome.raw ?? null, outcome.decision?.mask ?? [], outcome.revision, outcome.elapsedMs);
    if (outcome.shadow !== undefined) this.shadow = { ...outcome.shadow };
    if (outcome.error) this.recordError(outcome.error.code, outcome.error.message);
  }

  /**
   * The input of a list request (tools/list, …) for its single event: masked with
   * `alwaysMask` and the sensitive keys (the per-item decisions' masks concern the items),
   * with the bundle revision and the total evaluation time of the items. `result` stays null.
   * Instead of `decision`, not beside it.
   */
  decisionInput(input: PolicyInput, revision: string, elapsedMs: number): void {
    if (this.done) return;
    this.claimDecision();
    this.recordInput(input, null, [], revision, elapsedMs);
  }

  /** A list request's one event: the item names policy let the agent see and those it hid. */
  list(visible: readonly string[], hidden: readonly string[]): void {
    if (this.done) return;
    if (this.listed) throw new Error(`audit record ${this.decisionId}: list recorded twice`);
    this.listed = { visible: [...visible], hidden: [...hidden] };
  }

  upstreamStarted(): void {
    if (this.done) return;
    this.upstreamStartNs = this.ctx.clock.monotonicNs();
  }

  upstreamFinished(): void {
    if (this.done || this.upstreamStartNs === null) return;
    this.upstreamEndNs = this.ctx.clock.monotonicNs();
  }

  /** What mcp/authz/result decided about the tool result (pointers and sizes only). */
  resultPolicy(summary: ResultPolicySummary): void {
    if (this.done) return;
    this.resultPolicySummary = summary;
  }

  /** A federated endpoint's part: its path, the name used, or each member's status (merged with what was noted before). */
  federation(note: { endpoint: string; name?: string; members?: Record<string, string> }): void {
    if (this.done) return;
    const members = note.members ?? this.federationNote?.members;
    const capped = members ? Object.fromEntries(Object.entries(members).slice(0, 64).map(([k, v]) => [asText(k).slice(0, 64), asText(v).slice(0, 128)])) : undefined;
    const name = note.name ?? this.federationNote?.name;
    this.federationNote = { endpoint: asText(note.endpoint).slice(0, 128), ...(name !== undefined && { name: asText(name).slice(0, 256) }), ...(capped && { members: capped }) };
  }

  /** The approval a held call waits on, or the one it used. */
  approval(note: { id: string; state: string }): void {
    if (this.done) return;
    this.approvalNote = { id: asText(note.id).slice(0, 128), state: asText(note.state).slice(0, 32) };
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
    const upstream = this.upstreamStartNs === null ? null : elapsedMs(this.upstreamStartNs, this.upstreamEndNs ?? endNs);
    const latency = { decision: this.decisionMs, upstream, total: elapsedMs(this.startNs, endNs) };
    try {
      return this.bounded(outcome, latency);
    } catch (err) {
      // Not expected to happen (every value is plain JSON by now); an event that says so beats
      // a request whose audit path threw.
      return this.skeleton(outcome, latency, `could not be built: ${asText(err instanceof Error ? err.message : err)}`);
    }
  }

  private bounded(outcome: AuditOutcome, latency: AuditEvent["latency_ms"]): AuditEvent {
    const truncated = new Set(this.cutSections);
    const event = this.build(outcome, latency, NORMAL_CAPS, truncated);
    const budget = eventBudget(this.ctx.maxEventBytes);
    // The hot path: an upper bound of the size, from bounds kept as the record was filled in,
    // decides; only an event that may be too large is encoded here.
    const rest = inspectJson({ ...event, input: null, result: null }, 8);
    if (rest.clean && this.inputBound + this.resultBound + rest.bound <= budget) return event;
    if (fitEvent(event, budget, truncated) <= budget) return event;
    // Every large part is gone and it is still too large: the strings outside input are what is
    // left, so they get the tight caps (the large parts stay as already replaced).
    const tight = this.build(outcome, latency, TIGHT_CAPS, truncated);
    tight.input = event.input;
    tight.result = event.result;
    tight.masked = event.masked;
    if (event.tool_result) tight.tool_result = event.tool_result;
    if (event.list) tight.list = event.list;
    if (fitEvent(tight, budget, truncated) <= budget) return tight;
    return this.skeleton(outcome, latency, "over audit.maxEventBytes after every part was cut");
  }

  /** The event in contract 4's field order, strings outside input/result capped at `caps`. */
  private build(outcome: AuditOutcome, latency: AuditEvent["latency_ms"], caps: StringCaps, truncated: Set<string>): AuditEvent {
    const cap = (pointer: string, s: string, max = caps.name): string => {
      const c = capString(s, max);
      if (c !== s) truncated.add(pointer);
      return c;
    };
    const capOrNull = (pointer: string, s: string | null): string | null => (s === null ? null : cap(pointer, s));
    const requestId = this.requestId;
    const sessionId = this.sessionId ?? this.requestSessionId;
    const bundles = this.decided ? this.bundles : this.activeBundles();
    const cappedBundles: Record<string, { revision: string }> = {};
    for (const [name, b] of Object.entries(bundles)) cappedBundles[cap("/bundles", name)] = { revision: cap("/bundles", b.revision) };
    const event: AuditEvent = {
      decision_id: this.decisionId,
      timestamp: this.timestamp,
      path: "mcp/authz/decision",
      labels: { id: cap("/labels/id", this.ctx.instanceId), version: cap("/labels/version", this.ctx.version) },
      bundles: cappedBundles,
      input: this.input,
      result: this.result,
      erased: [],
      masked: this.masked,
      outcome,
      ...(this.error ? { error: { code: cap("/error/code", this.error.code), message: cap("/error/message", this.error.message, caps.message) } } : {}),
      agent: { sub: capOrNull("/agent/sub", this.agentSub), client_id: capOrNull("/agent/client_id", this.agentClientId) },
      mcp: {
        server: cap("/mcp/server", this.server),
        method: cap("/mcp/method", this.method),
        tool: capOrNull("/mcp/tool", this.tool),
        resource: capOrNull("/mcp/resource", this.resource),
        prompt: capOrNull("/mcp/prompt", this.prompt),
        session_id: capOrNull("/mcp/session_id", sessionId),
        request_id: typeof requestId === "string" ? cap("/mcp/request_id", requestId) : requestId,
      },
      ...(this.listed
        ? { list: { visible: this.listed.visible.map((n) => cap("/list/visible", asText(n))), hidden: this.listed.hidden.map((n) => cap("/list/hidden", asText(n))) } }
        : {}),
      ...(this.summary ? { tool_result: this.summary } : {}),
      ...(this.resultPolicySummary ? { result_policy: this.resultPolicySummary } : {}),
      ...(this.approvalNote ? { approval: this.approvalNote } : {}),
      ...(this.federationNote ? { federation: this.federationNote } : {}),
      requested_by: capOrNull("/requested_by", this.requestedBy),
      latency_ms: latency,
      ...(this.shadow
        ? {
            shadow: {
              revision: cap("/shadow/revision", this.shadow.revision),
              allow: this.shadow.allow === true,
              differs: this.shadow.differs === true,
              ...(this.shadow.error !== undefined ? { error: cap("/shadow/error", this.shadow.error) } : {}),
            },
          }
        : {}),
    };
    setTruncated(event, truncated);
    return event;
  }

  /**
   * The last resort of `finish`: who, what and when, without any part that could be large.
   * `truncated: [""]` (the pointer of the whole event) says the rest was dropped.
   */
  private skeleton(outcome: AuditOutcome, latency: AuditEvent["latency_ms"], why: string): AuditEvent {
    const t = (s: string | null): string | null => (s === null ? null : capString(s, TIGHT_CAPS.name));
    return {
      decision_id: this.decisionId,
      timestamp: this.timestamp,
      path: "mcp/authz/decision",
      labels: { id: t(this.ctx.instanceId) as string, version: t(this.ctx.version) as string },
      bundles: {},
      input: null,
      result: null,
      erased: [],
      masked: [],
      outcome,
      error: { code: "audit_event_unbounded", message: capString(`event ${why}; first error: ${this.error?.code ?? "none"}`, TIGHT_CAPS.message) },
      agent: { sub: t(this.agentSub), client_id: t(this.agentClientId) },
      mcp: { server: t(this.server) as string, method: t(this.method) as string, tool: t(this.tool) },
      requested_by: t(this.requestedBy),
      latency_ms: latency,
      truncated: [""],
    };
  }

  private claimDecision(): void {
    if (this.decided) throw new Error(`audit record ${this.decisionId}: decision recorded twice`);
    this.decided = true;
  }

  /**
   * Cuts input and result at the nesting cap (plain JSON from here on, so masking and the
   * sensitive-key walk run on bounded data), masks them, and keeps their size bounds.
   */
  private recordInput(input: PolicyInput, raw: unknown, decisionMask: readonly string[], revision: string, evalMs: number): void {
    const inp = boundedJson(input, "/input", 2);
    const res = boundedJson(raw, "/result", 0);
    const request = (inp.value as { request?: Partial<PolicyInput["request"]> } | null)?.request;
    const configured = [...decisionMask, ...(this.ctx.alwaysMask ?? [])];
    const pointers = [...configured, ...sensitiveArgumentPointers(request?.arguments, this.ctx.maskKeys ?? null)];
    const m = applyMasks({ input: inp.value, result: res.value }, pointers);
    this.input = m.input;
    this.result = m.result;
    this.masked = m.masked;
    this.inputBound = inp.bound + MASK_BOUND * m.masked.length;
    this.resultBound = res.bound;
    this.cutSections = [...inp.cutSections, ...res.cutSections];
    if (configured.length > 0 && this.ctx.log) {
      const hit = new Set(m.masked);
      reportMaskMisses(this.ctx, configured.filter((p) => !hit.has(p)), this.decisionId);
    }
    this.bundles = { [this.ctx.bundleName ?? DEFAULT_BUNDLE]: { revision: asText(revision) } };
    this.decisionMs = typeof evalMs === "number" && Number.isFinite(evalMs) ? evalMs : 0;
    this.tool = optionalText(request?.tool);
    this.resource = optionalText(request?.resource);
    this.prompt = optionalText(request?.prompt);
    this.requestSessionId = optionalText(request?.session_id);
    // The identity stage normally called agent() already; this keeps the event whole if not.
    const agent = (input as Partial<PolicyInput> | null)?.agent;
    if (this.agentSub === null && agent) this.agent({ sub: agent.sub, client_id: agent.client_id ?? null });
  }

  /** Without a decision the event still names the bundle that was active (SIEM correlation). */
  private activeBundles(): Record<string, { revision: string }> {
    const revision = this.ctx.bundleRevision?.() ?? null;
    return revision === null ? {} : { [this.ctx.bundleName ?? DEFAULT_BUNDLE]: { revision } };
  }

  /** The first failure is kept: later ones are usually its consequences, not the cause. */
  private recordError(code: string, message: string): void {
    if (this.error === undefined) this.error = { code: asText(code), message: asText(message) };
  }
}

function optionalText(v: unknown): string | null {
  return v === null || v === undefined ? null : asText(v);
}
