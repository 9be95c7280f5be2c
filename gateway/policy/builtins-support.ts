// Shared helpers of the host builtins (builtins*.ts).

/**
 * BuiltinArgumentError marks a call OPA would reject (bad operand, out of range). The registry
 * turns it into an undefined result, as topdown does outside strict-builtin-errors mode.
 */
export class BuiltinArgumentError extends Error {
  override readonly name = "BuiltinArgumentError";
}

const INT64_MIN = -9_223_372_036_854_775_808n;
const INT64_MAX = 9_223_372_036_854_775_807n;

export function int64Range(v: bigint): bigint {
  if (v < INT64_MIN || v > INT64_MAX) throw new BuiltinArgumentError("time outside of valid range");
  return v;
}

/**
 * exactInteger hands an integer back to wasm as JSON text: the SDK passes an ArrayBuffer through
 * unparsed, so nanosecond timestamps above 2^53 keep every digit (a JS number would not).
 */
export function exactInteger(v: bigint): ArrayBuffer {
  const bytes = new TextEncoder().encode(v.toString());
  return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
}

export function requireString(v: unknown): string {
  if (typeof v !== "string") throw new BuiltinArgumentError("operand must be a string");
  return v;
}

export function isPlainArray(v: unknown): v is unknown[] {
  return Array.isArray(v);
}

/** A string, or an array/set of strings (sets arrive as arrays). */
export function stringOrStrings(v: unknown): string[] {
  if (typeof v === "string") return [v];
  if (Array.isArray(v) && v.every((e) => typeof e === "string")) return v as string[];
  throw new BuiltinArgumentError("operand must be a string, set or array of strings");
}
