import { Refusal } from "./errors.js";

/**
 * The agent's body, parsed so that every reader downstream sees the same message.
 *
 * Parsers disagree on JSON that the RFC leaves open: with `{"path":"/data/ok","PATH":"/etc/passwd"}`
 * JSON.parse keeps both members, the policy reads `path`, and a Go upstream (encoding/json matches
 * member names case-insensitively, Unicode-folded, last one wins) reads `PATH`. Duplicate names are
 * the same problem within one parser family. So the edge refuses, anywhere in the message:
 * duplicate member names, names that collide after case folding, nesting deeper than `maxDepth`,
 * numbers that are not finite doubles (1e400 parses to Infinity, which re-encodes as null), and
 * unpaired surrogate escapes (which other parsers replace or reject). What passes has exactly one
 * reading, and it is the one that is decided, audited and forwarded.
 *
 * JSON.parse builds the value (fast, native); one linear scan of the text checks the rules above.
 */
export interface StrictJsonLimits {
  maxDepth: number;
}

export function parseStrictJson(text: string, limits: StrictJsonLimits): unknown {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new Refusal("parse_error");
  }
  // Valid JSON from here on: the scan can rely on the grammar and only has to track structure.
  scan(text, limits.maxDepth);
  return value;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/** Per open object: the folded names seen so far (exact duplicates fold to the same name). */
type Frame = Set<string> | null;

function scan(text: string, maxDepth: number): void {
  const stack: Frame[] = [];
  // In an object, the next string is a member name when we are at its start or after a comma.
  let expectName = false;
  const n = text.length;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    switch (c) {
      case 0x7b: // {
        if (stack.length >= maxDepth) throw new Refusal("json_too_deep", `more than ${maxDepth} levels`);
        stack.push(new Set());
        expectName = true;
        break;
      case 0x5b: // [
        if (stack.length >= maxDepth) throw new Refusal("json_too_deep", `more than ${maxDepth} levels`);
        stack.push(null);
        expectName = false;
        break;
      case 0x7d: // }
      case 0x5d: // ]
        stack.pop();
        expectName = false;
        break;
      case 0x2c: // ,
        expectName = stack[stack.length - 1] !== null && stack.length > 0;
        break;
      case QUOTE: {
        const end = stringEnd(text, i);
        const frame = stack[stack.length - 1];
        if (expectName && frame) {
          const name = decodeString(text, i, end);
          const folded = foldName(name);
          if (frame.has(folded)) throw new Refusal("ambiguous_json", `member "${clip(name)}" appears twice (names are compared case-insensitively)`);
          frame.add(folded);
          expectName = false;
        } else if (hasUnpairedSurrogate(text, i, end)) {
          throw new Refusal("invalid_json_value", "unpaired surrogate in a string");
        }
        i = end;
        break;
      }
      case 0x2d: // -
      case 0x30: case 0x31: case 0x32: case 0x33: case 0x34: // 0-4
      case 0x35: case 0x36: case 0x37: case 0x38: case 0x39: { // 5-9
        let j = i + 1;
        while (j < n && isNumberChar(text.charCodeAt(j))) j++;
        if (!Number.isFinite(Number(text.slice(i, j)))) throw new Refusal("invalid_json_value", `number ${clip(text.slice(i, j))} is out of range`);
        i = j - 1;
        break;
      }
      default:
        break;
    }
  }
}

/** Index of the closing quote of the string starting at `start` (text is valid JSON). */
function stringEnd(text: string, start: number): number {
  let i = start + 1;
  for (;;) {
    const q = text.indexOf('"', i);
    // Count the backslashes right before the quote: an odd number escapes it.
    let b = q - 1;
    while (text.charCodeAt(b) === BACKSLASH) b--;
    if ((q - 1 - b) % 2 === 0) return q;
    i = q + 1;
  }
}

function decodeString(text: string, start: number, end: number): string {
  const raw = text.slice(start, end + 1);
  const name = raw.indexOf("\\") === -1 ? raw.slice(1, -1) : (JSON.parse(raw) as string);
  if (LONE_SURROGATE.test(name)) throw new Refusal("invalid_json_value", "unpaired surrogate in a member name");
  return name;
}

function hasUnpairedSurrogate(text: string, start: number, end: number): boolean {
  // Raw text from a UTF-8 decode is always well formed; only \uD8xx escapes can break pairs.
  const escape = text.indexOf("\\u", start);
  if (escape === -1 || escape > end) return false;
  return LONE_SURROGATE.test(JSON.parse(text.slice(start, end + 1)) as string);
}

/** With the u flag, \p{Cs} matches only surrogates that are not part of a pair. */
const LONE_SURROGATE = /\p{Cs}/u;

/**
 * Case folding that over-approximates every parser's notion of "the same name": upper then lower
 * case maps U+017F (long s) to "s" and U+212A (Kelvin sign) to "k", as Go's simple folding does,
 * and NFKC folds compatibility forms. Refusing a few more names than strictly needed is the safe side.
 */
export function foldName(name: string): string {
  return name.normalize("NFKC").toUpperCase().toLowerCase();
}

function isNumberChar(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || c === 0x2e || c === 0x2b || c === 0x2d || c === 0x65 || c === 0x45;
}

function clip(s: string): string {
  return s.length <= 64 ? s : `${s.slice(0, 64)}…`;
}
