import { ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Attributes, type Context, type HrTime, type Link, type Span, type SpanContext, type Tracer } from "@opentelemetry/api";
import type { AuditOutcome } from "../audit/index.js";
import {
  ATTR_CLIENT_ADDRESS,
  ATTR_CLIENT_PORT,
  ATTR_NETWORK_PROTOCOL_NAME,
  ATTR_NETWORK_TRANSPORT,
  errorTypeOf,
  mcpAttributes,
  PORTCULLIS,
  resultAttributes,
  spanName,
  upstreamAttributes,
  type McpRequestFacts,
  type SpanResult,
  type UpstreamTarget,
} from "./attributes.js";
import { remoteParent, w3cHeaders, type CarriedValue } from "./propagation.js";

/** The pipeline's stages (DESIGN.md "The flow"), one child span each. */
export type StageName = "edge" | "identity" | "decision" | "limits" | "upstream" | "audit";
export type LocalStageName = Exclude<StageName, "upstream">;

/** What is known when the HTTP request arrives, before its body is read. */
export interface RequestArrival {
  /** The upstream's NAME of `/mcp/NAME` (`request.server`). */
  readonly server: string;
  /** The `traceparent` header (Node's `req.headers.traceparent`), as received. */
  readonly traceparent?: CarriedValue;
  /** The `tracestate` header, as received. */
  readonly tracestate?: CarriedValue;
  /** The real client behind trusted proxies (the policy input's `source_ip`). */
  readonly clientAddress?: string | null;
  readonly clientPort?: number | null;
}

/** What the edge learned from the JSON-RPC body: the MCP attributes, and `params._meta`'s trace context. */
export interface RequestDescription extends McpRequestFacts {
  /** `params._meta.traceparent`, as received (any JSON value; only a valid string counts). */
  readonly metaTraceparent?: CarriedValue;
  /** `params._meta.tracestate`, as received. */
  readonly metaTracestate?: CarriedValue;
}

/** How the request ended. */
export interface RequestResult extends SpanResult {
  readonly outcome: AuditOutcome;
  readonly httpStatus: number;
}

/** A stage's child span. End it in a `finally`; a stage still open when the request ends is ended with it. */
export interface StageSpan {
  end(result?: SpanResult): void;
  /** The W3C traceparent naming this span: for the upstream stage, what the upstream request carries. */
  traceparent(): string | undefined;
  /** The tracestate to send beside it (the agent's, carried on), if any. */
  tracestate(): string | undefined;
}

/** One agent request (one JSON-RPC message on `/mcp/NAME`): a SERVER span with a child per stage. */
export interface RequestSpan {
  /** Once the body is parsed: names the span, adds the MCP attributes, and continues `_meta`'s trace context. */
  describe(description: RequestDescription): void;
  stage(name: LocalStageName): StageSpan;
  /** The forward to the upstream: a CLIENT span, whose `traceparent()` the upstream request carries. */
  stage(name: "upstream", target: UpstreamTarget): StageSpan;
  /** Extra attributes (e.g. a decision id); the MCP ones come from `describe`. */
  setAttributes(attributes: Attributes): void;
  /** Ends the span and every stage still open. Only the first call counts. */
  end(result: RequestResult): void;
  /** The W3C traceparent naming the request span itself. */
  traceparent(): string | undefined;
  /** The trace id (32 hex digits), e.g. for a log line; undefined when there is no trace to name. */
  traceId(): string | undefined;
}

/** What request spans are made with. */
export interface SpanSource {
  readonly tracer: Tracer;
  /** Every span's start and end time comes from this one clock. */
  readonly now: () => HrTime;
}

/**
 * The request span is created lazily: its parent may be named by `params._meta.traceparent`,
 * which is known only once the edge has parsed the body, while the span (and the edge stage)
 * start at arrival. Until then it and its stages keep their start times; they become real spans,
 * with those times, at `describe`, at the first `traceparent()`, or at `end`, whichever is first.
 */
export class GatewayRequestSpan implements RequestSpan {
  private span: Span | null = null;
  private context: Context = ROOT_CONTEXT;
  private facts: RequestDescription | null = null;
  private readonly headerParent: SpanContext | undefined;
  private readonly startedAt: HrTime;
  private readonly stages: GatewayStageSpan[] = [];
  private pendingAttributes: Attributes = {};
  private ended = false;

  constructor(
    private readonly source: SpanSource,
    private readonly arrival: RequestArrival,
  ) {
    this.startedAt = source.now();
    this.headerParent = remoteParent(arrival.traceparent, arrival.tracestate);
  }

  describe(description: RequestDescription): void {
    if (this.span) {
      // Too late to choose the parent (a traceparent was already handed out): keep the facts, link `_meta`'s context.
      this.span.setAttributes(mcpAttributes(description));
      this.span.updateName(spanName(description));
      const meta = remoteParent(description.metaTraceparent, description.metaTracestate);
      if (meta && !sameSpan(meta, this.headerParent)) this.span.addLink({ context: meta });
      this.facts ??= description;
      return;
    }
    this.facts = description;
    this.open();
  }

  stage(name: LocalStageName): StageSpan;
  stage(name: "upstream", target: UpstreamTarget): StageSpan;
  stage(name: StageName, target?: UpstreamTarget): StageSpan {
    const stage = new GatewayStageSpan(this, this.source, name, target ?? null);
    this.stages.push(stage);
    if (this.span) stage.open(this.context, this.facts);
    // A stage begun after the request ended (a late exit path) is recorded as an instant.
    if (this.ended) stage.end();
    return stage;
  }

