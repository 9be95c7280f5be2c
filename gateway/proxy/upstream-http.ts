import { Pool, errors as undiciErrors } from "undici";
import type { IncomingHttpHeaders } from "undici/types/header.js";
import { parseMessage, type JsonRpcMessage, type JsonRpcNotification, type JsonRpcRequest, type JsonRpcResponse } from "./jsonrpc.js";
import { readBounded } from "./bounded-read.js";
import { SseParser, SseTooLargeError } from "./sse.js";
import { UpstreamIds } from "./upstream-ids.js";
import { UpstreamAuthError, UpstreamAuthorizer, type ForwardContext } from "../upstream-auth/index.js";
import { UpstreamError, type RequestOptions, type UpstreamConnection } from "./upstream.js";

/**
 * Streamable HTTP to an upstream over a keep-alive pool shared by all sessions of that upstream.
 * Messages are forwarded as parsed-once JSON; no SDK objects on the hot path
 * (see reference/performance-calibration.md: an SDK Client per hop costs ~4 ms).
 */
export class HttpUpstreamPool {
  readonly pool: Pool;
  /** Server→client streams live as long as their sessions, so they get connections of their own. */
  readonly streams: Pool;
  readonly path: string;
  /** The gateway's own credentials for this upstream (static headers, bearer, client credentials, identity assertion). */
  readonly auth: UpstreamAuthorizer;
  constructor(
    readonly url: URL,
    auth: Readonly<Record<string, string>> | UpstreamAuthorizer,
    /** upstreams.NAME.maxResponseBytes: a larger JSON answer or SSE event is upstream_bad_response. */
    readonly maxResponseBytes = 16 * 1024 * 1024,
  ) {
    this.auth = auth instanceof UpstreamAuthorizer ? auth : UpstreamAuthorizer.fixed(auth);
    this.pool = new Pool(url.origin, { connections: 64, pipelining: 1, keepAliveTimeout: 30_000 });
    this.streams = new Pool(url.origin, { connections: null, pipelining: 1, bodyTimeout: 0 });
    this.path = url.pathname + url.search;
  }
  connect(): HttpUpstreamConnection {
    return new HttpUpstreamConnection(this);
  }
  async close(): Promise<void> {
    await Promise.all([this.pool.close(), this.streams.destroy()]);
  }
}

export class HttpUpstreamConnection implements UpstreamConnection {
  private sessionId: string | null = null;
  private protocolVersion: string | null = null;
  /** The session's agent, for the identity assertion on requests that carry none (notifications, GET, DELETE). */
  private agent: ForwardContext["agent"];
  private readonly ids = new UpstreamIds();

  constructor(private readonly upstream: HttpUpstreamPool) {}

  async initialize(request: JsonRpcRequest, opts: RequestOptions): Promise<JsonRpcResponse> {
    const response = await this.request(request, opts);
    const version = response.result?.protocolVersion;
    if (typeof version === "string") this.protocolVersion = version;
    return response;
  }

  async request(request: JsonRpcRequest, opts: RequestOptions): Promise<JsonRpcResponse> {
    const clientId = opts.internal ? null : request.id;
    const upstreamId = this.ids.assign(clientId);
    try {
      const answer = await this.exchange(upstreamId === request.id ? request : { ...request, id: upstreamId }, opts);
      return this.ids.restore(answer, upstreamId, clientId);
    } finally {
      this.ids.release(upstreamId);
    }
  }

  private async exchange(request: JsonRpcRequest, opts: RequestOptions): Promise<JsonRpcResponse> {
    const res = await this.post(request, opts);
    const contentType = headerValue(res.headers["content-type"]) ?? "";
    if (res.statusCode === 404 && this.sessionId) {
      await res.body.dump();
      throw new UpstreamError("upstream_session_lost", "upstream session expired");
    }
    if (res.statusCode < 200 || res.statusCode >= 300) {
      const text = (await readAnswer(res.body, 4096).catch(() => "")).slice(0, 200);
      throw new UpstreamError("upstream_http_error", `upstream answered HTTP ${res.statusCode}: ${text}`);
    }
    const sid = headerValue(res.headers["mcp-session-id"]);
    if (sid && !this.sessionId) this.sessionId = sid;
    if (contentType.startsWith("application/json")) {
      const message = parseMessage(await readAnswer(res.body, this.upstream.maxResponseBytes));
      if (!message || !("id" in message) || "method" in message) {
        throw new UpstreamError("upstream_bad_response", "upstream sent a JSON body that is not a response");
      }
      if (message.id !== request.id) throw new UpstreamError("upstream_bad_response", "upstream answered with another request's id");
      return message as JsonRpcResponse;
    }
    if (contentType.startsWith("text/event-stream")) return this.readSse(res.body, request, opts);
    await res.body.dump();
    throw new UpstreamError("upstream_bad_response", `upstream answered with content-type "${contentType}"`);
  }

  async send(message: JsonRpcNotification | JsonRpcResponse): Promise<void> {
    const res = await this.post(this.ids.translateCancellation(message), { timeoutMs: 30_000 });
    await res.body.dump();
    if (res.statusCode === 404 && this.sessionId) throw new UpstreamError("upstream_session_lost", "upstream session expired");
    if (res.statusCode >= 300) throw new UpstreamError("upstream_http_error", `upstream answered HTTP ${res.statusCode}`);
  }

