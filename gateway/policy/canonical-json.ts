/**
 * OPA's canonical encoding of structured bundle documents (data.json, .manifest), byte for byte.
 *
 * OPA hashes these files not as stored but re-encoded: decoded with Go's encoding/json (UseNumber,
 * so numbers keep their source text; invalid UTF-8 becomes U+FFFD per byte; a bad surrogate escape
 * becomes U+FFFD) and written back compactly with keys sorted by UTF-8 bytes and Go ≥ 1.22 string
 * escaping. JSON.parse cannot be used: it loses number lexemes and decodes bytes differently.
 */

/** A JSON number kept as its source text, as Go's json.Number does. */
class NumberLexeme {
  constructor(readonly text: string) {}
}

type Node = null | boolean | string | NumberLexeme | Node[] | Map<string, Node>;

/** Thrown for input Go's decoder would reject. */
export class JsonSyntaxError extends Error {
  constructor(reason: string, readonly offset: number) {
    super(`invalid JSON at byte ${offset}: ${reason}`);
    this.name = "JsonSyntaxError";
  }
}

const MAX_DEPTH = 1000;
const REPLACEMENT = "\uFFFD";

/** canonicalJson re-encodes a JSON document (UTF-8, optional BOM) the way OPA does before hashing. */
export function canonicalJson(bytes: Uint8Array): string {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const start = buf[0] === 0xef && buf[1] === 0xbb && buf[2] === 0xbf ? 3 : 0;
  const parser = new Parser(buf, start);
  const value = parser.parseDocument();
  const out: string[] = [];
  encodeNode(value, out);
  return out.join("");
}

/** canonicalJsonOfValue encodes a plain JS value with the same key order and escaping. */
export function canonicalJsonOfValue(value: unknown): string {
  return encodeValue(value, 0);
}

// ---------------------------------------------------------------- encoding

function encodeNode(node: Node, out: string[]): void {
  if (node === null) out.push("null");
  else if (node === true) out.push("true");
  else if (node === false) out.push("false");
  else if (typeof node === "string") out.push(quote(node));
  else if (node instanceof NumberLexeme) out.push(node.text);
  else if (Array.isArray(node)) {
    out.push("[");
    for (let i = 0; i < node.length; i++) {
      if (i > 0) out.push(",");
      encodeNode(node[i] as Node, out);
    }
    out.push("]");
  } else {
    out.push("{");
    const keys = [...node.keys()].sort(compareUtf8);
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i] as string;
      if (i > 0) out.push(",");
      out.push(quote(key), ":");
      encodeNode(node.get(key) as Node, out);
    }
    out.push("}");
  }
}

// This runs for every audit event (the hash chain) and every tool digest, so it builds one string
// by concatenation (V8 ropes) and takes the native paths where they give Go's bytes: the default
// sort when no key holds a code unit at or above U+D800 (there UTF-16 and UTF-8 order agree), and
// a string with nothing to escape and no surrogate written as it is.
function encodeValue(value: unknown, depth: number): string {
  if (depth > MAX_DEPTH) throw new TypeError("value nests too deeply for canonical JSON");
  if (value === null || value === undefined) return "null";
  switch (typeof value) {
    case "string":
      return quoteValue(value);
    case "boolean":
      return value ? "true" : "false";
    case "number":
      return Number.isFinite(value) ? JSON.stringify(value) : "null";
    case "object":
      break;
    default:
      throw new TypeError(`cannot encode a ${typeof value} as canonical JSON`);
  }
  if (Array.isArray(value)) {
    let out = "[";
    for (let i = 0; i < value.length; i++) out += (i > 0 ? "," : "") + encodeValue(value[i], depth + 1);
    return out + "]";
  }
  const record = value as Record<string, unknown>;
  // Like JSON.stringify, undefined members are omitted; keys are sorted as they will be written.
  const names = Object.keys(record);
  let pairs: ReadonlyArray<readonly [string, string]> | undefined;
  if (names.length > 1) {
    const joined = names.join("");
    if (!HIGH_UNITS.test(joined)) names.sort();
    else if (isWellFormed(joined)) names.sort(compareUtf8);
    else pairs = names.map((k) => [wellFormed(k), k] as const).sort((a, b) => compareUtf8(a[0], b[0]));
  } else if (names.length === 1 && !isWellFormed(names[0]!)) pairs = [[wellFormed(names[0]!), names[0]!]];
  let out = "{";
  let first = true;
  const n = pairs === undefined ? names.length : pairs.length;
  for (let i = 0; i < n; i++) {
    const original = pairs === undefined ? names[i]! : pairs[i]![1];
    const member = record[original];
    if (member === undefined || typeof member === "function") continue;
    out += (first ? "" : ",") + quoteValue(pairs === undefined ? original : pairs[i]![0]) + ":" + encodeValue(member, depth + 1);
    first = false;
  }
  return out + "}";
}

