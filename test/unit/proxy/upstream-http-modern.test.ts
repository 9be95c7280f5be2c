/**
 * The HTTP upstream connection speaking 2026-07-28 for a 2025 client (upstream-http.ts): the
 * client's capabilities become the envelope, the standard headers are rebuilt from the body, and
 * input_required rounds become server→client requests the client answers; a hostile upstream's
 * rounds are bounded. Against a scripted HTTP server on 127.0.0.1.
 */
import assert from "node:assert/strict";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { ParkedCalls, PausableCall } from "../../../gateway/proxy/input-rounds.js";
import type { JsonRpcMessage, JsonRpcRequest } from "../../../gateway/proxy/jsonrpc.js";
import { HttpUpstreamPool } from "../../../gateway/proxy/upstream-http.js";
import { UpstreamError } from "../../../gateway/proxy/upstream.js";

type Answer = (request: JsonRpcRequest) => Record<string, unknown>;

async function scriptedUpstream(answer: Answer): Promise<{ url: string; seen: Array<{ headers: IncomingHttpHeaders; body: JsonRpcRequest }>; close(): Promise<void> }> {
  const seen: Array<{ headers: IncomingHttpHeaders; body: JsonRpcRequest }> = [];
  const server: Server = createServer((req, res) => {
    let text = "";
    req.on("data", (c: Buffer) => (text += c.toString()));
    req.on("end", () => {
      const body = JSON.parse(text) as JsonRpcRequest;
      seen.push({ headers: req.headers, body });
      const result = body.method === "server/discover" ? { resultType: "complete", supportedVersions: ["2026-07-28"], capabilities: { tools: {} }, serverInfo: { name: "scripted", version: "1" } } : answer(body);
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ jsonrpc: "2.0", id: body.id, result }));
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp`, seen, close: () => new Promise((r) => server.close(() => r())) };
}

const INIT: JsonRpcRequest = { jsonrpc: "2.0", id: 0, method: "initialize", params: { protocolVersion: "2025-11-25", capabilities: { elicitation: {} }, clientInfo: { name: "legacy-client", version: "7" } } };

describe("HTTP upstream at 2026-07-28 behind a 2025 client", () => {
  it("sends the client's capabilities as the envelope, mirrors the body in headers, and turns input_required rounds (requestState-only included) into server→client requests", async () => {
    const up = await scriptedUpstream((req) => {
      const p = req.params ?? {};
      if (p.requestState === undefined) return { resultType: "input_required", requestState: "s1" };
      if (p.requestState === "s1") return { resultType: "input_required", requestState: "s2", inputRequests: { who: { method: "elicitation/create", params: { message: "who?", requestedSchema: { type: "object" } } } } };
      return { resultType: "complete", content: [{ type: "text", text: `hello ${JSON.stringify((p.inputResponses as { who: { content: unknown } }).who.content)}` }] };
    });
    const pool = new HttpUpstreamPool(new URL(up.url), {}, 1 << 20, "auto");
    const conn = pool.connect("legacy");
    try {
      const init = await conn.initialize(INIT, { timeoutMs: 5000 });
      assert.equal(conn.era, "modern");
      assert.deepEqual(init.result, { protocolVersion: "2025-11-25", capabilities: { tools: {} }, serverInfo: { name: "scripted", version: "1" } });
      const asked: JsonRpcMessage[] = [];
      const answer = await conn.request(
        { jsonrpc: "2.0", id: 5, method: "tools/call", params: { name: "grüße", arguments: {} } },
        {
          timeoutMs: 5000,
          onMessage: (m) => {
            asked.push(m);
            if ("id" in m && "method" in m) void conn.send({ jsonrpc: "2.0", id: m.id, result: { action: "accept", content: { name: "Ada" } } });
          },
        },
      );
      assert.deepEqual(answer.result?.content, [{ type: "text", text: 'hello {"name":"Ada"}' }]);
      assert.equal(asked.length, 1);
      assert.equal((asked[0] as JsonRpcRequest).method, "elicitation/create");
      const calls = up.seen.filter((s) => s.body.method === "tools/call");
      assert.equal(calls.length, 3, "first call, the requestState-only retry, the answered retry");
      for (const c of calls) {
        assert.equal(c.headers["mcp-protocol-version"], "2026-07-28");
        assert.equal(c.headers["mcp-method"], "tools/call");
        assert.equal(c.headers["mcp-name"], `=?base64?${Buffer.from("grüße").toString("base64")}?=`, "a name that is not ASCII goes out base64-encoded");
        assert.equal(c.headers["mcp-session-id"], undefined);
        assert.deepEqual((c.body.params?._meta as Record<string, unknown>)["io.modelcontextprotocol/clientCapabilities"], { elicitation: {} });
      }
      assert.equal(calls[2]!.body.params?.requestState, "s2");
      // 2026 has no ping: the session's liveness is the gateway's to answer.
      assert.deepEqual((await conn.request({ jsonrpc: "2.0", id: 6, method: "ping" }, { timeoutMs: 1000 })).result, {});
      assert.equal(up.seen.filter((s) => s.body.method === "ping").length, 0);
    } finally {
      await pool.close();
      await up.close();
    }
  });

  it("refuses an upstream that asks for more inputs in one round than it may, or asks forever", async () => {
    const flood = Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`k${i}`, { method: "roots/list" }]));
    const up = await scriptedUpstream((req) => (req.params?.name === "flood" ? { resultType: "input_required", inputRequests: flood } : { resultType: "input_required", requestState: "again" }));
    const pool = new HttpUpstreamPool(new URL(up.url), {}, 1 << 20, "2026-07-28");
    const conn = pool.connect("legacy");
    try {
      await conn.initialize(INIT, { timeoutMs: 5000 });
      const ask = (name: string) => conn.request({ jsonrpc: "2.0", id: name, method: "tools/call", params: { name, arguments: {} } }, { timeoutMs: 5000, onMessage: () => undefined });
      await assert.rejects(ask("flood"), (e: unknown) => e instanceof UpstreamError && e.code === "upstream_bad_response" && /17 inputs/.test(e.message));
      await assert.rejects(ask("forever"), (e: unknown) => e instanceof UpstreamError && /more than 16 times/.test(e.message));
    } finally {
      await pool.close();
      await up.close();
    }
  });
});

describe("paused calls of 2026 clients (input-rounds.ts)", () => {
  it("one agent's paused calls cannot push out another's: each agent is capped on its own", () => {
    const parked = new ParkedCalls();
    const never = () => new Promise<never>(() => undefined);
    const entry = (owner: string) => ({ owner, server: "s", callDigest: "d", call: new PausableCall(never, () => undefined), asked: { key: "k", upstreamId: 1 }, answer: async () => undefined });
    const bobs = parked.park(entry("bob"), 60_000);
    const alices = Array.from({ length: 65 }, () => parked.park(entry("alice"), 60_000));
    assert.equal(parked.take(alices[0]!, "alice", "s"), undefined, "alice's oldest went when she parked her 65th");
    assert.ok(parked.take(alices[64]!, "alice", "s"));
    assert.equal(parked.take(bobs, "alice", "s"), undefined, "not alice's to take");
    assert.ok(parked.take(bobs, "bob", "s"), "bob's survived alice's flood");
    parked.closeAll();
  });
});
