/**
 * The 2026-07-28 path through the pipeline (DESIGN.md contract 5): stateless requests with the
 * `_meta` envelope, headers checked against the body and never decided on, a held upstream
 * context per agent, and a 2025 upstream's mid-call input requests as input_required rounds.
 */
import assert from "node:assert/strict";
import type { JsonRpcRequest, JsonRpcResponse } from "../../../gateway/proxy/jsonrpc.js";
import type { ToolDefinition } from "../../../gateway/proxy/session.js";
import { allow, deny } from "../../fakes/policy.js";
import type { FakeUpstream, Handler } from "../../fakes/upstream.js";
import { ECHO, Harness, READ_FILE, TOKENS } from "./pipeline-harness.js";

const V = "2026-07-28";
const ENVELOPE = {
  "io.modelcontextprotocol/protocolVersion": V,
  "io.modelcontextprotocol/clientCapabilities": { elicitation: {} },
  "io.modelcontextprotocol/clientInfo": { name: "modern-test", version: "1" },
};
const REGIONAL: ToolDefinition = {
  name: "deploy",
  inputSchema: { type: "object", properties: { region: { type: "string", "x-mcp-header": "Region" }, replicas: { type: "integer", "x-mcp-header": "Replicas" } } },
};

let nextId = 1;
/** A 2026 request body: the envelope in `_meta` (overridable), the params as given. */
function body(method: string, params: Record<string, unknown> = {}, meta: Record<string, unknown> = ENVELOPE): JsonRpcRequest {
  return { jsonrpc: "2.0", id: nextId++, method, params: { ...params, _meta: { ...meta, ...(params._meta as object | undefined) } } };
}

/** The standard headers a 2026 client sends for `b`. */
function headersFor(b: JsonRpcRequest, extra: Record<string, string> = {}): Record<string, string> {
  const name = b.params?.name ?? b.params?.uri;
  return { "mcp-protocol-version": V, "mcp-method": b.method, ...(typeof name === "string" && { "mcp-name": name }), ...extra };
}

/** A tools/call handler that asks the client for input mid-call and answers with what it got. */
function askingTool(upstream: () => FakeUpstream): Handler {
  return async (request: JsonRpcRequest, opts) => {
    opts.onMessage?.({ jsonrpc: "2.0", id: "srv-1", method: "elicitation/create", params: { message: "who approves?", requestedSchema: { type: "object" } } });
    for (let i = 0; i < 500; i++) {
      const answer = upstream().sent.find((m) => !("method" in m) && m.id === "srv-1") as JsonRpcResponse | undefined;
      if (answer) return { result: { content: [{ type: "text", text: `approved by ${JSON.stringify(answer.result?.content)}` }] } };
      await new Promise((r) => setTimeout(r, 5));
    }
    return { error: { code: -32603, message: "no answer" } };
  };
}

