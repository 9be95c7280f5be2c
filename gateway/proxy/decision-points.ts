import type { AgentIdentity } from "../auth/index.js";
import { AuditRecord, type AuditOutcome } from "../audit/index.js";
import { buildPolicyInput, type DecisionMethod, type DecisionOutcome, type PolicyInput } from "../policy/index.js";
import type { McpEndpointDeps } from "./mcp-endpoint.js";
import { EDGE_ERRORS } from "./errors.js";
import { checkRateLimits, shedAnswer, shedFromError, type Shed } from "./limits.js";
import { rpcError, rpcResult, RpcCode, type JsonRpcRequest, type JsonRpcResponse } from "./jsonrpc.js";
import { scopeChallenge } from "./scope-challenge.js";
import type { Responder } from "./responder.js";
import type { GatewaySession, ToolDefinition } from "./session.js";
import { UpstreamError } from "./upstream.js";

export interface RequestContext {
  session: GatewaySession;
  identity: AgentIdentity;
  request: JsonRpcRequest;
  responder: Responder;
  sourceIp: string | null;
}

type ListKind = { method: "tools/list" | "resources/list" | "prompts/list" | "resources/templates/list"; field: "tools" | "resources" | "prompts" | "resourceTemplates" };
const LISTS: Record<string, ListKind> = {
  "tools/list": { method: "tools/list", field: "tools" },
  "resources/list": { method: "resources/list", field: "resources" },
  "prompts/list": { method: "prompts/list", field: "prompts" },
  "resources/templates/list": { method: "resources/templates/list", field: "resourceTemplates" },
};

const DENIAL_META_KEY = "dev.portcullis/decision";
/** Re-listing the upstream's tools to learn an unseen tool's definition happens at most this often. */
const CATALOG_REFRESH_MS = 5_000;

/**
 * The decision points of contract 3. Every `tools/call`, `resources/read` and `prompts/get` is
 * decided before it is forwarded; every listed item is decided before the agent sees it. Every
 * decision is audited exactly once, and the answer waits for the audit append.
 */
export class DecisionPoints {
  constructor(private readonly deps: McpEndpointDeps) {}

  async handle(ctx: RequestContext): Promise<void> {
    const method = ctx.request.method;
    if (method === "tools/call") return this.toolCall(ctx);
    if (method === "resources/read" || method === "resources/subscribe") return this.gatedRead(ctx, "resources/read");
    if (method === "prompts/get") return this.gatedRead(ctx, "prompts/get");
    const list = LISTS[method];
    if (list) return this.list(ctx, list);
    // Protocol plumbing (ping, completion, logging level, …) carries no decision point.
    ctx.responder.final(await this.forwardOrError(ctx));
  }

  /** Forwards without a decision; an upstream failure becomes the documented upstream_failed error. */
  private async forwardOrError(ctx: RequestContext): Promise<JsonRpcResponse> {
    try {
      return await this.forward(ctx);
    } catch (err) {
      if (!(err instanceof UpstreamError) || err.code === "upstream_session_lost") throw err;
      return rpcError(ctx.request.id, RpcCode.InternalError, EDGE_ERRORS.upstream_failed.message, { code: err.code });
    }
  }

  private async toolCall(ctx: RequestContext): Promise<void> {
    const params = ctx.request.params ?? {};
    const name = params.name;
    const args = params.arguments ?? {};
    if (typeof name !== "string" || name.length === 0 || !isPlainObject(args)) {
      return ctx.responder.final(rpcError(ctx.request.id, RpcCode.InvalidParams, "tools/call needs params.name (string) and params.arguments (object)"));
    }
    await this.audited(ctx, async (record) => {
      const tool = ctx.session.catalog?.get(name) ?? (await this.lookupTool(ctx, name));
      const input = this.input(ctx, "tools/call", { tool: name, arguments: args }, tool);
      const decided = this.decide(input, record);
      const challenge = scopeChallenge(decided, ctx.identity, ctx.responder, record, ctx.request, this.deps.resourceMetadataUrl(ctx.session.server));
      if (challenge) return challenge;
      if (decided.decision.allow && tool) {
        // 4 limits: after the decision (it names the bucket), before the forward.
        const shed = await this.limits(ctx, name, decided);
        if (shed) return shedAnswer(ctx.request.id, true, shed, record);
        return { outcome: "allowed", answer: await this.forwardAudited(ctx, record, true) };
      }
      // A tool the agent may not see is answered exactly like one that does not exist.
      const visible = tool !== null && this.isVisible(ctx, "tools/list", { tool: name }, tool);
      if (!tool) record.fail("unknown_tool", `no tool "${name}" on server ${ctx.session.server}`);
      return { outcome: "denied", answer: visible ? this.denied(ctx, record, decided) : unknownTool(ctx.request, name) };
    });
  }

