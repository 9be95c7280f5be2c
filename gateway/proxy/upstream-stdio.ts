import { StdioClientTransport, getDefaultEnvironment } from "@modelcontextprotocol/sdk/client/stdio.js";
import type { JSONRPCMessage } from "@modelcontextprotocol/sdk/types.js";
import type { StdioUpstreamConfig } from "../config/index.js";
import type { JsonRpcId, JsonRpcMessage, JsonRpcNotification, JsonRpcRequest, JsonRpcResponse } from "./jsonrpc.js";
import { UpstreamError, type RequestOptions, type UpstreamConnection, type UpstreamState } from "./upstream.js";

const STDERR_TAIL_CHARS = 2048;

interface Pending {
  clientId: JsonRpcId;
  resolve: (r: JsonRpcResponse) => void;
  reject: (e: Error) => void;
  onMessage?: (m: JsonRpcMessage) => void;
  progressToken?: unknown;
  timer: NodeJS.Timeout;
}

/**
 * A stdio upstream: one child process per gateway session, spawned from admin config only
 * (never from request data), with `shell: false` and a minimal environment (the SDK's defaults
 * plus the configured `env`). Messages are relayed raw; responses are matched by id.
 */
export class StdioUpstreamConnection implements UpstreamConnection {
  /** A stdio process is spoken to with the initialize handshake (SDK v2's serveStdio answers it too). */
  readonly era = "legacy" as const;
  private transport: StdioClientTransport | null = null;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private listener: ((m: JsonRpcMessage) => void) | null = null;
  private onListenEnd: (() => void) | null = null;
  private closed = false;
  /** The process ended on its own: the session cannot continue, so the client must re-initialize. */
  private exited = false;
  /** The last of what the process wrote to stderr, for the error when it exits. */
  private stderrTail = "";
  /** The client's initialize parameters: what another replica starts its own process with. */
  private initParams: Record<string, unknown> = {};

  constructor(
    private readonly config: StdioUpstreamConfig,
    private readonly log: (msg: string) => void,
  ) {}

  async initialize(request: JsonRpcRequest, opts: RequestOptions): Promise<JsonRpcResponse> {
    const p = request.params ?? {};
    this.initParams = { protocolVersion: p.protocolVersion, capabilities: p.capabilities ?? {}, clientInfo: p.clientInfo ?? { name: "unknown", version: "unknown" } };
    const transport = new StdioClientTransport({
      command: this.config.command,
      args: this.config.args,
      env: { ...getDefaultEnvironment(), ...this.config.env },
      ...(this.config.cwd ? { cwd: this.config.cwd } : {}),
      stderr: "pipe",
    });
    transport.onmessage = (m) => this.route(m as JsonRpcMessage);
    transport.onerror = (err) => this.log(`stdio upstream error: ${err.message}`);
    transport.onclose = () => {
      this.exited = true;
      // What it said last is why it died (a missing module, a bad flag): the error carries it.
      const said = this.stderrTail.trim();
      this.failAll(new UpstreamError("upstream_closed", `upstream process exited${said ? `; its stderr ended with: ${said}` : ""}`));
      this.onListenEnd?.();
    };
    transport.stderr?.on("data", (chunk: Buffer) => {
      const text = chunk.toString();
      this.stderrTail = (this.stderrTail + text).slice(-STDERR_TAIL_CHARS);
      this.log(`stdio upstream stderr: ${text.trimEnd()}`);
    });
    this.transport = transport;
    try {
      await transport.start();
    } catch (err) {
      throw new UpstreamError("upstream_unreachable", `cannot start "${this.config.command}": ${(err as Error).message}`);
    }
    return this.request(request, opts);
  }

  request(request: JsonRpcRequest, opts: RequestOptions): Promise<JsonRpcResponse> {
    const transport = this.transport;
    if (this.exited) return Promise.reject(new UpstreamError("upstream_session_lost", "upstream process exited"));
    if (!transport || this.closed) return Promise.reject(new UpstreamError("upstream_closed", "upstream process is not running"));
    // One process serves the client's requests and the gateway's own (catalog listing) on one
    // pipe: every request gets an id of this connection, so two requests can never share one and
    // an answer can only reach the request it belongs to. The client's id is restored on the answer.
    const upstreamId = this.nextId++;
    return new Promise<JsonRpcResponse>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(upstreamId);
        reject(new UpstreamError("upstream_timeout", "upstream did not answer in time"));
      }, opts.timeoutMs);
      const meta = request.params?._meta as Record<string, unknown> | undefined;
      this.pending.set(upstreamId, { clientId: request.id, resolve, reject, onMessage: opts.onMessage, progressToken: meta?.progressToken, timer });
      opts.signal?.addEventListener("abort", () => {
        const p = this.pending.get(upstreamId);
        if (!p) return;
        clearTimeout(p.timer);
        this.pending.delete(upstreamId);
        void this.send({ jsonrpc: "2.0", method: "notifications/cancelled", params: { requestId: request.id, reason: "request aborted" } }).catch(() => undefined);
        reject(new UpstreamError("upstream_closed", "request aborted"));
      });
      transport.send({ ...request, id: upstreamId } as JSONRPCMessage).catch((err: Error) => {
        clearTimeout(timer);
        this.pending.delete(upstreamId);
        reject(new UpstreamError("upstream_unreachable", err.message));
      });
    });
  }

  async send(message: JsonRpcNotification | JsonRpcResponse): Promise<void> {
    if (!this.transport || this.closed) throw new UpstreamError("upstream_closed", "upstream process is not running");
    await this.transport.send(this.translateCancellation(message) as JSONRPCMessage);
  }

  /** A client cancels by its own request id; the upstream knows the request by ours. */
  private translateCancellation(message: JsonRpcNotification | JsonRpcResponse): JsonRpcNotification | JsonRpcResponse {
    if (!("method" in message) || message.method !== "notifications/cancelled") return message;
    const clientId = message.params?.requestId;
    for (const [upstreamId, p] of this.pending) {
      if (p.clientId === clientId) return { ...message, params: { ...message.params, requestId: upstreamId } };
    }
    return message;
  }

  async listen(onMessage: (m: JsonRpcMessage) => void, signal: AbortSignal, onEnd: () => void): Promise<"open" | "unsupported"> {
    this.listener = onMessage;
    this.onListenEnd = onEnd;
    signal.addEventListener("abort", () => {
      this.listener = null;
      this.onListenEnd = null;
    });
    return "open";
  }

  state(): UpstreamState {
    return { kind: "stdio", init: this.initParams };
  }

  /** The process is this replica's alone: letting go of it ends it. */
  detach(): Promise<void> {
    return this.close();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.failAll(new UpstreamError("upstream_closed", "session closed"));
    await this.transport?.close().catch(() => undefined);
  }

  private route(m: JsonRpcMessage): void {
    if (!("method" in m)) {
      const id = (m as JsonRpcResponse).id;
      const p = typeof id === "number" ? this.pending.get(id) : undefined;
      if (p && typeof id === "number") {
        clearTimeout(p.timer);
        this.pending.delete(id);
        p.resolve({ ...(m as JsonRpcResponse), id: p.clientId });
      }
      return;
    }
    // Progress belongs to the request that asked for it; anything else is unsolicited.
    const token = (m.params as Record<string, unknown> | undefined)?.progressToken;
    if (token !== undefined) {
      for (const p of this.pending.values()) {
        if (p.progressToken === token) return p.onMessage?.(m);
      }
    }
    if (this.listener) this.listener(m);
  }

  private failAll(err: Error): void {
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer);
      p.reject(err);
      this.pending.delete(id);
    }
  }
}
