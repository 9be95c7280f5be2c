import { BlockList, isIP } from "node:net";
import { normalizeIp, parseCidr } from "../shared/ip.js";

export { normalizeIp, parseCidr };

/**
 * Which address is the real client when the gateway sits behind load balancers or reverse proxies
 * (`edge.trustedProxies`). `X-Forwarded-For` is attacker-writable: any client can send
 * `X-Forwarded-For: 10.0.0.1`. Each proxy appends the address it received the connection from, so
 * only the entries appended by proxies we trust are facts. The resolver therefore starts at the
 * TCP peer and walks the header right to left while the hop it is looking at is trusted; the first
 * untrusted address is the client. With no trusted proxies configured the header is ignored.
 */
export type ClientIpResolver = (remoteAddress: string | undefined, forwardedFor: string | string[] | undefined) => string | null;

/** Parses the CIDR list (validated by the config schema) into a resolver. */
export function clientIpResolver(trustedProxies: readonly string[]): ClientIpResolver {
  if (trustedProxies.length === 0) return (remote) => normalizeIp(remote) ?? null;
  const trusted = new BlockList();
  for (const cidr of trustedProxies) {
    const parsed = parseCidr(cidr);
    if (parsed === null) throw new Error(`edge.trustedProxies: "${cidr}" is not an IP address or CIDR block`);
    trusted.addSubnet(parsed.address, parsed.prefix, parsed.family);
  }
  const isTrusted = (ip: string): boolean => trusted.check(ip, isIP(ip) === 6 ? "ipv6" : "ipv4");

  return (remote, forwardedFor) => {
    let current = normalizeIp(remote);
    if (current === undefined) return null;
    if (!isTrusted(current) || forwardedFor === undefined) return current;
    // Several X-Forwarded-For headers are one list, in order (RFC 9110 §5.3).
    const hops = (Array.isArray(forwardedFor) ? forwardedFor.join(",") : forwardedFor).split(",");
    for (let i = hops.length - 1; i >= 0; i--) {
      const hop = normalizeIp(hops[i]!.trim());
      // A hop a trusted proxy wrote but we cannot read: stop at the last address we can vouch for.
      if (hop === undefined) return current;
      current = hop;
      if (!isTrusted(hop)) return hop;
    }
    // Every hop is a trusted proxy: the leftmost is as close to the client as we can know.
    return current;
  };
}
