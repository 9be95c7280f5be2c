import { createHash } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { AuthError, authFailureResponse, extractBearer, wwwAuthenticate, type AgentIdentity, type TokenVerifier } from "../auth/index.js";
import { AuditRecord, type AuditContext, type AuditEvent, type AuditOutcome } from "../audit/index.js";
import { FEDERATED_NAME_MAX, isStdioUpstream, type GatewayConfig } from "../config/index.js";
import { applyRedactions, buildPolicyInput, decideItemsWith, listItem, type DecisionOutcome, type PolicyEngine, type PolicyInput, type PolicyListItem } from "../policy/index.js";
import type { RateLimiter } from "../ratelimit/index.js";
import type { Clock } from "../shared/clock.js";
import type { Logger } from "../shared/log.js";
import { refusalAnswer, resultAnswer, type Answer } from "./answers.js";
import { clientIpResolver, type ClientIpResolver } from "./client-ip.js";
import { readBounded } from "./bounded-read.js";
import { Refusal } from "./errors.js";
import { checkParamHeaders, classifyEra, LEGACY_PROTOCOL_VERSIONS, LEGACY_UPSTREAM_VERSION, legacyMeta, META, missingCapabilities, MODERN_PROTOCOL_VERSIONS, paramHeadersOf, paramHeaderValues, requiredCapabilities, SUPPORTED_VERSIONS, type Era } from "./era.js";
import { callDigest, ParkedCalls, PausableCall, type CallStep } from "./input-rounds.js";
import { decodeFederatedCursor, encodeFederatedCursor, federatedEndpoints, FederatedUpstream, federatedName, matchesUriTemplate, mergedInitResult, splitFederatedName, type FederatedEndpoint } from "./federation.js";
import { originPolicy, type OriginPolicy } from "./origin-policy.js";
import { classify, isObject, RpcCode, serialize, type JsonRpcId, type JsonRpcMessage, type JsonRpcRequest, type JsonRpcResponse, type ParsedMessage } from "./jsonrpc.js";
import { checkRateLimits, shed } from "./limits.js";
import { forwardedNotification, forwardedRequest, LIST_METHODS, shapeNotification, shapeRequest, type ShapedRequest } from "./methods.js";
import { Responder } from "./responder.js";
import { ownerOf, SessionStore, type GatewaySession, type SessionSlot, type CallApprovals, type ToolDefinition, type ToolPinning } from "./session.js";
import { LocalSessionLedger, type SessionLedger } from "./session-ledger.js";
import { SessionSealer } from "./session-seal.js";
import { REPLICA_ID } from "./upstream-ids.js";
import { sseMessage, ssePriming } from "./sse.js";
import { parseStrictJson } from "./strict-json.js";
import { UpstreamError, type ConnectUpstream, type RequestOptions, type UpstreamConnection } from "./upstream.js";
import type { LocalStageName, RequestSpan, StageSpan, Tracing } from "../telemetry/index.js";

/** Protocol revisions this endpoint serves, newest first (both eras: era.ts). */
export const SUPPORTED_PROTOCOL_VERSIONS = SUPPORTED_VERSIONS;

export interface AuditSinkLike {
  record(event: AuditEvent): Promise<void>;
  /** Admission (AuditLog.admit): rejects when the audit path cannot take another event now. */
  admit?(): Promise<void>;
}

export interface McpEndpointDeps {
  config: GatewayConfig;
  verifier: TokenVerifier;
  /** Read on every decision so a hot-reloaded bundle takes effect at once. */
  policy: () => PolicyEngine;
  audit: AuditSinkLike;
  auditContext: AuditContext;
  clock: Clock;
  log: Logger;
  /** Opens (or with a sealed state, resumes) an upstream connection for a session of `server`. */
  connectUpstream: ConnectUpstream;
  /** sessions.sealKeys; absent: a key of this process's own (its sessions end with it). */
  sealer?: SessionSealer;
  /** Where replicas agree a session ended (sessions.store); absent: this process's own. */
  ledger?: SessionLedger;
  /** `publicUrl` + path of the protected resource metadata for a server. */
  resourceMetadataUrl: (server: string) => string;
  /** The limits stage (gateway/ratelimit/); absent means no rate limits. */
  limits?: RateLimiter;
  /** Host and Origin checks (origin-policy.ts); absent: edge.allowedOrigins only, Host not checked. */
  origins?: () => OriginPolicy;
  /**
   * Told of every exchange once it is answered (access log, metrics): its audit event, the HTTP
   * status sent, and how long the audit write took. Never on the way of the answer.
   */
  observe?: (done: ExchangeDone) => void;
  /** Tool pinning (contract 7): drifted tools hidden and refused; absent: no pinning. */
  pinning?: ToolPinning;
  /** Human approvals of held calls (contract 7); absent: a decision requiring one is refused. */
  approvals?: CallApprovals;
  /** OpenTelemetry (gateway/telemetry/): a span per request, one per stage; absent or off: none. */
  tracing?: Tracing;
}

/** One answered exchange, as `observe` hears of it. */
export interface ExchangeDone {
  event: AuditEvent;
  /** The HTTP status of the answer (200 for a stream). */
  status: number;
  auditMs: number;
  /** False when the audit write failed (the agent was answered audit_unavailable). */
  audited: boolean;
  /** Stages the audit event does not time (it has decision, upstream and total), in ms. */
  stageMs: Partial<Record<"edge" | "identity" | "limits", number>>;
}

/** One HTTP exchange on its way through the pipeline; each stage fills in its part. */
interface Exchange {
  /** The upstream the request is decided for and goes to; at a federated endpoint, its id until routed. */
  server: string;
  /** The federated endpoint the request came to (`/mcp`, `/mcp/v/NAME`); null on `/mcp/NAME`. */
  readonly endpoint: FederatedEndpoint | null;
  /** At a federated endpoint: the session the request arrived on (x.session is its member's view once routed). */
  federatedSession: GatewaySession | null;
  /** The name the agent used for the routed tool or prompt (`NAME__item`): what its answers call it. */
  agentName: string | null;
  readonly res: ServerResponse;
  readonly responder: Responder;
  readonly record: AuditRecord;
  readonly sourceIp: string | null;
  readonly req: IncomingMessage;
  /** The request's era (era.ts); legacy until the edge has read the body. */
  era: Era;
  message: ParsedMessage | null;
  identity: AgentIdentity | null;
  shaped: ShapedRequest | null;
  session: GatewaySession | null;
  /** A session slot reserved by initialize, until a session adopts it. */
  slot: SessionSlot | null;
  decided: DecisionOutcome | null;
  outcome: AuditOutcome;
  answer: Answer | null;
  /** Something was sent upstream on the agent's behalf: from here, no event means no answer. */
  acted: boolean;
  /** GET: starts writing the stream's events, held until the stream-open event is on record. */
  streamLive: (() => void) | null;
  /** An agent's response: the upstream's own id of the server→client request it answers. */
  answering: JsonRpcId | null;
  readonly stageMs: ExchangeDone["stageMs"];
  /** The request's span when tracing is on. */
  readonly span: RequestSpan | null;
  /** The input the request was decided on (the result policy sees it again, with the result). */
  input: PolicyInput | null;
}

/** `_meta` key of the decision id on denials. */
export const DECISION_META_KEY = "dev.portcullis/decision";
/** Re-listing the upstream's tools to learn an unseen tool's definition happens at most this often. */
const CATALOG_REFRESH_MS = 5_000;
const NO_ITEM = { tool: null, resource: null, prompt: null, arguments: null };
/** The upstream contexts of 2026 clients have this prefix: never an id a client can present. */
const HELD_PREFIX = "held:";
/** Server→client request ids as the agent sees them: sealed, so any replica can take the answer. */
const SERVER_REQUEST_PREFIX = "portcullis:r:";
/** `_meta` key of a federated answer's members that could not take part: `{unavailable: [{server, error}]}`. */
export const FEDERATION_META_KEY = "dev.portcullis/federation";
/** Requests a federated endpoint answers itself, each decided per member (anything else must name an upstream). */
const FANNED_OUT = new Set(["ping", "logging/setLevel", "server/discover"]);
/** A resource URI listed by two members: routed to neither. */
const AMBIGUOUS = "";

/** Where a federated session's resources were listed (this replica's cache, rebuilt on a miss). */
interface FederatedRoutes {
  uris: Map<string, string>;
  templates: Map<string, string[]>;
  /** Every member's resources and templates were listed once. */
  complete: boolean;
}
/** How long an agent has to answer a server→client request (the upstream gives up long before). */
const SERVER_REQUEST_TTL_MS = 60 * 60_000;

/**
 * The MCP endpoint `/mcp/NAME`. Every POST goes down one pipeline (`post`), stage after stage in
 * the order of DESIGN.md; any stage may refuse by throwing, `refuse` turns the refusal into the
 * answer and the audit outcome, and `finish` writes the one event and then answers. The audit
 * record opens on arrival, so edge refusals are on record too.
 */
export class McpEndpoint {
  readonly sessions: SessionStore;
  /** The real client behind trusted proxies (edge.trustedProxies): policy's request.source_ip. */
  private readonly clientIp: ClientIpResolver;
  private readonly origins: () => OriginPolicy;
  /** 2026 clients' calls paused on input from a 2025 upstream (input-rounds.ts). */
  private readonly parked = new ParkedCalls();
  private readonly sealer: SessionSealer;
  /** Endpoints serving several upstreams (federation.ts), by id: `*` is /mcp, `v/NAME` /mcp/v/NAME. */
  private readonly federated: Map<string, FederatedEndpoint>;
  /** Each federated session's member views, made once per replica and session (memberOf). */
  private readonly views = new WeakMap<GatewaySession, Map<string, GatewaySession>>();
  private readonly memberViews = new WeakSet<GatewaySession>();
  private readonly routes = new WeakMap<GatewaySession, FederatedRoutes>();
  private readonly isStdio: (server: string) => boolean;

  constructor(private readonly deps: McpEndpointDeps) {
    const s = deps.config.sessions;
    this.sealer = deps.sealer ?? SessionSealer.ephemeral();
    const now = () => deps.clock.now();
    this.federated = federatedEndpoints(deps.config.federation, Object.keys(deps.config.upstreams));
    const upstreamIsStdio = (server: string) => {
      const u = deps.config.upstreams[server];
      return u !== undefined && isStdioUpstream(u);
    };
    // A federated session counts as stdio when one of its members is: it may hold a process.
    const isStdio = (server: string) => {
      const f = this.federated.get(server);
      return f ? f.members.some(upstreamIsStdio) : upstreamIsStdio(server);
    };
    this.isStdio = isStdio;
    this.sessions = new SessionStore({
      idleTimeoutMs: s.idleTimeoutSeconds * 1000,
      stdioIdleTimeoutMs: s.stdioIdleTimeoutSeconds * 1000,
      maxSessions: s.maxSessions,
      maxPerAgent: s.maxPerAgent,
      maxStdio: s.maxStdio,
      maxLifetimeMs: s.maxLifetimeSeconds * 1000,
      now,
      sealer: this.sealer,
      ledger: deps.ledger ?? new LocalSessionLedger(now, s.maxLifetimeSeconds * 1000),
      resume: (server, state) =>
        state.kind === "federated" ? FederatedUpstream.resume(state, (member, s) => deps.connectUpstream(member, "legacy", s)) : deps.connectUpstream(server, "legacy", state),
      isStdio,
      durable: deps.sealer !== undefined,
    });
    this.clientIp = clientIpResolver(deps.config.edge.trustedProxies ?? []);
    const fixed = originPolicy({ allowedOrigins: deps.config.edge.allowedOrigins });
    this.origins = deps.origins ?? (() => fixed);
  }

