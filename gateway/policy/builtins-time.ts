// time.* host builtins, written to give what OPA's topdown gives (v1/topdown/time.go) for the same
// arguments. Nanoseconds are BigInt throughout and go back into wasm as exact JSON text (see
// builtins.ts: exactInteger); they arrive as JS numbers, exact up to 2^53 (whole seconds until 2116).
import { BuiltinArgumentError, exactInteger, int64Range, isPlainArray, requireString } from "./builtins-support.js";

const NS_PER_S = 1_000_000_000n;
const NS_PER_MS = 1_000_000n;
const WEEKDAYS = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"] as const;

// RFC 3339 as Go's time.Parse(time.RFC3339, s) accepts it: fraction of any length (truncated to ns).
const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:(Z)|([+-])(\d{2}):(\d{2}))$/;

/** parseRfc3339Ns returns epoch nanoseconds, or throws for text Go's RFC 3339 layout refuses. */
export function parseRfc3339Ns(text: string): bigint {
  const m = RFC3339.exec(text);
  if (m === null) throw new BuiltinArgumentError(`cannot parse ${JSON.stringify(text)} as RFC 3339`);
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  if (month < 1 || month > 12 || day < 1 || day > daysIn(year, month)) throw new BuiltinArgumentError("day out of range");
  if (hour > 23 || minute > 59 || second > 59) throw new BuiltinArgumentError("time out of range");
  let offsetS = 0;
  if (m[8] === undefined) {
    const oh = Number(m[10]);
    const om = Number(m[11]);
    if (oh > 23 || om > 59) throw new BuiltinArgumentError("time zone offset out of range");
    offsetS = (oh * 3600 + om * 60) * (m[9] === "-" ? -1 : 1);
  }
  const fraction = BigInt(((m[7] ?? "") + "000000000").slice(0, 9));
  const seconds = BigInt(epochDays(year, month, day)) * 86_400n + BigInt(hour * 3600 + minute * 60 + second - offsetS);
  return int64Range(seconds * NS_PER_S + fraction);
}

/** The instant an argument names: a number of ns, or [ns, tz] (tz "", "UTC", "Local" or IANA). */
interface ZonedInstant {
  ns: bigint;
  tz: string;
}

function zonedInstant(arg: unknown): ZonedInstant {
  if (typeof arg === "number") return { ns: nsOperand(arg), tz: "UTC" };
  if (isPlainArray(arg) && arg.length > 0) {
    const tz = arg.length > 1 ? requireString(arg[1]) : "UTC";
    return { ns: nsOperand(arg[0]), tz: tz === "" ? "UTC" : tz };
  }
  throw new BuiltinArgumentError("either number (ns) or [number (ns), string (tz)]");
}

function nsOperand(v: unknown): bigint {
  if (typeof v !== "number" || !Number.isInteger(v)) throw new BuiltinArgumentError("timestamp too big");
  return int64Range(BigInt(v));
}

interface WallClock {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
  weekday: number;
  offsetS: number;
}

const formatters = new Map<string, Intl.DateTimeFormat>();

/** The wall clock at ns in tz, from Intl's tz database (the one Node ships). */
function wallClock(ns: bigint, tz: string): WallClock {
  const seconds = floorDiv(ns, NS_PER_S);
  const offsetS = tz === "UTC" ? 0 : zoneOffsetS(Number(seconds), tz);
  const local = new Date((Number(seconds) + offsetS) * 1000);
  return {
    year: local.getUTCFullYear(),
    month: local.getUTCMonth() + 1,
    day: local.getUTCDate(),
    hour: local.getUTCHours(),
    minute: local.getUTCMinutes(),
    second: local.getUTCSeconds(),
    weekday: local.getUTCDay(),
    offsetS,
  };
}

function zoneOffsetS(epochS: number, tz: string): number {
  const zone = tz === "Local" ? Intl.DateTimeFormat().resolvedOptions().timeZone : tz;
  let fmt = formatters.get(zone);
  if (fmt === undefined) {
    // Throws RangeError for an unknown zone: the call is then undefined, as OPA's is.
    fmt = new Intl.DateTimeFormat("en-US", {
      timeZone: zone,
      hourCycle: "h23",
      era: "short",
      year: "numeric",
      month: "numeric",
      day: "numeric",
      hour: "numeric",
      minute: "numeric",
      second: "numeric",
    });
    formatters.set(zone, fmt);
  }
  const parts: Record<string, string> = {};
  for (const p of fmt.formatToParts(new Date(epochS * 1000))) parts[p.type] = p.value;
  const year = parts.era === "BC" ? 1 - Number(parts.year) : Number(parts.year);
  const wall = new Date(0);
  wall.setUTCFullYear(year, Number(parts.month) - 1, Number(parts.day));
  wall.setUTCHours(Number(parts.hour), Number(parts.minute), Number(parts.second), 0);
  return Math.round(wall.getTime() / 1000) - epochS;
}