  private async gatedRead(ctx: RequestContext, method: "resources/read" | "prompts/get"): Promise<void> {
    const params = ctx.request.params ?? {};
    const target = method === "resources/read" ? params.uri : params.name;
    const args = params.arguments ?? null;
    if (typeof target !== "string" || (args !== null && !isPlainObject(args))) {
      return ctx.responder.final(rpcError(ctx.request.id, RpcCode.InvalidParams, `${ctx.request.method} needs params.${method === "resources/read" ? "uri" : "name"} (string)`));
    }
    await this.audited(ctx, async (record) => {
      const fields = method === "resources/read" ? { resource: target } : { prompt: target, arguments: args as Record<string, unknown> | null };
      const decided = this.decide(this.input(ctx, method, fields, null), record);
      const challenge = scopeChallenge(decided, ctx.identity, ctx.responder, record, ctx.request, this.deps.resourceMetadataUrl(ctx.session.server));
      if (challenge) return challenge;
      if (decided.decision.allow) {
        const shed = await this.limits(ctx, null, decided);
        if (shed) return shedAnswer(ctx.request.id, false, shed, record);
        return { outcome: "allowed", answer: await this.forwardAudited(ctx, record, false) };
      }
      const denial = rpcError(ctx.request.id, RpcCode.InvalidParams, decided.decision.message ?? "denied by policy", {
        [DENIAL_META_KEY]: { decision_id: record.decisionId },
      });
      return { outcome: "denied", answer: denial };
    });
  }

  /**
   * One decision point's record: opened before the decision, finished exactly once whatever
   * happens (STYLE.md pattern 9), and on record before the agent gets its answer.
   */
  private async audited(ctx: RequestContext, body: (record: AuditRecord) => Promise<{ outcome: AuditOutcome; answer: JsonRpcResponse }>): Promise<void> {
    const refused = await this.admitted(ctx);
    if (refused) return ctx.responder.final(refused);
    const record = this.open(ctx);
    let outcome: AuditOutcome = "error";
    let answer: JsonRpcResponse;
    try {
      ({ outcome, answer } = await body(record));
    } catch (err) {
      // A full upstream (maxConcurrent) is shed like a rate limit, not reported as a failure.
      const shed = shedFromError(err);
      if (shed) ({ outcome, answer } = shedAnswer(ctx.request.id, ctx.request.method === "tools/call", shed, record));
      else answer = this.failure(ctx, record, err);
    }
    await this.finish(ctx, record, outcome, answer);
  }

  /** The limits stage (gateway/ratelimit/): the decision's `rate_limit` plus the configured defaults. */
  private limits(ctx: RequestContext, tool: string | null, decided: DecisionOutcome): Promise<Shed | null> {
    return checkRateLimits(this.deps.limits, ctx.identity, ctx.session.server, tool, decided);
  }