  async post(server: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const x = this.open(server, req, res);
    try {
      await this.timed(x, "edge", () => this.edge(x, req)); // 1 Origin, media type, size, one unambiguous JSON-RPC message, version
      await this.timed(x, "identity", () => this.identify(x, req)); // 2 bearer JWT → verified identity; a session is never a credential
      this.shape(x); // 3 what will be decided and forwarded: the method and its validated fields
      await this.bindSession(x, req); // 4 the caller's own session, from any replica (initialize reserves a slot for one)
      this.describeSpan(x);
      await this.admit(x); // 5 the audit path can take this event: otherwise nothing goes upstream
      await this.hold(x); // 5b a 2026 request: the upstream context the gateway holds for this agent
      await this.route(x); // 5c federated: the request goes to the upstream its name names, as if sent to /mcp/NAME
      if (this.fansOut(x)) {
        await this.fanOut(x); // 6-8 a federated request that names no upstream: decided, forwarded and answered per member
      } else {
        await this.restart(x); // 5d a stdio session new to this replica: its process started and initialized
        await this.timed(x, "decision", () => this.decide(x)); // 6 policy on the shaped request (list items: in step 8, per item)
        await this.timed(x, "limits", () => this.limit(x)); // 7 rate limits named by the decision, after it, before the forward
        await this.forward(x); // 8 the message rebuilt from the decided request; the answer shaped
      }
    } catch (err) {
      await this.refuse(x, err);
    } finally {
      await this.finish(x);
    }
  }

  /** GET opens the server→client stream of a session. */
  async get(server: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const x = this.open(server, req, res, "portcullis/stream-open");
    try {
      this.checkOrigin(req);
      await this.identify(x, req);
      const session = await this.ownSession(x, req);
      this.describeSpan(x);
      await this.admit(x);
      if (x.endpoint) await this.openFederatedStream(x, session);
      else {
        await this.restart(x);
        await this.openStream(x, session, header(req, "last-event-id"));
      }
    } catch (err) {
      await this.refuse(x, err);
    } finally {
      await this.finish(x);
    }
  }

  /** DELETE ends a session, here and upstream. */
  async delete(server: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const x = this.open(server, req, res, "portcullis/session-end");
    try {
      this.checkOrigin(req);
      await this.identify(x, req);
      const session = await this.ownSession(x, req);
      this.describeSpan(x);
      x.acted = true;
      await this.sessions.end(session.id);
      x.outcome = "allowed";
      x.answer = { kind: "empty", status: 200 };
    } catch (err) {
      await this.refuse(x, err);
    } finally {
      await this.finish(x);
    }
  }

  /** A request refused before it reaches a stage (unknown server, HTTP method): still on record. */
  async reject(server: string, req: IncomingMessage, res: ServerResponse, refusal: Refusal): Promise<void> {
    const x = this.open(server, req, res, `http:${(req.method ?? "").slice(0, 16)}`);
    req.resume();
    await this.refuse(x, refusal);
    await this.finish(x);
  }

  async close(): Promise<void> {
    this.parked.closeAll();
    await this.sessions.closeAll();
  }

  // ------------------------------------------------------------------------------------ stages

  /** Runs a stage: timed for `observe` (metrics) and traced as a child span when those are on; failures pass through. */
  private async timed(x: Exchange, stage: LocalStageName, run: () => Promise<void>): Promise<void> {
    if (!this.deps.observe && !x.span) return run();
    const start = this.deps.clock.monotonicNs();
    const child = x.span?.stage(stage);
    try {
      await run();
    } catch (err) {
      child?.end({ errorCode: err instanceof Refusal ? err.code : err instanceof AuthError ? err.code : "error" });
      throw err;
    } finally {
      if (stage === "edge" || stage === "identity" || stage === "limits") x.stageMs[stage] = Number(this.deps.clock.monotonicNs() - start) / 1e6;
      child?.end();
    }
  }

  /** What the request span says once the body and the session are known. */
  private describeSpan(x: Exchange): void {
    if (!x.span) return;
    const m = x.message?.message;
    const params = m && "params" in m && isObject(m.params) ? m.params : undefined;
    const meta = params && isObject(params._meta) ? params._meta : undefined;
    x.span.describe({
      method: m && "method" in m ? m.method : (x.req.method === "GET" ? "portcullis/stream-open" : x.req.method === "DELETE" ? "portcullis/session-end" : ""),
      requestId: m && "id" in m ? m.id : null,
      tool: x.shaped?.tool ?? null,
      prompt: x.shaped?.prompt ?? null,
      resourceUri: x.shaped?.resource ?? null,
      sessionId: x.session && !x.session.held ? x.session.handle : null,
      protocolVersion: x.era.era === "modern" ? x.era.envelope.protocolVersion : (x.session?.protocolVersion ?? null),
      metaTraceparent: meta?.traceparent,
      metaTracestate: meta?.tracestate,
    });
  }

  /** The upstream stage's span and what the upstream request carries of it. */
  private upstreamSpan(x: Exchange, server = x.server): { span: StageSpan | null; trace: RequestOptions["trace"] } {
    if (!x.span) return { span: null, trace: undefined };
    const u = this.deps.config.upstreams[server];
    const span = x.span.stage("upstream", u && !isStdioUpstream(u) ? { transport: "http", url: u.url } : { transport: "stdio" });
    const traceparent = span.traceparent();
    return { span, trace: traceparent ? { traceparent, tracestate: span.tracestate() } : undefined };
  }

  private open(server: string, req: IncomingMessage, res: ServerResponse, method = ""): Exchange {
    const sourceIp = this.clientIp(req.socket.remoteAddress, req.headers["x-forwarded-for"]);
    const record = new AuditRecord(this.deps.auditContext, { server, method, requestedBy: sourceIp });
    const responder = new Responder(res);
    const tracing = this.deps.tracing;
    const span = tracing?.enabled
      ? tracing.startRequest({ server, traceparent: req.headers.traceparent, tracestate: req.headers.tracestate, clientAddress: sourceIp, clientPort: req.socket.remotePort ?? null })
      : null;
    return { server, endpoint: this.federated.get(server) ?? null, federatedSession: null, agentName: null, res, req, era: { era: "legacy" }, responder, record, sourceIp, message: null, identity: null, shaped: null, session: null, slot: null, decided: null, outcome: "error", answer: null, acted: false, streamLive: null, answering: null, stageMs: {}, span, input: null };
  }

  private async edge(x: Exchange, req: IncomingMessage): Promise<void> {
    this.checkOrigin(req);
    const type = (header(req, "content-type") ?? "").split(";")[0]?.trim().toLowerCase();
    if (type !== "application/json") throw new Refusal("unsupported_media_type");
    const { maxBodyBytes, maxJsonDepth } = this.deps.config.edge;
    if (Number(header(req, "content-length") ?? "0") > maxBodyBytes) throw new Refusal("body_too_large");
    const value = parseStrictJson(await readBounded(req, maxBodyBytes, () => new Refusal("body_too_large"), "drain"), { maxDepth: maxJsonDepth });
    const c = classify(value);
    if (!c.ok) throw new Refusal(c.code === RpcCode.ParseError ? "parse_error" : "invalid_request", c.message);
    x.message = c.parsed;
    const m = c.parsed.message;
    x.record.describe({ method: "method" in m ? m.method : "", requestId: "id" in m ? m.id : null });
    // The era from the body, the headers checked against it (never read as facts).
    x.era = classifyEra(c.parsed, { protocolVersion: header(req, "mcp-protocol-version"), method: header(req, "mcp-method"), name: header(req, "mcp-name") });
  }

  private async identify(x: Exchange, req: IncomingMessage): Promise<void> {
    try {
      x.identity = await this.deps.verifier.verify(extractBearer(req.headers.authorization));
    } catch (err) {
      throw err instanceof AuthError ? err : new AuthError("token_malformed", String(err));
    }
    x.record.agent({ sub: x.identity.sub, client_id: x.identity.client_id });
  }

  private shape(x: Exchange): void {
    const m = x.message!;
    if (m.kind === "request") x.shaped = shapeRequest(m.message);
    else if (m.kind === "notification") x.shaped = shapeNotification(m.message);
  }

  private async bindSession(x: Exchange, req: IncomingMessage): Promise<void> {
    // A 2026 request has no session (an Mcp-Session-Id it sends is ignored): stage 5b holds its context.
    if (x.era.era === "modern") return;
    const identity = x.identity!;
    const sessionId = header(req, "mcp-session-id");
    if (x.shaped?.kind === "initialize") {
      // A second initialize would renegotiate behind the session's back.
      if (sessionId) throw new Refusal("invalid_request", "session already initialized");
      // Reserved now, synchronously: concurrent initializes can never overshoot the bounds.
      x.slot = this.sessions.reserve(ownerOf(identity.iss, identity.sub), this.isStdio(x.server));
      return;
    }
    await this.ownSession(x, req);
  }

  private async admit(x: Exchange): Promise<void> {
    try {
      await this.deps.audit.admit?.();
    } catch (err) {
      if ((err as { code?: unknown }).code === "audit_backpressure") throw new Refusal("audit_backpressure");
      this.deps.log("error", "audit admission failed", { error: String(err) });
      throw new Refusal("audit_unavailable");
    }
  }

  /**
   * A 2026 request is stateless for the client; behind it the gateway holds, per agent, server and
   * envelope, what it needs upstream: a 2025 upstream session (initialized with the client's
   * capabilities), or for a 2026 upstream the catalog of tool definitions. Creating one is an
   * upstream action on the agent's behalf, so it is decided first, like the initialize it replaces.
   */
  private async hold(x: Exchange): Promise<void> {
    if (x.era.era !== "modern" || x.message?.kind !== "request") return;
    const envelope = x.era.envelope;
    const identity = x.identity!;
    const owner = ownerOf(identity.iss, identity.sub);
    const key = `${HELD_PREFIX}${createHash("sha256").update(JSON.stringify([owner, x.server, envelope.clientCapabilities, envelope.clientInfo])).digest("base64url")}`;
    const held = this.sessions.heldBy(key, owner);
    if (held) {
      x.session = held;
      return;
    }
    if (x.endpoint) {
      const slot = this.sessions.reserve(owner, this.isStdio(x.server));
      const params = { protocolVersion: LEGACY_UPSTREAM_VERSION, capabilities: envelope.clientCapabilities, clientInfo: envelope.clientInfo ?? { name: "portcullis", version: "unknown" } };
      try {
        const joined = await this.joinMembers(x, "modern", params, "portcullis:hold");
        x.session = this.sessions.hold(key, { server: x.server, owner, upstream: joined.upstream, protocolVersion: envelope.protocolVersion, initResult: mergedInitResult(x.endpoint, envelope.protocolVersion, joined.upstream.initResults, this.deps.auditContext.version), slot });
      } catch (err) {
        slot.release();
        throw err;
      }
      return;
    }
    const decided = this.deps.policy().decide(this.input(x, "initialize", NO_ITEM, null));
    if (!decided.decision.allow) {
      x.record.decision(this.input(x, "initialize", NO_ITEM, null), decided);
      x.decided = decided;
      throw new Refusal("method_denied", "the agent may not open an upstream session (initialize)", undefined, decided.decision.message ?? "Method not found: initialize");
    }
    const upstreamConfig = this.deps.config.upstreams[x.server];
    const slot = this.sessions.reserve(owner, upstreamConfig !== undefined && isStdioUpstream(upstreamConfig));
    const upstream = this.deps.connectUpstream(x.server, "modern");
    const init = {
      jsonrpc: "2.0" as const,
      id: "portcullis:hold",
      method: "initialize",
      params: { protocolVersion: LEGACY_UPSTREAM_VERSION, capabilities: envelope.clientCapabilities, clientInfo: envelope.clientInfo ?? { name: "portcullis", version: "unknown" } },
    };
    x.acted = true;
    let answer: JsonRpcResponse;
    try {
      answer = await upstream.initialize(init, { timeoutMs: this.timeoutMs(x.server), agent: identity, internal: true });
      if (answer.error) throw new UpstreamError("upstream_bad_response", `upstream refused initialize: ${answer.error.code} ${answer.error.message}`);
      // A 2025 session: the handshake ends with notifications/initialized.
      if (upstream.era === "legacy") await upstream.send({ jsonrpc: "2.0", method: "notifications/initialized" });
    } catch (err) {
      slot.release();
      await upstream.close();
      throw err;
    }
    x.session = this.sessions.hold(key, { server: x.server, owner, upstream, protocolVersion: protocolVersionOf(answer), initResult: answer.result ?? {}, slot });
  }