describe("proxy pipeline: the 2026-07-28 path", () => {
  let h: Harness;
  afterEach(() => h?.close());

  describe("stateless requests in front of a 2025 upstream", () => {
    beforeEach(async () => {
      h = await Harness.start({ script: { toolPages: [[READ_FILE, ECHO]], methods: { "tools/call": { result: { content: [{ type: "text", text: "ok" }] } } } }, decide: () => allow() });
    });

    it("forwards a call without a session: one held upstream session (initialized with the client's capabilities), the envelope kept from the 2025 upstream, the 2026 result shape back", async () => {
      const b = body("tools/call", { name: "echo", arguments: { text: "hi" }, _meta: { traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", progressToken: 7 } });
      const reply = await h.send(b, { headers: headersFor(b) });
      assert.equal(reply.status, 200, reply.text);
      assert.equal(reply.headers.get("mcp-session-id"), null, "a 2026 client gets no session");
      assert.equal(reply.json?.result.resultType, "complete");
      assert.deepEqual(reply.json?.result._meta["io.modelcontextprotocol/serverInfo"], { name: "fake-upstream", version: "1.0.0" });
      const upstream = h.upstream;
      const init = upstream.received.find((r) => r.kind === "initialize")!.message as JsonRpcRequest;
      assert.deepEqual(init.params?.capabilities, { elicitation: {} });
      assert.deepEqual(init.params?.clientInfo, { name: "modern-test", version: "1" });
      assert.ok(upstream.sent.some((m) => "method" in m && m.method === "notifications/initialized"));
      const call = upstream.requests("tools/call")[0]!;
      assert.deepEqual(call.params?._meta, { traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", progressToken: 7 }, "traceparent passed on; the 2026 envelope is not shown to a 2025 upstream");
      const input = h.engine.inputsFor("tools/call")[0]!;
      assert.deepEqual([input.request.protocol_version, input.request.session_id], [V, null]);
      // A second request of the same agent and envelope reuses the held upstream session.
      const again = body("tools/call", { name: "echo", arguments: { text: "again" } });
      assert.equal((await h.send(again, { headers: headersFor(again) })).status, 200);
      assert.equal(h.upstreams.length, 1);
      assert.equal(upstream.requests("tools/call").length, 2);
    });

    it("answers server/discover from the upstream's initialize, and marks filtered lists private", async () => {
      const d = body("server/discover");
      const discover = await h.send(d, { headers: headersFor(d) });
      assert.equal(discover.status, 200, discover.text);
      assert.deepEqual(discover.json?.result.supportedVersions, [V]);
      assert.deepEqual(discover.json?.result.serverInfo, { name: "fake-upstream", version: "1.0.0" });
      assert.equal(discover.json?.result.cacheScope, "private");
      const l = body("tools/list");
      const list = await h.send(l, { headers: headersFor(l) });
      assert.deepEqual([list.json?.result.resultType, list.json?.result.cacheScope, list.json?.result.ttlMs], ["complete", "private", 0]);
    });

    it("a 2026 client that closes its response cancels the upstream call (2026's cancellation)", async () => {
      let aborted: () => void = () => undefined;
      const sawAbort = new Promise<void>((resolve) => (aborted = resolve));
      await h.close();
      h = await Harness.start({
        decide: () => allow(),
        script: {
          toolPages: [[ECHO]],
          methods: {
            "tools/call": (_req, opts) =>
              new Promise((resolve) => {
                opts.signal?.addEventListener("abort", () => {
                  aborted();
                  resolve({ error: { code: -32603, message: "cancelled" } });
                });
              }),
          },
        },
      });
      const b = body("tools/call", { name: "echo", arguments: {} });
      const gone = new AbortController();
      const sent = fetch(h.url(), { method: "POST", signal: gone.signal, headers: { "content-type": "application/json", accept: "application/json, text/event-stream", authorization: `Bearer ${TOKENS.alice}`, ...headersFor(b) }, body: JSON.stringify(b) }).catch(() => "closed");
      for (let i = 0; i < 200 && h.upstreams[0]?.upstream.requests("tools/call").length !== 1; i++) await new Promise((r) => setTimeout(r, 5));
      gone.abort();
      assert.equal(await sent, "closed");
      await sawAbort;
    });

    it("holds no upstream session for an agent that may not initialize", async () => {
      await h.close();
      h = await Harness.start({ decideInitialize: true, decide: (input) => (input.request.method === "initialize" ? deny("no sessions for you") : allow()) });
      const b = body("tools/call", { name: "echo", arguments: {} });
      const reply = await h.send(b, { headers: headersFor(b) });
      assert.equal(reply.json?.error?.code, -32601);
      assert.equal(reply.status, 404, "2026: a method not found is HTTP 404");
      assert.deepEqual(h.upstreams, []);
    });
  });

  describe("headers are compared with the body, never decided on", () => {
    beforeEach(async () => {
      h = await Harness.start({ script: { toolPages: [[ECHO, REGIONAL]], methods: { "tools/call": { result: { content: [] } } } }, decide: () => allow() });
    });

    const call = () => body("tools/call", { name: "echo", arguments: {} });
    const refusals: Array<{ note: string; make: () => { b: unknown; headers: Record<string, string> }; status: number; code: number }> = [
      { note: "Mcp-Name naming another tool than the body", make: () => ((b) => ({ b, headers: headersFor(b, { "mcp-name": "delete_record" }) }))(call()), status: 400, code: -32020 },
      { note: "no Mcp-Name on tools/call", make: () => ((b) => ({ b, headers: { "mcp-protocol-version": V, "mcp-method": "tools/call" } }))(call()), status: 400, code: -32020 },
      { note: "no Mcp-Method", make: () => ((b) => ({ b, headers: { "mcp-protocol-version": V, "mcp-name": "echo" } }))(call()), status: 400, code: -32020 },
      { note: "Mcp-Method naming another method", make: () => ((b) => ({ b, headers: headersFor(b, { "mcp-method": "tools/list" }) }))(call()), status: 400, code: -32020 },
      { note: "no MCP-Protocol-Version", make: () => ((b) => ({ b, headers: { "mcp-method": "tools/call", "mcp-name": "echo" } }))(call()), status: 400, code: -32020 },
      { note: "MCP-Protocol-Version disagreeing with the envelope", make: () => ((b) => ({ b, headers: headersFor(b, { "mcp-protocol-version": "2025-11-25" }) }))(call()), status: 400, code: -32020 },
      { note: "an Mcp-Name with broken base64", make: () => ((b) => ({ b, headers: headersFor(b, { "mcp-name": "=?base64?ZWNo*?=" }) }))(call()), status: 400, code: -32020 },
      { note: "an envelope without clientCapabilities", make: () => ((b) => ({ b, headers: headersFor(b) }))(body("tools/call", { name: "echo" }, { "io.modelcontextprotocol/protocolVersion": V })), status: 400, code: -32602 },
      { note: "a 2026 header and no envelope", make: () => ({ b: { jsonrpc: "2.0", id: 99, method: "tools/call", params: { name: "echo" } }, headers: { "mcp-protocol-version": V, "mcp-method": "tools/call", "mcp-name": "echo" } }), status: 400, code: -32602 },
      { note: "an envelope naming an unknown revision", make: () => ((b) => ({ b, headers: headersFor(b, { "mcp-protocol-version": "2027-01-01" }) }))(body("tools/call", { name: "echo" }, { ...ENVELOPE, "io.modelcontextprotocol/protocolVersion": "2027-01-01" })), status: 400, code: -32022 },
      { note: "ping, which 2026 removed", make: () => ((b) => ({ b, headers: headersFor(b) }))(body("ping")), status: 404, code: -32601 },
      { note: "resources/subscribe, which 2026 removed", make: () => ((b) => ({ b, headers: headersFor(b) }))(body("resources/subscribe", { uri: "file:///a" })), status: 404, code: -32601 },
      { note: "initialize with a 2026 header", make: () => ({ b: { jsonrpc: "2.0", id: 98, method: "initialize", params: { protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: "x", version: "1" } } }, headers: { "mcp-protocol-version": V } }), status: 400, code: -32020 },
    ];
    for (const c of refusals) {
      it(`refuses ${c.note} (HTTP ${c.status}, ${c.code}) before any decision or upstream action`, async () => {
        const { b, headers } = c.make();
        const reply = await h.send(b, { headers });
        assert.equal(reply.status, c.status, reply.text);
        assert.equal(reply.json?.error?.code, c.code);
        assert.deepEqual(h.engine.inputs, [], "nothing was decided");
        assert.deepEqual(h.upstreams, [], "nothing reached an upstream");
        assert.equal(h.audit.only().outcome, "invalid");
      });
    }

    it("reads header names case-insensitively and decodes =?base64?…?= values", async () => {
      const b = body("tools/call", { name: "echo", arguments: {} });
      const reply = await h.send(b, { headers: { "MCP-Protocol-Version": V, "MCP-METHOD": "tools/call", "Mcp-Name": `=?base64?${Buffer.from("echo").toString("base64")}?=` } });
      assert.equal(reply.status, 200, reply.text);
    });

    it("an unsupported version in a 2026 envelope is -32022 naming the 2026 versions (what server/discover lists) and echoing the request", async () => {
      const b = body("tools/call", { name: "echo" }, { ...ENVELOPE, "io.modelcontextprotocol/protocolVersion": "2030-01-01" });
      const reply = await h.send(b, { headers: headersFor(b, { "mcp-protocol-version": "2030-01-01" }) });
      assert.equal(reply.json?.error?.code, -32022);
      assert.deepEqual(reply.json?.error?.data, { supported: [V], requested: "2030-01-01" });
      // Without an envelope the client may be of either era: every version is named.
      const bare = await h.send({ jsonrpc: "2.0", id: 5, method: "tools/list" }, { headers: { "mcp-protocol-version": "2030-01-01" } });
      assert.equal(bare.json?.error?.code, -32022);
      assert.ok((bare.json?.error?.data.supported as string[]).includes(V) && (bare.json?.error?.data.supported as string[]).includes("2025-11-25"));
    });

    it("Mcp-Param-* must mirror the arguments the tool declares (numbers compared as numbers); nothing is forwarded otherwise", async () => {
      const args = { region: "eu-west", replicas: 3 };
      const missing = body("tools/call", { name: "deploy", arguments: args });
      const refused = await h.send(missing, { headers: headersFor(missing, { "mcp-param-region": "eu-west" }) });
      assert.equal(refused.status, 400, refused.text);
      assert.equal(refused.json?.error?.code, -32020);
      assert.match(refused.json?.error?.message ?? "", /Mcp-Param-Replicas/);
      const wrong = body("tools/call", { name: "deploy", arguments: args });
      assert.equal((await h.send(wrong, { headers: headersFor(wrong, { "mcp-param-region": "us-east", "mcp-param-replicas": "3" }) })).json?.error?.code, -32020);
      assert.equal(h.upstream.requests("tools/call").length, 0);
      const ok = body("tools/call", { name: "deploy", arguments: args });
      const reply = await h.send(ok, { headers: headersFor(ok, { "mcp-param-region": `=?base64?${Buffer.from("eu-west").toString("base64")}?=`, "mcp-param-replicas": "3.0" }) });
      assert.equal(reply.status, 200, reply.text);
      assert.equal(h.upstream.requests("tools/call").length, 1);
    });
  });

  describe("input requests of a 2025 upstream as input_required rounds", () => {
    beforeEach(async () => {
      h = await Harness.start({ script: { toolPages: [[ECHO]], methods: { "tools/call": askingTool(() => h.upstream) } }, decide: () => allow() });
    });

    it("pauses the upstream call, answers input_required, and completes it with the retry's answer (both decided and on record)", async () => {
      const first = body("tools/call", { name: "echo", arguments: { text: "x" } });
      const paused = await h.send(first, { headers: headersFor(first) });
      assert.equal(paused.status, 200, paused.text);
      const result = paused.json?.result;
      assert.equal(result.resultType, "input_required");
      assert.deepEqual(result.inputRequests, { "input-1": { method: "elicitation/create", params: { message: "who approves?", requestedSchema: { type: "object" } } } });
      assert.equal(typeof result.requestState, "string");
      const retry = body("tools/call", { name: "echo", arguments: { text: "x" }, inputResponses: { "input-1": { action: "accept", content: { name: "carol" } } }, requestState: result.requestState });
      const done = await h.send(retry, { headers: headersFor(retry) });
      assert.equal(done.status, 200, done.text);
      assert.deepEqual(done.json?.result.content, [{ type: "text", text: 'approved by {"name":"carol"}' }]);
      assert.equal(h.upstream.requests("tools/call").length, 1, "one upstream call, resumed");
      assert.equal(h.engine.inputsFor("tools/call").length, 2, "the retry is decided again");
      assert.deepEqual(h.audit.events.filter((e) => e.mcp.method === "tools/call").map((e) => e.outcome), ["allowed", "allowed"]);
      // A requestState is good for one retry.
      const replay = body("tools/call", { name: "echo", arguments: { text: "x" }, inputResponses: { "input-1": { action: "accept" } }, requestState: result.requestState });
      assert.equal((await h.send(replay, { headers: headersFor(replay) })).json?.error?.code, -32602);
    });

    it("refuses a retry that is another call, or another agent's", async () => {
      const first = body("tools/call", { name: "echo", arguments: { text: "x" } });
      const state = (await h.send(first, { headers: headersFor(first) })).json?.result.requestState as string;
      const bob = body("tools/call", { name: "echo", arguments: { text: "x" }, inputResponses: { "input-1": { action: "accept" } }, requestState: state });
      assert.equal((await h.send(bob, { token: TOKENS.bob, headers: headersFor(bob) })).json?.error?.code, -32602, "bob cannot answer alice's call");
      const other = body("tools/call", { name: "echo", arguments: { text: "changed" }, inputResponses: { "input-1": { action: "accept" } }, requestState: state });
      const reply = await h.send(other, { headers: headersFor(other) });
      assert.equal(reply.json?.error?.code, -32602);
      assert.match(reply.json?.error?.message ?? "", /another request/);
    });

    it("answers -32021 when the client's envelope does not declare what the upstream asks for", async () => {
      const first = body("tools/call", { name: "echo", arguments: {} }, { ...ENVELOPE, "io.modelcontextprotocol/clientCapabilities": {} });
      const reply = await h.send(first, { headers: headersFor(first) });
      assert.equal(reply.status, 400, reply.text);
      assert.equal(reply.json?.error?.code, -32021);
      assert.deepEqual(reply.json?.error?.data.requiredCapabilities, { elicitation: { form: {} } });
      assert.ok(h.upstream.sent.some((m) => !("method" in m) && m.id === "srv-1" && m.error !== undefined), "the upstream's request is answered with an error");
    });
  });
});
