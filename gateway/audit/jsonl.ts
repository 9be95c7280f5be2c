/**
 * One JSON Lines record. JSON.stringify leaves U+2028 and U+2029 raw; they are valid JSON, but
 * line-oriented readers that follow the JavaScript/Unicode notion of a line break (some log
 * shippers, editors, `String.prototype.split(/\r?\n|\u2028|\u2029/)`) split the record there.
 * Escaping them keeps one event on exactly one line, and JSON.parse gives back the same string.
 */
const HAS_LINE_SEPARATOR = /[\u2028\u2029]/;
const LINE_SEPARATORS = /[\u2028\u2029]/g;

export function jsonLine(value: unknown): string {
  return escapeLineSeparators(JSON.stringify(value) ?? "null");
}

function escapeLineSeparators(json: string): string {
  // A fast scan first: the common line has neither, and then nothing is copied.
  if (!HAS_LINE_SEPARATOR.test(json)) return json;
  return json.replace(LINE_SEPARATORS, (c) => (c === "\u2028" ? "\\u2028" : "\\u2029"));
}

/**
 * One event's JSON, encoded once by AuditLog and shared by every sink that writes it as JSON
 * (the file's line, the Kafka value and so the outbox record): one JSON.stringify per event
 * instead of one per sink. Lazy, so a sink set that never reads it costs nothing.
 */
export class EncodedEvent {
  private text: string | undefined;
  private lineText: string | undefined;

  constructor(private readonly value: unknown) {}

  /** JSON.stringify of the event, as Kafka has always received it. */
  get json(): string {
    return (this.text ??= JSON.stringify(this.value) ?? "null");
  }

  /** `jsonLine` of the event (no newline): the same string as `json` unless it holds U+2028/U+2029. */
  get line(): string {
    return (this.lineText ??= escapeLineSeparators(this.json));
  }
}

/** Bytes of the record as a sink writes it: the line (UTF-8) plus its newline. */
export function jsonLineBytes(value: unknown): number {
  return Buffer.byteLength(jsonLine(value), "utf8") + 1;
}