  /**
   * A stdio session whose process is not on this replica (it was started on another, or before a
   * restart): a new process, initialized with the client's original parameters. That is an
   * upstream action on the agent's behalf, so it is decided first, as the initialize it repeats.
   * What the old process held (subscriptions, calls in flight, its memory) is not carried over.
   */
  private async restart(x: Exchange): Promise<void> {
    if (x.session) await this.restartSession(x, x.session, true);
  }

  /** Stage 5d for one session (a federated request's member: `recordDenial` false, the fan-out records its decisions). */
  private async restartSession(x: Exchange, session: GatewaySession, recordDenial: boolean): Promise<void> {
    if (!session.pendingInit) return;
    if (!session.starting) {
      const input = this.input(x, "initialize", NO_ITEM, null, session.server);
      const decided = this.deps.policy().decide(input);
      if (!decided.decision.allow) {
        if (recordDenial) {
          x.record.decision(input, decided);
          x.decided = decided;
        }
        throw new Refusal("method_denied", "the agent may not open an upstream session (initialize)", undefined, decided.decision.message ?? "Method not found: initialize");
      }
      const params = session.pendingInit;
      session.starting = (async () => {
        const answer = await session.upstream.initialize({ jsonrpc: "2.0", id: "portcullis:restart", method: "initialize", params }, { timeoutMs: this.timeoutMs(session.server), agent: x.identity!, internal: true });
        if (answer.error) throw new UpstreamError("upstream_bad_response", `upstream refused initialize: ${answer.error.code} ${answer.error.message}`);
        await session.upstream.send({ jsonrpc: "2.0", method: "notifications/initialized" });
        session.pendingInit = null;
        this.deps.log("info", "stdio upstream restarted for a session from another replica", { server: session.server, session: session.handle });
      })();
      // A failed start is not retried by this copy: the next request rebuilds the session afresh.
      session.starting.catch(() => void this.sessions.evict(session.id));
    }
    x.acted = true;
    try {
      await session.starting;
    } catch (err) {
      this.deps.log("warn", "stdio upstream restart failed", { server: session.server, error: String(err) });
      const code = err instanceof UpstreamError ? err.code : "error";
      x.record.fail(code, String(err instanceof Error ? err.message : err));
      throw new Refusal("upstream_failed", undefined, { code });
    }
  }

  private async decide(x: Exchange): Promise<void> {
    const m = x.message!;
    if (m.kind === "response") return this.decideResponse(x);
    const shaped = x.shaped!;
    if (shaped.kind === "list") return; // each listed item is decided once the upstream has listed them
    if (shaped.kind === "task") {
      // A task is decided as the call that created it: same tool, same arguments.
      const task = await this.sessions.ledger.getTask(x.session!.handle, this.taskKey(x.session!, shaped.taskId!));
      if (!task) throw new Refusal("unknown_task", shaped.taskId!.slice(0, 128));
      shaped.tool = task.tool;
      shaped.arguments = task.arguments;
    }
    const tool = shaped.tool !== null ? await this.toolDefinition(x, shaped.tool) : null;
    // 2026: arguments the tool mirrors into Mcp-Param-* headers must agree with them; nothing is forwarded otherwise.
    if (x.era.era === "modern" && shaped.kind === "tool_call" && tool) checkParamHeaders(paramHeadersOf(tool.inputSchema), shaped.arguments ?? {}, (n) => header(x.req, n));
    const input = this.input(x, shaped.method, shaped, tool);
    x.input = input;
    const decided = this.deps.policy().decide(input);
    x.record.decision(input, decided);
    x.decided = decided;
    if (decided.decision.allow && (shaped.kind !== "tool_call" || tool !== null)) {
      // Allowed by policy: the tool must still be the one that was approved (a rug pull is refused).
      if (tool && this.deps.pinning) {
        const collision = x.session?.refusedTools?.get(tool.name);
        if (collision !== undefined) {
          x.record.fail("tool_name_collision", `${tool.name}: ${collision}`);
          throw new Refusal("tool_name_collision");
        }
        const verdict = await this.deps.pinning.tool(x.server, tool);
        if (verdict.state === "drifted") {
          x.record.fail("tool_drifted", `${tool.name} (pinned ${verdict.pinnedDigest}, now ${verdict.digest}): ${verdict.changes}`);
          throw new Refusal("tool_drifted");
        }
      }
      const held = decided.decision.require_approval;
      if (held) await this.approvalGate(x, shaped, held);
      return;
    }

    this.scopeChallenge(x, decided);
    const message = decided.decision.message;
    const denialData = { [DECISION_META_KEY]: { decision_id: x.record.decisionId } };
    if (shaped.kind === "tool_call") {
      // A tool the agent may not see is answered exactly like one that does not exist.
      const visible = tool !== null && this.deps.policy().decide(this.input(x, "tools/list", { ...NO_ITEM, tool: shaped.tool }, tool)).decision.allow;
      const name = x.agentName ?? shaped.tool;
      if (!visible) {
        if (!tool) x.record.fail("unknown_tool", `no tool "${shaped.tool}" on server ${x.server}`);
        throw new Refusal("unknown_tool", undefined, undefined, `Unknown tool: ${name}`);
      }
      throw new Refusal("denied", undefined, undefined, message ?? `Tool '${name}' was denied by policy.`);
    }
    if (shaped.kind === "item" || shaped.kind === "task") throw new Refusal("denied", undefined, denialData, message ?? "denied by policy");
    throw new Refusal("method_denied", undefined, denialData, message ?? `Method not found: ${shaped.method.slice(0, 128)}`);
  }

  /**
   * A decision that holds the call for a human: the identical call (same agent, server, tool and
   * arguments) goes through once, after an approver approved it; until then the agent gets an
   * isError result naming the approval. Only tools/call can be held; anything else is refused.
   */
  private async approvalGate(x: Exchange, shaped: ShapedRequest, held: { reason: string; ttl_seconds: number }): Promise<void> {
    if (shaped.kind !== "tool_call" || !this.deps.approvals) {
      x.record.fail("approval_unavailable", shaped.kind !== "tool_call" ? `${shaped.method} cannot be held for approval` : "the decision requires an approval and no approval store is configured");
      throw new Refusal("denied", undefined, undefined, "This request needs an approval the gateway cannot hold.");
    }
    const identity = x.identity!;
    const call = { iss: identity.iss, sub: identity.sub, server: x.server, tool: shaped.tool!, arguments: shaped.arguments ?? {} };
    const used = await this.deps.approvals.consume(call);
    if (used) {
      x.record.approval({ id: used.id, state: "used" });
      return;
    }
    const pending = await this.deps.approvals.request(call, held.reason, held.ttl_seconds);
    x.record.approval({ id: pending.id, state: pending.state });
    x.record.fail("approval_required", `${held.reason} (approval ${pending.id}, until ${pending.expiresAt})`);
    throw new Refusal(
      "approval_required",
      `${held.reason}. Approval ${pending.id} is ${pending.state}: once an approver runs \`portcullis approvals approve ${pending.id}\`, retry this identical call (same tool and arguments) before ${pending.expiresAt}; it goes through once.`,
      { approval_id: pending.id, expires_at: pending.expiresAt, state: pending.state },
    );
  }

  private async limit(x: Exchange): Promise<void> {
    // Calls are limited (tools, resources, prompts, tasks); protocol plumbing and lists are not.
    const kind = x.shaped?.kind;
    if (!x.decided || (kind !== "tool_call" && kind !== "item" && kind !== "task")) return;
    await checkRateLimits(this.deps.limits, x.identity!, x.server, x.shaped?.tool ?? null, x.decided);
  }

  private async forward(x: Exchange): Promise<void> {
    const m = x.message!;
    if (x.era.era === "modern") return this.forwardModern(x);
    if (m.kind !== "request") {
      const session = x.session!;
      // Notifications and answers to server→client requests: rebuilt, passed on, 202.
      const message =
        m.kind === "notification"
          ? forwardedNotification(x.shaped!)
          : m.message.error
            ? { jsonrpc: "2.0" as const, id: x.answering!, error: m.message.error }
            : { jsonrpc: "2.0" as const, id: x.answering!, result: m.message.result ?? {} };
      x.acted = true;
      await session.upstream.send(message);
      x.outcome = "allowed";
      x.answer = { kind: "empty", status: 202 };
      return;
    }
    const shaped = x.shaped!;
    if (shaped.kind === "initialize") return this.initialize(x, shaped);
    const session = x.session!;
    let answer: JsonRpcResponse;
    try {
      answer = await this.exchangeUpstream(x, session, shaped);
    } catch (err) {
      if (!(err instanceof UpstreamError && err.code === "upstream_stream_paused")) throw err;
      // SEP-1699 polling: the answer comes on the client's resumed stream; this exchange is on record as forwarded.
      x.outcome = "allowed";
      x.answer = { kind: "paused" };
      return;
    }
    x.outcome = "allowed";
    x.answer = resultAnswer(await this.shapeAnswer(x, session, shaped, answer));
  }

  /**
   * A 2026 request: notifications are decided and recorded but have nowhere to go (2026 has no
   * client notifications over HTTP); `server/discover` of a 2025 upstream is answered from its
   * initialize; a call a 2025 upstream pauses for input becomes an input_required result.
   */
  private async forwardModern(x: Exchange): Promise<void> {
    const m = x.message!;
    if (m.kind !== "request") {
      x.outcome = "allowed";
      x.answer = { kind: "empty", status: 202 };
      return;
    }
    const session = x.session!;
    const shaped = x.shaped!;
    let answer: JsonRpcResponse;
    if (session.upstream.era === "legacy" && shaped.method === "server/discover") answer = { jsonrpc: "2.0", id: m.message.id, result: discoverResultOf(session) };
    else if (session.upstream.era === "legacy" && (shaped.kind === "tool_call" || shaped.kind === "item")) answer = await this.callWithInputRounds(x, session, shaped);
    else answer = await this.exchangeUpstream(x, session, shaped);
    x.outcome = "allowed";
    x.answer = resultAnswer(modernAnswer(await this.shapeAnswer(x, session, shaped, answer), session));
  }

