/**
 * A minimal scripted stdio MCP server for tests (newline-delimited JSON-RPC, as MCP's stdio
 * transport): answers initialize; answers tools/list after 50 ms (so other requests overtake it);
 * answers ping at once; echoes the id it received on tools/call "whoami"; exits on any other
 * tools/call, as a crashing upstream would.
 */
import { createInterface } from "node:readline";

const send = (m: unknown) => process.stdout.write(`${JSON.stringify(m)}\n`);

createInterface({ input: process.stdin }).on("line", (line) => {
  const m = JSON.parse(line) as { id?: number | string; method?: string; params?: { protocolVersion?: string; name?: string } };
  if (m.id === undefined) return;
  if (m.method === "initialize") {
    send({ jsonrpc: "2.0", id: m.id, result: { protocolVersion: m.params?.protocolVersion ?? "2025-11-25", capabilities: { tools: {} }, serverInfo: { name: "scripted", version: "1" } } });
  } else if (m.method === "tools/list") {
    const tools = [{ name: "whoami", inputSchema: { type: "object" } }, { name: "crash", inputSchema: { type: "object" } }];
    setTimeout(() => send({ jsonrpc: "2.0", id: m.id, result: { tools } }), 50);
  } else if (m.method === "tools/call" && m.params?.name === "whoami") {
    send({ jsonrpc: "2.0", id: m.id, result: { content: [{ type: "text", text: `upstream saw id ${JSON.stringify(m.id)}` }] } });
  } else if (m.method === "tools/call") {
    process.exit(3);
  } else {
    send({ jsonrpc: "2.0", id: m.id, result: {} });
  }
});
