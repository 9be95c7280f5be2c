/**
 * A one-hop HTTP forwarder on 127.0.0.1 that adds `Authorization: Bearer TOKEN` to every request:
 * for clients that cannot send the header themselves (the MCP conformance CLI), in front of the
 * gateway. `hop.url + PATH` forwards to `target + PATH`.
 *
 * Transparent on purpose: any method, the request body streamed through as it arrives, the
 * response (JSON or SSE) streamed back chunk by chunk with nothing buffered, status and headers
 * as they are. Only Host and Authorization are set; Origin and every other header pass unchanged,
 * so the gateway's own Host/Origin checks still see what the client sent. Host becomes the
 * target's when it names the hop itself (loopback, the hop's port), which is what a client that
 * was given hop.url sends; any other Host (a DNS-rebinding probe's `evil.example`) is kept as sent,
 * or the hop would launder exactly what the gateway must refuse.
 * Connection and Keep-Alive are per-hop by definition (RFC 9110 §7.6.1) and left to each side.
 */
import { Agent, createServer, request as httpRequest, type IncomingHttpHeaders, type OutgoingHttpHeaders } from "node:http";
import type { AddressInfo } from "node:net";

export interface AuthHop {
  /** Origin of the hop, e.g. http://127.0.0.1:41234 (no trailing slash). */
  url: string;
  close(): Promise<void>;
}

const PER_HOP = new Set(["connection", "keep-alive"]);

function forwardable(headers: IncomingHttpHeaders): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined && !PER_HOP.has(name)) out[name] = value;
  }
  return out;
}

export interface AuthHopOptions {
  /** Default 0: a free port. Known in advance, e.g. to list the hop's origin in the gateway's edge.allowedOrigins. */
  port?: number;
}

export async function startAuthHop(target: string, token: string, opts: AuthHopOptions = {}): Promise<AuthHop> {
  const base = new URL(target);
  if (base.protocol !== "http:") throw new Error(`auth hop forwards to http:// targets only, got ${target}`);
  const prefix = base.pathname.replace(/\/+$/, "");
  const agent = new Agent({ keepAlive: true });

  let hopPort = "";
  const namesTheHop = (host: string | undefined): boolean => {
    if (host === undefined) return true;
    try {
      const url = new URL(`http://${host}`);
      return ["127.0.0.1", "localhost", "[::1]"].includes(url.hostname) && url.port === hopPort;
    } catch {
      return false;
    }
  };

  const server = createServer((req, res) => {
    const headers = forwardable(req.headers);
    if (namesTheHop(req.headers.host)) headers.host = base.host;
    headers.authorization = `Bearer ${token}`;
    const upstream = httpRequest({ host: base.hostname, port: base.port || 80, method: req.method, path: prefix + (req.url ?? "/"), headers, agent }, (up) => {
      res.writeHead(up.statusCode ?? 502, up.statusMessage, forwardable(up.headers));
      // Send the status line now: an SSE response may not write its first event for a while.
      res.flushHeaders();
      up.on("data", (chunk: Buffer) => {
        // write() hands each chunk to the socket at once; pause only when the client is slow.
        if (!res.write(chunk)) {
          up.pause();
          res.once("drain", () => up.resume());
        }
      });
      up.once("end", () => res.end());
      up.once("error", () => res.destroy());
    });
    upstream.setNoDelay(true);
    upstream.once("error", (err) => {
      if (!res.headersSent) {
        res.writeHead(502, { "content-type": "text/plain" });
        res.end(`auth hop: ${err.message}`);
      } else {
        res.destroy();
      }
    });
    // The client went away (e.g. cancelled an SSE stream): tell the target the same way.
    res.once("close", () => {
      if (!res.writableFinished) upstream.destroy();
    });
    req.pipe(upstream);
  });
  server.on("connection", (socket) => socket.setNoDelay(true));

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port ?? 0, "127.0.0.1", () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  hopPort = String(port);
  return {
    url: `http://127.0.0.1:${port}`,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      agent.destroy();
    },
  };
}