  /**
   * A 2026 client's call to a 2025 upstream, which may ask for input mid-call. The first request
   * starts the upstream call; when the upstream asks, the client gets input_required with a
   * requestState naming the paused call; its retry (decided again, and required to be the same
   * call) carries the answer to the upstream and waits for the next step.
   */
  private async callWithInputRounds(x: Exchange, session: GatewaySession, shaped: ShapedRequest): Promise<JsonRpcResponse> {
    const id = (x.message!.message as { id: string | number }).id;
    const owner = session.owner;
    const digest = callDigest(shaped.method, shaped.tool ?? shaped.resource ?? shaped.prompt, shaped.arguments);
    const relay = (msg: JsonRpcMessage) => this.relay(session, msg, (r) => x.responder.related(r));
    let call: PausableCall;
    x.record.upstreamStarted();
    x.acted = true;
    try {
      const state = shaped.retry?.requestState;
      if (state) {
        const parked = this.parked.take(state, owner, x.server);
        if (!parked) throw new Refusal("invalid_params", "requestState is unknown, expired, or not this agent's");
        if (parked.callDigest !== digest) {
          this.parked.take(state, owner, x.server);
          parked.call.abort.abort();
          throw new Refusal("invalid_params", "requestState belongs to another request (method, name and arguments must be the same)");
        }
        const response = shaped.retry!.inputResponses[parked.asked.key];
        if (!isObject(response)) {
          parked.call.abort.abort();
          throw new Refusal("invalid_params", `inputResponses lacks "${parked.asked.key}"`);
        }
        call = parked.call;
        call.relayTo(relay);
        await parked.answer({ jsonrpc: "2.0", id: parked.asked.upstreamId, result: response });
      } else {
        const request = this.upstreamRequest(session, shaped, id);
        call = new PausableCall(
          (onMessage, signal) => session.upstream.request(request, { timeoutMs: this.timeoutMs(x.server), onMessage, signal, agent: x.identity!, decisionId: x.record.decisionId }),
          relay,
        );
      }
      // Closing the response cancels the call (2026); once parked, the response is complete and this never fires.
      const current = call;
      cancelOnClose(x.res).addEventListener("abort", () => current.abort.abort(), { once: true });
      const step: CallStep = await call.next();
      if (step.kind === "failed") throw step.error;
      if (step.kind === "answer") {
        if (step.answer.error) x.record.fail("upstream_error", `${step.answer.error.code}: ${step.answer.error.message}`);
        return { ...step.answer, id };
      }
      const asked = step.request;
      const missing = missingCapabilities(requiredCapabilities(asked.method, asked.params) ?? {}, x.era.era === "modern" ? x.era.envelope.clientCapabilities : {});
      if (missing) {
        await session.upstream.send({ jsonrpc: "2.0", id: asked.id, error: { code: -32601, message: `the client does not support ${asked.method}` } }).catch(() => undefined);
        call.abort.abort();
        throw new Refusal("missing_client_capability", `the upstream asked for ${asked.method}`, { requiredCapabilities: missing });
      }
      call.relayTo(() => undefined); // between rounds the client has no stream to receive on
      const key = "input-1";
      const requestState = this.parked.park({ owner, server: x.server, callDigest: digest, call, asked: { key, upstreamId: asked.id }, answer: (r) => session.upstream.send(r) }, this.timeoutMs(x.server));
      const inputRequests = { [key]: { method: asked.method, ...(asked.params !== undefined && { params: asked.params }) } };
      return { jsonrpc: "2.0", id, result: { resultType: "input_required", inputRequests, requestState } };
    } finally {
      x.record.upstreamFinished();
    }
  }

  /** The request as the upstream gets it: decided fields only; for a 2025 upstream no 2026 envelope or retry members. */
  private upstreamRequest(session: GatewaySession, shaped: ShapedRequest, id: string | number, trace?: RequestOptions["trace"]): JsonRpcRequest {
    let request = forwardedRequest(shaped, id);
    if (trace) {
      // The gateway's span is the upstream's parent in `_meta` too (stdio has no headers), replacing the agent's.
      const params = request.params ?? {};
      const meta = isObject(params._meta) ? params._meta : {};
      request = { ...request, params: { ...params, _meta: { ...meta, traceparent: trace.traceparent, ...(trace.tracestate && { tracestate: trace.tracestate }) } } };
    }
    if (session.upstream.era !== "legacy" || !request.params) return request;
    const { inputResponses: _answers, requestState: _state, _meta, ...rest } = request.params;
    const meta = legacyMeta(isObject(_meta) ? _meta : undefined);
    return { ...request, params: { ...rest, ...(meta && { _meta: meta }) } };
  }

  /** One request upstream, with its latency and any upstream error on record. */
  private async exchangeUpstream(x: Exchange, session: GatewaySession, shaped: ShapedRequest): Promise<JsonRpcResponse> {
    const id = (x.message!.message as { id: string | number }).id;
    x.record.upstreamStarted();
    x.acted = true;
    // 2026: closing the response is how a client cancels; in 2025 cancellation is a notification of its own.
    const cancel = x.era.era === "modern" ? cancelOnClose(x.res) : undefined;
    const traced = this.upstreamSpan(x, session.server);
    try {
      const answer = await session.upstream.request(this.upstreamRequest(session, shaped, id, traced.trace), {
        ...(cancel && { signal: cancel }),
        trace: traced.trace,
        timeoutMs: this.timeoutMs(session.server),
        onMessage: (msg) => this.relay(session, msg, (m) => x.responder.related(m)),
        onSseEvent: (id, retry, hasMessage) => x.responder.sseEvent(id, retry, hasMessage),
        // For the upstream's identity assertion (gateway/upstream-auth); never the agent's token.
        agent: x.identity!,
        decisionId: x.record.decisionId,
        ...(session.upstream.era === "modern" && shaped.kind === "tool_call" && { headers: this.paramHeaders(x, session, shaped) }),
      });
      if (answer.error) x.record.fail("upstream_error", `${answer.error.code}: ${answer.error.message}`);
      traced.span?.end({ ...(answer.error && { rpcErrorCode: answer.error.code, message: answer.error.message }), ...(answer.result?.isError === true && { toolError: true }) });
      return answer;
    } catch (err) {
      traced.span?.end({ errorCode: err instanceof UpstreamError ? err.code : "error", message: err instanceof Error ? err.message : String(err) });
      throw err;
    } finally {
      x.record.upstreamFinished();
    }
  }

  /** What the agent may see of an answer: lists filtered per item, tasks remembered. */
  private async shapeAnswer(x: Exchange, session: GatewaySession, shaped: ShapedRequest, answer: JsonRpcResponse): Promise<JsonRpcResponse> {
    const result = answer.result;
    if (!result) return answer;
    if (shaped.kind === "tool_call") {
      answer = this.resultPolicy(x, answer, result);
      x.record.toolResult(answer.result);
      const task = (result.task as { taskId?: unknown } | undefined)?.taskId;
      if (typeof task === "string") {
        const lifetimeMs = Math.min(session.expiresMs - this.deps.clock.now(), this.deps.config.sessions.maxLifetimeSeconds * 1000);
        await this.sessions.ledger.putTask(session.handle, this.taskKey(session, task), { tool: shaped.tool!, arguments: shaped.arguments ?? {} }, lifetimeMs);
      }
      return answer;
    }
    if (shaped.method === "tasks/list" && Array.isArray(result.tasks)) {
      const ids = result.tasks.flatMap((t: unknown) => (isObject(t) && typeof t.taskId === "string" ? [t.taskId] : []));
      const mine = await this.sessions.ledger.knownTasks(session.handle, ids);
      const tasks = result.tasks.filter((t: unknown) => isObject(t) && typeof t.taskId === "string" && mine.has(t.taskId));
      return { jsonrpc: "2.0", id: answer.id, result: { ...result, tasks } };
    }
    if (shaped.kind === "list") return await this.filterList(x, session, shaped, answer, result);
    return answer;
  }

  /**
   * Policy over results (mcp/authz/result, when the bundle has it): the result is let through,
   * redacted, or withheld before the agent sees it; the audit records pointers and sizes only.
   * A failing result policy withholds the result (fail closed).
   */
  private resultPolicy(x: Exchange, answer: JsonRpcResponse, result: Record<string, unknown>): JsonRpcResponse {
    const policy = this.deps.policy();
    if (!policy.hasResultPolicy || !x.input) return answer;
    const decided = policy.decideResult(x.input, result);
    const d = decided.decision;
    if (!d.allow) {
      x.record.resultPolicy({ allow: false, reasons: d.reasons, redacted: [], unresolved: [], ...(decided.error && { error: `${decided.error.code}: ${decided.error.message}` }) });
      const text = d.message ?? (decided.error ? "The tool's result was withheld: the result policy failed." : "The tool's result was withheld by policy.");
      return { jsonrpc: "2.0", id: answer.id, result: { content: [{ type: "text", text }], isError: true, _meta: { [DECISION_META_KEY]: { decision_id: x.record.decisionId, result_withheld: true } } } };
    }
    if (d.redact.length === 0) return answer;
    const applied = applyRedactions(result, d.redact);
    x.record.resultPolicy({ allow: true, reasons: d.reasons, redacted: applied.redacted, unresolved: applied.unresolved });
    return { jsonrpc: "2.0", id: answer.id, result: applied.result };
  }

  /** Each listed item decided with the list method; one event for the list (`list.visible/hidden`). */
  private async filterList(x: Exchange, session: GatewaySession, shaped: ShapedRequest, answer: JsonRpcResponse, result: Record<string, unknown>): Promise<JsonRpcResponse> {
    const list = LIST_METHODS[shaped.method]!;
    const items = result[list.field];
    if (!Array.isArray(items)) return answer;
    const f = await this.filterItems(x, session, shaped, list, items, typeof result.nextCursor !== "string" || result.nextCursor === "");
    x.record.decisionInput(this.input(x, shaped.method, NO_ITEM, null), this.deps.policy().revision, f.elapsedMs);
    x.record.list(f.shown, f.hidden);
    if (f.integrity.length > 0) x.record.fail(f.integrity.some((l) => l.includes(": drifted, ")) ? "tool_drifted" : "tool_name_collision", f.integrity.join(" | "));
    // Filtered for this principal: no shared cache may keep it (2026 cache hints; harmless to 2025 clients).
    return { jsonrpc: "2.0", id: answer.id, result: { ...result, [list.field]: f.visible, ttlMs: typeof result.ttlMs === "number" ? result.ttlMs : 0, cacheScope: "private" } };
  }

  /** One upstream's listed items, each decided with the list method for `session.server`; drifted and colliding tools hidden. */
  private async filterItems(x: Exchange, session: GatewaySession, shaped: ShapedRequest, list: (typeof LIST_METHODS)[string] & object, items: unknown[], lastPage: boolean): Promise<{ visible: Record<string, unknown>[]; shown: string[]; hidden: string[]; integrity: string[]; elapsedMs: number }> {
    const server = session.server;
    if (list.field === "tools") this.rememberTools(session, items, shaped.forwardParams?.cursor === undefined, lastPage);
    // Pinning: a drifted tool, or one whose name collides with another's, is not shown.
    const tools = list.field === "tools" ? items.filter((i): i is ToolDefinition => isObject(i) && typeof i.name === "string") : [];
    const pinned = this.deps.pinning && tools.length > 0 ? await this.deps.pinning.listing(server, tools) : null;
    if (pinned) session.refusedTools = shaped.forwardParams?.cursor === undefined || !session.refusedTools ? pinned.refused : new Map([...session.refusedTools, ...pinned.refused]);
    const integrity: string[] = [];
    const policy = this.deps.policy();
    // One pass: the listing's input is built once (one request, one time for every item) and each
    // item is decided on it with its name and definition put in (policy/list.ts).
    const base = this.input(x, list.itemMethod, NO_ITEM, null, server);
    const slots: Array<{ item: Record<string, unknown>; name: string; decided: number | null }> = [];
    const toDecide: PolicyListItem[] = [];
    for (const item of items) {
      if (!isObject(item)) continue;
      const name = String(item[list.nameOf]);
      if (pinned) {
        const refused = pinned.refused.get(name);
        const verdict = pinned.verdicts.get(name);
        if (refused !== undefined || verdict?.state === "drifted") {
          integrity.push(refused !== undefined ? `${name}: refused, ${refused}` : `${name}: drifted, ${(verdict as { changes: string }).changes}`);
          slots.push({ item, name, decided: null });
          continue;
        }
      }
      const fields = list.field === "tools" ? { tool: name } : list.field === "prompts" ? { prompt: name } : { resource: name };
      slots.push({ item, name, decided: toDecide.length });
      toDecide.push(listItem(fields, list.field === "tools" ? (item as unknown as ToolDefinition) : null));
    }
    const outcomes = decideItemsWith(policy, base, toDecide);
    const visible: Record<string, unknown>[] = [];
    const shown: string[] = [];
    const hidden: string[] = [];
    let elapsedMs = 0;
    for (const slot of slots) {
      const decided = slot.decided === null ? undefined : outcomes[slot.decided];
      if (decided !== undefined) elapsedMs += decided.elapsedMs;
      if (decided?.decision.allow === true) {
        visible.push(slot.item);
        shown.push(slot.name);
      } else hidden.push(slot.name);
    }
    return { visible, shown, hidden, integrity, elapsedMs };
  }

