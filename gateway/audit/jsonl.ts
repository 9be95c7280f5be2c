/**
 * One JSON Lines record. JSON.stringify leaves U+2028 and U+2029 raw; they are valid JSON, but
 * line-oriented readers that follow the JavaScript/Unicode notion of a line break (some log
 * shippers, editors, `String.prototype.split(/\r?\n|\u2028|\u2029/)`) split the record there.
 * Escaping them keeps one event on exactly one line, and JSON.parse gives back the same string.
 */
const HAS_LINE_SEPARATOR = /[\u2028\u2029]/;
const LINE_SEPARATORS = /[\u2028\u2029]/g;

export function jsonLine(value: unknown): string {
  const json = JSON.stringify(value) ?? "null";
  // A fast scan first: the common line has neither, and then nothing is copied.
  if (!HAS_LINE_SEPARATOR.test(json)) return json;
  return json.replace(LINE_SEPARATORS, (c) => (c === "\u2028" ? "\\u2028" : "\\u2029"));
}

/** Bytes of the record as a sink writes it: the line (UTF-8) plus its newline. */
export function jsonLineBytes(value: unknown): number {
  return Buffer.byteLength(jsonLine(value), "utf8") + 1;
}
