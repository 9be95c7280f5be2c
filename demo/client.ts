#!/usr/bin/env node
/**
 * A tour of the gateway with the official MCP SDK client: list what this agent may see, then make
 * one allowed call, one call denied by an argument constraint and one by role.
 * Usage: node dist/demo/client.js --url http://127.0.0.1:8080/mcp/demo --token "$TOKEN"
 */
import { parseArgs } from "node:util";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

const { values } = parseArgs({ options: { url: { type: "string" }, token: { type: "string" } } });
if (!values.url || !values.token) {
  process.stderr.write("usage: node dist/demo/client.js --url URL --token TOKEN\n");
  process.exit(2);
}
const transport = new StreamableHTTPClientTransport(new URL(values.url), {
  requestInit: { headers: { Authorization: `Bearer ${values.token}` } },
});
const client = new Client({ name: "portcullis-demo-client", version: "1.0.0" });
try {
  await client.connect(transport);
} catch (err) {
  process.stderr.write(`cannot connect: ${(err as Error).message}\n`);
  process.exit(1);
}
const { tools } = await client.listTools();
process.stdout.write(`tools this agent may see: ${tools.map((t) => t.name).join(", ") || "(none)"}\n\n`);

const calls: Array<[string, Record<string, unknown>]> = [
  ["echo", { text: "hello through the gate" }],
  ["read_file", { path: "/data/q3.csv" }],
  ["read_file", { path: "/etc/passwd" }],
  ["delete_record", { id: "42" }],
];
for (const [name, args] of calls) {
  try {
    const result = await client.callTool({ name, arguments: args });
    const text = (result.content as Array<{ type: string; text?: string }>).map((c) => c.text ?? `[${c.type}]`).join(" ").trim();
    process.stdout.write(`${result.isError ? "DENIED " : "ok     "} ${name}(${JSON.stringify(args)}) → ${text}\n`);
  } catch (err) {
    process.stdout.write(`error   ${name}(${JSON.stringify(args)}) → ${(err as Error).message}\n`);
  }
}
await transport.terminateSession().catch(() => undefined);
await client.close();