  private async initialize(x: Exchange, shaped: ShapedRequest): Promise<void> {
    const request = x.message!.message as { id: string | number };
    const upstream = this.deps.connectUpstream(x.server);
    x.record.upstreamStarted();
    x.acted = true;
    let answer: JsonRpcResponse;
    const traced = this.upstreamSpan(x);
    try {
      answer = await upstream.initialize(forwardedRequest(shaped, request.id), { timeoutMs: this.timeoutMs(x.server), agent: x.identity!, trace: traced.trace });
      traced.span?.end(answer.error ? { rpcErrorCode: answer.error.code, message: answer.error.message } : undefined);
    } catch (err) {
      traced.span?.end({ errorCode: err instanceof UpstreamError ? err.code : "error", message: String(err) });
      await upstream.close();
      // The operator's first clue when an upstream is down or a stdio command dies at start.
      this.deps.log("error", "upstream initialize failed", { server: x.server, error: String(err) });
      const code = err instanceof UpstreamError ? err.code : "error";
      x.record.fail(code, String(err instanceof Error ? err.message : err));
      throw new Refusal("upstream_init_failed", code, { code });
    } finally {
      x.record.upstreamFinished();
    }
    x.outcome = "allowed";
    if (answer.error) {
      await upstream.close();
      x.record.fail("upstream_error", `${answer.error.code}: ${answer.error.message}`);
      x.answer = resultAnswer(answer);
      return;
    }
    const identity = x.identity!;
    let session: GatewaySession;
    try {
      session = await this.sessions.mint({ server: x.server, iss: identity.iss, sub: identity.sub, upstream, protocolVersion: protocolVersionOf(answer), initResult: answer.result ?? {}, slot: x.slot! });
    } catch (err) {
      await upstream.close();
      throw err;
    }
    x.slot = null; // adopted: released when the session ends
    x.session = session;
    x.record.describe({ sessionId: session.handle });
    x.answer = resultAnswer(answer, { "mcp-session-id": session.id });
  }

  /**
   * GET: the session's server→client stream, or with Last-Event-ID the resumption of a stream the
   * upstream paused (the upstream replays what followed that id; several may be resumed at once).
   */
  private async openStream(x: Exchange, session: GatewaySession, lastEventId: string | undefined): Promise<void> {
    const resuming = lastEventId !== undefined;
    if (!resuming && session.closeStream) throw new Refusal("stream_conflict");
    const abort = new AbortController();
    const res = x.res;
    // Claim the slot before awaiting the upstream, so a concurrent GET sees the conflict.
    if (!resuming) session.closeStream = () => abort.abort();
    let state: "open" | "unsupported";
    let nextId: string | null = null;
    // Events the upstream sends before the stream-open event is written wait here (send() releases them).
    let held: string[] | null = [];
    const write = (chunk: string) => {
      if (held) held.push(chunk);
      else if (!res.writableEnded) res.write(chunk);
    };
    let upstreamEnded = false;
    x.streamLive = () => {
      const chunks = held ?? [];
      held = null;
      for (const c of chunks) res.write(c);
      if (upstreamEnded) res.end();
    };
    x.acted = true;
    try {
      state = await session.upstream.listen(
        (m) =>
          this.relay(session, m, (relayed) => {
            write(sseMessage(serialize(relayed), nextId));
            nextId = null;
          }),
        abort.signal,
        () => {
          if (held) upstreamEnded = true;
          else res.end();
        },
        {
          ...(resuming && { lastEventId: lastEventId.slice(0, 1024) }),
          onSseEvent: (id, retry, hasMessage) => {
            if (hasMessage) nextId = id;
            if (!hasMessage || retry !== null) write(ssePriming(hasMessage ? null : id, retry));
          },
        },
      );
    } catch (err) {
      if (!resuming) session.closeStream = null;
      throw new Refusal("upstream_init_failed", err instanceof Error ? err.message : String(err));
    }
    if (state === "unsupported") {
      if (!resuming) session.closeStream = null;
      throw new Refusal("method_not_allowed", "the upstream has no server→client stream", undefined, undefined, { allow: "POST, DELETE" });
    }
    if (!resuming) {
      session.closeStream = () => {
        abort.abort();
        res.end();
      };
    }
    res.on("close", () => {
      abort.abort();
      if (!resuming) session.closeStream = null;
    });
    x.outcome = "allowed";
    x.answer = { kind: "stream" };
  }

  // --------------------------------------------------------------------------------- federation

  /**
   * Stage 5c at a federated endpoint: a request naming a tool, prompt, resource or task goes to
   * the upstream that name belongs to, and from here on is that upstream's request (decided with
   * `request.server` = it, its name as the upstream knows it). Anything else fans out (fanOut).
   */
  private async route(x: Exchange): Promise<void> {
    const endpoint = x.endpoint;
    const session = x.session;
    if (!endpoint || !x.message || !session) return;
    x.federatedSession = session;
    const m = x.message;
    if (m.kind === "response") {
      // The member that asked is sealed into the id it gave the agent.
      const id = m.message.id;
      const asked = typeof id === "string" && id.startsWith(SERVER_REQUEST_PREFIX) ? this.sealer.open("server-request/1", id.slice(SERVER_REQUEST_PREFIX.length)) : null;
      const member = isServerRequestSeal(asked) ? asked.server : undefined;
      const view = member !== undefined ? this.memberOf(session, member) : null;
      if (!view) throw new Refusal("unexpected_response");
      return this.switchTo(x, view, null);
    }
    if (m.kind !== "request") return;
    const shaped = x.shaped!;
    if (shaped.kind === "tool_call") {
      const exposed = shaped.tool!;
      const view = this.namedMember(x, session, exposed);
      if (!view) {
        x.record.fail("unknown_tool", `no upstream of ${endpoint.path} serves tool "${exposed.slice(0, 128)}"`);
        throw new Refusal("unknown_tool", undefined, undefined, `Unknown tool: ${exposed.slice(0, 128)}`);
      }
      this.switchTo(x, view, exposed);
      const name = await this.memberItemName(x, view, "tools/list", "tools", exposed);
      shaped.tool = name;
      shaped.forwardParams = { ...shaped.forwardParams, name };
      return;
    }
    if (shaped.kind === "item" && shaped.prompt !== null) {
      const exposed = shaped.prompt;
      const view = this.namedMember(x, session, exposed);
      if (!view) throw new Refusal("invalid_params", `no upstream of ${endpoint.path} serves prompt "${exposed.slice(0, 128)}"`);
      this.switchTo(x, view, exposed);
      const name = await this.memberItemName(x, view, "prompts/list", "prompts", exposed);
      shaped.prompt = name;
      const params = shaped.forwardParams ?? {};
      shaped.forwardParams = isObject(params.ref) ? { ...params, ref: { ...params.ref, name } } : { ...params, name };
      return;
    }
    if (shaped.kind === "item" && shaped.resource !== null) {
      const view = await this.resourceOwner(x, session, shaped.resource);
      return this.switchTo(x, view, null);
    }
    if (shaped.kind === "task") {
      const views = this.joinedViews(session);
      const found = await Promise.all(views.map((v) => this.sessions.ledger.getTask(session.handle, this.taskKey(v, shaped.taskId!))));
      const owners = views.filter((_, i) => found[i] !== undefined);
      if (owners.length === 0) throw new Refusal("unknown_task", shaped.taskId!.slice(0, 128));
      if (owners.length > 1) throw new Refusal("invalid_params", `task ${shaped.taskId!.slice(0, 128)} is known to several upstreams of ${endpoint.path}`);
      return this.switchTo(x, owners[0]!, null);
    }
  }

  /** Whether this exchange is a federated request that names no upstream (it goes to each member). */
  private fansOut(x: Exchange): boolean {
    return x.endpoint !== null && x.server === x.endpoint.id;
  }

  /** The exchange continues as a request to one member (its view of the session). */
  private switchTo(x: Exchange, view: GatewaySession, exposedName: string | null): void {
    x.server = view.server;
    x.session = view;
    x.agentName = exposedName;
    x.record.describe({ server: view.server });
    x.record.federation({ endpoint: x.endpoint!.path, ...(exposedName !== null && { name: exposedName }) });
  }

  /** The member a federated name (`NAME<sep>item`) names, if it joined this session. */
  private namedMember(x: Exchange, session: GatewaySession, exposed: string): GatewaySession | null {
    const split = splitFederatedName(exposed, this.deps.config.federation!.separator, x.endpoint!.members);
    return split ? this.memberOf(session, split.member) : null;
  }

  /**
   * The member's own name for a federated name: the rest after the separator, or for a shortened
   * name the item whose shortening it is (found in the member's listing).
   */
  private async memberItemName(x: Exchange, view: GatewaySession, method: "tools/list" | "prompts/list", field: "tools" | "prompts", exposed: string): Promise<string> {
    const sep = this.deps.config.federation!.separator;
    const rest = exposed.slice(view.server.length + sep.length);
    // Only a name of the full length can be a shortening; any shorter one is the item's own name.
    if (exposed.length < FEDERATED_NAME_MAX) return rest;
    const known = field === "tools" ? [...(view.catalog?.keys() ?? [])] : [];
    const hit = known.find((n) => federatedName(view.server, sep, n) === exposed);
    if (hit !== undefined) return hit;
    await this.restartSession(x, view, true);
    const items = await this.listAll(view, method, field);
    if (field === "tools") this.rememberTools(view, items, true);
    const names = items.flatMap((i) => (isObject(i) && typeof i.name === "string" ? [i.name] : []));
    // Not an item of this member: forwarded as named, so the member answers (and policy decides) as for any unknown name.
    return names.find((n) => federatedName(view.server, sep, n) === exposed) ?? rest;
  }

  /** The member that serves a resource URI: the one that listed it, else the one whose template it fits. */
  private async resourceOwner(x: Exchange, session: GatewaySession, uri: string): Promise<GatewaySession> {
    const routes = this.resourceRoutes(session);
    const known = routes.uris.get(uri);
    const view = known !== undefined ? this.memberOf(session, known) : null;
    if (view) return view;
    const views = this.joinedViews(session);
    if (!routes.complete) {
      // Not seen on this replica yet: learn what each member offers (the gateway's own listing, as for tool definitions).
      await Promise.all(
        views.map(async (v) => {
          try {
            await this.restartSession(x, v, true);
            const [resources, templates] = await Promise.all([this.listAll(v, "resources/list", "resources"), this.listAll(v, "resources/templates/list", "resourceTemplates")]);
            this.learnResources(session, v.server, resources, templates);
          } catch (err) {
            if (err instanceof Refusal) throw err;
            this.deps.log("warn", "federated resource listing failed", { server: v.server, error: String(err) });
          }
        }),
      );
      routes.complete = true;
    }
    const listed = routes.uris.get(uri);
    if (listed !== undefined && this.memberOf(session, listed)) return this.memberOf(session, listed)!;
    const fits = views.filter((v) => (routes.templates.get(v.server) ?? []).some((t) => matchesUriTemplate(t, uri)));
    if (fits.length === 1) return fits[0]!;
    throw new Refusal("invalid_params", fits.length === 0 ? `no upstream of ${x.endpoint!.path} lists resource ${uri.slice(0, 256)}` : `resource ${uri.slice(0, 256)} fits templates of several upstreams (${fits.map((v) => v.server).join(", ")})`);
  }

  private resourceRoutes(session: GatewaySession): FederatedRoutes {
    let r = this.routes.get(session);
    if (!r) this.routes.set(session, (r = { uris: new Map(), templates: new Map(), complete: false }));
    return r;
  }

  private learnResources(session: GatewaySession, member: string, resources: unknown[], templates: unknown[] | null): void {
    const routes = this.resourceRoutes(session);
    for (const r of resources) if (isObject(r) && typeof r.uri === "string") routes.uris.set(r.uri, routes.uris.has(r.uri) && routes.uris.get(r.uri) !== member ? AMBIGUOUS : member);
    if (templates) routes.templates.set(member, templates.flatMap((t) => (isObject(t) && typeof t.uriTemplate === "string" ? [t.uriTemplate] : [])));
  }

