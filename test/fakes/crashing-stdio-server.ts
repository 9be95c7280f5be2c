/**
 * A minimal stdio MCP server for tests: answers initialize and tools/list, and exits (as a
 * crashing upstream would) on any tools/call. Newline-delimited JSON-RPC, as MCP's stdio transport.
 */
import { createInterface } from "node:readline";

const send = (m: unknown) => process.stdout.write(`${JSON.stringify(m)}\n`);

createInterface({ input: process.stdin }).on("line", (line) => {
  const m = JSON.parse(line) as { id?: number | string; method?: string; params?: { protocolVersion?: string } };
  if (m.id === undefined) return;
  if (m.method === "initialize") {
    send({ jsonrpc: "2.0", id: m.id, result: { protocolVersion: m.params?.protocolVersion ?? "2025-11-25", capabilities: { tools: {} }, serverInfo: { name: "crashing", version: "1" } } });
  } else if (m.method === "tools/list") {
    send({ jsonrpc: "2.0", id: m.id, result: { tools: [{ name: "echo", inputSchema: { type: "object" } }] } });
  } else if (m.method === "tools/call") {
    process.exit(3);
  } else {
    send({ jsonrpc: "2.0", id: m.id, result: {} });
  }
});
