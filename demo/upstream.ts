#!/usr/bin/env node
/**
 * The demo upstream MCP server that `make run` and the tests put behind the gateway. A real
 * SDK server over Streamable HTTP with a small in-memory "file system", so the default policy's
 * argument constraints have something to protect.
 */
import { randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type Server } from "node:http";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import { isInitializeRequest } from "@modelcontextprotocol/sdk/types.js";
import { z } from "zod";

const FILES: Record<string, string> = {
  "/data/q3.csv": "region,revenue\nnorth,120\nsouth,95\n",
  "/data/readme.txt": "Quarterly figures live here.\n",
  "/etc/passwd": "root:x:0:0:root:/root:/bin/bash\n",
};

export interface DemoUpstreamOptions {
  host?: string;
  port?: number;
  /** Called with the headers of every request, so tests can prove what the gateway forwards. */
  onRequest?: (headers: IncomingMessage["headers"]) => void;
  /** When set, a request it refuses gets HTTP 401, as an upstream checking the gateway's credentials would. */
  authorize?: (headers: IncomingMessage["headers"]) => boolean;
}

export function createDemoServer(): McpServer {
  const server = new McpServer({ name: "portcullis-demo", version: "1.0.0" });
  server.registerTool(
    "echo",
    { description: "Echoes the text back.", inputSchema: { text: z.string() }, annotations: { readOnlyHint: true } },
    async ({ text }) => ({ content: [{ type: "text", text }] }),
  );
  server.registerTool(
    "add",
    { description: "Adds two numbers.", inputSchema: { a: z.number(), b: z.number() }, annotations: { readOnlyHint: true } },
    async ({ a, b }) => ({ content: [{ type: "text", text: String(a + b) }] }),
  );
  server.registerTool(
    "read_file",
    { description: "Reads a file from the demo file system.", inputSchema: { path: z.string() }, annotations: { readOnlyHint: true } },
    async ({ path }) => {
      const body = FILES[path];
      return body === undefined
        ? { content: [{ type: "text", text: `no such file: ${path}` }], isError: true }
        : { content: [{ type: "text", text: body }] };
    },
  );
  server.registerTool(
    "delete_record",
    { description: "Deletes a record by id.", inputSchema: { id: z.string() }, annotations: { destructiveHint: true } },
    async ({ id }) => ({ content: [{ type: "text", text: `deleted ${id}` }] }),
  );
  server.registerResource("readme", "demo://readme", { description: "About the demo server", mimeType: "text/plain" }, async (uri) => ({
    contents: [{ uri: uri.href, mimeType: "text/plain", text: "This server sits behind portcullis." }],
  }));
  server.registerPrompt("summarize", { description: "Summarize a text", argsSchema: { text: z.string() } }, ({ text }) => ({
    messages: [{ role: "user", content: { type: "text", text: `Summarize: ${text}` } }],
  }));
  return server;
}

/** Starts the demo server with one SDK transport per session, as the SDK's examples do. */
export async function startDemoUpstream(opts: DemoUpstreamOptions = {}): Promise<{ url: string; server: Server; close(): Promise<void> }> {
  const transports = new Map<string, StreamableHTTPServerTransport>();
  const http = createServer(async (req, res) => {
    opts.onRequest?.(req.headers);
    if (opts.authorize && !opts.authorize(req.headers)) {
      return void res.writeHead(401, { "www-authenticate": 'Bearer error="invalid_token"' }).end();
    }
    if (req.url !== "/mcp") return void res.writeHead(404).end();
    try {
      const sid = req.headers["mcp-session-id"];
      let transport = typeof sid === "string" ? transports.get(sid) : undefined;
      let body: unknown;
      if (req.method === "POST") {
        const chunks: Buffer[] = [];
        for await (const c of req) chunks.push(c as Buffer);
        body = JSON.parse(Buffer.concat(chunks).toString("utf8"));
      }
      if (!transport) {
        if (req.method !== "POST" || sid !== undefined || !isInitializeRequest(body)) {
          res.writeHead(sid === undefined ? 400 : 404, { "content-type": "application/json" });
          return void res.end(JSON.stringify({ jsonrpc: "2.0", error: { code: -32001, message: "Session not found" }, id: null }));
        }
        const created = new StreamableHTTPServerTransport({
          sessionIdGenerator: () => randomUUID(),
          enableJsonResponse: true,
          onsessioninitialized: (id) => void transports.set(id, created),
        });
        created.onclose = () => {
          if (created.sessionId) transports.delete(created.sessionId);
        };
        await createDemoServer().connect(created);
        transport = created;
      }
      await transport.handleRequest(req, res, body);
    } catch (err) {
      if (!res.headersSent) res.writeHead(400, { "content-type": "application/json" });
      res.end(JSON.stringify({ jsonrpc: "2.0", error: { code: -32700, message: String(err) }, id: null }));
    }
  });
  await new Promise<void>((resolve) => http.listen(opts.port ?? 0, opts.host ?? "127.0.0.1", resolve));
  const address = http.address();
  const port = typeof address === "object" && address ? address.port : 0;
  return {
    url: `http://${opts.host ?? "127.0.0.1"}:${port}/mcp`,
    server: http,
    async close() {
      await Promise.all([...transports.values()].map((t) => t.close()));
      http.closeAllConnections();
      await new Promise<void>((resolve) => http.close(() => resolve()));
    },
  };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const { values } = parseArgs({ options: { port: { type: "string", default: "7001" }, host: { type: "string", default: "127.0.0.1" } } });
  const started = await startDemoUpstream({ host: values.host, port: Number(values.port) });
  process.stderr.write(`demo upstream listening on ${started.url}\n`);
  const stop = () => void started.close().then(() => process.exit(0));
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
}
