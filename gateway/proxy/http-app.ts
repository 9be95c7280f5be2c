import express, { type Express, type Request, type Response } from "express";
import { EdgeError, EDGE_ERRORS } from "./errors.js";
import { rpcError } from "./jsonrpc.js";
import type { McpEndpoint } from "./mcp-endpoint.js";

export interface HttpAppOptions {
  servers: readonly string[];
  /** RFC 9728 metadata for `/mcp/NAME`, or for the gateway as a whole when server is null. */
  resourceMetadata: (server: string | null) => object;
}

/**
 * The thin Express adapter: routing and nothing else. No body parser and no compression run on
 * /mcp: the endpoint reads the body itself with its own limit, and SSE must not be buffered.
 */
export function createHttpApp(endpoint: McpEndpoint, opts: HttpAppOptions): Express {
  const app = express();
  app.disable("x-powered-by");
  app.set("etag", false);
  const known = new Set(opts.servers);

  app.get("/.well-known/oauth-protected-resource", (_req, res) => {
    res.json(opts.resourceMetadata(null));
  });
  app.get("/.well-known/oauth-protected-resource/mcp/:server", (req, res) => {
    const server = req.params.server;
    if (!known.has(server)) return void res.status(404).json({ error: "not_found" });
    res.json(opts.resourceMetadata(server));
  });
  app.get("/healthz", (_req, res) => {
    res.json({ status: "ok" });
  });

  const route = (handler: (server: string, req: Request, res: Response) => Promise<void>) => (req: Request, res: Response) => {
    const server = String(req.params.server);
    if (!known.has(server)) return void refuse(res, new EdgeError("unknown_server", server));
    handler(server, req, res).catch((err: unknown) => {
      if (!res.headersSent) refuse(res, new EdgeError("invalid_request", String(err)));
      else res.end();
    });
  };
  app.post("/mcp/:server", route((s, req, res) => endpoint.post(s, req, res)));
  app.get("/mcp/:server", route((s, req, res) => endpoint.get(s, req, res)));
  app.delete("/mcp/:server", route((s, req, res) => endpoint.delete(s, req, res)));
  app.all("/mcp/:server", (_req, res) => {
    res.setHeader("allow", "GET, POST, DELETE");
    refuse(res, new EdgeError("method_not_allowed"));
  });
  app.use((_req: Request, res: Response) => {
    res.status(404).json({ error: "not_found" });
  });
  return app;
}

function refuse(res: Response, err: EdgeError): void {
  res.status(err.status).json(rpcError(null, EDGE_ERRORS[err.code].rpc, err.message));
}
