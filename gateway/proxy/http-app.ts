import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import express, { type Request, type Response, type Router } from "express";
import { createLogger, type Logger } from "../shared/log.js";
import { Refusal } from "./errors.js";
import type { McpEndpoint } from "./pipeline.js";
import { FEDERATED_ROOT } from "./federation.js";

export interface HttpAppOptions {
  /** Endpoint ids served: upstream names (`/mcp/NAME`), and with federation `*` (`/mcp`) and `v/NAME` (`/mcp/v/NAME`). */
  servers: readonly string[];
  /** RFC 9728 metadata for `/mcp/NAME`, or for the gateway as a whole when server is null. */
  resourceMetadata: (server: string | null) => object;
  /**
   * Slow-client limits (edge.headersTimeoutMs / edge.requestTimeoutMs): a client that has not sent
   * all headers, or the whole request, in time gets Node's 408 and the connection is closed.
   */
  timeouts?: { headersTimeoutMs: number; requestTimeoutMs: number };
  /**
   * edge.allowedOrigins: the pages whose CORS preflight is answered and whose responses carry
   * Access-Control-Allow-Origin. The endpoint refuses any other Origin on every method.
   */
  allowedOrigins?: readonly string[];
  /** Replaces `allowedOrigins` when set: the endpoint's own origin policy (origin-policy.ts). */
  originAllowed?: (origin: string) => boolean;
  /** Where a failure the pipeline did not answer is reported (it never should: a bug). */
  log?: Logger;
  /** Routers of other parts mounted beside the MCP endpoint (the operator console). */
  routers?: readonly Router[];
  /** GET /metrics: the Prometheus exposition; absent, /metrics is 404. */
  metrics?: () => Promise<{ contentType: string; body: string }>;
  /** GET /readyz: each check by name; absent, /readyz is ready while the process serves. */
  readiness?: () => Promise<{ ready: boolean; checks: Record<string, unknown> }>;
}

/** `/mcp/NAME`, `/mcp` (federated root) and `/mcp/v/NAME` (virtual server); the id as endpointPath inverts it. */
const MCP_PATH = /^\/mcp(?:\/(v\/)?([A-Za-z0-9_-]{1,63}))?\/?(?:\?.*)?$/;

/**
 * The HTTP front: `/mcp/NAME` goes straight to the endpoint, everything else (metadata, health)
 * through Express. The MCP path skips Express's router and request decoration because every tool
 * call passes through it (measured: see README "Performance"). No body parser and no compression
 * run on /mcp: the endpoint reads the body itself with its own limit, and SSE must not be buffered.
 */
