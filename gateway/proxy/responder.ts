import type { ServerResponse } from "node:http";
import { serialize, type JsonRpcMessage, type JsonRpcResponse } from "./jsonrpc.js";
import { sseMessage, ssePriming } from "./sse.js";

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
  /** The upstream's id for the next message event (resumable streams keep the upstream's ids). */
  private nextEventId: string | null = null;

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

  /**
   * An upstream SSE event's id and retry: an event without a message (priming) is written at
   * once; otherwise the id goes on the message event that follows.
   */
  sseEvent(id: string | null, retry: number | null, hasMessage: boolean): void {
    if (this.closed) return;
    if (hasMessage && retry === null) {
      this.nextEventId = id;
      return;
    }
    this.startStream();
    this.res.write(ssePriming(hasMessage ? null : id, retry));
    if (hasMessage) this.nextEventId = id;
  }

  /** A message related to the request, sent before the final response. */
  related(message: JsonRpcMessage): void {
    if (this.closed) return;
    this.startStream();
    this.res.write(sseMessage(serialize(message), this.takeEventId()));
  }

  /** The upstream ended a primed stream before answering: end ours too, so the client resumes (GET + Last-Event-ID). */
  paused(): void {
    if (!this.closed) this.res.end();
  }

  private startStream(): void {
    if (this.streaming) return;
    this.streaming = true;
    this.res.writeHead(200, {
      ...this.extraHeaders,
      "content-type": "text/event-stream",
      "cache-control": "no-cache",
      "x-accel-buffering": "no",
    });
  }

  private takeEventId(): string | null {
    const id = this.nextEventId;
    this.nextEventId = null;
    return id;
  }

  /** The final response; ends the HTTP exchange. */
  final(message: JsonRpcResponse, status = this.finalStatus): void {
    if (this.closed) return;
    const body = serialize(message);
    if (this.streaming) {
      this.res.end(sseMessage(body, this.takeEventId()));
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
