import { createHash } from "node:crypto";
import { escapePointerSegment } from "../shared/json-pointer.js";
import type { TruncationMarker } from "./types.js";

/**
 * The building blocks that keep every audit event bounded by construction (docs/audit.md
 * "Size limits"): capped strings, a nesting cap on `input`/`result`, the marker that replaces
 * what was cut, and a cheap upper bound of the JSON size so the common small event is never
 * encoded twice. No walk here can exhaust the stack: the copy is iterative, and the size bound
 * recurses at most MAX_NESTING levels.
 */

/** Key of the object that stands where a value was cut out of an event. */
export const TRUNCATED_KEY = "portcullis.truncated";

/** Containers nested this deep below the root of `input` or `result` are replaced by a marker. */
export const MAX_NESTING = 64;

/** Caps, in UTF-16 code units, on strings the event takes from outside `input`/`result`. */
export interface StringCaps {
  /** Names and ids: method, server, tool, resource, prompt, session and request ids, … */
  name: number;
  /** `error.message`. */
  message: number;
}
export const NORMAL_CAPS: StringCaps = { name: 256, message: 1024 };
/** Used only when an event is still over its byte budget after every large part was replaced. */
export const TIGHT_CAPS: StringCaps = { name: 32, message: 128 };

/**
 * `s` itself when it has at most `cap` code units; otherwise its first `cap` units followed by
 * `…[+N chars]`, N being how many were cut. Never splits a surrogate pair.
 */
export function capString(s: string, cap: number): string {
  if (s.length <= cap) return s;
  let cut = cap;
  const last = s.charCodeAt(cut - 1);
  if (last >= 0xd800 && last <= 0xdbff) cut--;
  return `${s.slice(0, cut)}…[+${s.length - cut} chars]`;
}

/** A printable string for a value a stage passed where a string was expected; never throws. */
export function asText(v: unknown): string {
  if (typeof v === "string") return v;
  try {
    return String(v);
  } catch {
    return "[unprintable]";
  }
}

/**
 * Marker for a value replaced because the event was over its byte budget, and by how many bytes
 * the event's JSONL line shrinks with it (the value's JSON is encoded once, for both).
 */
export function sizeMarker(value: unknown): { marker: TruncationMarker; saved: number } {
  const json = JSON.stringify(value) ?? "null";
  const bytes = Buffer.from(json, "utf8");
  const marker: TruncationMarker = { [TRUNCATED_KEY]: { bytes: bytes.length, sha256: createHash("sha256").update(bytes).digest("hex") } };
  sizeMarkers.add(marker);
  // The marker is ASCII; the line escapes U+2028/U+2029 to 6 bytes instead of 3.
  return { marker, saved: bytes.length + 3 * countLineSeparators(json) - JSON.stringify(marker).length };
}

function countLineSeparators(s: string): number {
  let n = 0;
  for (let i = s.indexOf("\u2028"); i !== -1; i = s.indexOf("\u2028", i + 1)) n++;
  for (let i = s.indexOf("\u2029"); i !== -1; i = s.indexOf("\u2029", i + 1)) n++;
  return n;
}

/**
 * The markers sizeMarker made. Identity, not shape: a client can send arguments that look like a
 * marker, and those must still be replaced when they are too large.
 */
const sizeMarkers = new WeakSet<object>();

export function isTruncationMarker(v: unknown): v is TruncationMarker {
  return typeof v === "object" && v !== null && sizeMarkers.has(v);
}


/**
 * Upper bound of the JSON size of a string, in bytes, without scanning it: each UTF-16 unit is
 * at most 6 bytes (`\u001f`, an escaped lone surrogate, U+2028 escaped by the file sink); a
 * code point outside the BMP is two units and 4 bytes.
 */
const stringBound = (s: string): number => s.length * 6 + 2;
/** Longest JSON.stringify of a double: `-2.2250738585072014e-308`. */
const NUMBER_BOUND = 25;

