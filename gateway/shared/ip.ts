import { isIP } from "node:net";

/** `a.b.c.d`, `a.b.c.d/n`, `x::y`, `x::y/n` → subnet; null when malformed. */
export function parseCidr(cidr: string): { address: string; prefix: number; family: "ipv4" | "ipv6" } | null {
  const [address = "", prefixText, extra] = cidr.trim().split("/");
  if (extra !== undefined) return null;
  const version = isIP(address);
  if (version === 0) return null;
  const max = version === 4 ? 32 : 128;
  const prefix = prefixText === undefined ? max : /^\d{1,3}$/.test(prefixText) ? Number(prefixText) : NaN;
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > max) return null;
  return { address, prefix, family: version === 4 ? "ipv4" : "ipv6" };
}

/**
 * A plain IP address in canonical form, or undefined. IPv4-mapped IPv6 (`::ffff:10.0.0.1`, what a
 * dual-stack socket reports) becomes the IPv4 address, so one CIDR list covers both; a
 * `[v6]:port` or `v4:port` form some proxies write is reduced to the address.
 */
export function normalizeIp(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  let v = value.trim();
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(v);
  if (bracketed) v = bracketed[1]!;
  else if (/^\d{1,3}(?:\.\d{1,3}){3}:\d+$/.test(v)) v = v.slice(0, v.lastIndexOf(":"));
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(v);
  if (mapped) v = mapped[1]!;
  const version = isIP(v);
  if (version === 0) return undefined;
  return version === 6 ? canonicalIpv6(v) : v;
}

/**
 * RFC 5952 text form (WHATWG URL serialises IPv6 hosts that way), so `0::1` and `::1` are one
 * client in policy and audit; a mapped IPv4 written in hex (`::ffff:a00:1`) becomes `10.0.0.1`.
 */
function canonicalIpv6(v: string): string {
  let c: string;
  try {
    c = new URL(`http://[${v}]/`).hostname.slice(1, -1);
  } catch {
    return v.toLowerCase(); // a zone id (fe80::1%eth0) is valid for isIP but not in a URL
  }
  const hexMapped = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(c);
  if (!hexMapped) return c;
  const hi = parseInt(hexMapped[1]!, 16);
  const lo = parseInt(hexMapped[2]!, 16);
  return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
}
