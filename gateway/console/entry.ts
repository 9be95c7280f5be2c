import type { AuditEvent } from "../audit/index.js";
import type { ConsoleEntry, ConsoleFilter } from "./types.js";

/** Caps that keep one entry a few KiB whatever the event held (an event may be 512 KiB). */
export const ARGUMENTS_CAP = 1024;
const REASONS_MAX = 20;
const TEXT_CAP = 500;

/** The console's view of one audit event (types.ts ConsoleEntry says what is kept and why). */
export function toEntry(event: AuditEvent, seq: number): ConsoleEntry {
  const result = record(event.result);
  const request = record(record(event.input)?.["request"]);
  const list = event.list;
  return {
    seq,
    decision_id: event.decision_id,
    timestamp: event.timestamp,
    outcome: event.outcome,
    agent: event.agent.sub,
    client_id: event.agent.client_id,
    server: event.mcp.server,
    method: event.mcp.method,
    tool: event.mcp.tool,
    target: event.mcp.resource ?? event.mcp.prompt ?? null,
    reasons: reasonsOf(result?.["reasons"]),
    message: typeof result?.["message"] === "string" ? cap(result["message"], TEXT_CAP) : null,
    error: event.error ? { code: cap(event.error.code, TEXT_CAP), message: cap(event.error.message, TEXT_CAP) } : null,
    arguments: request && "arguments" in request ? argumentsJson(request["arguments"]) : null,
    bundle: Object.values(event.bundles)[0]?.revision ?? null,
    latency_ms: event.latency_ms.total,
    // A truncated list (an object marker instead of names) counts as unknown: 0.
    list: list ? { visible: Array.isArray(list.visible) ? list.visible.length : 0, hidden: Array.isArray(list.hidden) ? list.hidden.length : 0 } : null,
    tool_error: event.tool_result?.is_error === true,
  };
}

/** Epoch milliseconds of an entry's timestamp (Date.parse reads the nanosecond form to the ms). */
export function entryTime(entry: ConsoleEntry): number {
  return Date.parse(entry.timestamp);
}

export function matches(entry: ConsoleEntry, filter: ConsoleFilter): boolean {
  if (filter.agent !== undefined && entry.agent !== filter.agent) return false;
  if (filter.server !== undefined && entry.server !== filter.server) return false;
  if (filter.tool !== undefined && entry.tool !== filter.tool) return false;
  if (filter.outcome !== undefined && entry.outcome !== filter.outcome) return false;
  // An unreadable timestamp never passes a `since` (NaN compares false).
  if (filter.since !== undefined && !(entryTime(entry) >= filter.since)) return false;
  return true;
}

function record(value: unknown): Record<string, unknown> | null {
  return typeof value === "object" && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : null;
}

function reasonsOf(value: unknown): string[] {
  if (!Array.isArray(value)) return [];
  return value
    .filter((r): r is string => typeof r === "string")
    .slice(0, REASONS_MAX)
    .map((r) => cap(r, TEXT_CAP));
}

function argumentsJson(value: unknown): string | null {
  if (value === undefined || value === null) return null;
  let json: string;
  try {
    json = JSON.stringify(value);
  } catch {
    // Audited events are plain JSON (AuditRecord.finish guarantees it); this is only a guard.
    return null;
  }
  return cap(json, ARGUMENTS_CAP);
}

function cap(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}
