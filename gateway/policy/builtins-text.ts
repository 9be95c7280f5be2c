// String, regex, encoding, hashing and unit host builtins, written to give what OPA's topdown gives
// (v1/topdown/{strings,regex,encoding,crypto,parse_bytes,net}.go) for the same arguments.
import { createHash, createHmac, timingSafeEqual } from "node:crypto";
import { isIP } from "node:net";
import { BuiltinArgumentError, exactInteger, requireString, stringOrStrings } from "./builtins-support.js";

// ------------------------------------------------------------------ strings

export function anyPrefixMatch(search: unknown, base: unknown): boolean {
  const s = stringOrStrings(search);
  const b = stringOrStrings(base);
  return s.some((x) => b.some((p) => x.startsWith(p)));
}

export function anySuffixMatch(search: unknown, base: unknown): boolean {
  const s = stringOrStrings(search);
  const b = stringOrStrings(base);
  return s.some((x) => b.some((p) => x.endsWith(p)));
}

/** strings.count: non-overlapping occurrences; "" occurs once per code point, plus one (Go). */
export function stringsCount(search: unknown, sub: unknown): number {
  const s = requireString(search);
  const t = requireString(sub);
  if (t === "") return [...s].length + 1;
  return s.split(t).length - 1;
}

// ------------------------------------------------------------------ regex.replace

const compiled = new Map<string, { re: RegExp; names: Set<string> }>();

/**
 * regex.replace with Go's semantics: ReplaceAllString's walk (an empty match right after a match
 * is not replaced) and Expand's template ($1, ${1}, $name, ${name}, $$; "$1x" names group "1x").
 * RE2 syntax is translated where JS differs: (?P<n>…), \A, \z, a leading (?flags), [[:class:]].
 * A pattern JS cannot compile is an error, so the call is undefined.
 */
export function regexReplace(base: unknown, pattern: unknown, value: unknown): string {
  const src = requireString(base);
  const template = requireString(value);
  const { re, names } = goRegexp(requireString(pattern));
  let out = "";
  let lastMatchEnd = 0;
  let searchPos = 0;
  while (searchPos <= src.length) {
    re.lastIndex = searchPos;
    const m = re.exec(src);
    if (m === null) break;
    const start = m.index;
    const end = start + m[0].length;
    out += src.slice(lastMatchEnd, start);
    if (end > lastMatchEnd || start === 0) out += expand(template, m, names);
    lastMatchEnd = end;
    const width = searchPos < src.length ? String.fromCodePoint(src.codePointAt(searchPos) as number).length : 1;
    if (searchPos + width > end) searchPos += width;
    else if (searchPos + 1 > end) searchPos++;
    else searchPos = end;
  }
  return out + src.slice(lastMatchEnd);
}

function expand(template: string, m: RegExpExecArray, names: Set<string>): string {
  let out = "";
  for (let i = 0; i < template.length; i++) {
    const c = template[i];
    if (c !== "$") {
      out += c;
      continue;
    }
    if (template[i + 1] === "$") {
      out += "$";
      i++;
      continue;
    }
    let name: string | undefined;
    let next = i + 1;
    if (template[next] === "{") {
      const close = template.indexOf("}", next);
      const inner = close < 0 ? "" : template.slice(next + 1, close);
      if (/^\w+$/.test(inner)) {
        name = inner;
        next = close + 1;
      }
    } else {
      const w = /^\w+/.exec(template.slice(next));
      if (w !== null) {
        name = w[0];
        next += w[0].length;
      }
    }
    if (name === undefined) {
      out += "$"; // malformed reference: Go copies the "$" and goes on
      continue;
    }
    if (/^\d+$/.test(name)) {
      const idx = Number(name);
      out += idx < m.length ? (m[idx] ?? "") : "";
    } else if (names.has(name)) {
      out += m.groups?.[name] ?? "";
    }
    i = next - 1;
  }
  return out;
}