  /** Every item of one listing method (the gateway's own request, at most 64 pages). */
  private async listAll(session: GatewaySession, method: string, field: string): Promise<unknown[]> {
    const items: unknown[] = [];
    let cursor: string | undefined;
    for (let page = 0; page < 64; page++) {
      const answer = await session.upstream.request(
        { jsonrpc: "2.0", id: `catalog-${page}`, method, params: cursor ? { cursor } : {} },
        { timeoutMs: this.timeoutMs(session.server), internal: true },
      );
      const got = answer.result?.[field];
      if (Array.isArray(got)) items.push(...got);
      const next = answer.result?.nextCursor;
      if (typeof next !== "string" || next.length === 0) break;
      cursor = next;
    }
    return items;
  }

  /**
   * A federated session's view of one member: a session of that upstream as the rest of the
   * pipeline knows it (same id, handle, owner and bounds; the member's connection and catalog).
   */
  private memberOf(session: GatewaySession, member: string): GatewaySession | null {
    const upstream = session.upstream;
    if (!(upstream instanceof FederatedUpstream)) return null;
    const conn = upstream.members.get(member);
    if (!conn) return null;
    let views = this.views.get(session);
    if (!views) this.views.set(session, (views = new Map()));
    let view = views.get(member);
    if (!view) {
      view = {
        id: session.id,
        handle: session.handle,
        server: member,
        owner: session.owner,
        upstream: conn,
        protocolVersion: session.protocolVersion,
        initResult: upstream.initResults.get(member) ?? {},
        expiresMs: session.expiresMs,
        lastSeenMs: session.lastSeenMs,
        catalog: null,
        catalogFetchedMs: 0,
        refusedTools: null,
        closeStream: null,
        pendingInit: upstream.pendingInits.get(member) ?? null,
        starting: null,
        slot: session.slot,
        held: session.held,
      };
      views.set(member, view);
      this.memberViews.add(view);
    }
    return view;
  }

  /** The members that joined a federated session, in the endpoint's order. */
  private joinedViews(session: GatewaySession): GatewaySession[] {
    const upstream = session.upstream;
    if (!(upstream instanceof FederatedUpstream)) return [];
    const order = this.federated.get(session.server)?.members ?? [...upstream.members.keys()];
    return order.flatMap((m) => {
      const v = this.memberOf(session, m);
      return v ? [v] : [];
    });
  }

  /** A task's key in the ledger: a member's tasks are kept apart (two upstreams may use one task id). */
  private taskKey(session: GatewaySession, taskId: string): string {
    return this.memberViews.has(session) ? `${session.server}/${taskId}` : taskId;
  }

  /**
   * Opens a federated session's upstream side: each member decided as `initialize` (request.server
   * = the member), those allowed connected and initialized at once. A member refused or failing is
   * left out, and named in the event and the answer; at least one must join.
   */
  private async joinMembers(x: Exchange, clientEra: "legacy" | "modern", params: Record<string, unknown> | undefined, id: string | number): Promise<{ upstream: FederatedUpstream; statuses: Record<string, string> }> {
    const endpoint = x.endpoint!;
    const policy = this.deps.policy();
    const statuses: Record<string, string> = {};
    let elapsedMs = 0;
    let denial: DecisionOutcome | null = null;
    const allowed = endpoint.members.filter((m) => {
      const decided = policy.decide(this.input(x, "initialize", NO_ITEM, null, m));
      elapsedMs += decided.elapsedMs;
      if (!decided.decision.allow) {
        statuses[m] = "denied";
        denial = decided;
      }
      return decided.decision.allow;
    });
    x.record.federation({ endpoint: endpoint.path, members: statuses });
    if (allowed.length === 0) {
      x.record.decisionInput(this.input(x, "initialize", NO_ITEM, null), policy.revision, elapsedMs);
      x.decided = denial;
      throw new Refusal("method_denied", "the agent may not open a session with any upstream of this endpoint (initialize)", undefined, "Method not found: initialize");
    }
    x.acted = true;
    x.record.upstreamStarted();
    const joined = await Promise.all(
      allowed.map(async (member) => {
        const conn = this.deps.connectUpstream(member, clientEra);
        try {
          const answer = await conn.initialize({ jsonrpc: "2.0", id, method: "initialize", ...(params !== undefined && { params }) }, { timeoutMs: this.timeoutMs(member), agent: x.identity!, internal: clientEra === "modern" });
          if (answer.error) throw new UpstreamError("upstream_bad_response", `upstream refused initialize: ${answer.error.code} ${answer.error.message}`);
          // A 2026 client sends no notifications/initialized: the gateway ends a 2025 member's handshake itself.
          if (clientEra === "modern" && conn.era === "legacy") await conn.send({ jsonrpc: "2.0", method: "notifications/initialized" });
          statuses[member] = "ok";
          return { member, conn, result: answer.result ?? {} };
        } catch (err) {
          await conn.close().catch(() => undefined);
          statuses[member] = `failed: ${err instanceof UpstreamError ? err.code : "error"}`;
          this.deps.log("warn", "federated upstream did not join the session", { endpoint: endpoint.path, server: member, error: String(err) });
          return null;
        }
      }),
    );
    x.record.upstreamFinished();
    x.record.federation({ endpoint: endpoint.path, members: statuses });
    const ok = joined.filter((j): j is NonNullable<typeof j> => j !== null);
    if (ok.length === 0) {
      x.record.fail("upstream_unreachable", `no upstream of ${endpoint.path} could be initialized: ${JSON.stringify(statuses)}`);
      throw new Refusal("upstream_init_failed", "no upstream of this endpoint could be reached", { servers: statuses });
    }
    const upstream = new FederatedUpstream(new Map(ok.map((j) => [j.member, j.conn])));
    for (const j of ok) upstream.initResults.set(j.member, j.result);
    return { upstream, statuses };
  }

  /**
   * Stages 6-8 of a federated request that names no upstream: decided for each member, sent to
   * those allowed, answered once. Lists are merged (listFederated); initialize opens the members.
   */
  private async fanOut(x: Exchange): Promise<void> {
    const endpoint = x.endpoint!;
    const m = x.message!;
    const shaped = x.shaped!;
    if (shaped.kind === "initialize") return this.initializeFederated(x, shaped);
    const session = x.session!;
    if (shaped.kind === "list" || shaped.method === "tasks/list") return this.listFederated(x, session, shaped);
    if (m.kind === "request" && !FANNED_OUT.has(shaped.method)) {
      throw new Refusal("method_not_found", `${shaped.method.slice(0, 64)} names no upstream: ${endpoint.path} routes tools, prompts, resources and tasks by name and answers ${[...FANNED_OUT].join(", ")} itself`);
    }
    const policy = this.deps.policy();
    const statuses: Record<string, string> = {};
    let elapsedMs = 0;
    let first: DecisionOutcome | null = null;
    const allowed = this.joinedViews(session).filter((v) => {
      const decided = policy.decide(this.input(x, shaped.method, NO_ITEM, null, v.server));
      elapsedMs += decided.elapsedMs;
      if (!first || (decided.decision.allow && !first.decision.allow)) first = decided;
      if (!decided.decision.allow) statuses[v.server] = "denied";
      return decided.decision.allow;
    });
    x.record.decisionInput(this.input(x, shaped.method, NO_ITEM, null), policy.revision, elapsedMs);
    x.decided = first;
    x.record.federation({ endpoint: endpoint.path, members: statuses });
    if (allowed.length === 0) {
      const denialData = { [DECISION_META_KEY]: { decision_id: x.record.decisionId } };
      throw new Refusal("method_denied", undefined, denialData, `Method not found: ${shaped.method.slice(0, 128)}`);
    }
    if (m.kind === "notification") {
      // 2026 clients send no notifications over HTTP that an upstream needs; 2025 ones go to each member allowed.
      if (x.era.era === "legacy") {
        x.acted = true;
        await Promise.all(
          allowed.map(async (v) => {
            try {
              await this.restartSession(x, v, false);
              await v.upstream.send(forwardedNotification(shaped));
              statuses[v.server] = "ok";
            } catch (err) {
              statuses[v.server] = `failed: ${err instanceof UpstreamError ? err.code : err instanceof Refusal ? err.code : "error"}`;
            }
          }),
        );
      }
      x.record.federation({ endpoint: endpoint.path, members: statuses });
      x.outcome = "allowed";
      x.answer = { kind: "empty", status: 202 };
      return;
    }
    const id = (m.message as { id: string | number }).id;
    let result: Record<string, unknown>;
    if (shaped.method === "ping") result = {};
    else if (shaped.method === "server/discover") result = discoverResultOf(session);
    else {
      // logging/setLevel: each member allowed gets it; the answer says which did not.
      x.acted = true;
      await Promise.all(
        allowed.map(async (v) => {
          try {
            await this.restartSession(x, v, false);
            const answer = await this.exchangeUpstream(x, v, shaped);
            statuses[v.server] = answer.error ? `failed: upstream_error ${answer.error.code}` : "ok";
          } catch (err) {
            statuses[v.server] = `failed: ${err instanceof UpstreamError ? err.code : err instanceof Refusal ? err.code : "error"}`;
          }
        }),
      );
      x.record.federation({ endpoint: endpoint.path, members: statuses });
      if (!Object.values(statuses).includes("ok")) throw new Refusal("upstream_failed", `no upstream of ${endpoint.path} took ${shaped.method}`, { code: "upstream_failed", servers: statuses });
      result = {};
    }
    const unavailable = unavailableOf(statuses);
    x.outcome = "allowed";
    const answer: JsonRpcResponse = { jsonrpc: "2.0", id, result: unavailable.length > 0 ? { ...result, _meta: { ...(isObject(result._meta) ? result._meta : {}), [FEDERATION_META_KEY]: { unavailable } } } : result };
    x.answer = resultAnswer(x.era.era === "modern" ? modernAnswer(answer, session) : answer);
  }

  /** A 2025 initialize at a federated endpoint: every member allowed joins one session. */
  private async initializeFederated(x: Exchange, shaped: ShapedRequest): Promise<void> {
    const endpoint = x.endpoint!;
    const id = (x.message!.message as { id: string | number }).id;
    const params = shaped.forwardParams ?? {};
    const { upstream, statuses } = await this.joinMembers(x, "legacy", params, id);
    const asked = params.protocolVersion;
    const version = typeof asked === "string" && (LEGACY_PROTOCOL_VERSIONS as readonly string[]).includes(asked) ? asked : LEGACY_UPSTREAM_VERSION;
    const initResult = mergedInitResult(endpoint, version, upstream.initResults, this.deps.auditContext.version);
    const identity = x.identity!;
    let session: GatewaySession;
    try {
      session = await this.sessions.mint({ server: x.server, iss: identity.iss, sub: identity.sub, upstream, protocolVersion: version, initResult, slot: x.slot! });
    } catch (err) {
      await upstream.close();
      throw err;
    }
    x.slot = null;
    x.session = session;
    x.record.describe({ sessionId: session.handle });
    x.outcome = "allowed";
    const unavailable = unavailableOf(statuses);
    x.answer = resultAnswer({ jsonrpc: "2.0", id, result: { ...initResult, ...(unavailable.length > 0 && { _meta: { [FEDERATION_META_KEY]: { unavailable } } }) } }, { "mcp-session-id": session.id });
  }

