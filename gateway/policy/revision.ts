/**
 * Rollback detection for hot reload (docs/policy-authoring.md, "Rollback"). A validly signed
 * bundle can still be an old one: whoever can write the bundle file or answer the bundle URL can
 * replay any bundle the key ever signed, bringing back rules that were fixed since. A candidate is
 * a rollback when
 *   1. its manifest revision equals one this process served before the current one (the last
 *      REVISION_HISTORY_LIMIT distinct revisions are remembered), or
 *   2. both revisions spell ordered values of the same kind and the candidate's is lower:
 *      integers ("41" < "42"), RFC 3339 timestamps (compared as instants, any offset, fractions
 *      to any precision) or dotted numbers with an optional "v" ("v1.9.2" < "1.10.0").
 * The current revision itself is never a rollback: reloading the same revision behaves as before.
 */

export const REVISION_HISTORY_LIMIT = 100;

/** The kinds of revision that have an order; any other spelling (a git hash, "") has none. */
export type RevisionKind = "integer" | "timestamp" | "dotted";

type OrderedRevision =
  | { kind: "integer"; value: bigint }
  | { kind: "timestamp"; seconds: number; fraction: string }
  | { kind: "dotted"; parts: bigint[] };

const INTEGER = /^[0-9]+$/;
const DOTTED = /^v?([0-9]+(?:\.[0-9]+)+)$/;
const RFC3339 = /^([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]+))?(?:([Zz])|([+-])([0-9]{2}):([0-9]{2}))$/;

/** The ordered value a revision spells, or undefined when it spells none. */
function orderedRevision(revision: string): OrderedRevision | undefined {
  if (INTEGER.test(revision)) return { kind: "integer", value: BigInt(revision) };
  const dotted = DOTTED.exec(revision);
  if (dotted !== null) return { kind: "dotted", parts: dotted[1]!.split(".").map((p) => BigInt(p)) };
  const ts = RFC3339.exec(revision);
  if (ts !== null) {
    const seconds = instantSeconds(ts);
    // The fraction is compared as digits, right-padded, so nanoseconds (and beyond) keep their order.
    if (seconds !== undefined) return { kind: "timestamp", seconds, fraction: (ts[7] ?? "").replace(/0+$/, "") };
  }
  return undefined;
}

/** Whole seconds since the epoch of an RFC 3339 match, or undefined for an impossible date or offset. */
function instantSeconds(m: RegExpExecArray): number | undefined {
  const [year, month, day, hour, minute, second] = [1, 2, 3, 4, 5, 6].map((i) => Number(m[i]));
  const offsetMinutes = m[8] !== undefined ? 0 : (m[9] === "-" ? -1 : 1) * (Number(m[10]) * 60 + Number(m[11]));
  if (month! < 1 || month! > 12 || day! < 1 || day! > daysInMonth(year!, month!)) return undefined;
  if (hour! > 23 || minute! > 59 || second! > 60) return undefined; // 60: a leap second
  if (m[8] === undefined && (Number(m[10]) > 23 || Number(m[11]) > 59)) return undefined;
  // setUTCFullYear, not Date.UTC: Date.UTC reads years 0–99 as 1900–1999.
  const date = new Date(0);
  date.setUTCFullYear(year!, month! - 1, day!);
  date.setUTCHours(hour!, minute!, second!, 0);
  return date.getTime() / 1000 - offsetMinutes * 60;
}

function daysInMonth(year: number, month: number): number {
  const date = new Date(0);
  date.setUTCFullYear(year, month, 0); // day 0 of the next month: the last day of this one
  return date.getUTCDate();
}

/**
 * compareRevisions orders two revisions of the same kind: negative when `a` comes before `b`, 0
 * when they spell the same value, positive after; undefined when either has no order or the kinds
 * differ (an integer and a timestamp are not compared).
 */
export function compareRevisions(a: string, b: string): { kind: RevisionKind; order: number } | undefined {
  const x = orderedRevision(a);
  const y = orderedRevision(b);
  if (x === undefined || y === undefined || x.kind !== y.kind) return undefined;
  if (x.kind === "integer" && y.kind === "integer") return { kind: x.kind, order: compareBig(x.value, y.value) };
  if (x.kind === "dotted" && y.kind === "dotted") {
    for (let i = 0; i < Math.max(x.parts.length, y.parts.length); i++) {
      // A missing part is 0: "1.2" and "1.2.0" are the same version.
      const order = compareBig(x.parts[i] ?? 0n, y.parts[i] ?? 0n);
      if (order !== 0) return { kind: x.kind, order };
    }
    return { kind: x.kind, order: 0 };
  }
  if (x.kind === "timestamp" && y.kind === "timestamp") {
    if (x.seconds !== y.seconds) return { kind: x.kind, order: x.seconds < y.seconds ? -1 : 1 };
    const width = Math.max(x.fraction.length, y.fraction.length);
    const fx = x.fraction.padEnd(width, "0");
    const fy = y.fraction.padEnd(width, "0");
    return { kind: x.kind, order: fx === fy ? 0 : fx < fy ? -1 : 1 };
  }
  return undefined;
}

function compareBig(a: bigint, b: bigint): number {
  return a === b ? 0 : a < b ? -1 : 1;
}

/** The revisions served before the current one, most recent last, at most `limit` distinct ones. */
export class RevisionHistory {
  private readonly served = new Set<string>();

  constructor(private readonly limit: number = REVISION_HISTORY_LIMIT) {
    if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`revision history limit must be a positive integer, got ${limit}`);
  }

  /** Records a revision that stopped serving; a revision seen again moves to the recent end. */
  record(revision: string): void {
    this.served.delete(revision);
    this.served.add(revision);
    // A Set iterates in insertion order: the first entry is the oldest.
    if (this.served.size > this.limit) this.served.delete(this.served.values().next().value as string);
  }

  has(revision: string): boolean {
    return this.served.has(revision);
  }

  get size(): number {
    return this.served.size;
  }
}

/**
 * Why `candidate` would roll the policy back from `current`, or undefined when it would not. The
 * current revision is never a rollback (reloading it is what re-signing or a repeated publish does).
 */
export function rollbackReason(candidate: string, current: string, history: RevisionHistory): string | undefined {
  if (candidate === current) return undefined;
  if (history.has(candidate)) return `revision ${JSON.stringify(candidate)} was served before the active ${JSON.stringify(current)}`;
  const compared = compareRevisions(candidate, current);
  if (compared !== undefined && compared.order < 0) {
    return `revision ${JSON.stringify(candidate)} is lower than the active ${JSON.stringify(current)} (${KIND_NAMES[compared.kind]})`;
  }
  return undefined;
}

const KIND_NAMES: Record<RevisionKind, string> = { integer: "integers", timestamp: "RFC 3339 timestamps", dotted: "dotted version numbers" };
