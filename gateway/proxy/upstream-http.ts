import { Pool, errors as undiciErrors } from "undici";
import type { IncomingHttpHeaders } from "undici/types/header.js";
import { isObject, parseMessage, type JsonRpcMessage, type JsonRpcNotification, type JsonRpcRequest, type JsonRpcResponse } from "./jsonrpc.js";
import { readBounded } from "./bounded-read.js";
import { SseParser, SseTooLargeError, type SseEvent } from "./sse.js";
import { UpstreamIds } from "./upstream-ids.js";
import { UpstreamAuthError, UpstreamAuthorizer, type ForwardContext } from "../upstream-auth/index.js";
import { UpstreamError, type ListenOptions, type RequestOptions, type UpstreamConnection, type UpstreamEra, type UpstreamState } from "./upstream.js";
import { LEGACY_PROTOCOL_VERSIONS, LEGACY_UPSTREAM_VERSION, META, MODERN_VERSION, encodeHeaderValue, nameField } from "./era.js";

/** `upstreams.NAME.protocol`: detected once per upstream (`auto`) or fixed by the operator. */
export type UpstreamProtocol = "auto" | "2025-11-25" | "2026-07-28";

/** A 2025 client behind a 2026 upstream: input_required rounds answered through it, at most this many per call. */
const MAX_INPUT_ROUNDS = 16;
/** …and at most this many input requests per round (each becomes a server→client request). */
const MAX_INPUT_REQUESTS = 16;

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
    readonly protocol: UpstreamProtocol = "auto",
  ) {
    this.auth = auth instanceof UpstreamAuthorizer ? auth : UpstreamAuthorizer.fixed(auth);
    this.pool = new Pool(url.origin, { connections: 64, pipelining: 1, keepAliveTimeout: 30_000 });
    this.streams = new Pool(url.origin, { connections: null, pipelining: 1, bodyTimeout: 0 });
    this.path = url.pathname + url.search;
  }
  /** A connection for one gateway session (or, for a 2026 client, one held upstream context). */
  connect(clientEra: UpstreamEra = "legacy"): HttpUpstreamConnection {
    return new HttpUpstreamConnection(this, clientEra);
  }
  /** A connection to an upstream session another replica (or this one, before a restart) opened. */
  resume(clientEra: UpstreamEra, state: Extract<UpstreamState, { kind: "http" }>): HttpUpstreamConnection {
    const conn = new HttpUpstreamConnection(this, clientEra);
    conn.adopt(state);
    return conn;
  }

  private detected: Promise<UpstreamEra> | null = null;
  /**
   * The era this upstream speaks. `auto` asks once with `server/discover` (a 2025 server refuses
   * it: no session) and remembers the answer; a probe that cannot reach the upstream is not
   * remembered, so the next session asks again.
   */
  era(probe: () => Promise<UpstreamEra>): Promise<UpstreamEra> {
    if (this.protocol === "2025-11-25") return Promise.resolve("legacy");
    if (this.protocol === "2026-07-28") return Promise.resolve("modern");
    this.detected ??= probe().catch((err: unknown) => {
      this.detected = null;
      throw err;
    });
    return this.detected;
  }
  async close(): Promise<void> {
    await Promise.all([this.pool.close(), this.streams.destroy()]);
  }
}

export class HttpUpstreamConnection implements UpstreamConnection {
  era: UpstreamEra = "legacy";
  private sessionId: string | null = null;
  private protocolVersion: string | null = null;
  /** 2026 upstream: the envelope sent on requests that carry none (a 2025 client's, the gateway's own). */
  private envelope: Record<string, unknown> = { [META.protocolVersion]: MODERN_VERSION, [META.clientCapabilities]: {} };
  /** 2026 upstream, 2025 client: server→client requests asked on the upstream's behalf, by the id the client answers. */
  private readonly awaitingInput = new Map<string, { resolve: (m: JsonRpcResponse) => void; reject: (e: Error) => void }>();
  private inputSeq = 0;
  /** 2026 upstream, 2025 client: the resources it subscribed to, watched with subscriptions/listen. */
  private readonly subscribed = new Set<string>();
  /** The open subscriptions/listen behind a 2025 client's GET stream, reopened when `subscribed` changes. */
  private listening: { onMessage: (m: JsonRpcMessage) => void; onEnd: () => void; signal: AbortSignal; current: AbortController | null } | null = null;
  /** 2026 upstream: calls in flight by the client's id, so notifications/cancelled can close their stream. */
  private readonly inFlight = new Map<string | number, AbortController>();
  /** The session's agent, for the identity assertion on requests that carry none (notifications, GET, DELETE). */
  private agent: ForwardContext["agent"];
  private readonly ids = new UpstreamIds();