/** Code units where UTF-16 order may differ from UTF-8 order, or a string may be ill-formed. */
const HIGH_UNITS = /[\uD800-\uFFFF]/;
/** A string with none of these is written as it is, between quotes. */
const PLAIN = /["\\\u0000-\u001f\u2028\u2029\uD800-\uDFFF]/;

function quoteValue(s: string): string {
  return PLAIN.test(s) ? quote(wellFormed(s)) : `"${s}"`;
}

/**
 * compareUtf8 orders strings by their UTF-8 bytes (Go's sort.Strings), which is code point order.
 * UTF-16 order differs only between surrogates and U+E000..U+FFFF, so those are shifted.
 */
export function compareUtf8(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x !== y) {
      if (x >= 0xd800 && y >= 0xd800) return shiftSurrogate(x) - shiftSurrogate(y);
      return x - y;
    }
  }
  return a.length - b.length;
}

function shiftSurrogate(c: number): number {
  return c >= 0xe000 ? c - 0x800 : c + 0x2000;
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/** Lone surrogates cannot be written as UTF-8; Go and Buffer both turn them into U+FFFD. */
function wellFormed(s: string): string {
  return isWellFormed(s) ? s : s.replace(LONE_SURROGATE, REPLACEMENT);
}

// String.prototype.isWellFormed (ES2024, in Node 20's V8) is far cheaper than the regex replace.
const nativeIsWellFormed = (String.prototype as { isWellFormed?: (this: string) => boolean }).isWellFormed;
function isWellFormed(s: string): boolean {
  if (nativeIsWellFormed) return nativeIsWellFormed.call(s);
  LONE_SURROGATE.lastIndex = 0;
  return !LONE_SURROGATE.test(s);
}

const NEEDS_ESCAPE = /["\\\u0000-\u001f\u2028\u2029]/;
const HEX = "0123456789abcdef";

/** Go ≥ 1.22 encoding/json string escaping with SetEscapeHTML(false). */
function quote(s: string): string {
  if (!NEEDS_ESCAPE.test(s)) return `"${s}"`;
  let out = '"';
  let runStart = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    let esc: string | undefined;
    if (c === 0x22) esc = '\\"';
    else if (c === 0x5c) esc = "\\\\";
    else if (c < 0x20) {
      if (c === 0x0a) esc = "\\n";
      else if (c === 0x0d) esc = "\\r";
      else if (c === 0x09) esc = "\\t";
      else if (c === 0x08) esc = "\\b";
      else if (c === 0x0c) esc = "\\f";
      else esc = `\\u00${HEX[c >> 4]}${HEX[c & 0xf]}`;
    } else if (c === 0x2028 || c === 0x2029) esc = c === 0x2028 ? "\\u2028" : "\\u2029";
    if (esc !== undefined) {
      out += s.slice(runStart, i) + esc;
      runStart = i + 1;
    }
  }
  return `${out}${s.slice(runStart)}"`;
}

// ---------------------------------------------------------------- parsing

class Parser {
  private pos: number;

  constructor(
    private readonly buf: Buffer,
    start: number,
  ) {
    this.pos = start;
  }

  parseDocument(): Node {
    this.skipSpace();
    const value = this.parseValue(0);
    this.skipSpace();
    if (this.pos !== this.buf.length) this.fail("unexpected data after the top-level value");
    return value;
  }

  private fail(reason: string): never {
    throw new JsonSyntaxError(reason, this.pos);
  }

  private skipSpace(): void {
    const buf = this.buf;
    while (this.pos < buf.length) {
      const c = buf[this.pos];
      if (c !== 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d) return;
      this.pos++;
    }
  }

  private parseValue(depth: number): Node {
    if (depth > MAX_DEPTH) this.fail("nesting too deep");
    const c = this.buf[this.pos];
    switch (c) {
      case 0x7b: // {
        return this.parseObject(depth);
      case 0x5b: // [
        return this.parseArray(depth);
      case 0x22: // "
        return this.parseString();
      case 0x74:
        return this.literal("true", true);
      case 0x66:
        return this.literal("false", false);
      case 0x6e:
        return this.literal("null", null);
      default:
        if (c === 0x2d || (c !== undefined && c >= 0x30 && c <= 0x39)) return this.parseNumber();
        return this.fail(c === undefined ? "unexpected end of input" : "unexpected character");
    }
  }

  private literal<T extends Node>(word: string, value: T): T {
    if (this.buf.toString("latin1", this.pos, this.pos + word.length) !== word) this.fail(`expected ${word}`);
    this.pos += word.length;
    return value;
  }

  private parseObject(depth: number): Map<string, Node> {
    const obj = new Map<string, Node>();
    this.pos++;
    this.skipSpace();
    if (this.buf[this.pos] === 0x7d) {
      this.pos++;
      return obj;
    }
    for (;;) {
      if (this.buf[this.pos] !== 0x22) this.fail("expected a string key");
      const key = this.parseString();
      this.skipSpace();
      if (this.buf[this.pos] !== 0x3a) this.fail("expected ':'");
      this.pos++;
      this.skipSpace();
      obj.set(key, this.parseValue(depth + 1)); // duplicate keys: the last wins, as in a Go map
      this.skipSpace();
      const c = this.buf[this.pos];
      this.pos++;
      if (c === 0x7d) return obj;
      if (c !== 0x2c) this.fail("expected ',' or '}'");
      this.skipSpace();
    }
  }

  private parseArray(depth: number): Node[] {
    const arr: Node[] = [];
    this.pos++;
    this.skipSpace();
    if (this.buf[this.pos] === 0x5d) {
      this.pos++;
      return arr;
    }
    for (;;) {
      arr.push(this.parseValue(depth + 1));
      this.skipSpace();
      const c = this.buf[this.pos];
      this.pos++;
      if (c === 0x5d) return arr;
      if (c !== 0x2c) this.fail("expected ',' or ']'");
      this.skipSpace();
    }
  }

  private parseNumber(): NumberLexeme {
    const buf = this.buf;
    const start = this.pos;
    const isDigit = (c: number | undefined): boolean => c !== undefined && c >= 0x30 && c <= 0x39;
    const digits = (): number => {
      const from = this.pos;
      while (isDigit(buf[this.pos])) this.pos++;
      return this.pos - from;
    };
    if (buf[this.pos] === 0x2d) this.pos++;
    if (buf[this.pos] === 0x30) this.pos++;
    else if (digits() === 0) this.fail("bad number");
    if (buf[this.pos] === 0x2e) {
      this.pos++;
      if (digits() === 0) this.fail("bad fraction");
    }
    if (buf[this.pos] === 0x65 || buf[this.pos] === 0x45) {
      this.pos++;
      if (buf[this.pos] === 0x2b || buf[this.pos] === 0x2d) this.pos++;
      if (digits() === 0) this.fail("bad exponent");
    }
    return new NumberLexeme(buf.toString("latin1", start, this.pos));
  }

  private parseString(): string {
    const buf = this.buf;
    this.pos++; // opening quote
    let out = "";
    let runStart = this.pos;
    for (;;) {
      if (this.pos >= buf.length) this.fail("unterminated string");
      const c = buf[this.pos] as number;
      if (c === 0x22) {
        out += buf.toString("utf8", runStart, this.pos);
        this.pos++;
        return out;
      }
      if (c < 0x20) this.fail("control character in string");
      if (c === 0x5c) {
        out += buf.toString("utf8", runStart, this.pos);
        out += this.parseEscape();
        runStart = this.pos;
        continue;
      }
      if (c < 0x80) {
        this.pos++;
        continue;
      }
      const width = utf8Width(buf, this.pos);
      if (width > 0) {
        this.pos += width;
        continue;
      }
      // Go decodes each invalid byte to its own U+FFFD (WHATWG decoders may merge them).
      out += buf.toString("utf8", runStart, this.pos) + REPLACEMENT;
      this.pos++;
      runStart = this.pos;
    }
  }

  /** Parses one escape at `pos` (the backslash) and returns the decoded text. */
  private parseEscape(): string {
    const buf = this.buf;
    const e = buf[this.pos + 1];
    this.pos += 2;
    switch (e) {
      case 0x22:
        return '"';
      case 0x5c:
        return "\\";
      case 0x2f:
        return "/";
      case 0x62:
        return "\b";
      case 0x66:
        return "\f";
      case 0x6e:
        return "\n";
      case 0x72:
        return "\r";
      case 0x74:
        return "\t";
      case 0x75: {
        const unit = this.hex4(this.pos);
        if (unit < 0) this.fail("bad \\u escape");
        this.pos += 4;
        if (unit < 0xd800 || unit > 0xdfff) return String.fromCharCode(unit);
        // A surrogate must pair with a following \u low surrogate; otherwise Go writes U+FFFD.
        if (unit <= 0xdbff && buf[this.pos] === 0x5c && buf[this.pos + 1] === 0x75) {
          const low = this.hex4(this.pos + 2);
          if (low >= 0xdc00 && low <= 0xdfff) {
            this.pos += 6;
            return String.fromCharCode(unit, low);
          }
        }
        return REPLACEMENT;
      }
      default:
        this.pos -= 1;
        return this.fail("bad escape");
    }
  }

  private hex4(at: number): number {
    if (at + 4 > this.buf.length) return -1;
    const text = this.buf.toString("latin1", at, at + 4);
    return /^[0-9a-fA-F]{4}$/.test(text) ? parseInt(text, 16) : -1;
  }
}

/** Length of the valid UTF-8 sequence at `i` (Go's utf8.DecodeRune rules), or 0 when invalid. */
function utf8Width(buf: Buffer, i: number): number {
  const b0 = buf[i] as number;
  const cont = (k: number, lo = 0x80, hi = 0xbf): boolean => {
    const b = buf[i + k];
    return b !== undefined && b >= lo && b <= hi;
  };
  if (b0 >= 0xc2 && b0 <= 0xdf) return cont(1) ? 2 : 0;
  if (b0 >= 0xe0 && b0 <= 0xef) {
    const lo = b0 === 0xe0 ? 0xa0 : 0x80;
    const hi = b0 === 0xed ? 0x9f : 0xbf;
    return cont(1, lo, hi) && cont(2) ? 3 : 0;
  }
  if (b0 >= 0xf0 && b0 <= 0xf4) {
    const lo = b0 === 0xf0 ? 0x90 : 0x80;
    const hi = b0 === 0xf4 ? 0x8f : 0xbf;
    return cont(1, lo, hi) && cont(2) && cont(3) ? 4 : 0;
  }
  return 0;
}
