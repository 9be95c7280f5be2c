import { arrayIndex, isJsonPointer, pointerSegments } from "../shared/json-pointer.js";
import type { ResultRedaction } from "./types.js";

/** What the agent sees in place of a redacted value or substring. */
export const RESULT_REDACTED = "[REDACTED]";

/** One redaction that took effect: where, what kind, how much. Never the redacted text. */
export interface AppliedRedaction {
  pointer: string;
  kind?: string;
  /** UTF-8 bytes blanked: every occurrence of `match`, or the whole value (a non-string as JSON). */
  bytes: number;
  /** "match": only the substring's occurrences were blanked; "value": the whole value was replaced. */
  scope: "match" | "value";
  /** How many occurrences were blanked (1 for a whole value). */
  occurrences: number;
}

/** A redaction whose pointer names nothing in the result (or is not a pointer): reported, not an error. */
export interface UnresolvedRedaction {
  pointer: string;
  kind?: string;
}

export interface RedactionOutcome {
  /** The redacted result: a copy when anything changed, else the caller's object itself. */
  result: Record<string, unknown>;
  /** Sorted by pointer, then kind. */
  redacted: AppliedRedaction[];
  unresolved: UnresolvedRedaction[];
}

type Container = Record<string, unknown> | unknown[];

interface Target {
  pointer: string;
  segments: string[];
  /** The value at the pointer in the caller's result. */
  value: unknown;
  entries: ResultRedaction[];
}

/**
 * applyRedactions blanks what a result decision's `redact` names, without mutating `result`: the
 * containers on each redacted path are copied, the rest is shared.
 *
 * - A pointer string, or an entry without `match`, replaces the whole value with `replacement`
 *   (a non-string too: a number or an object becomes the replacement string).
 * - An entry with `match` blanks each occurrence of that exact substring inside the string value,
 *   leaving the text around it. Occurrences of several matches at one pointer are found in the
 *   original string and overlapping ones merged, so one redaction never hides another's text from
 *   the search. If a `match` does not occur in the value, or the value is not a string, the whole
 *   value is replaced: the policy saw a secret there, and blanking too much is the safe error.
 * - Every pointer is resolved against the caller's result before anything changes; one that names
 *   nothing (a missing key, an index out of range or not canonical, an inherited key such as
 *   `__proto__` on an ordinary object) is listed in `unresolved`. Keys are read as own properties
 *   and written with defineProperty, so `/__proto__/x` never reaches a prototype.
 *
 * The report carries pointers, kinds and byte counts only: it is what the audit records.
 */
export function applyRedactions(
  result: Record<string, unknown>,
  redactions: ReadonlyArray<string | ResultRedaction>,
  replacement: string = RESULT_REDACTED,
): RedactionOutcome {
  const unresolved: UnresolvedRedaction[] = [];
  const targets = new Map<string, Target>();
  const seen = new Set<string>();
  for (const item of redactions) {
    const entry: ResultRedaction = typeof item === "string" ? { pointer: item } : item;
    const identity = JSON.stringify([entry.pointer, entry.match ?? null, entry.kind ?? null]);
    if (seen.has(identity)) continue;
    seen.add(identity);
    const existing = targets.get(entry.pointer);
    if (existing !== undefined) {
      existing.entries.push(entry);
      continue;
    }
    const segments = isJsonPointer(entry.pointer) ? pointerSegments(entry.pointer) : undefined;
    const found = segments === undefined ? undefined : resolve(result, segments);
    if (segments === undefined || found === undefined) {
      unresolved.push(withKind({ pointer: entry.pointer }, entry.kind));
      continue;
    }
    targets.set(entry.pointer, { pointer: entry.pointer, segments, value: found.value, entries: [entry] });
  }
  if (targets.size === 0) return { result, redacted: [], unresolved: sortReports(unresolved) };

  const redacted: AppliedRedaction[] = [];
  const copy = new CopyOnWrite(result);
  // Deepest first: a child is written before an ancestor that replaces it, never into a replaced one.
  for (const target of [...targets.values()].sort((a, b) => b.segments.length - a.segments.length)) {
    const { value, reports } = redactValue(target, replacement);
    copy.write(target.segments, value);
    redacted.push(...reports);
  }
  return { result: copy.root, redacted: sortReports(redacted), unresolved: sortReports(unresolved) };
}