export function timeClock(arg: unknown): number[] {
  const z = zonedInstant(arg);
  const w = wallClock(z.ns, z.tz);
  return [w.hour, w.minute, w.second];
}

export function timeDate(arg: unknown): number[] {
  const z = zonedInstant(arg);
  const w = wallClock(z.ns, z.tz);
  return [w.year, w.month, w.day];
}

export function timeWeekday(arg: unknown): string {
  const z = zonedInstant(arg);
  return WEEKDAYS[wallClock(z.ns, z.tz).weekday] as string;
}

/** time.add_date: Go's AddDate, so 31 January plus one month is 3 March (2 in leap years). */
export function timeAddDate(arg: unknown, years: unknown, months: unknown, days: unknown): ArrayBuffer {
  const z = zonedInstant(arg);
  const [y, mo, d] = [years, months, days].map(intOperand) as [number, number, number];
  const w = wallClock(z.ns, z.tz);
  const subSecond = z.ns - floorDiv(z.ns, NS_PER_S) * NS_PER_S;
  const shifted = new Date(0);
  shifted.setUTCFullYear(w.year + y, w.month - 1 + mo, w.day + d);
  shifted.setUTCHours(w.hour, w.minute, w.second, 0);
  let wallS = shifted.getTime() / 1000;
  if (!Number.isFinite(wallS)) throw new BuiltinArgumentError("time outside of valid range");
  // Back from wall time to an instant with the zone's offset at the new date.
  const offsetS = z.tz === "UTC" ? 0 : zoneOffsetS(wallS - w.offsetS, z.tz);
  wallS -= offsetS;
  return exactInteger(int64Range(BigInt(wallS) * NS_PER_S + subSecond));
}

function intOperand(v: unknown): number {
  if (typeof v !== "number" || !Number.isInteger(v)) throw new BuiltinArgumentError("operand must be an integer");
  return v;
}

// Go's time.ParseDuration units, plus OPA's extended d, w and y (24 h, 168 h, 8760 h).
const DURATION_UNITS: Record<string, bigint> = {
  ns: 1n,
  us: 1000n,
  "µs": 1000n,
  "μs": 1000n,
  ms: NS_PER_MS,
  s: NS_PER_S,
  m: 60n * NS_PER_S,
  h: 3600n * NS_PER_S,
  d: 24n * 3600n * NS_PER_S,
  w: 7n * 24n * 3600n * NS_PER_S,
  y: 365n * 24n * 3600n * NS_PER_S,
};
const DURATION_SEGMENT = /^(\d*)(?:\.(\d*))?(ns|us|µs|μs|ms|s|m|h|d|w|y)/;

/** time.parse_duration_ns: "1h30m", "1.5s", "-2d", "0"; Go's rules (a unit per number, int64 range). */
export function timeParseDurationNs(arg: unknown): ArrayBuffer {
  let s = requireString(arg);
  const negative = s.startsWith("-");
  if (s.startsWith("-") || s.startsWith("+")) s = s.slice(1);
  if (s === "0") return exactInteger(0n);
  if (s === "") throw new BuiltinArgumentError("invalid duration");
  let total = 0n;
  while (s !== "") {
    const m = DURATION_SEGMENT.exec(s);
    if (m === null || (m[1] === "" && (m[2] ?? "") === "")) throw new BuiltinArgumentError("invalid duration");
    const unit = DURATION_UNITS[m[3] as string] as bigint;
    const whole = BigInt(m[1] === "" ? "0" : (m[1] as string));
    const frac = m[2] ?? "";
    // Go scales the fraction with float64 and truncates; exact decimal arithmetic agrees for units ≥ 1 ns.
    const fracNs = frac === "" ? 0n : (BigInt(frac) * unit) / 10n ** BigInt(frac.length);
    total += whole * unit + fracNs;
    if (total > 9_223_372_036_854_775_807n) throw new BuiltinArgumentError("invalid duration");
    s = s.slice(m[0].length);
  }
  return exactInteger(negative ? -total : total);
}

export function timeParseRfc3339Ns(arg: unknown): ArrayBuffer {
  return exactInteger(parseRfc3339Ns(requireString(arg)));
}

/** Days since 1970-01-01 of a proleptic Gregorian date (any year, no two-digit-year surprise). */
function epochDays(year: number, month: number, day: number): number {
  const d = new Date(0);
  d.setUTCFullYear(year, month - 1, day);
  return Math.round(d.getTime() / 86_400_000);
}

function daysIn(year: number, month: number): number {
  return new Date(Date.UTC(2000, month, 0)).getUTCDate() - (month === 2 && !isLeap(year) ? 1 : 0);
}

function isLeap(y: number): boolean {
  return (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;
}

function floorDiv(a: bigint, b: bigint): bigint {
  const q = a / b;
  return a % b !== 0n && a < 0n !== b < 0n ? q - 1n : q;
}
