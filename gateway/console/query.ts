import type { AuditOutcome } from "../audit/index.js";
import { OUTCOMES, type ConsoleFilter } from "./types.js";

export const DEFAULT_LIMIT = 500;
export const MAX_LIMIT = 2000;

/** A query parameter the console refuses, with the text of its 400 answer. */
export class ConsoleQueryError extends Error {
  readonly code = "invalid_request";
  constructor(message: string) {
    super(message);
    this.name = "ConsoleQueryError";
  }
}

const FILTER_KEYS = ["agent", "server", "tool", "outcome", "since"] as const;
const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:Z|[+-]\d{2}:\d{2})$/;

/**
 * The filter (and `limit`) of `events` and `stream`, from Express's parsed query. Unknown keys and
 * repeated keys are refused rather than ignored, so a misspelt filter never silently shows
 * everything. An empty value means "no filter" (the page sends its empty fields as they are).
 */
export function parseQuery(query: Record<string, unknown>, allowLimit: boolean): { filter: ConsoleFilter; limit: number } {
  const known = new Set<string>([...FILTER_KEYS, ...(allowLimit ? ["limit"] : [])]);
  const unknown = Object.keys(query).filter((k) => !known.has(k)).sort();
  if (unknown.length > 0) {
    throw new ConsoleQueryError(`unknown query parameter ${unknown.map((k) => JSON.stringify(k.slice(0, 40))).join(", ")}; expected ${[...known].join(", ")}`);
  }
  const filter: ConsoleFilter = {};
  for (const key of FILTER_KEYS) {
    const value = single(query, key);
    if (value === undefined || value === "") continue;
    switch (key) {
      case "outcome":
        if (!(OUTCOMES as readonly string[]).includes(value)) throw new ConsoleQueryError(`outcome: expected one of ${OUTCOMES.join(", ")}`);
        filter.outcome = value as AuditOutcome;
        break;
      case "since":
        filter.since = parseSince(value);
        break;
      default:
        filter[key] = value;
    }
  }
  let limit = DEFAULT_LIMIT;
  const rawLimit = allowLimit ? single(query, "limit") : undefined;
  if (rawLimit !== undefined && rawLimit !== "") {
    limit = Number(rawLimit);
    if (!/^\d+$/.test(rawLimit) || limit < 1 || limit > MAX_LIMIT) throw new ConsoleQueryError(`limit: expected an integer from 1 to ${MAX_LIMIT}`);
  }
  return { filter, limit };
}

function single(query: Record<string, unknown>, key: string): string | undefined {
  const value = query[key];
  if (value === undefined) return undefined;
  if (typeof value !== "string") throw new ConsoleQueryError(`${key}: give it once, as a plain value`);
  return value;
}

/** An RFC 3339 timestamp, or epoch milliseconds. */
function parseSince(value: string): number {
  if (/^\d{1,15}$/.test(value)) return Number(value);
  const ms = RFC3339.test(value) ? Date.parse(value) : Number.NaN;
  if (Number.isNaN(ms)) throw new ConsoleQueryError("since: expected an RFC 3339 timestamp (2026-11-24T10:00:00Z) or epoch milliseconds");
  return ms;
}