export function createHttpServer(endpoint: McpEndpoint, opts: HttpAppOptions): Server {
  const app = express();
  app.disable("x-powered-by");
  app.set("etag", false);
  const known = new Set(opts.servers);

  app.get("/.well-known/oauth-protected-resource", (_req: Request, res: Response) => {
    res.json(opts.resourceMetadata(null));
  });
  app.get("/.well-known/oauth-protected-resource/mcp/:server", (req: Request, res: Response) => {
    const server = String(req.params.server);
    if (!known.has(server)) return void res.status(404).json({ error: "not_found" });
    res.json(opts.resourceMetadata(server));
  });
  // The federated endpoints' own metadata (RFC 9728: the resource's path after the well-known prefix).
  app.get("/.well-known/oauth-protected-resource/mcp", (_req: Request, res: Response) => {
    if (!known.has(FEDERATED_ROOT)) return void res.status(404).json({ error: "not_found" });
    res.json(opts.resourceMetadata(FEDERATED_ROOT));
  });
  app.get("/.well-known/oauth-protected-resource/mcp/v/:name", (req: Request, res: Response) => {
    const id = `v/${String(req.params.name)}`;
    if (!known.has(id)) return void res.status(404).json({ error: "not_found" });
    res.json(opts.resourceMetadata(id));
  });
  app.get("/healthz", (_req: Request, res: Response) => {
    res.json({ status: "ok" });
  });
  app.get("/metrics", (_req: Request, res: Response) => {
    if (!opts.metrics) return void res.status(404).json({ error: "not_found" });
    opts.metrics().then(
      (m) => void res.status(200).setHeader("content-type", m.contentType).end(m.body),
      (err: unknown) => void res.status(500).type("text/plain").send(`metrics unavailable: ${String(err)}\n`),
    );
  });
  app.get("/readyz", (_req: Request, res: Response) => {
    const check = opts.readiness ?? (async () => ({ ready: true, checks: {} }));
    check().then(
      (r) => void res.status(r.ready ? 200 : 503).json({ status: r.ready ? "ready" : "not_ready", checks: r.checks }),
      (err: unknown) => void res.status(503).json({ status: "not_ready", checks: { readiness: { ok: false, reason: String(err) } } }),
    );
  });
  for (const r of opts.routers ?? []) app.use(r);
  app.use((_req: Request, res: Response) => {
    res.status(404).json({ error: "not_found" });
  });

  const allowed = new Set(opts.allowedOrigins ?? []);
  const originAllowed = opts.originAllowed ?? ((o: string) => allowed.has(o));
  const mcp = (server: string, req: IncomingMessage, res: ServerResponse): void => {
    const origin = req.headers.origin;
    const corsOk = origin !== undefined && originAllowed(origin);
    if (corsOk) {
      // CORS for browser-based MCP clients on an allowed origin (the endpoint refuses any other).
      res.setHeader("access-control-allow-origin", origin);
      res.setHeader("vary", "Origin");
      res.setHeader("access-control-expose-headers", "Mcp-Session-Id, WWW-Authenticate, MCP-Protocol-Version");
    }
    if (req.method === "OPTIONS") return preflight(req, res, corsOk);
    if (!known.has(server)) return void endpoint.reject(server, req, res, new Refusal("unknown_server", server.slice(0, 64)));
    let handled: Promise<void>;
    switch (req.method) {
      case "POST":
        handled = endpoint.post(server, req, res);
        break;
      case "GET":
        handled = endpoint.get(server, req, res);
        break;
      case "DELETE":
        handled = endpoint.delete(server, req, res);
        break;
      default:
        return void endpoint.reject(server, req, res, new Refusal("method_not_allowed", undefined, undefined, undefined, { allow: "GET, POST, DELETE" }));
    }
    handled.catch((err: unknown) => {
      // The pipeline answers every request itself; reaching here is a bug, never a silent pass.
      (opts.log ?? createLogger())("error", "unhandled endpoint failure", { error: String(err) });
      if (!res.headersSent) res.writeHead(500).end();
      else res.end();
    });
  };

  const t = opts.timeouts;
  const serverOptions = t
    ? {
        headersTimeout: Math.min(t.headersTimeoutMs, t.requestTimeoutMs),
        requestTimeout: t.requestTimeoutMs,
        // Node checks these timeouts on this interval (default 30 s, which would blur them).
        connectionsCheckingInterval: Math.max(100, Math.min(1000, Math.floor(Math.min(t.headersTimeoutMs, t.requestTimeoutMs) / 4))),
      }
    : {};
  return createServer(serverOptions, (req, res) => {
    const match = MCP_PATH.exec(req.url ?? "");
    if (match) return mcp(match[2] === undefined ? FEDERATED_ROOT : match[1] ? `v/${match[2]}` : match[2], req, res);
    app(req, res);
  });
}

/** A CORS preflight: answered for allowed origins, refused (403) for any other. */
function preflight(req: IncomingMessage, res: ServerResponse, originAllowed: boolean): void {
  if (!originAllowed) return void res.writeHead(403, { "content-length": 0 }).end();
  res.writeHead(204, {
    "access-control-allow-methods": "GET, POST, DELETE",
    "access-control-allow-headers": "Authorization, Content-Type, Accept, Mcp-Session-Id, MCP-Protocol-Version, Last-Event-ID",
    "access-control-max-age": "600",
  });
  res.end();
}
