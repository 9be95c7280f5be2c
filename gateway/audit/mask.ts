/**
 * Masking of audited decision data with JSON pointers, following OPA's decision-log mask
 * semantics (reference/opa-wasm-and-bundles.md §5.2): pointers start at `/input` or `/result`,
 * array indices are allowed, and paths that do not resolve change nothing (the caller reports
 * them). Segments are RFC 6901: `~1` is `/` and `~0` is `~`; `%xx` is never decoded, so a key
 * that contains `%`, `/` or `~` is maskable and a pointer means one key only. Every pointer is an
 * upsert of `REDACTED` (recorded in `masked`), never a removal: a SIEM then sees that a field was
 * there without seeing its value.
 */

import { arrayIndex, unescapePointerSegment } from "../shared/json-pointer.js";

export const REDACTED = "**REDACTED**";

/** The two maskable roots of a decision event. */
export interface MaskTarget {
  input: unknown;
  result: unknown;
}

export interface MaskApplied extends MaskTarget {
  /** The pointers that matched and were redacted: sorted, deduplicated. */
  masked: string[];
}

type Root = keyof MaskTarget;

interface ParsedPointer {
  pointer: string;
  root: Root;
  segments: string[];
}

/**
 * Redacts every pointer of `pointers` that resolves in `target`, on a deep copy of the affected
 * roots. The caller's objects are never mutated. With no pointer that resolves (in particular an
 * empty list, the common case) nothing is copied and the caller's objects are returned as they are.
 */
export function applyMasks(target: MaskTarget, pointers: readonly string[]): MaskApplied {
  if (pointers.length === 0) return { input: target.input, result: target.result, masked: [] };

  // First pass on the original: keep only pointers that resolve, so an irrelevant mask list
  // costs a few property lookups and no copy.
  const live: ParsedPointer[] = [];
  for (const pointer of pointers) {
    const parsed = parsePointer(pointer);
    if (parsed !== null && resolves(target[parsed.root], parsed.segments)) live.push(parsed);
  }
  if (live.length === 0) return { input: target.input, result: target.result, masked: [] };

  const out: MaskTarget = { input: target.input, result: target.result };
  const copied = new Set<Root>();
  for (const p of live) {
    if (!copied.has(p.root)) {
      out[p.root] = deepCopy(out[p.root]);
      copied.add(p.root);
    }
    if (p.segments.length === 0) {
      out[p.root] = REDACTED;
    } else {
      redactAt(out[p.root], p.segments);
    }
  }
  const masked = [...new Set(live.map((p) => p.pointer))].sort();
  return { input: out.input, result: out.result, masked };
}

/** Parses `/input/a/b~1c` into root "input" and segments ["a", "b/c"]; null when not maskable. */
export function parsePointer(pointer: string): ParsedPointer | null {
  if (!pointer.startsWith("/")) return null;
  const raw = pointer.slice(1).split("/");
  const head = raw[0];
  if (head !== "input" && head !== "result") return null;
  return { pointer, root: head, segments: raw.slice(1).map(unescapePointerSegment) };
}

function isContainer(v: unknown): v is Record<string, unknown> | unknown[] {
  return typeof v === "object" && v !== null;
}

function child(node: unknown, segment: string): { found: boolean; value: unknown } {
  if (Array.isArray(node)) {
    const i = arrayIndex(node, segment);
    return i === null ? { found: false, value: undefined } : { found: true, value: node[i] };
  }
  if (isContainer(node) && Object.prototype.hasOwnProperty.call(node, segment)) {
    return { found: true, value: (node as Record<string, unknown>)[segment] };
  }
  return { found: false, value: undefined };
}

function resolves(root: unknown, segments: readonly string[]): boolean {
  if (segments.length === 0) return root !== undefined && root !== null;
  let node = root;
  for (const s of segments) {
    const next = child(node, s);
    if (!next.found) return false;
    node = next.value;
  }
  return true;
}

/** Replaces the value at `segments` (known to resolve) in the already copied `root`. */
function redactAt(root: unknown, segments: readonly string[]): void {
  let node = root;
  for (let i = 0; i < segments.length - 1; i++) {
    node = child(node, segments[i] as string).value;
  }
  const last = segments[segments.length - 1] as string;
  if (Array.isArray(node)) {
    const idx = arrayIndex(node, last);
    if (idx !== null) node[idx] = REDACTED;
  } else if (isContainer(node)) {
    (node as Record<string, unknown>)[last] = REDACTED;
  }
}

/**
 * A deep copy of JSON-shaped data. Not structuredClone: policy input may carry values that
 * structuredClone rejects (functions) or keeps as non-JSON types; the event is JSON anyway.
 */
function deepCopy(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(deepCopy);
  if (isContainer(v)) {
    const out: Record<string, unknown> = {};
    for (const [k, val] of Object.entries(v)) {
      if (k === "__proto__") {
        // JSON.parse makes "__proto__" an own key; plain assignment would set the prototype.
        Object.defineProperty(out, k, { value: deepCopy(val), enumerable: true, writable: true, configurable: true });
      } else {
        out[k] = deepCopy(val);
      }
    }
    return out;
  }
  return v;
}