  /**
   * A merged list: each member's page fetched at once (its own cursor), each item decided for its
   * member and renamed `NAME<sep>item`; the next cursor says where each member's listing stands.
   * A member that fails is left out and named in `_meta`; one event for the whole list.
   */
  private async listFederated(x: Exchange, session: GatewaySession, shaped: ShapedRequest): Promise<void> {
    const endpoint = x.endpoint!;
    const sep = this.deps.config.federation!.separator;
    const list = LIST_METHODS[shaped.method];
    const field = list?.field ?? "tasks";
    const views = this.joinedViews(session);
    const names = views.map((v) => v.server);
    const cursor = shaped.forwardParams?.cursor;
    const pending = cursor === undefined ? Object.fromEntries(names.map((n) => [n, ""])) : decodeFederatedCursor(cursor, names);
    const statuses: Record<string, string> = {};
    x.acted = true;
    const pages = await Promise.all(
      views
        .filter((v) => pending[v.server] !== undefined)
        .map(async (view) => {
          try {
            await this.restartSession(x, view, false);
            const { cursor: _agents, ...rest } = shaped.forwardParams ?? {};
            const memberCursor = pending[view.server]!;
            const memberShaped: ShapedRequest = { ...shaped, forwardParams: { ...rest, ...(memberCursor !== "" && { cursor: memberCursor }) } };
            const answer = await this.exchangeUpstream(x, view, memberShaped);
            if (answer.error || !answer.result) throw new UpstreamError("upstream_bad_response", answer.error ? `${answer.error.code}: ${answer.error.message}` : "no result");
            statuses[view.server] = "ok";
            return { view, memberShaped, result: answer.result };
          } catch (err) {
            statuses[view.server] = err instanceof Refusal && err.code === "method_denied" ? "denied" : `failed: ${err instanceof UpstreamError ? err.code : err instanceof Refusal ? err.code : "error"}`;
            return null;
          }
        }),
    );
    const merged: Record<string, unknown>[] = [];
    const shown: string[] = [];
    const hidden: string[] = [];
    const integrity: string[] = [];
    const next: Record<string, string> = {};
    let elapsedMs = 0;
    for (const page of pages) {
      if (!page) continue;
      const { view, memberShaped, result } = page;
      const member = view.server;
      const items = Array.isArray(result[field]) ? (result[field] as unknown[]) : [];
      if (typeof result.nextCursor === "string" && result.nextCursor.length > 0) next[member] = result.nextCursor;
      if (!list) {
        // tasks/list: the session's own tasks of this member only.
        const ids = items.flatMap((t) => (isObject(t) && typeof t.taskId === "string" ? [t.taskId] : []));
        const mine = await this.sessions.ledger.knownTasks(session.handle, ids.map((t) => this.taskKey(view, t)));
        for (const t of items) if (isObject(t) && typeof t.taskId === "string" && mine.has(this.taskKey(view, t.taskId))) merged.push(t);
        continue;
      }
      const f = await this.filterItems(x, view, memberShaped, list, items, next[member] === undefined);
      elapsedMs += f.elapsedMs;
      integrity.push(...f.integrity.map((l) => `${member}${sep}${l}`));
      const rename = list.nameOf === "uri" ? (n: string) => n : (n: string) => federatedName(member, sep, n);
      hidden.push(...f.hidden.map(rename));
      if (field === "resources") this.learnResources(session, member, f.visible, null);
      if (field === "resourceTemplates") this.learnResources(session, member, [], f.visible);
      for (const item of f.visible) {
        const own = String(item[list.nameOf]);
        merged.push(list.nameOf === "uri" ? item : { ...item, name: rename(String(item.name ?? own)) });
        shown.push(rename(own));
      }
    }
    // Two items that end up with one name (a shortened name meeting another): neither is shown.
    const visible = list ? withoutCollisions(merged, hidden, integrity, list.nameOf === "uri" ? "uri" : "name") : merged;
    x.record.decisionInput(this.input(x, shaped.method, NO_ITEM, null), this.deps.policy().revision, elapsedMs);
    if (list) x.record.list(shown.filter((n) => !hidden.includes(n)), hidden);
    x.record.federation({ endpoint: endpoint.path, members: statuses });
    if (integrity.length > 0) x.record.fail(integrity.some((l) => l.includes(": drifted, ")) ? "tool_drifted" : "tool_name_collision", integrity.join(" | "));
    if (!Object.values(statuses).includes("ok")) throw new Refusal("upstream_failed", `no upstream of ${endpoint.path} answered ${shaped.method}`, { code: "upstream_failed", servers: statuses });
    const unavailable = unavailableOf(statuses);
    const nextCursor = encodeFederatedCursor(next);
    const id = (x.message!.message as { id: string | number }).id;
    const result: Record<string, unknown> = {
      [field]: visible,
      ...(nextCursor !== undefined && { nextCursor }),
      ttlMs: 0,
      cacheScope: "private",
      ...(unavailable.length > 0 && { _meta: { [FEDERATION_META_KEY]: { unavailable } } }),
    };
    x.outcome = "allowed";
    const answer: JsonRpcResponse = { jsonrpc: "2.0", id, result };
    x.answer = resultAnswer(x.era.era === "modern" ? modernAnswer(answer, session) : answer);
  }

  /**
   * GET at a federated endpoint: one stream carrying every member's server→client messages (each
   * server→client request sealed with its member, so the answer goes back to it). No event ids:
   * a reconnecting client gets a new stream, not a replay.
   */
  private async openFederatedStream(x: Exchange, session: GatewaySession): Promise<void> {
    if (session.closeStream) throw new Refusal("stream_conflict");
    const abort = new AbortController();
    const res = x.res;
    session.closeStream = () => abort.abort();
    let held: string[] | null = [];
    let opened = -1;
    let ended = 0;
    const allEnded = () => opened >= 0 && ended >= opened;
    const write = (chunk: string) => {
      if (held) held.push(chunk);
      else if (!res.writableEnded) res.write(chunk);
    };
    const memberEnded = () => {
      ended++;
      if (!held && allEnded()) res.end();
    };
    x.streamLive = () => {
      const chunks = held ?? [];
      held = null;
      for (const c of chunks) res.write(c);
      if (allEnded()) res.end();
    };
    const statuses: Record<string, string> = {};
    x.acted = true;
    const states = await Promise.all(
      this.joinedViews(session).map(async (view) => {
        try {
          await this.restartSession(x, view, false);
          const state = await view.upstream.listen((m) => this.relay(view, m, (r) => write(sseMessage(serialize(r), null))), abort.signal, memberEnded);
          statuses[view.server] = state === "open" ? "ok" : "no stream";
          return state;
        } catch (err) {
          statuses[view.server] = `failed: ${err instanceof UpstreamError ? err.code : err instanceof Refusal ? err.code : "error"}`;
          return "failed" as const;
        }
      }),
    );
    x.record.federation({ endpoint: x.endpoint!.path, members: statuses });
    opened = states.filter((s) => s === "open").length;
    if (opened === 0) {
      session.closeStream = null;
      abort.abort();
      throw new Refusal("method_not_allowed", "no upstream of this endpoint has a server→client stream", undefined, undefined, { allow: "POST, DELETE" });
    }
    session.closeStream = () => {
      abort.abort();
      res.end();
    };
    res.on("close", () => {
      abort.abort();
      session.closeStream = null;
    });
    x.outcome = "allowed";
    x.answer = { kind: "stream" };
  }

  // ------------------------------------------------------------------- refusal and the one exit

  /** The one place a failure becomes the agent's answer and the event's outcome. */
  private async refuse(x: Exchange, err: unknown): Promise<void> {
    if (err instanceof AuthError) {
      const code = err.code;
      if (code === "jwks_unavailable") this.deps.log("error", "JWKS unavailable", { server: x.server, error: String(err) });
      x.record.fail(code, err.message);
      x.outcome = "unauthenticated";
      const refusal = authFailureResponse(code, this.deps.resourceMetadataUrl(x.server));
      x.answer = { kind: "raw", status: refusal.status, headers: refusal.headers, body: JSON.stringify(refusal.body) };
      return;
    }
    if (err instanceof UpstreamError && err.code === "upstream_session_lost" && x.session) {
      // The upstream forgot the session: end ours too, so the client re-initializes.
      await this.sessions.end(x.session.id);
      err = new Refusal("session_not_found", "the upstream session ended");
    }
    const refusal = toRefusal(err, (e) => this.deps.log("error", "request failed", { server: x.server, method: x.shaped?.method, error: String(e) }));
    x.outcome = refusal.entry.outcome;
    // Denials are the policy's answer, not a failure; everything else names its code in the event.
    if (refusal.code !== "denied" && refusal.code !== "method_denied" && refusal.code !== "unknown_tool" && refusal.code !== "tool_drifted" && refusal.code !== "tool_name_collision" && refusal.code !== "approval_required") {
      x.record.fail(refusal.code === "upstream_failed" ? String(refusal.data?.code ?? refusal.code) : refusal.code, refusal.message);
    }
    const m = x.message;
    x.answer = refusalAnswer(refusal, {
      id: m?.kind === "request" ? m.message.id : null,
      isToolCall: x.shaped?.kind === "tool_call",
      isNotification: m !== null && m.kind !== "request",
      decisionId: x.decided ? x.record.decisionId : null,
    });
  }

  /**
   * Writes the event, then answers. An exchange that was decided or reached the upstream and
   * cannot be recorded is answered audit_unavailable: the agent never gets an answer that is not
   * on record.
   */
  private async finish(x: Exchange): Promise<void> {
    let written = true;
    const event = x.record.finish(x.outcome);
    const auditStart = this.deps.observe ? this.deps.clock.monotonicNs() : 0n;
    const auditSpan = x.span?.stage("audit");
    try {
      await this.deps.audit.record(event);
      auditSpan?.end();
    } catch (err) {
      auditSpan?.end({ errorCode: "audit_unavailable", message: String(err) });
      written = false;
      this.deps.log("error", "audit write failed", { decision_id: x.record.decisionId, error: String(err) });
    }
    x.slot?.release();
    // A decision the agent would learn of, or an upstream action, must be on record first; a
    // refusal before any decision (edge, identity) is answered as it is.
    if (!written && (x.acted || x.decided !== null)) {
      if (x.shaped?.kind === "initialize" && x.session) await this.sessions.end(x.session.id);
      if (x.answer?.kind === "stream" && x.session) x.session.closeStream?.();
      const m = x.message;
      x.answer = refusalAnswer(new Refusal("audit_unavailable"), { id: m?.kind === "request" ? m.message.id : null, isToolCall: false, isNotification: m !== null && m.kind !== "request", decisionId: null });
    }
    const answer = modernStatus(x, x.answer ?? refusalAnswer(new Refusal("internal_error"), { id: null, isToolCall: false, isNotification: false, decisionId: null }));
    this.send(x, answer);
    if (x.span) {
      if (x.message === null) this.describeSpan(x);
      const rpcError = answer.kind === "rpc" ? answer.message.error : undefined;
      x.span.end({
        outcome: event.outcome,
        httpStatus: "status" in answer ? answer.status : 200,
        ...(event.error && { errorCode: event.error.code, message: event.error.message }),
        ...(rpcError && { rpcErrorCode: rpcError.code }),
        ...(answer.kind === "rpc" && answer.message.result?.isError === true && { toolError: true }),
      });
    }
    if (this.deps.observe) {
      const auditMs = Number(this.deps.clock.monotonicNs() - auditStart) / 1e6;
      try {
        this.deps.observe({ event, status: "status" in answer ? answer.status : 200, auditMs, audited: written, stageMs: x.stageMs });
      } catch (err) {
        this.deps.log("warn", "observer failed", { error: String(err) });
      }
    }
  }

  private send(x: Exchange, answer: Answer): void {
    const res = x.res;
    switch (answer.kind) {
      case "rpc":
        for (const [k, v] of Object.entries(answer.headers ?? {})) x.responder.header(k, v);
        return x.responder.final(answer.message, answer.status);
      case "empty":
        if (!res.headersSent) res.writeHead(answer.status, answer.headers ?? {});
        return void res.end();
      case "raw":
        if (res.headersSent) return void res.end();
        return void res
          .writeHead(answer.status, { ...answer.headers, "content-type": "application/json", "content-length": Buffer.byteLength(answer.body) })
          .end(answer.body);
      case "stream":
        if (res.writableEnded) return;
        res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache", "x-accel-buffering": "no" });
        res.flushHeaders();
        x.streamLive?.();
        return;
      case "paused":
        return x.responder.paused();
    }
  }

  // ----------------------------------------------------------------------------------- helpers

