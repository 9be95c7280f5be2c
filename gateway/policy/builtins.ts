// Host builtins: the non-native Rego builtins the gateway implements in TypeScript and hands to
// the wasm policy as opa-wasm custom builtins (reference §2.6–2.7). They are synchronous, get their
// arguments as JSON values, and return undefined (the call is undefined, the rule does not fire)
// where OPA's topdown would report a builtin error, as topdown does outside strict mode. Each is
// checked against `opa eval` by test/integration/host-builtins.test.ts.
//
// bundles/capabilities.json admits exactly the wasm-native builtins plus HOST_BUILTIN_NAMES, so a
// policy that calls anything else fails `opa build`, not a request.
import { BuiltinArgumentError, exactInteger } from "./builtins-support.js";
import {
  anyPrefixMatch,
  anySuffixMatch,
  cidrIsValid,
  cryptoMd5,
  cryptoSha1,
  cryptoSha256,
  hexDecode,
  hexEncode,
  hmacEqual,
  hmacMd5,
  hmacSha1,
  hmacSha256,
  hmacSha512,
  regexReplace,
  stringsCount,
  unitsParseBytes,
  urlqueryDecode,
  urlqueryEncode,
} from "./builtins-text.js";
import {
  parseRfc3339Ns,
  timeAddDate,
  timeClock,
  timeDate,
  timeParseDurationNs,
  timeParseRfc3339Ns,
  timeWeekday,
} from "./builtins-time.js";

export type HostBuiltin = (...args: unknown[]) => unknown;

/**
 * DecisionTime is what time.now_ns() answers: the request's time (input.request.time), one
 * value per decision, so a decision can be replayed and every rule in it sees the same instant.
 * The engine calls begin() before each evaluation; the parse happens only if a rule asks.
 */
export class DecisionTime {
  private requestTime: unknown;
  private cached: bigint | undefined;

  /** @param fallbackMs wall clock used when the input carries no parsable time (ms since epoch). */
  constructor(private readonly fallbackMs: () => number) {}

  begin(input: unknown): void {
    const request = input !== null && typeof input === "object" ? (input as { request?: unknown }).request : undefined;
    this.requestTime =
      request !== null && typeof request === "object" ? (request as { time?: unknown }).time : undefined;
    this.cached = undefined;
  }

  nowNs(): bigint {
    if (this.cached === undefined) {
      let ns: bigint | undefined;
      if (typeof this.requestTime === "string") {
        try {
          ns = parseRfc3339Ns(this.requestTime);
        } catch {
          ns = undefined;
        }
      }
      this.cached = ns ?? BigInt(Math.trunc(this.fallbackMs())) * 1_000_000n;
    }
    return this.cached;
  }
}

const PURE_BUILTINS: Readonly<Record<string, HostBuiltin>> = {
  "time.parse_rfc3339_ns": timeParseRfc3339Ns,
  "time.parse_duration_ns": timeParseDurationNs,
  "time.clock": timeClock,
  "time.date": timeDate,
  "time.weekday": timeWeekday,
  "time.add_date": timeAddDate as HostBuiltin,
  "strings.any_prefix_match": anyPrefixMatch as HostBuiltin,
  "strings.any_suffix_match": anySuffixMatch as HostBuiltin,
  "strings.count": stringsCount as HostBuiltin,
  "regex.replace": regexReplace as HostBuiltin,
  "crypto.md5": cryptoMd5,
  "crypto.sha1": cryptoSha1,
  "crypto.sha256": cryptoSha256,
  "crypto.hmac.md5": hmacMd5 as HostBuiltin,
  "crypto.hmac.sha1": hmacSha1 as HostBuiltin,
  "crypto.hmac.sha256": hmacSha256 as HostBuiltin,
  "crypto.hmac.sha512": hmacSha512 as HostBuiltin,
  "crypto.hmac.equal": hmacEqual as HostBuiltin,
  "hex.encode": hexEncode,
  "hex.decode": hexDecode,
  "urlquery.encode": urlqueryEncode,
  "urlquery.decode": urlqueryDecode,
  "units.parse_bytes": unitsParseBytes,
  "net.cidr_is_valid": cidrIsValid,
};

/** Every builtin the gateway implements on the host (bundles/capabilities.json lists them). */
export const HOST_BUILTIN_NAMES: readonly string[] = Object.freeze(["time.now_ns", ...Object.keys(PURE_BUILTINS)].sort());

/**
 * createHostBuiltins returns the customBuiltins map for loadPolicy/loadPolicySync. A builtin that
 * throws yields undefined: an exception would abort the whole evaluation (a deny with
 * policy_eval_error) where OPA would only leave that one expression undefined.
 */
export function createHostBuiltins(time: DecisionTime): Record<string, HostBuiltin> {
  const out: Record<string, HostBuiltin> = { "time.now_ns": () => exactInteger(time.nowNs()) };
  for (const [name, fn] of Object.entries(PURE_BUILTINS)) out[name] = undefinedOnError(fn);
  return out;
}

function undefinedOnError(fn: HostBuiltin): HostBuiltin {
  return (...args: unknown[]) => {
    try {
      return fn(...args);
    } catch (err) {
      if (err instanceof BuiltinArgumentError || err instanceof RangeError || err instanceof TypeError) return undefined;
      throw err;
    }
  };
}
