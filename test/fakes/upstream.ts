/**
 * A fake upstream MCP server: an in-memory UpstreamConnection answering from a script, recording
 * every message it receives and every close().
 *
 *   const upstream = new FakeUpstream({
 *     toolPages: [[readFile, echo], [deleteRecord]],               // tools/list, paged by cursor
 *     methods: {
 *       "tools/call": (req) => ({ result: { content: [] }, related: [progress(req, 1)] }),
 *       ping: { throws: new UpstreamError("upstream_timeout", "no answer") },
 *     },
 *   });
 *   upstream.requests("tools/call");   // what the gateway forwarded
 *   upstream.sent;                     // notifications and responses the gateway passed on
 *   upstream.closeCount;               // close() calls
 */
import type { JsonRpcErrorObject, JsonRpcMessage, JsonRpcNotification, JsonRpcRequest, JsonRpcResponse } from "../../gateway/proxy/jsonrpc.js";
import type { ToolDefinition } from "../../gateway/proxy/session.js";
import { UpstreamError, type RequestOptions, type UpstreamConnection, type UpstreamEra, type UpstreamState } from "../../gateway/proxy/upstream.js";

/** What the fake does with one request: answer, fail, or throw, optionally after related messages. */
export type Reply =
  | { result: Record<string, unknown>; related?: JsonRpcMessage[] }
  | { error: JsonRpcErrorObject; related?: JsonRpcMessage[] }
  | { throws: UpstreamError; related?: JsonRpcMessage[] };

export type Handler = Reply | ((request: JsonRpcRequest, opts: RequestOptions) => Reply | Promise<Reply>);

export interface UpstreamScript {
  /** The answer to initialize. Default: a 2025-11-25 result with the tools capability. */
  initialize?: Handler;
  /** tools/list pages, in order; page i>0 is reached with cursor "page-i". Default: one empty page. */
  toolPages?: ToolDefinition[][];
  /** Every other method. A method not listed answers -32601, as a real server would. */
  methods?: Record<string, Handler>;
  /** What listen() resolves; "open" keeps the handlers for push() and end(). Default "unsupported". */
  listen?: "open" | "unsupported";
}

export interface Received {
  kind: "initialize" | "request" | "send";
  message: JsonRpcMessage;
  /** The options the gateway passed (null for send). */
  opts: RequestOptions | null;
}

export const INITIALIZE_RESULT = {
  protocolVersion: "2025-11-25",
  capabilities: { tools: { listChanged: true }, resources: {}, prompts: {} },
  serverInfo: { name: "fake-upstream", version: "1.0.0" },
};

export class FakeUpstream implements UpstreamConnection {
  /** The era it answers as (set by a test to fake a 2026 upstream). */
  era: UpstreamEra = "legacy";
  readonly received: Received[] = [];
  closeCount = 0;
  private stream: { onMessage: (m: JsonRpcMessage) => void; onEnd: () => void; signal: AbortSignal } | null = null;

  constructor(readonly script: UpstreamScript = {}) {}

  /** Requests (initialize included) the gateway sent, optionally only those of one method. */
  requests(method?: string): JsonRpcRequest[] {
    return this.received
      .filter((r) => r.kind !== "send" && (method === undefined || (r.message as JsonRpcRequest).method === method))
      .map((r) => r.message as JsonRpcRequest);
  }

  /** Options passed with the requests of one method. */
  optionsFor(method: string): RequestOptions[] {
    return this.received.filter((r) => r.kind !== "send" && (r.message as JsonRpcRequest).method === method).map((r) => r.opts!);
  }

  /** Notifications and responses passed on with send(). */
  get sent(): JsonRpcMessage[] {
    return this.received.filter((r) => r.kind === "send").map((r) => r.message);
  }

  async initialize(request: JsonRpcRequest, opts: RequestOptions): Promise<JsonRpcResponse> {
    this.received.push({ kind: "initialize", message: request, opts });
    return this.answer(request, opts, this.script.initialize ?? { result: INITIALIZE_RESULT });
  }

  async request(request: JsonRpcRequest, opts: RequestOptions): Promise<JsonRpcResponse> {
    this.received.push({ kind: "request", message: request, opts });
    if (this.closeCount > 0) throw new UpstreamError("upstream_closed", "fake upstream: request after close()");
    const handler = this.script.methods?.[request.method] ?? (request.method === "tools/list" ? this.toolsList(request) : undefined);
    return this.answer(request, opts, handler ?? { error: { code: -32601, message: `Method not found: ${request.method}` } });
  }

  async send(message: JsonRpcNotification | JsonRpcResponse): Promise<void> {
    this.received.push({ kind: "send", message, opts: null });
    if (this.closeCount > 0) throw new UpstreamError("upstream_closed", "fake upstream: send after close()");
  }

  async listen(onMessage: (m: JsonRpcMessage) => void, signal: AbortSignal, onEnd: () => void): Promise<"open" | "unsupported"> {
    if ((this.script.listen ?? "unsupported") === "unsupported") return "unsupported";
    this.stream = { onMessage, onEnd, signal };
    return "open";
  }

  /** Sends a server→client message on the open GET stream; false when none is open. */
  push(message: JsonRpcMessage): boolean {
    if (!this.stream || this.stream.signal.aborted) return false;
    this.stream.onMessage(message);
    return true;
  }

  /** Ends the open GET stream from the upstream's side. */
  endStream(): void {
    this.stream?.onEnd();
  }

  /** Whether the gateway aborted the GET stream it opened. */
  get streamAborted(): boolean {
    return this.stream?.signal.aborted ?? false;
  }

  async close(): Promise<void> {
    this.closeCount++;
  }

  detachCount = 0;
  async detach(): Promise<void> {
    this.detachCount++;
  }

  state(): UpstreamState {
    return { kind: "http", era: this.era, sessionId: "fake-upstream-session", protocolVersion: null };
  }

  private toolsList(request: JsonRpcRequest): Handler {
    const pages = this.script.toolPages ?? [[]];
    const cursor = request.params?.cursor;
    const index = typeof cursor === "string" ? Number(cursor.replace(/^page-/, "")) : 0;
    const page = pages[index];
    if (page === undefined) return { error: { code: -32602, message: `Invalid cursor: ${String(cursor)}` } };
    return { result: index + 1 < pages.length ? { tools: page, nextCursor: `page-${index + 1}` } : { tools: page } };
  }

  private async answer(request: JsonRpcRequest, opts: RequestOptions, handler: Handler): Promise<JsonRpcResponse> {
    const reply = typeof handler === "function" ? await handler(request, opts) : handler;
    for (const m of reply.related ?? []) {
      opts.onMessage?.(m);
      // Let the gateway write each related message before the next one arrives, as over a wire.
      await new Promise((resolve) => setImmediate(resolve));
    }
    if ("throws" in reply) throw reply.throws;
    if ("error" in reply) return { jsonrpc: "2.0", id: request.id, error: reply.error };
    return { jsonrpc: "2.0", id: request.id, result: reply.result };
  }
}

/** A notifications/progress message for a request that carries `_meta.progressToken`. */
export function progress(request: JsonRpcRequest, value: number, total?: number): JsonRpcNotification {
  const meta = request.params?._meta as { progressToken?: string | number } | undefined;
  return {
    jsonrpc: "2.0",
    method: "notifications/progress",
    params: { progressToken: meta?.progressToken ?? "missing-token", progress: value, ...(total === undefined ? {} : { total }) },
  };
}