  constructor(
    private readonly upstream: HttpUpstreamPool,
    /** The era of the client this connection serves: a 2025 client gets 2026 answers translated. */
    private readonly clientEra: UpstreamEra = "legacy",
  ) {}

  /**
   * 2025 upstream: the client's initialize, forwarded. 2026 upstream: there is no handshake, so
   * the client's capabilities become the envelope of every request and `server/discover`
   * supplies what an InitializeResult says.
   */
  async initialize(request: JsonRpcRequest, opts: RequestOptions): Promise<JsonRpcResponse> {
    this.era = await this.upstream.era(() => this.probe(opts));
    if (this.era === "legacy") {
      const response = await this.request(request, opts);
      const version = response.result?.protocolVersion;
      if (typeof version === "string") this.protocolVersion = version;
      return response;
    }
    const p = request.params ?? {};
    this.envelope = {
      [META.protocolVersion]: MODERN_VERSION,
      [META.clientCapabilities]: isObject(p.capabilities) ? p.capabilities : {},
      ...(isObject(p.clientInfo) && { [META.clientInfo]: p.clientInfo }),
    };
    const answer = await this.request({ jsonrpc: "2.0", id: request.id, method: "server/discover", params: {} }, opts);
    if (!answer.result) return answer;
    const requested = typeof p.protocolVersion === "string" ? p.protocolVersion : "";
    return { jsonrpc: "2.0", id: request.id, result: initializeResultOf(answer.result, requested) };
  }

  /** `server/discover` with a 2026 envelope: a result naming 2026-07-28 means a 2026 upstream; a refusal, a 2025 one. */
  private async probe(opts: RequestOptions): Promise<UpstreamEra> {
    const era = this.era;
    this.era = "modern";
    try {
      const answer = await this.exchange({ jsonrpc: "2.0", id: `${GATEWAY_PROBE_ID}`, method: "server/discover", params: { _meta: { ...this.envelope, [META.clientInfo]: { name: "portcullis", version: "probe" } } } }, { ...opts, internal: true });
      const versions = answer.result?.supportedVersions;
      return Array.isArray(versions) && versions.includes(MODERN_VERSION) ? "modern" : "legacy";
    } catch (err) {
      if (err instanceof UpstreamError && (err.code === "upstream_http_error" || err.code === "upstream_bad_response" || err.code === "upstream_session_lost")) return "legacy";
      throw err;
    } finally {
      this.era = era;
    }
  }

  async request(request: JsonRpcRequest, opts: RequestOptions): Promise<JsonRpcResponse> {
    if (this.era === "modern") return this.modernRequest(request, opts);
    return this.sessionRequest(request, opts);
  }

