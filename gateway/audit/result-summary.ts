import { createHash } from "node:crypto";
import type { ToolResultSummary } from "./types.js";

/**
 * Summarizes an upstream tool result for the audit event: size and sha256 of the whole
 * serialization (so an investigator can prove what the agent received) and a capped copy of it
 * (so a multi-megabyte result does not blow up the event). Serializes exactly once.
 *
 * Never throws: the audit path must not fail because a result is odd. A result that cannot be
 * serialized is summarized as such.
 */
export function summarizeToolResult(result: unknown, capBytes: number): ToolResultSummary {
  const serialized = serialize(result);
  const full = Buffer.from(serialized, "utf8");
  const cap = Math.max(0, Math.floor(capBytes));
  const truncated = full.length > cap;
  return {
    is_error: isErrorResult(result),
    bytes: full.length,
    sha256: createHash("sha256").update(full).digest("hex"),
    content: truncated ? full.subarray(0, utf8Boundary(full, cap)).toString("utf8") : serialized,
    truncated,
  };
}

function serialize(result: unknown): string {
  try {
    // JSON.stringify(undefined) is undefined: an upstream that answered nothing is audited as null.
    return JSON.stringify(result) ?? "null";
  } catch (err) {
    return JSON.stringify({ unserializable: err instanceof Error ? err.message : String(err) });
  }
}

function isErrorResult(result: unknown): boolean {
  return typeof result === "object" && result !== null && (result as { isError?: unknown }).isError === true;
}

/**
 * The largest cut ≤ `cap` that does not split a UTF-8 sequence: if the first excluded byte is a
 * continuation byte (10xxxxxx), the character it belongs to straddles the cut, so step back to
 * that character's lead byte and exclude it whole.
 */
export function utf8Boundary(buf: Buffer, cap: number): number {
  if (cap >= buf.length) return buf.length;
  let end = cap;
  while (end > 0 && ((buf[end] as number) & 0xc0) === 0x80) end--;
  return end;
}
