/**
 * Drives McpEndpoint.post without sockets, so the hostile-input suite can push tens of thousands
 * of requests through the whole POST path (edge → identity → session → decision → forward →
 * audit) in seconds. The request is a Readable carrying the body in chunks; the response records
 * what the endpoint did with it and counts every end(), so a double answer is caught.
 */
import { EventEmitter } from "node:events";
import type { IncomingMessage, ServerResponse } from "node:http";
import { Readable } from "node:stream";

export class FakeRequest extends Readable {
  readonly url: string;
  readonly socket: { remoteAddress: string };
  constructor(
    readonly method: string,
    readonly headers: Record<string, string>,
    chunks: Buffer[],
    remoteAddress = "127.0.0.1",
  ) {
    super();
    this.url = "/mcp/files";
    this.socket = { remoteAddress };
    for (const c of chunks) this.push(c);
    this.push(null);
  }
  override _read(): void {}
}

export class FakeResponse extends EventEmitter {
  statusCode = 0;
  readonly headers: Record<string, string | number> = {};
  body = "";
  headersSent = false;
  writableEnded = false;
  destroyed = false;
  ends = 0;
  /** Misuse the real ServerResponse would throw on or silently corrupt. */
  readonly misuse: string[] = [];

  setHeader(name: string, value: string | number): this {
    if (this.headersSent) this.misuse.push(`setHeader(${name}) after headers were sent`);
    this.headers[name.toLowerCase()] = value;
    return this;
  }
  writeHead(status: number, headers: Record<string, string | number> = {}): this {
    if (this.headersSent) this.misuse.push("writeHead twice");
    this.statusCode = status;
    for (const [k, v] of Object.entries(headers)) this.headers[k.toLowerCase()] = v;
    this.headersSent = true;
    return this;
  }
  flushHeaders(): void {}
  write(chunk: string | Buffer): boolean {
    if (this.writableEnded) this.misuse.push("write after end");
    if (!this.headersSent) this.writeHead(200);
    this.body += chunk.toString();
    return true;
  }
  end(chunk?: string | Buffer): this {
    this.ends++;
    if (this.writableEnded) {
      this.misuse.push("end twice");
      return this;
    }
    if (!this.headersSent) this.writeHead(this.statusCode || 200);
    if (chunk !== undefined) this.body += chunk.toString();
    this.writableEnded = true;
    this.emit("finish");
    return this;
  }
}

export function fakeExchange(method: string, headers: Record<string, string>, chunks: Buffer[], remoteAddress?: string): { req: IncomingMessage; res: ServerResponse; fake: FakeResponse } {
  const fake = new FakeResponse();
  return {
    req: new FakeRequest(method, headers, chunks, remoteAddress) as unknown as IncomingMessage,
    res: fake as unknown as ServerResponse,
    fake,
  };
}

/** Splits a body into chunks at the given cut points (a client may send it in any pieces). */
export function chunked(body: Buffer, cuts: number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => c % (body.length + 1)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let from = 0;
  for (const p of points) {
    if (p > from) out.push(body.subarray(from, p));
    from = Math.max(from, p);
  }
  if (from < body.length || out.length === 0) out.push(body.subarray(from));
  return out;
}
