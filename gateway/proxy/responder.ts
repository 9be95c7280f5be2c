import type { ServerResponse } from "node:http";
import { serialize, type JsonRpcMessage, type JsonRpcResponse } from "./jsonrpc.js";
import { sseMessage } from "./sse.js";

/**
 * Answers one POSTed request. It answers plain JSON unless the upstream sends related messages
 * (progress, logging, server→client requests) before its response: then it switches to SSE, which
 * a Streamable HTTP client must accept either way.
 */
export class Responder {
  private streaming = false;
  private readonly extraHeaders: Record<string, string> = {};
  /** Status of a plain JSON final answer (e.g. 403 for a scope challenge); 200 by default. */
  private finalStatus = 200;

  constructor(private readonly res: ServerResponse) {}

  header(name: string, value: string): void {
    this.extraHeaders[name] = value;
  }

  status(code: number): void {
    this.finalStatus = code;
  }

  get closed(): boolean {
    return this.res.writableEnded || this.res.destroyed;
  }

  /** A message related to the request, sent before the final response. */
  related(message: JsonRpcMessage): void {
    if (this.closed) return;
    if (!this.streaming) {
      this.streaming = true;
      this.res.writeHead(200, {
        ...this.extraHeaders,
        "content-type": "text/event-stream",
        "cache-control": "no-cache",
        "x-accel-buffering": "no",
      });
    }
    this.res.write(sseMessage(serialize(message)));
  }

  /** The final response; ends the HTTP exchange. */
  final(message: JsonRpcResponse, status = this.finalStatus): void {
    if (this.closed) return;
    const body = serialize(message);
    if (this.streaming) {
      this.res.end(sseMessage(body));
      return;
    }
    this.res.writeHead(status, {
      ...this.extraHeaders,
      "content-type": "application/json",
      "content-length": Buffer.byteLength(body),
    });
    this.res.end(body);
  }
}
