/**
 * A hostile HTTP upstream on 127.0.0.1 (issue 8, findings 6 and 8): oversized answers are refused
 * without being buffered whole, an answer must carry its request's id, and the gateway's own
 * requests never share an id with the agent's.
 */
import assert from "node:assert/strict";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { HttpUpstreamPool } from "../../../gateway/proxy/upstream-http.js";
import { UpstreamError } from "../../../gateway/proxy/upstream.js";

type Handler = (body: { id: unknown; method: string }, req: IncomingMessage, res: ServerResponse) => void;

describe("HTTP upstream against a hostile server", () => {
  let server: Server;
  let handler: Handler;
  let pool: HttpUpstreamPool;
  const LIMIT = 64 * 1024;

  before(async () => {
    server = createServer((req, res) => {
      let text = "";
      req.on("data", (c: Buffer) => (text += c.toString()));
      req.on("end", () => handler(JSON.parse(text) as { id: unknown; method: string }, req, res));
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    pool = new HttpUpstreamPool(new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp`), {}, LIMIT);
  });
  after(async () => {
    await pool.close();
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  });

  const call = (id: string | number = 1, internal = false) =>
    pool.connect().request({ jsonrpc: "2.0", id, method: "tools/call", params: { name: "x" } }, { timeoutMs: 5000, internal });

  async function refused(p: Promise<unknown>, pattern: RegExp): Promise<void> {
    await assert.rejects(p, (err: unknown) => err instanceof UpstreamError && err.code === "upstream_bad_response" && pattern.test(err.message));
  }

  it("refuses a JSON answer over maxResponseBytes", async () => {
    handler = (body, _req, res) => {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ jsonrpc: "2.0", id: body.id, result: { pad: "x".repeat(LIMIT * 4) } }));
    };
    await refused(call(), /exceeds/);
  });

  it("refuses a JSON answer with another request's id", async () => {
    handler = (_body, _req, res) => {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ jsonrpc: "2.0", id: "someone-else", result: {} }));
    };
    await refused(call(), /another request's id/);
  });

  it("refuses an SSE response with another request's id", async () => {
    handler = (_body, _req, res) => {
      res.writeHead(200, { "content-type": "text/event-stream" });
      res.end(`data: ${JSON.stringify({ jsonrpc: "2.0", id: 999, result: {} })}\n\n`);
    };
    await refused(call(), /another request's id/);
  });

  it("refuses an SSE data line that never ends, once it passes the bound", async () => {
    handler = (_body, _req, res) => {
      res.writeHead(200, { "content-type": "text/event-stream" });
      res.write("data: ");
      const chunk = "z".repeat(16 * 1024);
      let sent = 0;
      const pump = (): void => {
        while (sent < LIMIT * 8 && !res.destroyed) {
          sent += chunk.length;
          if (!res.write(chunk)) return void res.once("drain", pump);
        }
        res.end();
      };
      pump();
    };
    await refused(call(), /SSE event exceeds/);
  });

  it("gives the gateway's own request and an agent request with the same id distinct upstream ids", async () => {
    const seen: unknown[] = [];
    const waiting: Array<() => void> = [];
    handler = (body, _req, res) => {
      seen.push(body.id);
      const answer = () => {
        res.writeHead(200, { "content-type": "application/json" });
        res.end(JSON.stringify({ jsonrpc: "2.0", id: body.id, result: { for: body.id } }));
      };
      waiting.push(answer);
      if (waiting.length === 2) for (const a of waiting.splice(0)) a();
    };
    const conn = pool.connect();
    const own = conn.request({ jsonrpc: "2.0", id: "portcullis:1", method: "tools/list" }, { timeoutMs: 5000, internal: true });
    const agent = conn.request({ jsonrpc: "2.0", id: "portcullis:1", method: "tools/call", params: { name: "slow" } }, { timeoutMs: 5000 });
    const [a, b] = await Promise.all([own, agent]);
    assert.equal(new Set(seen).size, 2, `upstream saw ids ${JSON.stringify(seen)}`);
    assert.equal(b.id, "portcullis:1", "the agent gets its own id back");
    assert.notDeepEqual(a.result, b.result);
  });
});
