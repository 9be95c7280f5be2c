/** A minimal incremental Server-Sent Events reader and writer (WHATWG event-stream format). */
export interface SseEvent {
  event: string;
  data: string;
  id: string | null;
}

export class SseParser {
  private buffer = "";
  private data: string[] = [];
  private event = "";
  private id: string | null = null;
  private readonly decoder = new TextDecoder();

  constructor(private readonly onEvent: (e: SseEvent) => void) {}

  push(chunk: Uint8Array | string): void {
    this.buffer += typeof chunk === "string" ? chunk : this.decoder.decode(chunk, { stream: true });
    let start = 0;
    for (let i = 0; i < this.buffer.length; i++) {
      const c = this.buffer.charCodeAt(i);
      if (c !== 10 && c !== 13) continue;
      // A CR at the very end may be the first half of CRLF: wait for more input.
      if (c === 13 && i === this.buffer.length - 1) break;
      this.line(this.buffer.slice(start, i));
      if (c === 13 && this.buffer.charCodeAt(i + 1) === 10) i++;
      start = i + 1;
    }
    this.buffer = this.buffer.slice(start);
  }

  private line(line: string): void {
    if (line === "") {
      // An event with no data (e.g. the 2025-11-25 priming event) is not dispatched.
      const data = this.data.join("\n");
      if (data !== "") this.onEvent({ event: this.event || "message", data, id: this.id });
      this.data = [];
      this.event = "";
      return;
    }
    if (line.startsWith(":")) return; // comment / keep-alive
    const colon = line.indexOf(":");
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "data") this.data.push(value);
    else if (field === "event") this.event = value;
    else if (field === "id" && !value.includes("\0")) this.id = value;
  }
}

/** Serialises one message event. JSON never contains raw newlines, so one data line suffices. */
export function sseMessage(json: string, id?: string): string {
  return `${id ? `id: ${id}\n` : ""}event: message\ndata: ${json}\n\n`;
}
