/**
 * The proxy pipeline over real HTTP on 127.0.0.1, with one fake per dependency (upstream MCP
 * server, policy engine, token verifier, audit log). Shared by the pipeline*.test.ts suites.
 */
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { parseConfig } from "../../../gateway/config/index.js";
import { createHttpServer, McpEndpoint, originPolicy, type OriginPolicy, type ToolDefinition, type UpstreamConnection } from "../../../gateway/proxy/index.js";
import type { RateLimiter } from "../../../gateway/ratelimit/index.js";
import type { LogLevel } from "../../../gateway/shared/log.js";
import { FakeAudit } from "../../fakes/audit.js";
import { FakePolicyEngine, type DecideFn } from "../../fakes/policy.js";
import { FakeUpstream, type UpstreamScript } from "../../fakes/upstream.js";
import { FakeVerifier, identity } from "../../fakes/verifier.js";
import { ManualClock, sequentialIds } from "../audit/helpers.js";

export const READ_FILE: ToolDefinition = {
  name: "read_file",
  description: "Reads a file",
  inputSchema: { type: "object", properties: { path: { type: "string" } }, required: ["path"] },
  annotations: { readOnlyHint: true },
};
export const ECHO: ToolDefinition = { name: "echo", description: "Echoes", inputSchema: { type: "object" } };
export const DELETE_RECORD: ToolDefinition = {
  name: "delete_record",
  description: "Deletes a record",
  inputSchema: { type: "object", properties: { id: { type: "string" } } },
  annotations: { destructiveHint: true },
};

export const TOKENS = { alice: "alice-token", bob: "bob-token" } as const;
export const UPSTREAM_TIMEOUT_MS = 4321;
export const MAX_BODY_BYTES = 2048;
export const ALLOWED_ORIGIN = "https://app.test";
export const metadataUrl = (server: string) => `http://gw.test/.well-known/oauth-protected-resource/mcp/${server}`;

export const INITIALIZE = {
  jsonrpc: "2.0",
  id: 0,
  method: "initialize",
  params: { protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: "pipeline-test", version: "1" } },
};

/** A JSON-RPC response body as the tests read it. */
export interface RpcBody {
  jsonrpc: string;
  id: unknown;
  result?: any;
  error?: { code: number; message: string; data?: any };
}

export interface Reply {
  status: number;
  headers: Headers;
  text: string;
  /** The parsed body when it is application/json. */
  json: RpcBody | null;
  /** The parsed `data` of each SSE event when the body is text/event-stream. */
  events: RpcBody[];
}

export interface PostOptions {
  /** Bearer token; null sends no Authorization header. Default alice's. */
  token?: string | null;
  session?: string;
  server?: string;
  headers?: Record<string, string>;
  method?: string;
}

export interface HarnessOptions {
  script?: UpstreamScript;
  decide?: DecideFn;
  sessions?: { maxSessions?: number; maxPerAgent?: number };
  /** The limits stage (pipeline-limits.test.ts); none by default. */
  limits?: RateLimiter;
  /** Let the test's decide function answer initialize too (default: initialize is always allowed). */
  decideInitialize?: boolean;
  /** Wraps each upstream connection (e.g. with a concurrency limit). */
  wrapUpstream?: (server: string, upstream: UpstreamConnection) => UpstreamConnection;
}

export class Harness {
  readonly clock = new ManualClock();
  readonly audit = new FakeAudit();
  readonly engine: FakePolicyEngine;
  readonly verifier = new FakeVerifier({
    [TOKENS.alice]: identity("alice", { roles: ["analyst"] }),
    [TOKENS.bob]: identity("bob", { roles: ["analyst"] }),
  });
  /** Every upstream connection the endpoint opened, in order, with the server it was for. */
  readonly upstreams: Array<{ server: string; upstream: FakeUpstream }> = [];
  readonly logs: Array<{ level: LogLevel; msg: string; fields?: Record<string, unknown> }> = [];
  readonly endpoint: McpEndpoint;
  private readonly server: Server;
  private base = "";
  private origins: OriginPolicy = originPolicy({ allowedOrigins: [ALLOWED_ORIGIN] });
  private nextId = 1;

  private constructor(opts: HarnessOptions) {
    this.engine = new FakePolicyEngine(opts.decide);
    // initialize is decided like every method; tests about other methods need not grant it.
    if (!opts.decideInitialize) this.engine.alwaysAllow.add("initialize");
    const config = parseConfig(
      {
        auth: { issuer: "https://idp.test/", audience: "https://gw.test/mcp", jwksUri: "https://idp.test/jwks.json" },
        policy: { bundle: "bundles/build/test.tar.gz", verificationKey: "bundles/keys/test.pub.pem" },
        upstreams: {
          files: { url: "http://127.0.0.1:9/mcp", timeoutMs: UPSTREAM_TIMEOUT_MS },
          other: { url: "http://127.0.0.1:9/other" },
        },
        audit: { resultCapBytes: 64, instanceId: "gw-test" },
        sessions: { maxSessions: opts.sessions?.maxSessions ?? 100, ...(opts.sessions?.maxPerAgent ? { maxPerAgent: opts.sessions.maxPerAgent } : {}) },
        edge: { maxBodyBytes: MAX_BODY_BYTES, allowedOrigins: [ALLOWED_ORIGIN] },
      },
      "test.yaml",
      {},
    );
    this.endpoint = new McpEndpoint({
      config,
      verifier: this.verifier,
      policy: () => this.engine,
      audit: this.audit,
      auditContext: { instanceId: "gw-test", version: "0.0.0-test", clock: this.clock, ids: sequentialIds("decision"), resultCapBytes: 64 },
      clock: this.clock,
      log: (level, msg, fields) => void this.logs.push(fields === undefined ? { level, msg } : { level, msg, fields }),
      connectUpstream: (server) => {
        const upstream = new FakeUpstream(opts.script);
        this.upstreams.push({ server, upstream });
        return opts.wrapUpstream ? opts.wrapUpstream(server, upstream) : upstream;
      },
      resourceMetadataUrl: metadataUrl,
      ...(opts.limits ? { limits: opts.limits } : {}),
      // The gateway's own names and origins, as the composition root sets them once it listens.
      origins: () => this.origins,
    });
    this.server = createHttpServer(this.endpoint, { servers: Object.keys(config.upstreams), resourceMetadata: () => ({}), originAllowed: (o) => this.origins.originAllowed(o) });
  }