  private checkOrigin(req: IncomingMessage): void {
    const policy = this.origins();
    // DNS rebinding: a page can point its own name at the gateway; only the gateway's names pass.
    if (!policy.hostAllowed(header(req, "host"))) throw new Refusal("host_forbidden");
    const origin = header(req, "origin");
    // Agents' HTTP clients send no Origin; a browser page does, and must be on the allow-list.
    if (origin !== undefined && !policy.originAllowed(origin)) throw new Refusal("origin_forbidden");
  }

  /** The caller's session of this server, or the refusal (another subject's session is not found). */
  private async ownSession(x: Exchange, req: IncomingMessage): Promise<GatewaySession> {
    const id = header(req, "mcp-session-id");
    if (!id) throw new Refusal("session_required");
    const identity = x.identity!;
    const session = await this.sessions.find(id, ownerOf(identity.iss, identity.sub), x.server);
    if (!session) throw new Refusal("session_not_found");
    x.session = session;
    x.record.describe({ sessionId: session.handle });
    return session;
  }

  /** An agent's response: passed on only when it answers a server→client request we relayed. */
  private async decideResponse(x: Exchange): Promise<void> {
    const m = x.message!.message as JsonRpcResponse;
    const asked = typeof m.id === "string" && m.id.startsWith(SERVER_REQUEST_PREFIX) ? this.sealer.open("server-request/1", m.id.slice(SERVER_REQUEST_PREFIX.length)) : null;
    if (!isServerRequestSeal(asked) || asked.session !== x.session!.handle || asked.exp <= this.deps.clock.now() || (asked.server !== undefined && asked.server !== x.server)) throw new Refusal("unexpected_response");
    // Only this replica's process (stdio) or call in flight can take the answer.
    if (asked.replica !== undefined && asked.replica !== REPLICA_ID) throw new Refusal("unexpected_response", "the request waits on another gateway replica");
    x.record.describe({ method: asked.method, requestId: m.id });
    // Passed on once, whichever replica it reaches: a replayed answer is one nobody waits for.
    const token = createHash("sha256").update(m.id as string).digest("base64url").slice(0, 22);
    if (!(await this.sessions.ledger.claim(token, SERVER_REQUEST_TTL_MS))) throw new Refusal("unexpected_response", "this request was answered already");
    x.answering = asked.id;
  }

  /**
   * A message from the upstream to the agent. A server→client request gets an id sealed with what
   * its answer needs (session, the upstream's id, method), so the agent can answer it through any
   * replica and can answer nothing it was not asked.
   */
  private relay(session: GatewaySession, m: JsonRpcMessage, write: (m: JsonRpcMessage) => void): void {
    if ("method" in m) {
      // A changed tool list invalidates what policy sees as the tool's definition.
      if (m.method === "notifications/tools/list_changed") session.catalog = null;
      if ("id" in m && !session.held) {
        const state = session.upstream.state();
        const local = state.kind !== "http" || state.era === "modern";
        const seal: ServerRequestSeal = { session: session.handle, server: session.server, id: m.id, method: m.method, exp: this.deps.clock.now() + SERVER_REQUEST_TTL_MS, ...(local && { replica: REPLICA_ID }) };
        return write({ ...m, id: SERVER_REQUEST_PREFIX + this.sealer.seal("server-request/1", seal) });
      }
    }
    write(m);
  }

  private scopeChallenge(x: Exchange, decided: DecisionOutcome): void {
    const required = decided.decision.required_scopes;
    if (required === undefined) return;
    const identity = x.identity!;
    const held = new Set(identity.scopes);
    const missing = required.filter((s) => !held.has(s));
    if (missing.length === 0) return;
    // 2025-11-25: the challenge lists the scopes already held plus the new ones, so a client that
    // re-authorizes with exactly this list does not lose what it had.
    const scope = [...new Set([...identity.scopes, ...required])];
    const challenge = wwwAuthenticate({
      resourceMetadataUrl: this.deps.resourceMetadataUrl(x.endpoint?.id ?? x.server),
      error: "insufficient_scope",
      errorDescription: `This request needs scope ${missing.join(" ")}`,
      scope,
    });
    throw new Refusal("insufficient_scope", `token lacks ${missing.join(" ")}`, { required_scopes: missing }, "Forbidden: insufficient scope", { "www-authenticate": challenge });
  }

  /** `Mcp-Param-*` for a 2026 upstream: the declared ones rebuilt from the decided arguments, unknown ones passed on. */
  private paramHeaders(x: Exchange, session: GatewaySession, shaped: ShapedRequest): Record<string, string> {
    const declared = paramHeadersOf(session.catalog?.get(shaped.tool!)?.inputSchema);
    const known = new Set(declared.map((d) => `mcp-param-${d.header.toLowerCase()}`));
    const out: Record<string, string> = {};
    for (const [name, value] of Object.entries(x.req.headers)) {
      if (name.startsWith("mcp-param-") && !known.has(name) && typeof value === "string") out[name] = value;
    }
    return { ...out, ...paramHeaderValues(declared, shaped.arguments ?? {}) };
  }

  private input(x: Exchange, method: string, fields: Pick<ShapedRequest, "tool" | "resource" | "prompt" | "arguments">, tool: ToolDefinition | null, server = x.server): PolicyInput {
    return buildPolicyInput(
      x.identity!,
      {
        method,
        server,
        tool: fields.tool,
        arguments: fields.arguments,
        resource: fields.resource,
        prompt: fields.prompt,
        // A 2026 request has no session; the context the gateway holds for it is not one the agent knows.
        session_id: x.era.era === "modern" ? null : (x.session?.handle ?? null),
        protocol_version: x.era.era === "modern" ? x.era.envelope.protocolVersion : (x.session?.protocolVersion ?? null),
        source_ip: x.sourceIp,
        time: new Date(this.deps.clock.now()).toISOString(),
      },
      tool,
    );
  }

  /** The tool's upstream definition (policy input `tool`); lists the upstream's tools when unseen. */
  private async toolDefinition(x: Exchange, name: string): Promise<ToolDefinition | null> {
    const s = x.session!;
    const known = s.catalog?.get(name);
    if (known) return known;
    if (s.catalog && this.deps.clock.now() - s.catalogFetchedMs < CATALOG_REFRESH_MS) return null;
    const tools = await this.listAll(s, "tools/list", "tools");
    // What a listing would refuse (colliding names) is refused on call as well.
    const defs = tools.filter((i): i is ToolDefinition => isObject(i) && typeof i.name === "string");
    if (this.deps.pinning && defs.length > 0) s.refusedTools = (await this.deps.pinning.listing(s.server, defs)).refused;
    this.rememberTools(s, tools, true);
    return s.catalog?.get(name) ?? null;
  }

  /**
   * Keeps listed tool definitions. Only a listing that reached its last page makes the catalog
   * complete: until then a tool missing from it is looked up (toolDefinition), not taken as unknown.
   */
  private rememberTools(session: GatewaySession, items: unknown[], reset: boolean, complete = true): void {
    if (reset || !session.catalog) session.catalog = new Map();
    for (const item of items) {
      if (isObject(item) && typeof item.name === "string") session.catalog.set(item.name, item as unknown as ToolDefinition);
    }
    session.catalogFetchedMs = complete ? this.deps.clock.now() : 0;
  }

  private timeoutMs(server: string): number {
    return this.deps.config.upstreams[server]?.timeoutMs ?? 60_000;
  }
}

/**
 * 2026-07-28 puts two errors in the HTTP status as well: an unknown method is 404 (whether the
 * upstream does not have it or policy hides it: the two look the same) and a missing client
 * capability 400, wherever the error came from.
 */
function modernStatus(x: Exchange, answer: Answer): Answer {
  if (x.era.era !== "modern" || answer.kind !== "rpc" || !answer.message.error || answer.status !== 200) return answer;
  const code = answer.message.error.code;
  const status = code === RpcCode.MethodNotFound ? 404 : code === RpcCode.MissingRequiredClientCapability ? 400 : 200;
  return status === 200 ? answer : { ...answer, status };
}

/** Aborts when the client closes the connection before its answer was written. */
function cancelOnClose(res: ServerResponse): AbortSignal {
  const abort = new AbortController();
  res.once("close", () => {
    if (!res.writableFinished) abort.abort();
  });
  return abort.signal;
}

/** The DiscoverResult of a 2025 upstream, from its InitializeResult: what a 2026 client reads first. */
function discoverResultOf(session: GatewaySession): Record<string, unknown> {
  const init = session.initResult;
  return {
    resultType: "complete",
    supportedVersions: [...MODERN_PROTOCOL_VERSIONS],
    capabilities: isObject(init.capabilities) ? init.capabilities : {},
    serverInfo: isObject(init.serverInfo) ? init.serverInfo : { name: session.server, version: "unknown" },
    ...(typeof init.instructions === "string" && { instructions: init.instructions }),
    ttlMs: 0,
    cacheScope: "private",
  };
}

/**
 * A result as a 2026 client reads it: `resultType` (a 2025 upstream sends none: complete) and the
 * server's identity in `_meta`; a `resources/read` decided per principal is private to it.
 */
function modernAnswer(answer: JsonRpcResponse, session: GatewaySession): JsonRpcResponse {
  const result = answer.result;
  if (!result) return answer;
  const meta = isObject(result._meta) ? result._meta : {};
  const serverInfo = meta[META.serverInfo] ?? (isObject(session.initResult.serverInfo) ? session.initResult.serverInfo : undefined);
  return {
    jsonrpc: "2.0",
    id: answer.id,
    result: {
      ...result,
      resultType: typeof result.resultType === "string" ? result.resultType : "complete",
      ...(Array.isArray(result.contents) && { ttlMs: typeof result.ttlMs === "number" ? result.ttlMs : 0, cacheScope: "private" }),
      _meta: { ...meta, ...(serverInfo !== undefined && { [META.serverInfo]: serverInfo }) },
    },
  };
}

/** The members of a fan-out that did not take part, as the answer names them. */
function unavailableOf(statuses: Record<string, string>): { server: string; error: string }[] {
  return Object.entries(statuses).flatMap(([server, s]) => (s.startsWith("failed") ? [{ server, error: s.slice("failed: ".length) }] : []));
}

/** Drops items that share a name with another (both), noting each as a collision. */
function withoutCollisions(items: Record<string, unknown>[], hidden: string[], integrity: string[], key: "name" | "uri"): Record<string, unknown>[] {
  const count = new Map<string, number>();
  for (const i of items) count.set(String(i[key]), (count.get(String(i[key])) ?? 0) + 1);
  const out: Record<string, unknown>[] = [];
  for (const i of items) {
    const n = String(i[key]);
    if ((count.get(n) ?? 0) < 2) out.push(i);
    else if (!hidden.includes(n)) {
      hidden.push(n);
      integrity.push(`${n}: refused, listed by several upstreams under one federated name`);
    }
  }
  return out;
}

/** Any failure as a catalogue refusal; an unexpected one is logged and answered internal_error. */
function toRefusal(err: unknown, logUnexpected: (err: unknown) => void): Refusal {
  if (err instanceof Refusal) return err;
  if (err instanceof UpstreamError) {
    if (err.code === "upstream_busy") return shed("upstream_busy", 1, err.message);
    return new Refusal("upstream_failed", undefined, { code: err.code });
  }
  logUnexpected(err);
  return new Refusal("internal_error");
}

/** What a sealed server→client request id carries. */
interface ServerRequestSeal {
  session: string;
  /** The upstream that asked (at a federated endpoint, the member the answer goes to). */
  server?: string;
  id: JsonRpcId;
  method: string;
  exp: number;
  /** Set when only the replica that relayed it can deliver the answer (its stdio process or call in flight). */
  replica?: string;
}

function isServerRequestSeal(v: unknown): v is ServerRequestSeal {
  return isObject(v) && typeof v.session === "string" && (v.server === undefined || typeof v.server === "string") && (typeof v.id === "string" || typeof v.id === "number") && typeof v.method === "string" && typeof v.exp === "number" && (v.replica === undefined || typeof v.replica === "string");
}

function protocolVersionOf(answer: JsonRpcResponse): string | null {
  const v = answer.result?.protocolVersion;
  return typeof v === "string" ? v : null;
}

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}
