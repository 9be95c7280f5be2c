import { isTruncationMarker, jsonLowerBound, sizeMarker } from "./bounds.js";
import { jsonLineBytes } from "./jsonl.js";
import { utf8Boundary } from "./result-summary.js";
import type { AuditEvent } from "./types.js";

/** `audit.maxEventBytes` default: half of Kafka's default `max.message.bytes` (1 MiB). */
export const DEFAULT_MAX_EVENT_BYTES = 512 * 1024;
/** `audit.maxEventBytes` minimum: room for an event whose every large part was replaced. */
export const MIN_MAX_EVENT_BYTES = 16 * 1024;
/**
 * Kept free for `chain`, which AuditLog adds after `finish`: epoch, seq, two hashes, a
 * signature and a `key_id` of at most 128 characters (audit.signing.keyId) fit in it.
 */
export const CHAIN_RESERVE_BYTES = 2048;

/** Bytes `finish` may use for an event, chain excluded. */
export function eventBudget(maxEventBytes: number | undefined): number {
  const max = Math.max(MIN_MAX_EVENT_BYTES, Math.floor(maxEventBytes ?? DEFAULT_MAX_EVENT_BYTES));
  return max - CHAIN_RESERVE_BYTES;
}

/**
 * A step replaces or shrinks one part and returns by at least how many bytes the line got
 * shorter (not counting its `truncated` entry), or null when the part is not there.
 */
type Step = (event: AuditEvent, size: number, budget: number, truncated: Set<string>) => number | null;

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/**
 * `masked` lists what is redacted in the event: pointers inside a replaced part are gone with it.
 * Returns how many bytes that saved.
 */
function dropMaskedUnder(event: AuditEvent, pointer: string): number {
  const kept = event.masked.filter((m) => m !== pointer && !m.startsWith(`${pointer}/`));
  if (kept.length === event.masked.length) return 0;
  const saved = jsonLineBytes(event.masked) - jsonLineBytes(kept);
  event.masked = kept;
  return saved;
}

const replaceArguments: Step = (event, _size, _budget, truncated) => {
  const input = event.input;
  if (!isObject(input) || !isObject(input.request)) return null;
  const args = input.request.arguments;
  if (args === null || args === undefined || isTruncationMarker(args)) return null;
  const { marker, saved } = sizeMarker(args);
  // Copied on the way down: without a mask the event shares the pipeline's own input object.
  event.input = { ...input, request: { ...input.request, arguments: marker } };
  truncated.add("/input/request/arguments");
  return saved + dropMaskedUnder(event, "/input/request/arguments");
};

const replaceResult: Step = (event, _size, _budget, truncated) => {
  if (event.result === null || event.result === undefined || isTruncationMarker(event.result)) return null;
  const { marker, saved } = sizeMarker(event.result);
  event.result = marker;
  truncated.add("/result");
  return saved + dropMaskedUnder(event, "/result");
};

/** Cuts the excerpt by the excess: each UTF-8 byte removed shortens its JSON by at least a byte. */
const shrinkToolResult: Step = (event, size, budget, truncated) => {
  const tr = event.tool_result;
  if (!tr || tr.content.length === 0) return null;
  const bytes = Buffer.from(tr.content, "utf8");
  // 64 more: the `truncated` entry this step adds must fit too.
  const end = utf8Boundary(bytes, Math.max(0, bytes.length - (size - budget) - 64));
  event.tool_result = { ...tr, content: bytes.subarray(0, end).toString("utf8"), truncated: true };
  truncated.add("/tool_result/content");
  return bytes.length - end;
};

const replaceList =
  (part: "visible" | "hidden"): Step =>
  (event, _size, _budget, truncated) => {
    const list = event.list;
    if (!list || isTruncationMarker(list[part])) return null;
    const { marker, saved } = sizeMarker(list[part]);
    event.list = { ...list, [part]: marker };
    truncated.add(`/list/${part}`);
    return saved;
  };

/** Last resort for `input`: what is left (claims, a tool definition) is still too large. */
const replaceInput: Step = (event, _size, _budget, truncated) => {
  if (event.input === null || event.input === undefined || isTruncationMarker(event.input)) return null;
  const { marker, saved } = sizeMarker(event.input);
  event.input = marker;
  truncated.add("/input");
  return saved + dropMaskedUnder(event, "/input");
};

/** In the order docs/audit.md "Size limits" gives: the least useful bytes go first. */
const STEPS: readonly Step[] = [replaceArguments, replaceResult, shrinkToolResult, replaceList("hidden"), replaceList("visible"), replaceInput];

/** Room for one `truncated` entry (pointer, quotes, comma) and the key itself the first time. */
const TRUNCATED_ENTRY_BOUND = 48;

export function setTruncated(event: AuditEvent, truncated: ReadonlySet<string>): void {
  if (truncated.size > 0) event.truncated = [...truncated].sort();
}

/**
 * Replaces the large parts of `event`, in place and in STEPS order, until its JSONL line is at
 * most `budget` bytes; records each replaced part in `truncated` (and `event.truncated`).
 * Returns the size reached, which is over budget only if every step was taken (the caller then
 * tightens the string caps).
 *
 * The event is encoded in full at most once; each step then encodes only the part it replaces
 * (its sha256 needs that anyway) and the size is tracked from what the steps saved, so a huge event
 * costs about two encodes however many steps it takes. The size is encoded again, exactly, once
 * the tracked size says it fits: by then the event is small.
 */
export function fitEvent(event: AuditEvent, budget: number, truncated: Set<string>): number {
  // Arguments or a result that alone cannot fit go without encoding the whole event first: while
  // such a part is there the event is over budget, so every step up to its own is taken anyway.
  const input = event.input as { request?: { arguments?: unknown } } | null;
  const mustGo = jsonLowerBound(event.result, budget) > budget ? 2 : jsonLowerBound(input?.request?.arguments, budget) > budget ? 1 : 0;
  for (let i = 0; i < mustGo; i++) (STEPS[i] as Step)(event, Number.POSITIVE_INFINITY, budget, truncated);
  setTruncated(event, truncated);
  let size = jsonLineBytes(event);
  for (const step of STEPS.slice(mustGo)) {
    if (size <= budget) break;
    const saved = step(event, size, budget, truncated);
    if (saved === null) continue;
    setTruncated(event, truncated);
    size = size - saved + TRUNCATED_ENTRY_BOUND;
    if (size <= budget) size = jsonLineBytes(event);
  }
  return size;
}
