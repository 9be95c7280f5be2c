import { isIP } from "node:net";

/**
 * Which `Host` and `Origin` values the endpoint serves (DNS rebinding, MCP transport security).
 * A page on evil.example can make a browser send requests to a gateway on 127.0.0.1 under its own
 * name (`Host: evil.example`) and with no `Origin` it would have to pass; so the Host is checked
 * against the names the gateway is reached by: `edge.allowedHosts`, the host of `publicUrl`, and
 * the address it listens on (plus localhost, 127.0.0.1 and [::1] when that is a loopback address).
 * The gateway's own origins are allowed by default beside `edge.allowedOrigins`.
 */
export interface OriginPolicy {
  hostAllowed(host: string | undefined): boolean;
  originAllowed(origin: string): boolean;
}

export interface OriginPolicyOptions {
  allowedOrigins: readonly string[];
  /** `edge.allowedHosts`: extra `host[:port]` names (e.g. what a load balancer forwards). */
  allowedHosts?: readonly string[];
  publicUrl?: string | undefined;
  listen?: { host: string; port: number };
}

const LOOPBACK_NAMES = ["localhost", "127.0.0.1", "[::1]"];

export function originPolicy(opts: OriginPolicyOptions): OriginPolicy {
  const own: string[] = [];
  if (opts.publicUrl) own.push(new URL(opts.publicUrl).origin);
  let validateHost = opts.allowedHosts !== undefined || opts.publicUrl !== undefined;
  if (opts.listen) {
    const { host, port } = opts.listen;
    const name = isIP(host) === 6 ? `[${host}]` : host;
    const wildcard = host === "0.0.0.0" || host === "::";
    if (!wildcard) {
      own.push(`http://${name}:${port}`);
      validateHost = true;
    }
    if (isLoopback(host)) for (const n of LOOPBACK_NAMES) own.push(`http://${n}:${port}`);
  }
  const hosts = new Set([...(opts.allowedHosts ?? []), ...own.map((o) => new URL(o).host)].map((h) => h.toLowerCase()));
  const origins = new Set([...opts.allowedOrigins, ...own]);
  return {
    // Bound to every interface with no public URL and no allow-list: the gateway cannot know its names.
    hostAllowed: (host) => !validateHost || (host !== undefined && hosts.has(host.toLowerCase())),
    originAllowed: (origin) => origins.has(origin),
  };
}

function isLoopback(host: string): boolean {
  return host === "localhost" || host === "::1" || host.startsWith("127.");
}
