import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import express, { type Request, type Response } from "express";
import { EdgeError, EDGE_ERRORS } from "./errors.js";
import { rpcError } from "./jsonrpc.js";
import type { McpEndpoint } from "./mcp-endpoint.js";

export interface HttpAppOptions {
  servers: readonly string[];
  /** RFC 9728 metadata for `/mcp/NAME`, or for the gateway as a whole when server is null. */
  resourceMetadata: (server: string | null) => object;
  /**
   * Slow-client limits (edge.headersTimeoutMs / edge.requestTimeoutMs): a client that has not sent
   * all headers, or the whole request, in time gets Node's 408 and the connection is closed.
   */
  timeouts?: { headersTimeoutMs: number; requestTimeoutMs: number };
  /**
   * edge.allowedOrigins, checked here for GET and DELETE too (the endpoint checks POST): a browser
   * page must not open a session's stream or end a session either. Empty: any Origin is refused.
   */
  allowedOrigins?: readonly string[];
}

const MCP_PATH = /^\/mcp\/([A-Za-z0-9_-]{1,63})\/?(?:\?.*)?$/;

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
  app.get("/healthz", (_req: Request, res: Response) => {
    res.json({ status: "ok" });
  });
  app.use((_req: Request, res: Response) => {
    res.status(404).json({ error: "not_found" });
  });

  const mcp = (server: string, req: IncomingMessage, res: ServerResponse): void => {
    if (!known.has(server)) return refuse(res, new EdgeError("unknown_server", server));
    const origin = req.headers.origin;
    if (opts.allowedOrigins && origin !== undefined && !opts.allowedOrigins.includes(origin)) return refuse(res, new EdgeError("origin_forbidden"));
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
        res.setHeader("allow", "GET, POST, DELETE");
        return refuse(res, new EdgeError("method_not_allowed"));
    }
    handled.catch((err: unknown) => {
      if (!res.headersSent) refuse(res, new EdgeError("invalid_request", String(err)));
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
    if (match) return mcp(match[1]!, req, res);
    app(req, res);
  });
}

function refuse(res: ServerResponse, err: EdgeError): void {
  const body = JSON.stringify(rpcError(null, EDGE_ERRORS[err.code].rpc, err.message));
  res.writeHead(err.status, { "content-type": "application/json", "content-length": Buffer.byteLength(body) }).end(body);
}