  setAttributes(attributes: Attributes): void {
    if (this.span) this.span.setAttributes(attributes);
    else this.pendingAttributes = { ...this.pendingAttributes, ...attributes };
  }

  end(result: RequestResult): void {
    if (this.ended) return;
    const span = this.open();
    this.ended = true;
    const at = this.source.now();
    for (const stage of this.stages) stage.endAt(at);
    span.setAttributes({ [PORTCULLIS.OUTCOME]: result.outcome, ...resultAttributes(result, result.httpStatus) });
    setStatus(span, result, result.httpStatus);
    span.end(at);
  }

  traceparent(): string | undefined {
    return w3cHeaders(this.open().spanContext()).traceparent;
  }

  traceId(): string | undefined {
    const context = this.open().spanContext();
    return trace.isSpanContextValid(context) ? context.traceId : undefined;
  }

  /** The request span, created now if it does not exist yet (and with it every stage started so far). */
  open(): Span {
    if (this.span) return this.span;
    const metaParent = this.facts ? remoteParent(this.facts.metaTraceparent, this.facts.metaTracestate) : undefined;
    // The MCP conventions: `_meta`'s context is the parent; the transport's (the HTTP header) is linked.
    const parent = metaParent ?? this.headerParent;
    const links: Link[] = metaParent && this.headerParent && !sameSpan(metaParent, this.headerParent) ? [{ context: this.headerParent }] : [];
    const attributes: Attributes = {
      [ATTR_NETWORK_TRANSPORT]: "tcp",
      [ATTR_NETWORK_PROTOCOL_NAME]: "http",
      [PORTCULLIS.SERVER]: this.arrival.server,
      ...(this.arrival.clientAddress ? { [ATTR_CLIENT_ADDRESS]: this.arrival.clientAddress } : {}),
      ...(this.arrival.clientPort ? { [ATTR_CLIENT_PORT]: this.arrival.clientPort } : {}),
      ...(this.facts ? mcpAttributes(this.facts) : {}),
      ...this.pendingAttributes,
    };
    const parentContext = parent ? trace.setSpanContext(ROOT_CONTEXT, parent) : ROOT_CONTEXT;
    const span = this.source.tracer.startSpan(spanName(this.facts), { kind: SpanKind.SERVER, startTime: this.startedAt, attributes, links }, parentContext);
    this.span = span;
    this.context = trace.setSpan(ROOT_CONTEXT, span);
    for (const stage of this.stages) stage.open(this.context, this.facts);
    return span;
  }
}

class GatewayStageSpan implements StageSpan {
  private span: Span | null = null;
  private readonly startedAt: HrTime;
  private endedAt: HrTime | null = null;
  private result: SpanResult = {};

  constructor(
    private readonly request: GatewayRequestSpan,
    private readonly source: SpanSource,
    private readonly name: StageName,
    private readonly target: UpstreamTarget | null,
  ) {
    this.startedAt = source.now();
  }

  /** Becomes a real span under `parent` (at once if the request span exists, else when it is created). */
  open(parent: Context, facts: McpRequestFacts | null): void {
    if (this.span) return;
    const upstream = this.name === "upstream";
    const attributes: Attributes = { [PORTCULLIS.STAGE]: this.name };
    if (upstream) {
      // The MCP client span: the same MCP attributes and name as the request, plus where it goes.
      Object.assign(attributes, facts ? mcpAttributes(facts) : {}, this.target ? upstreamAttributes(this.target) : {});
    }
    this.span = this.source.tracer.startSpan(
      upstream ? spanName(facts) : this.name,
      { kind: upstream ? SpanKind.CLIENT : SpanKind.INTERNAL, startTime: this.startedAt, attributes },
      parent,
    );
    if (this.endedAt) this.finish(this.span, this.endedAt);
  }

  end(result: SpanResult = {}): void {
    if (this.endedAt) return;
    this.result = result;
    this.endAt(this.source.now());
  }

  endAt(at: HrTime): void {
    if (this.endedAt) return;
    this.endedAt = at;
    if (this.span) this.finish(this.span, at);
  }

  traceparent(): string | undefined {
    return w3cHeaders(this.ensureSpan().spanContext()).traceparent;
  }

  tracestate(): string | undefined {
    return w3cHeaders(this.ensureSpan().spanContext()).tracestate;
  }

  private ensureSpan(): Span {
    // Opening the request span opens every stage it holds, this one included.
    if (!this.span) this.request.open();
    if (!this.span) throw new Error("telemetry: a stage span outside its request span");
    return this.span;
  }

  private finish(span: Span, at: HrTime): void {
    span.setAttributes(resultAttributes(this.result));
    setStatus(span, this.result);
    span.end(at);
  }
}

/** The conventions: status ERROR exactly when `error.type` is set, described by the error's message. */
function setStatus(span: Span, result: SpanResult, httpStatus?: number): void {
  if (errorTypeOf(result, httpStatus) === undefined) return;
  span.setStatus(result.message ? { code: SpanStatusCode.ERROR, message: result.message } : { code: SpanStatusCode.ERROR });
}

function sameSpan(a: SpanContext, b: SpanContext | undefined): boolean {
  return b !== undefined && a.traceId === b.traceId && a.spanId === b.spanId;
}