  /** Forwards a list request, then keeps only the items policy lets this agent see. */
  private async list(ctx: RequestContext, kind: ListKind): Promise<void> {
    const refused = await this.admitted(ctx);
    if (refused) return ctx.responder.final(refused);
    const answer = await this.forwardOrError(ctx);
    const items = answer.result?.[kind.field];
    if (answer.error || !Array.isArray(items)) return ctx.responder.final(answer);

    if (kind.field === "tools") this.remember(ctx.session, items, ctx.request.params?.cursor === undefined);
    const visible: unknown[] = [];
    const writes: Promise<boolean>[] = [];
    for (const item of items) {
      if (!isPlainObject(item)) continue;
      const record = this.open(ctx);
      const { fields, tool } = listItemFields(kind, item);
      const decided = this.decide(this.input(ctx, kind.method === "resources/templates/list" ? "resources/list" : kind.method, fields, tool), record);
      if (decided.decision.allow) visible.push(item);
      writes.push(this.writeAudit(record, decided.decision.allow ? "allowed" : "denied"));
    }
    const written = await Promise.all(writes);
    if (written.includes(false)) return ctx.responder.final(auditUnavailable(ctx.request));
    ctx.responder.final(rpcResult(ctx.request.id, { ...answer.result, [kind.field]: visible }));
  }

  private input(ctx: RequestContext, method: DecisionMethod, fields: { tool?: string; arguments?: Record<string, unknown> | null; resource?: string; prompt?: string }, tool: ToolDefinition | null): PolicyInput {
    return buildPolicyInput(
      ctx.identity,
      {
        method,
        server: ctx.session.server,
        tool: fields.tool ?? null,
        arguments: fields.arguments ?? null,
        resource: fields.resource ?? null,
        prompt: fields.prompt ?? null,
        session_id: ctx.session.id,
        protocol_version: ctx.session.protocolVersion,
        source_ip: ctx.sourceIp,
        time: new Date(this.deps.clock.now()).toISOString(),
      },
      tool,
    );
  }

  private decide(input: PolicyInput, record: AuditRecord): DecisionOutcome {
    const outcome = this.deps.policy().decide(input);
    record.decision(input, outcome);
    return outcome;
  }

  /** The listing decision for one item, without an audit event of its own (used to shape denials). */
  private isVisible(ctx: RequestContext, method: DecisionMethod, fields: { tool: string }, tool: ToolDefinition): boolean {
    return this.deps.policy().decide(this.input(ctx, method, fields, tool)).decision.allow;
  }

  private denied(ctx: RequestContext, record: AuditRecord, decided: DecisionOutcome): JsonRpcResponse {
    const name = String(ctx.request.params?.name);
    return rpcResult(ctx.request.id, {
      content: [{ type: "text", text: decided.decision.message ?? `Tool '${name}' was denied by policy.` }],
      isError: true,
      _meta: { [DENIAL_META_KEY]: { decision_id: record.decisionId, outcome: "denied" } },
    });
  }

  private async forwardAudited(ctx: RequestContext, record: AuditRecord, isToolCall: boolean): Promise<JsonRpcResponse> {
    record.upstreamStarted();
    try {
      const answer = await this.forward(ctx, record.decisionId);
      if (isToolCall && answer.result) record.toolResult(answer.result);
      if (answer.error) record.fail("upstream_error", `${answer.error.code}: ${answer.error.message}`);
      return answer;
    } finally {
      record.upstreamFinished();
    }
  }

  private forward(ctx: RequestContext, decisionId?: string): Promise<JsonRpcResponse> {
    return ctx.session.upstream.request(ctx.request, {
      timeoutMs: this.deps.config.upstreams[ctx.session.server]?.timeoutMs ?? 60_000,
      onMessage: (m) => ctx.responder.related(m),
      // For the upstream's identity assertion (gateway/upstream-auth); never the agent's token.
      agent: ctx.identity,
      decisionId,
    });
  }

  private failure(ctx: RequestContext, record: AuditRecord, err: unknown): JsonRpcResponse {
    if (err instanceof UpstreamError) {
      if (err.code === "upstream_session_lost") throw err;
      record.fail(err.code, err.message);
      return rpcError(ctx.request.id, RpcCode.InternalError, EDGE_ERRORS.upstream_failed.message, { code: err.code });
    }
    this.deps.log("error", "decision point failed", { method: ctx.request.method, error: String(err) });
    record.fail("internal_error", String(err));
    return rpcError(ctx.request.id, RpcCode.InternalError, "Internal error");
  }

  private async finish(ctx: RequestContext, record: AuditRecord, outcome: AuditOutcome, answer: JsonRpcResponse): Promise<void> {
    // The agent gets its answer only once the decision is on record.
    const ok = await this.writeAudit(record, outcome);
    ctx.responder.final(ok ? answer : auditUnavailable(ctx.request));
  }