/**
 * An upper bound of the JSON size of `root`, and whether it is already plain JSON data that
 * canonical JSON and JSON.stringify encode alike and that nests less than `maxDepth` containers
 * deep. Allocates nothing. This runs on every decision, so it is the fast recursive form: the
 * recursion stops at `maxDepth` (a deeper container makes the value unclean), so it is at most
 * MAX_NESTING frames deep whatever the input.
 */
export function inspectJson(root: unknown, maxDepth: number): { bound: number; clean: boolean } {
  try {
    const bound = boundOf(root, 0, maxDepth);
    return bound < 0 ? { bound: Number.POSITIVE_INFINITY, clean: false } : { bound, clean: true };
  } catch {
    return { bound: Number.POSITIVE_INFINITY, clean: false }; // a throwing getter or proxy: the copy isolates it
  }
}

const UNCLEAN = -1;

function boundOf(v: unknown, depth: number, maxDepth: number): number {
  switch (typeof v) {
    case "string":
      return stringBound(v);
    case "number":
      return NUMBER_BOUND;
    case "boolean":
      return 5;
    case "undefined":
      return 4; // null in an array, left out of an object
    case "object": {
      if (v === null) return 4;
      if (depth >= maxDepth) return UNCLEAN;
      let bound = 2;
      if (Array.isArray(v)) {
        bound += v.length;
        for (let i = 0; i < v.length; i++) {
          const b = boundOf(v[i], depth + 1, maxDepth);
          if (b < 0) return UNCLEAN;
          bound += b;
        }
        return bound;
      }
      // Plain objects only (class instances, Dates, … go through the copy), and no toJSON: the
      // encoders then see exactly the own enumerable members. for-in is the fast walk; an
      // inherited enumerable member (a polluted prototype) only makes the bound larger.
      const proto = Object.getPrototypeOf(v) as unknown;
      if ((proto !== Object.prototype && proto !== null) || typeof (v as { toJSON?: unknown }).toJSON === "function") return UNCLEAN;
      for (const k in v) {
        const b = boundOf((v as Record<string, unknown>)[k], depth + 1, maxDepth);
        if (b < 0) return UNCLEAN;
        bound += b + stringBound(k) + 2;
      }
      return bound;
    }
    default:
      return UNCLEAN; // bigint, symbol, function: the encoders disagree or throw
  }
}

/**
 * A lower bound of the JSON size of `root` (every string unit is at least a byte), walked only
 * until it passes `limit`: proves cheaply that a part cannot fit, without encoding it.
 */
export function jsonLowerBound(root: unknown, limit: number): number {
  let bound = 0;
  const values: unknown[] = [root];
  while (values.length > 0 && bound <= limit) {
    const v = values.pop();
    if (typeof v === "string") bound += v.length + 2;
    else if (typeof v === "object" && v !== null) {
      if (Array.isArray(v)) {
        bound += 1 + v.length;
        for (const x of v) values.push(x);
      } else {
        for (const k of Object.keys(v)) {
          bound += k.length + 4;
          values.push((v as Record<string, unknown>)[k]);
        }
      }
    } else bound += 1;
  }
  return bound;
}

export interface Sanitized {
  /** Plain JSON data: a copy of the input with every problem replaced. */
  value: unknown;
  bound: number;
  /** Pointers of the sections (see `sanitizeJson`) in which something was replaced by a marker. */
  cutSections: string[];
}

interface Frame {
  value: unknown;
  depth: number;
  parent: Record<string, unknown> | unknown[];
  key: string | number;
  /** Pointer of the section this value belongs to. */
  section: string;
}

const escapeSegment = (key: string): string => escapePointerSegment(capString(key, 64));

function defineMember(target: Record<string, unknown>, key: string, value: unknown): void {
  if (key === "__proto__") {
    // JSON.parse makes "__proto__" an own key; plain assignment would set the prototype.
    Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
  } else {
    target[key] = value;
  }
}

/**
 * An iterative copy of `root` as plain JSON data, on which JSON.stringify and canonical JSON
 * agree and cannot throw: containers at `maxDepth` become `{ "portcullis.truncated": { depth } }`,
 * a value that throws when read becomes `{ "portcullis.truncated": { error } }`, bigints become
 * decimal strings, non-finite numbers null, functions/symbols/undefined are dropped from objects
 * and null in arrays (as JSON.stringify does), `toJSON` is honoured once per value.
 *
 * `rootPointer` and `sectionDepth` name where cuts happened without naming every cut: the section
 * of a value is the pointer of its ancestor at `sectionDepth` (0: the root itself), so the list of
 * cut sections stays short whatever the input looks like.
 */