  /**
   * A request to a 2026 upstream: the envelope in `_meta` (the client's own when it sent one),
   * the standard headers mirrored from the body. For a 2025 client, input_required results are
   * turned into server→client requests on the client's stream and the call is retried with
   * the answers, so the client sees the 2025 exchange it knows.
   */
  private async modernRequest(request: JsonRpcRequest, opts: RequestOptions): Promise<JsonRpcResponse> {
    const params = request.params ?? {};
    if (this.clientEra === "legacy") {
      // 2025 methods 2026 removed, answered here in 2026's terms.
      switch (request.method) {
        case "logging/setLevel":
          // 2026 carries the log level in each request's envelope, not in a session.
          if (typeof params.level === "string") this.envelope = { ...this.envelope, [META.logLevel]: params.level };
          return { jsonrpc: "2.0", id: request.id, result: {} };
        case "ping":
          // A liveness check of the session, which lives here: 2026 has no ping.
          return { jsonrpc: "2.0", id: request.id, result: {} };
        case "resources/subscribe":
        case "resources/unsubscribe":
          // Watched with subscriptions/listen behind the client's GET stream.
          if (typeof params.uri === "string") {
            if (request.method === "resources/subscribe") this.subscribed.add(params.uri);
            else this.subscribed.delete(params.uri);
            this.relisten();
          }
          return { jsonrpc: "2.0", id: request.id, result: {} };
      }
    }
    const meta = isObject(params._meta) ? params._meta : {};
    const withEnvelope = META.protocolVersion in meta ? params : { ...params, _meta: { ...this.envelope, ...meta } };
    const abort = new AbortController();
    opts.signal?.addEventListener("abort", () => abort.abort(), { once: true });
    if (!opts.internal) this.inFlight.set(request.id, abort);
    try {
      let current: JsonRpcRequest = { ...request, params: withEnvelope };
      for (let round = 0; ; round++) {
        const answer = await this.sessionRequest(current, { ...opts, signal: abort.signal });
        const result = answer.result;
        if (this.clientEra === "modern" || result?.resultType !== "input_required") return answer;
        if (round >= MAX_INPUT_ROUNDS) throw new UpstreamError("upstream_bad_response", `upstream asked for input more than ${MAX_INPUT_ROUNDS} times in one call`);
        if (!isObject(result.inputRequests) || Object.keys(result.inputRequests).length === 0) {
          // Only a requestState: the server wants the same call again, a little later.
          if (typeof result.requestState !== "string") throw new UpstreamError("upstream_bad_response", "input_required without inputRequests or requestState");
          await new Promise((r) => setTimeout(r, 50));
          current = { ...request, params: { ...withEnvelope, requestState: result.requestState } };
          continue;
        }
        const asked = await this.askClient(result.inputRequests, opts, abort.signal);
        if ("error" in asked) return { jsonrpc: "2.0", id: request.id, error: asked.error };
        current = { ...request, params: { ...withEnvelope, inputResponses: asked.responses, ...(typeof result.requestState === "string" && { requestState: result.requestState }) } };
      }
    } finally {
      this.inFlight.delete(request.id);
    }
  }

  /** Sends each input request to the client as a server→client request and collects the answers. */
  private async askClient(requests: unknown, opts: RequestOptions, signal: AbortSignal): Promise<{ responses: Record<string, unknown> } | { error: NonNullable<JsonRpcResponse["error"]> }> {
    if (!isObject(requests) || !opts.onMessage) throw new UpstreamError("upstream_bad_response", "upstream asked for input the client cannot be asked for");
    const entries = Object.entries(requests);
    if (entries.length > MAX_INPUT_REQUESTS) throw new UpstreamError("upstream_bad_response", `upstream asked for ${entries.length} inputs in one round (at most ${MAX_INPUT_REQUESTS})`);
    const answers = await Promise.all(
      entries.map(([, r]) => {
        if (!isObject(r) || typeof r.method !== "string") throw new UpstreamError("upstream_bad_response", "upstream sent a malformed input request");
        const id = `portcullis-input:${++this.inputSeq}`;
        const answered = new Promise<JsonRpcResponse>((resolve, reject) => {
          const timer = setTimeout(() => fail(new UpstreamError("upstream_timeout", "the client did not answer the upstream's input request in time")), opts.timeoutMs);
          const fail = (e: Error) => {
            clearTimeout(timer);
            this.awaitingInput.delete(id);
            reject(e);
          };
          signal.addEventListener("abort", () => fail(new UpstreamError("upstream_closed", "request aborted")), { once: true });
          this.awaitingInput.set(id, {
            resolve: (m) => {
              clearTimeout(timer);
              this.awaitingInput.delete(id);
              resolve(m);
            },
            reject: fail,
          });
        });
        opts.onMessage!({ jsonrpc: "2.0", id, method: r.method, ...(isObject(r.params) && { params: r.params }) });
        return answered;
      }),
    );
    const responses: Record<string, unknown> = {};
    for (let i = 0; i < entries.length; i++) {
      const a = answers[i]!;
      if (a.error) return { error: a.error };
      responses[entries[i]![0]] = a.result ?? {};
    }
    return { responses };
  }

