/** A minimal incremental Server-Sent Events reader and writer (WHATWG event-stream format). */
export interface SseEvent {
  event: string;
  data: string;
  /** The last event id (it persists across events, as in the WHATWG parser). */
  id: string | null;
  /** This event set the id itself (a priming event is one with an id and no data). */
  ownId: boolean;
  /** A `retry:` the event carried (ms). */
  retry: number | null;
}

/** An upstream event (or a line without end) larger than the configured bound. */
export class SseTooLargeError extends Error {
  constructor(limit: number) {
    super(`upstream SSE event exceeds ${limit} characters (upstreams.NAME.maxResponseBytes)`);
    this.name = "SseTooLargeError";
  }
}

/**
 * Linear in its input: each pushed character is scanned once (an upstream that sends one endless
 * line must not make every chunk rescan the whole line), and an event is bounded by `maxEventChars`
 * (its pending line plus its data lines) so a hostile upstream cannot grow the buffer without end.
 */
export class SseParser {
  /** The line being received, in pieces: concatenating into one string would be rescanned (flattened) per chunk. */
  private partial: string[] = [];
  private partialChars = 0;
  /** The last chunk ended in CR: a LF starting the next one belongs to it. */
  private pendingCR = false;
  private data: string[] = [];
  private dataChars = 0;
  private event = "";
  private id: string | null = null;
  private ownId = false;
  private retry: number | null = null;
  private readonly decoder = new TextDecoder();
  /** Characters examined so far (stays linear in the input: the hostile-upstream test reads it). */
  charsScanned = 0;

  constructor(
    private readonly onEvent: (e: SseEvent) => void,
    private readonly maxEventChars = Number.POSITIVE_INFINITY,
  ) {}

  /** Throws SseTooLargeError when an event outgrows the bound. */
  push(chunk: Uint8Array | string): void {
    const text = typeof chunk === "string" ? chunk : this.decoder.decode(chunk, { stream: true });
    this.charsScanned += text.length;
    let start = 0;
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (this.pendingCR) {
        this.pendingCR = false;
        if (c === 10) {
          start = i + 1;
          continue;
        }
      }
      if (c !== 10 && c !== 13) continue;
      const piece = text.slice(start, i);
      const line = this.partial.length === 0 ? piece : this.partial.join("") + piece;
      this.partial = [];
      this.partialChars = 0;
      this.line(line);
      if (c === 13) {
        if (i + 1 === text.length) this.pendingCR = true;
        else if (text.charCodeAt(i + 1) === 10) i++;
      }
      start = i + 1;
    }
    if (start < text.length) {
      this.partial.push(text.slice(start));
      this.partialChars += text.length - start;
    }
    if (this.partialChars + this.dataChars > this.maxEventChars) {
      this.partial = [];
      this.partialChars = 0;
      throw new SseTooLargeError(this.maxEventChars);
    }
  }

  private line(line: string): void {
    if (line === "") {
      // An event without data is still dispatched when it set an id or a retry: that is the
      // 2025-11-25 priming event, which makes the stream resumable.
      const data = this.data.join("\n");
      this.data = [];
      this.dataChars = 0;
      if (data !== "" || this.ownId || this.retry !== null) this.onEvent({ event: this.event || "message", data, id: this.id, ownId: this.ownId, retry: this.retry });
      this.event = "";
      this.ownId = false;
      this.retry = null;
      return;
    }
    if (line.startsWith(":")) return; // comment / keep-alive
    const colon = line.indexOf(":");
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "data") {
      this.data.push(value);
      this.dataChars += value.length + 1;
      if (this.dataChars > this.maxEventChars) throw new SseTooLargeError(this.maxEventChars);
    } else if (field === "event") this.event = value;
    else if (field === "id" && !value.includes("\0")) {
      this.id = value;
      this.ownId = true;
    } else if (field === "retry" && /^\d{1,9}$/.test(value)) this.retry = Number(value);
  }
}

/** Serialises one message event. JSON never contains raw newlines, so one data line suffices. */
export function sseMessage(json: string, id?: string | null): string {
  return `${id ? `id: ${sseField(id)}\n` : ""}event: message\ndata: ${json}\n\n`;
}

/** A priming event: an id (and the upstream's retry) with empty data, which clients record and do not dispatch. */
export function ssePriming(id: string | null, retry: number | null): string {
  return `${id !== null ? `id: ${sseField(id)}\n` : ""}${retry !== null ? `retry: ${retry}\n` : ""}data:\n\n`;
}

/** An upstream's event id goes back out on one line: a CR or LF in it would start a field of its own. */
function sseField(value: string): string {
  return value.replace(/[\r\n]/g, "");
}