const POSIX: Record<string, string> = {
  alnum: "0-9A-Za-z",
  alpha: "A-Za-z",
  ascii: "\\x00-\\x7F",
  blank: "\\t ",
  cntrl: "\\x00-\\x1F\\x7F",
  digit: "0-9",
  graph: "!-~",
  lower: "a-z",
  print: " -~",
  punct: "!-\\/:-@\\[-`{-~",
  space: "\\t\\n\\v\\f\\r ",
  upper: "A-Z",
  word: "0-9A-Za-z_",
  xdigit: "0-9A-Fa-f",
};

function goRegexp(pattern: string): { re: RegExp; names: Set<string> } {
  const hit = compiled.get(pattern);
  if (hit !== undefined) return hit;
  let body = pattern;
  let flags = "gu";
  const lead = /^\(\?([imsU]+)\)/.exec(body);
  if (lead !== null) {
    if ((lead[1] as string).includes("U")) throw new BuiltinArgumentError("(?U) is not supported");
    for (const f of new Set(lead[1])) flags += f;
    body = body.slice(lead[0].length);
  }
  body = body
    .replace(/\(\?P</g, "(?<")
    .replace(/\[:(\w+):\]/g, (all, n: string) => POSIX[n] ?? all)
    .replace(/\\A/g, "(?<![\\s\\S])")
    .replace(/\\z/g, "(?![\\s\\S])");
  let re: RegExp;
  try {
    re = new RegExp(body, flags);
  } catch (err) {
    throw new BuiltinArgumentError(`invalid regular expression: ${(err as Error).message}`);
  }
  const names = new Set([...body.matchAll(/\(\?<([A-Za-z_]\w*)>/g)].map((x) => x[1] as string));
  const entry = { re, names };
  if (compiled.size > 1000) compiled.clear();
  compiled.set(pattern, entry);
  return entry;
}

// ------------------------------------------------------------------ hashing

const hash = (alg: string) => (x: unknown) => createHash(alg).update(requireString(x), "utf8").digest("hex");
const hmac = (alg: string) => (x: unknown, key: unknown) =>
  createHmac(alg, requireString(key)).update(requireString(x), "utf8").digest("hex");

export const cryptoMd5 = hash("md5");
export const cryptoSha1 = hash("sha1");
export const cryptoSha256 = hash("sha256");
export const hmacMd5 = hmac("md5");
export const hmacSha1 = hmac("sha1");
export const hmacSha256 = hmac("sha256");
export const hmacSha512 = hmac("sha512");

/** crypto.hmac.equal: constant-time comparison of two MACs (equal length checked first). */
export function hmacEqual(a: unknown, b: unknown): boolean {
  const x = Buffer.from(requireString(a), "utf8");
  const y = Buffer.from(requireString(b), "utf8");
  return x.length === y.length && timingSafeEqual(x, y);
}

// ------------------------------------------------------------------ encodings

export function hexEncode(x: unknown): string {
  return Buffer.from(requireString(x), "utf8").toString("hex");
}

export function hexDecode(x: unknown): string {
  const s = requireString(x);
  if (s.length % 2 !== 0 || !/^[0-9A-Fa-f]*$/.test(s)) throw new BuiltinArgumentError("invalid hex");
  return utf8(Buffer.from(s, "hex"));
}

/** urlquery.encode: Go's url.QueryEscape (space as "+", only A-Z a-z 0-9 - _ . ~ unescaped). */
export function urlqueryEncode(x: unknown): string {
  let out = "";
  for (const byte of Buffer.from(requireString(x), "utf8")) {
    const c = String.fromCharCode(byte);
    if (/[A-Za-z0-9\-_.~]/.test(c)) out += c;
    else if (c === " ") out += "+";
    else out += "%" + byte.toString(16).toUpperCase().padStart(2, "0");
  }
  return out;
}

/** urlquery.decode: Go's url.QueryUnescape ("+" is a space; a bad % escape is an error). */
export function urlqueryDecode(x: unknown): string {
  const s = Buffer.from(requireString(x), "utf8");
  const out: number[] = [];
  for (let i = 0; i < s.length; i++) {
    const b = s[i] as number;
    if (b === 0x25) {
      const hex = s.subarray(i + 1, i + 3).toString("latin1");
      if (!/^[0-9A-Fa-f]{2}$/.test(hex)) throw new BuiltinArgumentError("invalid URL escape");
      out.push(parseInt(hex, 16));
      i += 2;
    } else out.push(b === 0x2b ? 0x20 : b);
  }
  return utf8(Buffer.from(out));
}

function utf8(b: Buffer): string {
  // Invalid UTF-8 cannot be represented in a Rego string faithfully: undefined, not mojibake.
  const s = b.toString("utf8");
  if (!Buffer.from(s, "utf8").equals(b)) throw new BuiltinArgumentError("not valid UTF-8");
  return s;
}

// ------------------------------------------------------------------ units.parse_bytes

const BYTE_UNITS: Record<string, bigint> = { "": 1n };
for (const [i, p] of ["k", "m", "g", "t", "p", "e"].entries()) {
  BYTE_UNITS[p] = BYTE_UNITS[`${p}b`] = 1000n ** BigInt(i + 1);
  BYTE_UNITS[`${p}i`] = BYTE_UNITS[`${p}ib`] = 1024n ** BigInt(i + 1);
}

/** units.parse_bytes: "10KB", "1.5GiB", "1e3"; lower-cased, quotes dropped, no spaces; truncated. */
export function unitsParseBytes(x: unknown): ArrayBuffer {
  const s = requireString(x).toLowerCase().replaceAll('"', "");
  if (s.includes(" ")) throw new BuiltinArgumentError("spaces not allowed in resource strings");
  const split = /^[0-9.eE+-]*/.exec(s)?.[0] ?? "";
  // Go's splitter lets "e" start the unit when no digit or sign follows it ("1eb", "1e").
  let num = split;
  const eAt = num.search(/e(?![0-9+-])/);
  if (eAt >= 0) num = num.slice(0, eAt);
  const unit = s.slice(num.length);
  if (num === "") throw new BuiltinArgumentError("no byte amount provided");
  const factor = BYTE_UNITS[unit];
  if (factor === undefined) throw new BuiltinArgumentError(`byte unit ${unit} not recognized`);
  const m = /^([+-]?)(\d*)(?:\.(\d*))?(?:e([+-]?\d{1,6}))?$/.exec(num);
  if (m === null || (m[2] === "" && (m[3] ?? "") === "")) throw new BuiltinArgumentError("could not parse byte amount to a number");
  const digits = (m[2] ?? "") + (m[3] ?? "");
  const exp = Number(m[4] ?? "0") - (m[3] ?? "").length;
  let v = BigInt(digits === "" ? "0" : digits) * factor;
  v = exp >= 0 ? v * 10n ** BigInt(exp) : v / 10n ** BigInt(-exp); // truncation toward zero, as big.Float.Int
  return exactInteger(m[1] === "-" ? -v : v);
}

// ------------------------------------------------------------------ net.cidr_is_valid

/** net.cidr_is_valid: Go's net.ParseCIDR accepts it (dotted IPv4 without leading zeros, or IPv6). */
export function cidrIsValid(x: unknown): boolean {
  const s = requireString(x);
  const slash = s.indexOf("/");
  if (slash < 0) return false;
  const ip = s.slice(0, slash);
  const prefix = s.slice(slash + 1);
  const family = isIP(ip);
  if (family === 0 || !/^\d+$/.test(prefix)) return false;
  if (family === 4 && ip.split(".").some((o) => o.length > 1 && o.startsWith("0"))) return false;
  return Number(prefix) <= (family === 4 ? 32 : 128);
}
