/**
 * 2025-11-25 resumable streams through the gateway (SEP-1699): an upstream that primes its SSE
 * response with an event id, ends the stream before answering, and replays the answer when the
 * client reconnects with GET + Last-Event-ID. The official v1 client does exactly that; the
 * gateway must pass the priming id and retry on, end the client's stream without failing it, and
 * forward Last-Event-ID on the reconnect.
 */
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { InMemoryEventStore } from "@modelcontextprotocol/sdk/examples/shared/inMemoryEventStore.js";
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import { startGatewayFor } from "../support/stack.js";

interface PollingUpstream {
  url: string;
  seen: { method: string | undefined; headers: IncomingHttpHeaders }[];
  close(): Promise<void>;
}

/** A v1 server with an event store whose `poll` tool closes its SSE stream before it answers. */
async function startPollingUpstream(): Promise<PollingUpstream> {
  const transports = new Map<string, StreamableHTTPServerTransport>();
  const seen: PollingUpstream["seen"] = [];
  const http: Server = createServer(async (req, res) => {
    seen.push({ method: req.method, headers: req.headers });
    const sid = req.headers["mcp-session-id"];
    let transport = typeof sid === "string" ? transports.get(sid) : undefined;
    if (!transport) {
      const t = new StreamableHTTPServerTransport({ sessionIdGenerator: () => randomUUID(), eventStore: new InMemoryEventStore(), retryInterval: 100, onsessioninitialized: (id) => void transports.set(id, t) });
      const server = new McpServer({ name: "polling-upstream", version: "1.0.0" });
      server.registerTool("poll", { description: "answers after ending its stream" }, async (extra) => {
        extra.closeSSEStream?.();
        await new Promise((r) => setTimeout(r, 300));
        return { content: [{ type: "text", text: "answered after the reconnect" }] };
      });
      await server.connect(t);
      transport = t;
    }
    await transport.handleRequest(req, res);
  });
  await new Promise<void>((r) => http.listen(0, "127.0.0.1", r));
  return {
    url: `http://127.0.0.1:${(http.address() as AddressInfo).port}/mcp`,
    seen,
    close: () => new Promise((r) => http.close(() => r())),
  };
}

describe("resumable SSE streams through the gateway (2025-11-25)", function () {
  this.timeout(30_000);

  it("a call whose upstream ends the stream after priming completes on the client's resumed GET", async () => {
    const upstream = await startPollingUpstream();
    const gw = await startGatewayFor({ polling: { url: upstream.url } });
    const client = new Client({ name: "resuming-client", version: "1.0.0" });
    try {
      await client.connect(new StreamableHTTPClientTransport(new URL(gw.url("polling")), { requestInit: { headers: { Authorization: `Bearer ${gw.token("alice", ["admin"])}` } }, reconnectionOptions: { initialReconnectionDelay: 50, maxReconnectionDelay: 200, reconnectionDelayGrowFactor: 1, maxRetries: 5 } }));
      const result = await client.callTool({ name: "poll", arguments: {} });
      assert.deepEqual(result.content, [{ type: "text", text: "answered after the reconnect" }]);
      // The reconnect reached the upstream with the id the upstream primed the stream with.
      const resumed = upstream.seen.filter((r) => r.method === "GET" && r.headers["last-event-id"] !== undefined);
      assert.ok(resumed.length >= 1, "the upstream saw a GET with Last-Event-ID");
      const call = gw.auditEvents().find((e) => e.mcp.method === "tools/call");
      assert.equal(call?.outcome, "allowed");
      assert.equal(call?.error ?? null, null, "a paused stream is not an upstream failure");
    } finally {
      await client.close().catch(() => undefined);
      await gw.close();
      await upstream.close();
    }
  });
});