  static async start(opts: HarnessOptions = {}): Promise<Harness> {
    const h = new Harness(opts);
    await new Promise<void>((resolve, reject) => {
      h.server.once("error", reject);
      h.server.listen(0, "127.0.0.1", resolve);
    });
    const port = (h.server.address() as AddressInfo).port;
    h.base = `http://127.0.0.1:${port}`;
    h.origins = originPolicy({ allowedOrigins: [ALLOWED_ORIGIN], listen: { host: "127.0.0.1", port } });
    return h;
  }

  async close(): Promise<void> {
    await this.endpoint.close();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  url(server = "files"): string {
    return `${this.base}/mcp/${server}`;
  }

  /** The one upstream connection opened so far (fails when there is not exactly one). */
  get upstream(): FakeUpstream {
    if (this.upstreams.length !== 1) throw new Error(`expected one upstream connection, got ${this.upstreams.length}`);
    return this.upstreams[0]!.upstream;
  }

  /** Sends one HTTP request to an MCP endpoint; `body` is JSON-encoded unless it is a string. */
  async send(body: unknown, opts: PostOptions = {}): Promise<Reply> {
    const headers: Record<string, string> = { "content-type": "application/json", accept: "application/json, text/event-stream" };
    const token = opts.token === undefined ? TOKENS.alice : opts.token;
    if (token !== null) headers.authorization = `Bearer ${token}`;
    if (opts.session !== undefined) headers["mcp-session-id"] = opts.session;
    const method = opts.method ?? "POST";
    const init: RequestInit = { method, headers: { ...headers, ...opts.headers } };
    if (body instanceof ReadableStream) {
      // A streamed body goes out chunked, without Content-Length.
      init.body = body;
      (init as RequestInit & { duplex: "half" }).duplex = "half";
    } else if (body !== undefined) {
      init.body = typeof body === "string" ? body : JSON.stringify(body);
    }
    return read(await fetch(this.url(opts.server), init));
  }

  /** Session id (what the client sends) → its handle (what audit and policy name it by). */
  readonly handles = new Map<string, string>();

  handleOf(sessionId: string): string {
    const h = this.handles.get(sessionId);
    if (!h) throw new Error("no handle recorded for that session");
    return h;
  }

  /**
   * initialize as `token`'s subject; returns the gateway session id. The initialize's own audit
   * event and policy input are dropped, so tests see only what follows (pipeline-guarantees tests
   * assert on initialize itself).
   */
  async initialize(token: string = TOKENS.alice, server = "files"): Promise<string> {
    const events = this.audit.events.length;
    const inputs = this.engine.inputs.length;
    const reply = await this.send(INITIALIZE, { token, server });
    const id = reply.headers.get("mcp-session-id");
    if (reply.status !== 200 || id === null) throw new Error(`initialize failed: ${reply.status} ${reply.text}`);
    const handle = this.audit.events[events]?.mcp.session_id;
    if (typeof handle === "string") this.handles.set(id, handle);
    this.audit.events.splice(events);
    this.engine.inputs.splice(inputs);
    return id;
  }

  /** One JSON-RPC request inside a session, with a fresh numeric id. */
  rpc(session: string, method: string, params?: Record<string, unknown>, opts: PostOptions = {}): Promise<Reply> {
    return this.send({ jsonrpc: "2.0", id: this.nextId++, method, ...(params === undefined ? {} : { params }) }, { ...opts, session });
  }

  /** A request message with a fresh id, for tests that compare what the upstream received. */
  request(method: string, params?: Record<string, unknown>): { jsonrpc: "2.0"; id: number; method: string; params?: Record<string, unknown> } {
    return { jsonrpc: "2.0", id: this.nextId++, method, ...(params === undefined ? {} : { params }) };
  }
}

async function read(res: Response): Promise<Reply> {
  const text = await res.text();
  const type = res.headers.get("content-type") ?? "";
  let json: RpcBody | null = null;
  if (type.startsWith("application/json") && text !== "") json = JSON.parse(text) as RpcBody;
  const events = type.startsWith("text/event-stream") ? sseData(text) : [];
  return { status: res.status, headers: res.headers, text, json, events };
}

/** The data of each event of a complete SSE body (independent of gateway/proxy/sse.ts on purpose). */
function sseData(text: string): RpcBody[] {
  return text
    .split(/\r?\n\r?\n/)
    .map((block) => block.split(/\r?\n/).filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trimStart()).join("\n"))
    .filter((data) => data !== "")
    .map((data) => JSON.parse(data) as RpcBody);
}