  private writeAudit(record: AuditRecord, outcome: AuditOutcome): Promise<boolean> {
    return this.deps.audit.record(record.finish(outcome)).then(
      () => true,
      (err: unknown) => {
        this.deps.log("error", "audit write failed", { decision_id: record.decisionId, error: String(err) });
        return false;
      },
    );
  }

  /**
   * Back-pressure (audit.onFull, gateway/audit/outbox.ts): when the audit outbox is over its
   * bound, the call is refused before it is decided or forwarded, so nothing runs that could not
   * be put on record. In block mode this waits for room instead. The outbox counts and logs it.
   */
  private async admitted(ctx: RequestContext): Promise<JsonRpcResponse | null> {
    try {
      await this.deps.audit.admit?.();
      return null;
    } catch (err) {
      const code = (err as { code?: unknown }).code === "audit_backpressure" ? "audit_backpressure" : "audit_unavailable";
      if (code === "audit_unavailable") this.deps.log("error", "audit admission failed", { error: String(err) });
      return rpcError(ctx.request.id, EDGE_ERRORS[code].rpc, EDGE_ERRORS[code].message);
    }
  }

  private open(ctx: RequestContext): AuditRecord {
    const record = new AuditRecord(this.deps.auditContext, {
      server: ctx.session.server,
      method: ctx.request.method,
      requestId: ctx.request.id,
      sessionId: ctx.session.id,
      requestedBy: ctx.sourceIp,
    });
    record.agent({ sub: ctx.identity.sub, client_id: ctx.identity.client_id });
    return record;
  }

  /** The tool's upstream definition when the session has not seen it: lists the upstream's tools. */
  private async lookupTool(ctx: RequestContext, name: string): Promise<ToolDefinition | null> {
    const s = ctx.session;
    if (s.catalog && this.deps.clock.now() - s.catalogFetchedMs < CATALOG_REFRESH_MS) return null;
    const tools: unknown[] = [];
    let cursor: string | undefined;
    for (let page = 0; page < 64; page++) {
      const answer = await s.upstream.request(
        { jsonrpc: "2.0", id: `portcullis:catalog:${page}`, method: "tools/list", params: cursor ? { cursor } : {} },
        { timeoutMs: this.deps.config.upstreams[s.server]?.timeoutMs ?? 60_000 },
      );
      const items = answer.result?.tools;
      if (Array.isArray(items)) tools.push(...items);
      const next = answer.result?.nextCursor;
      if (typeof next !== "string" || next.length === 0) break;
      cursor = next;
    }
    this.remember(s, tools, true);
    return s.catalog?.get(name) ?? null;
  }

  private remember(session: GatewaySession, items: unknown[], reset: boolean): void {
    if (reset || !session.catalog) session.catalog = new Map();
    for (const item of items) {
      if (isPlainObject(item) && typeof item.name === "string") session.catalog.set(item.name, item as unknown as ToolDefinition);
    }
    session.catalogFetchedMs = this.deps.clock.now();
  }
}

function listItemFields(kind: ListKind, item: Record<string, unknown>): { fields: { tool?: string; resource?: string; prompt?: string }; tool: ToolDefinition | null } {
  switch (kind.field) {
    case "tools":
      return { fields: { tool: String(item.name) }, tool: item as unknown as ToolDefinition };
    case "resources":
      return { fields: { resource: String(item.uri) }, tool: null };
    case "resourceTemplates":
      return { fields: { resource: String(item.uriTemplate) }, tool: null };
    case "prompts":
      return { fields: { prompt: String(item.name) }, tool: null };
  }
}

function unknownTool(request: JsonRpcRequest, name: string): JsonRpcResponse {
  return rpcError(request.id, RpcCode.InvalidParams, `Unknown tool: ${name}`);
}

function auditUnavailable(request: JsonRpcRequest): JsonRpcResponse {
  return rpcError(request.id, EDGE_ERRORS.audit_unavailable.rpc, EDGE_ERRORS.audit_unavailable.message);
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}