export function sanitizeJson(root: unknown, maxDepth: number, rootPointer: string, sectionDepth: number): Sanitized {
  const holder: Record<string, unknown> = { "": null };
  const sections = new Set<string>();
  let bound = 0;
  const stack: Frame[] = [{ value: root, depth: 0, parent: holder, key: "", section: rootPointer }];
  while (stack.length > 0) {
    const f = stack.pop() as Frame;
    const inArray = Array.isArray(f.parent);
    let out: unknown;
    let keep = true;
    try {
      let v = f.value;
      if (typeof v === "object" && v !== null && typeof (v as { toJSON?: unknown }).toJSON === "function") {
        v = (v as { toJSON: (key: string) => unknown }).toJSON(String(f.key)); // "" for the root, as JSON.stringify
      }
      switch (typeof v) {
        case "string":
          out = v;
          bound += stringBound(v);
          break;
        case "number":
          out = Number.isFinite(v) ? v : null;
          bound += NUMBER_BOUND;
          break;
        case "boolean":
          out = v;
          bound += 5;
          break;
        case "bigint":
          out = v.toString();
          bound += stringBound(out as string);
          break;
        case "object": {
          if (v === null) {
            out = null;
            bound += 4;
          } else if (f.depth >= maxDepth) {
            out = { [TRUNCATED_KEY]: { depth: maxDepth } };
            bound += 64;
            sections.add(f.section);
          } else if (Array.isArray(v)) {
            const arr: unknown[] = new Array<unknown>(v.length).fill(null);
            out = arr;
            bound += 2 + v.length;
            for (let i = v.length - 1; i >= 0; i--) {
              stack.push({ value: v[i], depth: f.depth + 1, parent: arr, key: i, section: childSection(f, String(i), sectionDepth) });
            }
          } else {
            const obj: Record<string, unknown> = {};
            out = obj;
            const keys = Object.keys(v);
            bound += 2 + keys.length;
            // Members are placed now, in order, so the copy keeps the original key order; their
            // values are filled in (or the member removed) when the walk reaches them.
            for (const k of keys) {
              defineMember(obj, k, null);
              bound += stringBound(k) + 1;
            }
            for (let i = keys.length - 1; i >= 0; i--) {
              const k = keys[i] as string;
              stack.push({ value: (v as Record<string, unknown>)[k], depth: f.depth + 1, parent: obj, key: k, section: childSection(f, k, sectionDepth) });
            }
          }
          break;
        }
        default:
          // undefined, function, symbol: JSON.stringify leaves the member out, or writes null in an array.
          keep = inArray;
          out = null;
          bound += 4;
      }
    } catch (err) {
      out = { [TRUNCATED_KEY]: { error: capString(asText(err instanceof Error ? err.message : err), 256) } };
      bound += 1800;
      sections.add(f.section);
    }
    if (inArray) (f.parent as unknown[])[f.key as number] = out;
    else if (keep) defineMember(f.parent as Record<string, unknown>, f.key as string, out);
    else delete (f.parent as Record<string, unknown>)[f.key as string];
  }
  return { value: holder[""] ?? null, bound, cutSections: [...sections] };
}

function childSection(f: Frame, key: string, sectionDepth: number): string {
  return f.depth < sectionDepth ? `${f.section}/${escapeSegment(key)}` : f.section;
}

/**
 * `root` as plain JSON data with its size bound: the root itself when it already is (the common
 * case: nothing is copied), else the sanitized copy.
 */
export function boundedJson(root: unknown, rootPointer: string, sectionDepth: number): Sanitized {
  const inspected = inspectJson(root, MAX_NESTING);
  if (inspected.clean) return { value: root === undefined ? null : root, bound: inspected.bound, cutSections: [] };
  return sanitizeJson(root, MAX_NESTING, rootPointer, sectionDepth);
}