  async listen(onMessage: (m: JsonRpcMessage) => void, signal: AbortSignal, onEnd: () => void): Promise<"open" | "unsupported"> {
    const headers = await this.headers("text/event-stream", {});
    const res = await this.upstream.streams
      .request({ path: this.upstream.path, method: "GET", headers, signal })
      .catch((err: unknown) => {
        throw toUpstreamError(err);
      });
    if (res.statusCode === 405 || !(headerValue(res.headers["content-type"]) ?? "").startsWith("text/event-stream")) {
      await res.body.dump();
      return "unsupported";
    }
    const parser = new SseParser((e) => {
      const m = parseMessage(e.data);
      if (m) onMessage(m);
    }, this.upstream.maxResponseBytes);
    res.body.on("data", (chunk: Buffer) => {
      try {
        parser.push(chunk);
      } catch {
        // An oversized event ends the stream; the client reconnects (GET) if it wants more.
        res.body.destroy();
      }
    });
    res.body.on("error", onEnd); // also when our own signal aborted it
    res.body.on("end", onEnd);
    return "open";
  }

  async close(): Promise<void> {
    if (!this.sessionId) return;
    try {
      const res = await this.upstream.pool.request({
        path: this.upstream.path,
        method: "DELETE",
        headers: await this.headers("application/json", {}),
        headersTimeout: 5_000,
        bodyTimeout: 5_000,
      });
      await res.body.dump();
    } catch {
      // The upstream may be gone already; its session expires on its own.
    }
    this.sessionId = null;
  }

  private async headers(accept: string, ctx: ForwardContext): Promise<Record<string, string>> {
    // Only the gateway's own configured credentials go upstream; the agent's token, cookies and
    // gateway session id are never copied (no token passthrough).
    if (ctx.agent) this.agent = ctx.agent;
    let own: Record<string, string>;
    try {
      own = await this.upstream.auth.headers({ agent: this.agent, decisionId: ctx.decisionId });
    } catch (err) {
      if (err instanceof UpstreamAuthError) throw new UpstreamError("upstream_auth_failed", err.message);
      throw err;
    }
    const h: Record<string, string> = { ...own, accept, "content-type": "application/json" };
    if (this.sessionId) h["mcp-session-id"] = this.sessionId;
    if (this.protocolVersion) h["mcp-protocol-version"] = this.protocolVersion;
    return h;
  }

  private async post(message: JsonRpcMessage, opts: RequestOptions) {
    const body = JSON.stringify(message);
    const ctx: ForwardContext = { agent: opts.agent, decisionId: opts.decisionId };
    let headers = await this.headers("application/json, text/event-stream", ctx);
    let res = await this.attempt(body, headers, opts);
    // A fetched token the upstream refuses (revoked, rotated early): renew it and retry once.
    // A 401 means the upstream did not act on the message, so sending it again is safe.
    if (res.statusCode === 401 && this.upstream.auth.rejected(headers)) {
      await res.body.dump();
      headers = await this.headers("application/json, text/event-stream", ctx);
      res = await this.attempt(body, headers, opts);
    }
    return res;
  }

  private async attempt(body: string, headers: Record<string, string>, opts: RequestOptions) {
    try {
      return await this.upstream.pool.request({
        path: this.upstream.path,
        method: "POST",
        headers,
        body,
        headersTimeout: opts.timeoutMs,
        bodyTimeout: opts.timeoutMs,
        signal: opts.signal,
      });
    } catch (err) {
      throw toUpstreamError(err);
    }
  }

  private readSse(body: NodeJS.ReadableStream & { destroy(): void }, request: JsonRpcRequest, opts: RequestOptions): Promise<JsonRpcResponse> {
    return new Promise((resolve, reject) => {
      let done = false;
      const fail = (err: UpstreamError): void => {
        if (done) return;
        done = true;
        body.destroy();
        reject(err);
      };
      const parser = new SseParser((e) => {
        if (done) return;
        const m = parseMessage(e.data);
        if (!m) return;
        if (!("method" in m)) {
          // A response on this request's stream must be this request's: anything else is not forwarded.
          if (m.id !== request.id) return fail(new UpstreamError("upstream_bad_response", "upstream answered with another request's id"));
          done = true;
          resolve(m as JsonRpcResponse);
          // The server should end the stream after the response; don't wait on one that doesn't.
          setTimeout(() => body.destroy(), 1_000).unref();
          return;
        }
        opts.onMessage?.(m);
      }, this.upstream.maxResponseBytes);
      body.on("data", (chunk: Buffer) => {
        try {
          parser.push(chunk);
        } catch (err) {
          fail(new UpstreamError("upstream_bad_response", err instanceof SseTooLargeError ? err.message : String(err)));
        }
      });
      body.on("error", (err: unknown) => {
        if (!done) fail(toUpstreamError(err));
      });
      body.on("end", () => {
        if (!done) fail(new UpstreamError("upstream_bad_response", "upstream closed the stream before responding"));
      });
    });
  }
}

/** An upstream answer read up to `limit` bytes; a larger one is cut and refused, never buffered whole. */
function readAnswer(body: NodeJS.ReadableStream, limit: number): Promise<string> {
  const tooLarge = () => new UpstreamError("upstream_bad_response", `upstream answer exceeds ${limit} bytes (upstreams.NAME.maxResponseBytes)`);
  return readBounded(body, limit, tooLarge, "destroy", toUpstreamError);
}

function headerValue(h: IncomingHttpHeaders[string]): string | undefined {
  return Array.isArray(h) ? h[0] : h;
}

function toUpstreamError(err: unknown): UpstreamError {
  if (err instanceof UpstreamError) return err;
  if (err instanceof undiciErrors.HeadersTimeoutError || err instanceof undiciErrors.BodyTimeoutError) {
    return new UpstreamError("upstream_timeout", "upstream did not answer in time");
  }
  const msg = err instanceof Error ? err.message : String(err);
  return new UpstreamError("upstream_unreachable", `upstream unreachable: ${msg}`);
}