  private async sessionRequest(request: JsonRpcRequest, opts: RequestOptions): Promise<JsonRpcResponse> {
    const clientId = opts.internal ? null : request.id;
    const upstreamId = this.ids.assign(clientId);
    try {
      const answer = await this.exchange(upstreamId === request.id ? request : { ...request, id: upstreamId }, opts);
      return this.ids.restore(answer, upstreamId, clientId);
    } catch (err) {
      // An aborted call (a 2026 client closed its response, a paused call expired): a 2025 session is told.
      if (opts.signal?.aborted && this.era === "legacy" && this.sessionId) {
        void this.send({ jsonrpc: "2.0", method: "notifications/cancelled", params: { requestId: upstreamId, reason: "the client went away" } }).catch(() => undefined);
      }
      throw err;
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
    if (this.era === "modern" && (res.statusCode === 400 || res.statusCode === 404) && contentType.startsWith("application/json")) {
      // A 2026 server answers protocol errors (-32601, -32602, -32021, …) with an HTTP status and a JSON-RPC body: relay the error.
      const message = parseMessage(await readAnswer(res.body, 65_536).catch(() => ""));
      if (message && "error" in message && message.error) return { jsonrpc: "2.0", id: request.id, error: message.error };
      throw new UpstreamError("upstream_http_error", `upstream answered HTTP ${res.statusCode}`);
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
    if (this.era === "modern") return this.modernSend(message);
    const res = await this.post(this.ids.translateCancellation(message), { timeoutMs: 30_000 });
    await res.body.dump();
    if (res.statusCode === 404 && this.sessionId) throw new UpstreamError("upstream_session_lost", "upstream session expired");
    if (res.statusCode >= 300) throw new UpstreamError("upstream_http_error", `upstream answered HTTP ${res.statusCode}`);
  }

  /**
   * A 2026 upstream takes no client notifications or responses over HTTP: answers to its input
   * requests complete the waiting round, a cancellation closes the call's stream (2026's way to
   * cancel), anything else has no upstream session to go to.
   */
  private async modernSend(message: JsonRpcNotification | JsonRpcResponse): Promise<void> {
    if (!("method" in message)) {
      const waiting = typeof message.id === "string" ? this.awaitingInput.get(message.id) : undefined;
      waiting?.resolve(message);
      return;
    }
    if (message.method === "notifications/cancelled") {
      const id = message.params?.requestId;
      if (typeof id === "string" || typeof id === "number") this.inFlight.get(id)?.abort();
    }
  }

  async listen(onMessage: (m: JsonRpcMessage) => void, signal: AbortSignal, onEnd: () => void, opts: ListenOptions = {}): Promise<"open" | "unsupported"> {
    // 2026 has no GET stream: a 2025 client's is fed by subscriptions/listen (list changes, subscribed resources).
    if (this.era === "modern") {
      if (this.clientEra !== "legacy") return "unsupported";
      this.listening = { onMessage, onEnd, signal, current: null };
      signal.addEventListener("abort", () => this.listening?.current?.abort(), { once: true });
      const state = await this.openListen();
      if (state === "unsupported") this.listening = null;
      return state;
    }
    const headers = await this.headers("text/event-stream", {});
    if (opts.lastEventId !== undefined) headers["last-event-id"] = opts.lastEventId;
    const res = await this.upstream.streams
      .request({ path: this.upstream.path, method: "GET", headers, signal })
      .catch((err: unknown) => {
        throw toUpstreamError(err);
      });
    if (res.statusCode === 405 || !(headerValue(res.headers["content-type"]) ?? "").startsWith("text/event-stream")) {
      await res.body.dump();
      return "unsupported";
    }
    this.readStream(res.body, (m, e) => {
      opts.onSseEvent?.(e.ownId ? e.id : null, e.retry, m !== null);
      if (m) onMessage(m);
    });
    res.body.on("error", onEnd); // also when our own signal aborted it
    res.body.on("end", onEnd);
    return "open";
  }

  /** A long-lived SSE stream's events (message or null for one without data); an oversized event ends the stream. */
  private readStream(body: NodeJS.ReadableStream & { destroy(): void }, onEvent: (m: JsonRpcMessage | null, e: SseEvent) => void): void {
    const parser = new SseParser((e) => onEvent(e.data === "" ? null : parseMessage(e.data), e), this.upstream.maxResponseBytes);
    body.on("data", (chunk: Buffer) => {
      try {
        parser.push(chunk);
      } catch {
        // The client reconnects if it wants more.
        body.destroy();
      }
    });
  }

  /** One subscriptions/listen request for the 2025 client's GET stream; its notifications are relayed, the rest dropped. */
  private async openListen(): Promise<"open" | "unsupported"> {
    const l = this.listening;
    if (!l || l.signal.aborted) return "unsupported";
    const abort = new AbortController();
    l.current = abort;
    const notifications = { toolsListChanged: true, promptsListChanged: true, resourcesListChanged: true, resourceSubscriptions: [...this.subscribed] };
    const message: JsonRpcRequest = { jsonrpc: "2.0", id: `${GATEWAY_LISTEN_ID}${++this.inputSeq}`, method: "subscriptions/listen", params: { notifications, _meta: this.envelope } };
    const headers = await this.headers("application/json, text/event-stream", {}, message);
    let res;
    try {
      res = await this.upstream.streams.request({ path: this.upstream.path, method: "POST", headers, body: JSON.stringify(message), signal: abort.signal });
    } catch (err) {
      // Replaced by a relisten while connecting (a subscribe right after the GET): the new request carries the stream.
      if (l.current !== abort) return "open";
      throw toUpstreamError(err);
    }
    if (res.statusCode !== 200 || !(headerValue(res.headers["content-type"]) ?? "").startsWith("text/event-stream")) {
      await res.body.dump();
      return "unsupported";
    }
    this.readStream(res.body, (m) => {
      if (m && "method" in m && !("id" in m) && m.method !== "notifications/subscriptions/acknowledged") l.onMessage(m);
    });
    const ended = () => {
      // Ended by a relisten (a new request replaces it) or by the upstream (the client's stream ends too).
      if (l.current === abort && !l.signal.aborted) l.onEnd();
    };
    res.body.on("error", ended);
    res.body.on("end", ended);
    return "open";
  }

  /** The subscribed resources changed: the listen request is replaced by one naming them. */
  private relisten(): void {
    const l = this.listening;
    if (!l || l.signal.aborted) return;
    const previous = l.current;
    l.current = null;
    previous?.abort();
    void this.openListen().catch(() => l.onEnd());
  }

  state(): UpstreamState {
    return { kind: "http", era: this.era, sessionId: this.sessionId, protocolVersion: this.protocolVersion, ...(this.era === "modern" && { envelope: this.envelope }) };
  }

  /** Takes over a sealed upstream session: no handshake, the upstream already knows it. */
  adopt(state: Extract<UpstreamState, { kind: "http" }>): void {
    this.era = state.era;
    this.sessionId = state.sessionId;
    this.protocolVersion = state.protocolVersion;
    if (state.envelope) this.envelope = state.envelope;
  }

  /** This replica's streams end; the upstream session goes on for the others. */
  async detach(): Promise<void> {
    this.listening?.current?.abort();
    this.listening = null;
    for (const w of this.awaitingInput.values()) w.reject(new UpstreamError("upstream_closed", "session moved off this replica"));
  }

  async close(): Promise<void> {
    await this.detach();
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

  private async headers(accept: string, ctx: ForwardContext, message?: JsonRpcMessage, extra?: Record<string, string>): Promise<Record<string, string>> {
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
    if (this.era === "modern") {
      // The standard headers, mirrored from the body the gateway decided on (never the agent's headers).
      Object.assign(h, extra);
      h["mcp-protocol-version"] = MODERN_VERSION;
      if (message && "method" in message) {
        h["mcp-method"] = message.method;
        const field = nameField(message.method);
        const name = field ? message.params?.[field] : undefined;
        if (typeof name === "string") h["mcp-name"] = encodeHeaderValue(name);
      }
      return h;
    }
    if (this.sessionId) h["mcp-session-id"] = this.sessionId;
    if (this.protocolVersion) h["mcp-protocol-version"] = this.protocolVersion;
    return h;
  }

  private async post(message: JsonRpcMessage, opts: RequestOptions) {
    const body = JSON.stringify(message);
    const ctx: ForwardContext = { agent: opts.agent, decisionId: opts.decisionId };
    // The gateway's own span as the upstream's parent (never the agent's headers, copied).
    const extra = opts.trace ? { ...opts.headers, traceparent: opts.trace.traceparent, ...(opts.trace.tracestate && { tracestate: opts.trace.tracestate }) } : opts.headers;
    const withTrace = async () => {
      const h = await this.headers("application/json, text/event-stream", ctx, message, extra);
      if (opts.trace && this.era !== "modern") Object.assign(h, { traceparent: opts.trace.traceparent, ...(opts.trace.tracestate && { tracestate: opts.trace.tracestate }) });
      return h;
    };
    let headers = await withTrace();
    let res = await this.attempt(body, headers, opts);
    // A fetched token the upstream refuses (revoked, rotated early): renew it and retry once.
    // A 401 means the upstream did not act on the message, so sending it again is safe.
    if (res.statusCode === 401 && this.upstream.auth.rejected(headers)) {
      await res.body.dump();
      headers = await withTrace();
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
      /** The upstream primed the stream with an id: it may end it before answering, for the client to resume. */
      let resumable = false;
      const fail = (err: UpstreamError): void => {
        if (done) return;
        done = true;
        body.destroy();
        reject(err);
      };
      const parser = new SseParser((e) => {
        if (done) return;
        const m = e.data === "" ? null : parseMessage(e.data);
        if (e.ownId) resumable = true;
        opts.onSseEvent?.(e.ownId ? e.id : null, e.retry, m !== null);
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
        if (done) return;
        if (resumable) fail(new UpstreamError("upstream_stream_paused", "upstream ended the stream after priming; the client resumes with Last-Event-ID"));
        else fail(new UpstreamError("upstream_bad_response", "upstream closed the stream before responding"));
      });
    });
  }
}

/** An upstream answer read up to `limit` bytes; a larger one is cut and refused, never buffered whole. */
function readAnswer(body: NodeJS.ReadableStream, limit: number): Promise<string> {
  const tooLarge = () => new UpstreamError("upstream_bad_response", `upstream answer exceeds ${limit} bytes (upstreams.NAME.maxResponseBytes)`);
  return readBounded(body, limit, tooLarge, "destroy", toUpstreamError);
}

const GATEWAY_PROBE_ID = "portcullis:probe";
const GATEWAY_LISTEN_ID = "portcullis:listen-";

/** What a 2025 client's InitializeResult says, from a 2026 upstream's DiscoverResult. */
function initializeResultOf(discover: Record<string, unknown>, requested: string): Record<string, unknown> {
  const meta = isObject(discover._meta) ? discover._meta : {};
  const serverInfo = isObject(discover.serverInfo) ? discover.serverInfo : isObject(meta[META.serverInfo]) ? meta[META.serverInfo] : { name: "upstream", version: "unknown" };
  return {
    protocolVersion: (LEGACY_PROTOCOL_VERSIONS as readonly string[]).includes(requested) ? requested : LEGACY_UPSTREAM_VERSION,
    capabilities: isObject(discover.capabilities) ? discover.capabilities : {},
    serverInfo,
    ...(typeof discover.instructions === "string" && { instructions: discover.instructions }),
  };
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