/** The new value at one pointer and what to report for each of its entries. */
function redactValue(target: Target, replacement: string): { value: string; reports: AppliedRedaction[] } {
  const { value, entries, pointer } = target;
  const whole = (): { value: string; reports: AppliedRedaction[] } => {
    const bytes = typeof value === "string" ? utf8Bytes(value) : jsonBytes(value);
    return { value: replacement, reports: entries.map((e) => withKind({ pointer, bytes, scope: "value", occurrences: 1 }, e.kind)) };
  };
  if (typeof value !== "string") return whole();
  const spans: Array<[number, number]> = [];
  const reports: AppliedRedaction[] = [];
  for (const entry of entries) {
    if (entry.match === undefined || entry.match === "") return whole();
    const found = occurrences(value, entry.match);
    if (found.length === 0) return whole();
    spans.push(...found);
    reports.push(withKind({ pointer, bytes: utf8Bytes(entry.match) * found.length, scope: "match", occurrences: found.length }, entry.kind));
  }
  return { value: blank(value, spans, replacement), reports };
}

/** Non-overlapping occurrences of `needle`, left to right, as [start, end) offsets. */
function occurrences(haystack: string, needle: string): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (let at = haystack.indexOf(needle); at !== -1; at = haystack.indexOf(needle, at + needle.length)) {
    out.push([at, at + needle.length]);
  }
  return out;
}

/** Replaces each span (overlapping or touching ones merged into one) with `replacement`. */
function blank(text: string, spans: Array<[number, number]>, replacement: string): string {
  spans.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let out = "";
  let cursor = 0;
  let open: [number, number] | undefined;
  for (const [start, end] of spans) {
    if (open !== undefined && start <= open[1]) {
      open[1] = Math.max(open[1], end);
      continue;
    }
    if (open !== undefined) {
      out += text.slice(cursor, open[0]) + replacement;
      cursor = open[1];
    }
    open = [start, end];
  }
  if (open !== undefined) {
    out += text.slice(cursor, open[0]) + replacement;
    cursor = open[1];
  }
  return out + text.slice(cursor);
}

/** The value at `segments`, read as own properties and canonical in-range indices only. */
function resolve(root: unknown, segments: readonly string[]): { value: unknown } | undefined {
  let node = root;
  for (const segment of segments) {
    if (Array.isArray(node)) {
      const i = arrayIndex(node, segment);
      if (i === null) return undefined;
      node = node[i];
    } else if (node !== null && typeof node === "object" && Object.prototype.hasOwnProperty.call(node, segment)) {
      node = (node as Record<string, unknown>)[segment];
    } else {
      return undefined;
    }
  }
  return { value: node };
}

/** Copies the containers on each written path once; everything else stays shared with the original. */
class CopyOnWrite {
  readonly root: Record<string, unknown>;
  private readonly copies = new Set<Container>();

  constructor(original: Record<string, unknown>) {
    this.root = shallowCopy(original) as Record<string, unknown>;
    this.copies.add(this.root);
  }

  /** Sets the value at `segments`, which resolved in the original. */
  write(segments: readonly string[], value: unknown): void {
    let node: Container = this.root;
    for (const segment of segments.slice(0, -1)) {
      let next = getChild(node, segment) as Container;
      if (!this.copies.has(next)) {
        next = shallowCopy(next);
        this.copies.add(next);
        setChild(node, segment, next);
      }
      node = next;
    }
    setChild(node, segments[segments.length - 1] as string, value);
  }
}

function getChild(node: Container, segment: string): unknown {
  return Array.isArray(node) ? node[Number(segment)] : node[segment];
}

function setChild(node: Container, segment: string, value: unknown): void {
  if (Array.isArray(node)) node[Number(segment)] = value;
  // defineProperty, not assignment: `node["__proto__"] = v` would set the prototype.
  else Object.defineProperty(node, segment, { value, enumerable: true, writable: true, configurable: true });
}

function shallowCopy(node: Container): Container {
  if (Array.isArray(node)) return node.slice();
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(node)) setChild(out, key, node[key]);
  return out;
}

function utf8Bytes(text: string): number {
  return Buffer.byteLength(text, "utf8");
}

function jsonBytes(value: unknown): number {
  try {
    return utf8Bytes(JSON.stringify(value) ?? "");
  } catch {
    return 0;
  }
}

function withKind<T extends { pointer: string }>(report: T, kind: string | undefined): T & { kind?: string } {
  return kind === undefined ? report : { ...report, kind };
}

function sortReports<T extends { pointer: string; kind?: string }>(reports: T[]): T[] {
  const order = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
  return reports.sort((a, b) => order(a.pointer, b.pointer) || order(a.kind ?? "", b.kind ?? ""));
}
