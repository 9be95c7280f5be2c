import type { IncomingMessage, ServerResponse } from "node:http";
import { AuthError, authFailureResponse, extractBearer, type AgentIdentity, type TokenVerifier } from "../auth/index.js";
import { AuditRecord, type AuditContext, type AuditOutcome } from "../audit/index.js";
import type { GatewayConfig } from "../config/index.js";
import type { PolicyEngine } from "../policy/index.js";
import type { RateLimiter } from "../ratelimit/index.js";
import type { Clock } from "../shared/clock.js";
import type { Logger } from "../shared/log.js";
import { clientIpResolver, type ClientIpResolver } from "./client-ip.js";
import { DecisionPoints } from "./decision-points.js";
import { EdgeError } from "./errors.js";
import { classify, rpcError, RpcCode, serialize, type JsonRpcMessage, type JsonRpcRequest, type ParsedMessage } from "./jsonrpc.js";
import { Responder } from "./responder.js";
import { newSessionId, ownerOf, SessionStore, type GatewaySession } from "./session.js";
import { sseMessage } from "./sse.js";
import { UpstreamError, type UpstreamConnection } from "./upstream.js";

/** Protocol revisions of the 2025 era this endpoint serves (2026-07-28 is a later issue). */
export const SUPPORTED_PROTOCOL_VERSIONS = ["2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"];

export interface AuditSinkLike {
  record(event: ReturnType<AuditRecord["finish"]>): Promise<void>;
  /** Back-pressure gate (AuditLog.admit): rejects with code audit_backpressure or waits when full. */
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
  /** Opens a new upstream connection for a session of `server`. */
  connectUpstream: (server: string) => UpstreamConnection;
  /** `publicUrl` + path of the protected resource metadata for a server. */
  resourceMetadataUrl: (server: string) => string;
  /** The limits stage (gateway/ratelimit/); absent means no rate limits. */
  limits?: RateLimiter;
}

/**
 * The pipeline for one MCP endpoint `/mcp/NAME`, in the order of DESIGN.md:
 * edge → identity → session → decision → forward → audit. Each stage is one call below.
 */
export class McpEndpoint {
  readonly sessions: SessionStore;
  private readonly decisions: DecisionPoints;
  /** The real client behind trusted proxies (edge.trustedProxies): policy's request.source_ip. */
  private readonly clientIp: ClientIpResolver;

  constructor(private readonly deps: McpEndpointDeps) {
    this.sessions = new SessionStore({
      idleTimeoutMs: deps.config.sessions.idleTimeoutSeconds * 1000,
      maxSessions: deps.config.sessions.maxSessions,
      now: deps.clock.now,
    });
    this.decisions = new DecisionPoints(deps);
    this.clientIp = clientIpResolver(deps.config.edge.trustedProxies ?? []);
  }

  async post(server: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
    let parsed: ParsedMessage;
    try {
      // 1 edge: Origin, media type, size, JSON-RPC shape, protocol version.
      this.checkOrigin(req);
      parsed = await this.readMessage(req);
    } catch (err) {
      return this.refuse(res, err);
    }
    const id = parsed.kind === "request" ? parsed.message.id : null;
    try {
      this.checkProtocolVersion(req);
    } catch (err) {
      return this.refuse(res, err, id);
    }
    // 2 identity: every request is authenticated; a session is never a credential.
    const identity = await this.authenticate(server, req, res, parsed);
    if (!identity) return;

    const sessionId = header(req, "mcp-session-id");
    const isInitialize = parsed.kind === "request" && parsed.message.method === "initialize";
    if (isInitialize && !sessionId) return this.initialize(server, identity, parsed.message as JsonRpcRequest, res);
    // A second initialize would renegotiate behind the session's back.
    if (isInitialize) return this.refuse(res, new EdgeError("invalid_request", "session already initialized"), id);
    if (!sessionId) return this.refuse(res, new EdgeError("session_required"), id);
    // 3 session: bound to its creator; another subject learns nothing, not even that it exists.
    const session = this.sessions.lookup(sessionId, ownerOf(identity.iss, identity.sub));
    if (!session || session.server !== server) return this.refuse(res, new EdgeError("session_not_found"), id);

    if (parsed.kind !== "request") {
      // Notifications and answers to server→client requests carry no decision point.
      try {
        await session.upstream.send(parsed.message);
        res.writeHead(202).end();
      } catch (err) {
        await this.upstreamFailed(session, res, err);
      }
      return;
    }
    const responder = new Responder(res);
    // 4–6 decision, forward, audit: per method (decision-points.ts). A client that disconnects
    // does not cancel the upstream call: in MCP, cancellation is an explicit notification.
    try {
      await this.decisions.handle({ session, identity, request: parsed.message, responder, sourceIp: this.clientIp(req.socket.remoteAddress, req.headers["x-forwarded-for"]) });
    } catch (err) {
      if (err instanceof UpstreamError && err.code === "upstream_session_lost") {
        await this.sessions.end(session.id);
        return this.refuse(res, new EdgeError("session_not_found"), parsed.message.id);
      }
      this.deps.log("error", "request failed", { server, method: parsed.message.method, error: String(err) });
      responder.final(rpcError(parsed.message.id, RpcCode.InternalError, "Internal error"));
    }
  }

