/**
 * A minimal Streamable HTTP MCP upstream (plain JSON answers) whose `echo` tool can be made slow:
 * `echo({text: "sleep:500"})` answers after 500 ms. Counts the calls it started and finished, so
 * tests can tell shed calls (never reached it) from forwarded ones.
 */
import { randomUUID } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";

export interface SlowUpstream {
  url: string;
  /** tools/call requests received. */
  readonly started: number;
  /** tools/call requests answered. */
  readonly finished: number;
  /** Highest number of tools/call requests in flight at once (since the last resetPeak). */
  readonly peak: number;
  /** Waits until no call is in flight, then restarts the peak count. */
  resetPeak(): Promise<void>;
  close(): Promise<void>;
}

const TOOLS = [
  { name: "echo", description: "Echoes the text back; 'sleep:N' waits N ms first.", inputSchema: { type: "object", properties: { text: { type: "string" } } } },
  { name: "add", description: "Adds two numbers.", inputSchema: { type: "object", properties: { a: { type: "number" }, b: { type: "number" } } } },
  { name: "delete_record", description: "Deletes a record.", inputSchema: { type: "object", properties: { id: { type: "string" } } }, annotations: { destructiveHint: true } },
];

export async function startSlowUpstream(): Promise<SlowUpstream> {
  let started = 0;
  let finished = 0;
  let inFlight = 0;
  let peak = 0;
  const server: Server = createServer((req, res) => {
    if (req.method === "DELETE") return void res.writeHead(200).end();
    if (req.method !== "POST") return void res.writeHead(405).end();
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const msg = JSON.parse(Buffer.concat(chunks).toString("utf8")) as { id?: number | string; method: string; params?: Record<string, unknown> };
      if (msg.id === undefined) return void res.writeHead(202).end();
      const answer = (result: unknown, headers: Record<string, string> = {}) => {
        const body = JSON.stringify({ jsonrpc: "2.0", id: msg.id, result });
        res.writeHead(200, { "content-type": "application/json", ...headers }).end(body);
      };
      switch (msg.method) {
        case "initialize":
          return answer(
            { protocolVersion: "2025-11-25", capabilities: { tools: {} }, serverInfo: { name: "slow-upstream", version: "1" } },
            { "mcp-session-id": randomUUID() },
          );
        case "tools/list":
          return answer({ tools: TOOLS });
        case "tools/call": {
          started++;
          inFlight++;
          peak = Math.max(peak, inFlight);
          const args = (msg.params?.arguments ?? {}) as { text?: string };
          const text = args.text ?? JSON.stringify(args);
          const ms = text.startsWith("sleep:") ? Number(text.slice(6)) : 0;
          setTimeout(() => {
            inFlight--;
            finished++;
            answer({ content: [{ type: "text", text }] });
          }, ms);
          return;
        }
        default:
          return answer({});
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/mcp`,
    get started() {
      return started;
    },
    get finished() {
      return finished;
    },
    get peak() {
      return peak;
    },
    async resetPeak() {
      while (inFlight > 0) await new Promise((r) => setTimeout(r, 20));
      peak = 0;
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