  /** GET opens the server→client stream of a session. */
  async get(server: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const identity = await this.authenticate(server, req, res, null);
    if (!identity) return;
    const session = this.sessionFor(server, req, identity);
    if (!session) return this.refuse(res, new EdgeError(header(req, "mcp-session-id") ? "session_not_found" : "session_required"));
    if (session.closeStream) return this.refuse(res, new EdgeError("stream_conflict"));

    const abort = new AbortController();
    // Claim the slot before awaiting the upstream, so a concurrent GET sees the conflict.
    session.closeStream = () => abort.abort();
    let state: "open" | "unsupported";
    try {
      state = await session.upstream.listen(
        (m) => this.onServerMessage(session, res, m),
        abort.signal,
        () => res.end(),
      );
    } catch (err) {
      session.closeStream = null;
      return this.refuse(res, new EdgeError("upstream_failed", (err as Error).message));
    }
    if (state === "unsupported") {
      session.closeStream = null;
      res.setHeader("allow", "POST, DELETE");
      return this.refuse(res, new EdgeError("method_not_allowed"));
    }
    res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache", "x-accel-buffering": "no" });
    res.flushHeaders();
    session.closeStream = () => {
      abort.abort();
      res.end();
    };
    res.on("close", () => {
      abort.abort();
      session.closeStream = null;
    });
  }

  /** DELETE ends a session, here and upstream. */
  async delete(server: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const identity = await this.authenticate(server, req, res, null);
    if (!identity) return;
    const session = this.sessionFor(server, req, identity);
    if (!session) return this.refuse(res, new EdgeError(header(req, "mcp-session-id") ? "session_not_found" : "session_required"));
    await this.sessions.end(session.id);
    res.writeHead(200).end();
  }

  async close(): Promise<void> {
    await this.sessions.closeAll();
  }

  private async initialize(server: string, identity: AgentIdentity, request: JsonRpcRequest, res: ServerResponse): Promise<void> {
    if (!this.sessions.hasRoom()) return this.refuse(res, new EdgeError("session_limit"), request.id);
    const upstream = this.deps.connectUpstream(server);
    const timeoutMs = this.deps.config.upstreams[server]?.timeoutMs ?? 60_000;
    let answer;
    try {
      answer = await upstream.initialize(request, { timeoutMs, agent: identity });
    } catch (err) {
      await upstream.close();
      this.deps.log("warn", "upstream initialize failed", { server, error: String(err) });
      return this.refuse(res, new EdgeError("upstream_failed", err instanceof UpstreamError ? err.code : "error"), request.id);
    }
    const responder = new Responder(res);
    if (answer.error) {
      await upstream.close();
      return responder.final(answer);
    }
    const version = answer.result?.protocolVersion;
    const session: GatewaySession = {
      id: newSessionId(),
      server,
      owner: ownerOf(identity.iss, identity.sub),
      upstream,
      protocolVersion: typeof version === "string" ? version : null,
      lastSeenMs: this.deps.clock.now(),
      catalog: null,
      catalogFetchedMs: 0,
      closeStream: null,
    };
    this.sessions.add(session);
    responder.header("mcp-session-id", session.id);
    responder.final(answer);
  }

  private onServerMessage(session: GatewaySession, res: ServerResponse, m: JsonRpcMessage): void {
    // A changed tool list invalidates what policy sees as the tool's definition.
    if ("method" in m && m.method === "notifications/tools/list_changed") session.catalog = null;
    if (!res.writableEnded) res.write(sseMessage(serialize(m)));
  }

  private sessionFor(server: string, req: IncomingMessage, identity: AgentIdentity): GatewaySession | undefined {
    const id = header(req, "mcp-session-id");
    const s = id ? this.sessions.lookup(id, ownerOf(identity.iss, identity.sub)) : undefined;
    return s && s.server === server ? s : undefined;
  }

  private async authenticate(server: string, req: IncomingMessage, res: ServerResponse, parsed: ParsedMessage | null): Promise<AgentIdentity | null> {
    try {
      return await this.deps.verifier.verify(extractBearer(req.headers.authorization));
    } catch (err) {
      const code = err instanceof AuthError ? err.code : "token_malformed";
      if (code === "jwks_unavailable") this.deps.log("error", "JWKS unavailable", { server, error: String(err) });
      await this.auditUnauthenticated(server, req, parsed, code, err instanceof Error ? err.message : String(err));
      const refusal = authFailureResponse(code, this.deps.resourceMetadataUrl(server));
      const body = JSON.stringify(refusal.body);
      res.writeHead(refusal.status, { ...refusal.headers, "content-type": "application/json", "content-length": Buffer.byteLength(body) }).end(body);
      return null;
    }
  }

  private async auditUnauthenticated(server: string, req: IncomingMessage, parsed: ParsedMessage | null, code: string, message: string): Promise<void> {
    const method = parsed && "method" in parsed.message ? parsed.message.method : (req.method ?? "POST");
    const record = new AuditRecord(this.deps.auditContext, {
      server,
      method,
      requestId: parsed?.kind === "request" ? parsed.message.id : null,
      sessionId: null,
      requestedBy: this.clientIp(req.socket.remoteAddress, req.headers["x-forwarded-for"]),
    });
    record.fail(code, message);
    await this.writeAudit(record, "unauthenticated");
  }

  /** Appends the event; a failure is logged and reported, never ignored. */
  async writeAudit(record: AuditRecord, outcome: AuditOutcome): Promise<boolean> {
    try {
      await this.deps.audit.record(record.finish(outcome));
      return true;
    } catch (err) {
      this.deps.log("error", "audit write failed", { decision_id: record.decisionId, error: String(err) });
      return false;
    }
  }

  private checkOrigin(req: IncomingMessage): void {
    const origin = header(req, "origin");
    // Agents' HTTP clients send no Origin; a browser page does, and must be on the allow-list.
    if (origin !== undefined && !this.deps.config.edge.allowedOrigins.includes(origin)) {
      throw new EdgeError("origin_forbidden");
    }
  }

  private checkProtocolVersion(req: IncomingMessage): void {
    const v = header(req, "mcp-protocol-version");
    if (v !== undefined && !SUPPORTED_PROTOCOL_VERSIONS.includes(v)) {
      throw new EdgeError("unsupported_protocol_version", `${v} (supported: ${SUPPORTED_PROTOCOL_VERSIONS.join(", ")})`);
    }
  }

  private async readMessage(req: IncomingMessage): Promise<ParsedMessage> {
    const type = (header(req, "content-type") ?? "").split(";")[0]?.trim().toLowerCase();
    if (type !== "application/json") throw new EdgeError("unsupported_media_type");
    const limit = this.deps.config.edge.maxBodyBytes;
    const declared = Number(header(req, "content-length") ?? "0");
    if (declared > limit) throw new EdgeError("body_too_large");
    const body = await readBody(req, limit);
    let value: unknown;
    try {
      value = JSON.parse(body);
    } catch {
      throw new EdgeError("parse_error");
    }
    const c = classify(value);
    if (!c.ok) throw new EdgeError(c.code === RpcCode.ParseError ? "parse_error" : "invalid_request", c.message);
    return c.parsed;
  }

  private refuse(res: ServerResponse, err: unknown, id: JsonRpcRequest["id"] | null = null): void {
    if (res.headersSent) {
      res.end();
      return;
    }
    const e = err instanceof EdgeError ? err : new EdgeError("invalid_request");
    if (!(err instanceof EdgeError)) this.deps.log("error", "unexpected edge failure", { error: String(err) });
    const body = JSON.stringify(rpcError(id, e.rpcCode, e.message));
    res.writeHead(e.status, { "content-type": "application/json", "content-length": Buffer.byteLength(body) }).end(body);
  }

  private async upstreamFailed(session: GatewaySession, res: ServerResponse, err: unknown): Promise<void> {
    if (err instanceof UpstreamError && err.code === "upstream_session_lost") {
      await this.sessions.end(session.id);
      return this.refuse(res, new EdgeError("session_not_found"));
    }
    this.refuse(res, new EdgeError("upstream_failed", err instanceof UpstreamError ? err.code : undefined));
  }
}

/** Collects the body with events rather than an async iterator: this runs for every request. */
function readBody(req: IncomingMessage, limit: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        req.removeAllListeners("data");
        req.resume();
        reject(new EdgeError("body_too_large"));
        return;
      }
      chunks.push(chunk);
    });
    req.once("end", () => resolve(chunks.length === 1 ? chunks[0]!.toString("utf8") : Buffer.concat(chunks).toString("utf8")));
    req.once("error", reject);
  });
}

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}
