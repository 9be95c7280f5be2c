import assert from "node:assert/strict";
import { request as httpRequest } from "node:http";
import type { AuthFailureCode } from "../../../gateway/auth/index.js";
import { UpstreamError } from "../../../gateway/proxy/upstream.js";
import { INITIALIZE_RESULT, type Reply as UpstreamReply } from "../../fakes/upstream.js";
import { ALLOWED_ORIGIN, Harness, INITIALIZE, MAX_BODY_BYTES, metadataUrl, TOKENS, UPSTREAM_TIMEOUT_MS, type PostOptions } from "./pipeline-harness.js";

/** A body of `size` bytes sent as a stream: chunked, so no Content-Length tells the size up front. */
function chunked(size: number): ReadableStream<Uint8Array> {
  const text = JSON.stringify({ ...INITIALIZE, params: { ...INITIALIZE.params, pad: "x".repeat(size) } });
  const bytes = new TextEncoder().encode(text);
  let offset = 0;
  return new ReadableStream({
    pull(controller) {
      if (offset >= bytes.length) return controller.close();
      controller.enqueue(bytes.subarray(offset, offset + 512));
      offset += 512;
    },
  });
}

describe("proxy pipeline: edge, identity and sessions", () => {
  let h: Harness;
  beforeEach(async () => {
    h = await Harness.start();
  });
  afterEach(async () => {
    await h.close();
  });

  describe("edge", () => {
    const refusals: Array<{ note: string; body: unknown; opts?: PostOptions; status: number; rpc: number; message?: RegExp; id?: unknown }> = [
      { note: "an Origin not on the allow-list", body: INITIALIZE, opts: { headers: { origin: "https://evil.test" } }, status: 403, rpc: -32600 },
      { note: "Content-Type text/plain", body: INITIALIZE, opts: { headers: { "content-type": "text/plain" } }, status: 415, rpc: -32600 },
      { note: "a declared body over edge.maxBodyBytes", body: JSON.stringify({ ...INITIALIZE, pad: "x".repeat(MAX_BODY_BYTES) }), status: 413, rpc: -32600 },
      { note: "a chunked body over edge.maxBodyBytes", body: chunked(MAX_BODY_BYTES * 4), status: 413, rpc: -32600 },
      { note: "a body that is not JSON", body: '{"jsonrpc":"2.0",', status: 400, rpc: -32700 },
      { note: "a JSON-RPC batch", body: [INITIALIZE], status: 400, rpc: -32600, message: /batch/ },
      { note: "JSON that is not JSON-RPC 2.0", body: { jsonrpc: "1.0", id: 1, method: "initialize" }, status: 400, rpc: -32600 },
      { note: "an unsupported MCP-Protocol-Version", body: INITIALIZE, opts: { headers: { "mcp-protocol-version": "1999-01-01" } }, status: 400, rpc: -32022, message: /1999-01-01/, id: INITIALIZE.id },
      { note: "an unknown server path", body: INITIALIZE, opts: { server: "nope" }, status: 404, rpc: -32600, message: /No such MCP server/ },
    ];
    for (const c of refusals) {
      it(`refuses ${c.note} with HTTP ${c.status} before identity or upstream, and puts it on record`, async () => {
        const reply = await h.send(c.body, c.opts);
        assert.equal(reply.status, c.status, reply.text);
        assert.equal(reply.json?.error?.code, c.rpc);
        // The request's id when the body could be read as a request, else null.
        assert.equal(reply.json?.id, "id" in c ? c.id : null);
        if (c.message) assert.match(reply.json?.error?.message ?? "", c.message);
        assert.deepEqual(h.verifier.seen, [], "the edge runs before identity");
        assert.deepEqual(h.upstreams, []);
        // The record opens on arrival: an edge refusal is one event, outcome invalid, no decision.
        const event = h.audit.only();
        assert.deepEqual([event.outcome, event.agent.sub, event.input, event.result], ["invalid", null, null, null]);
      });
    }

    const accepted: Array<{ note: string; headers: Record<string, string> }> = [
      { note: "an Origin on the allow-list", headers: { origin: ALLOWED_ORIGIN } },
      { note: "application/json with a charset", headers: { "content-type": "application/json; charset=utf-8" } },
      { note: "a supported MCP-Protocol-Version", headers: { "mcp-protocol-version": "2025-06-18" } },
    ];
    for (const c of accepted) {
      it(`accepts ${c.note}`, async () => {
        const reply = await h.send(INITIALIZE, { headers: c.headers });
        assert.equal(reply.status, 200, reply.text);
        assert.ok(reply.headers.get("mcp-session-id"));
      });
    }

    it("refuses a declared oversize body at once, without waiting for the body", async () => {
      // The client declares 10 MB and sends one byte: only the Content-Length check can answer.
      const status = await new Promise<number>((resolve, reject) => {
        const req = httpRequest(h.url(), {
          method: "POST",
          headers: { "content-type": "application/json", "content-length": String(10_000_000), authorization: `Bearer ${TOKENS.alice}` },
        });
        req.on("response", (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
          req.destroy();
        });
        req.on("error", reject);
        req.write("{");
      });
      assert.equal(status, 413);
      assert.deepEqual(h.verifier.seen, []);
    });

    it("answers PUT with 405 and an Allow header", async () => {
      const reply = await h.send(INITIALIZE, { method: "PUT" });
      assert.equal(reply.status, 405);
      assert.equal(reply.headers.get("allow"), "GET, POST, DELETE");
      assert.equal(reply.json?.error?.code, -32600);
      assert.deepEqual(h.upstreams, []);
    });
  });

  describe("identity", () => {
    const cases: Array<{ note: string; token: string | null; failWith?: AuthFailureCode; status: number; code: AuthFailureCode; challenge: RegExp | null }> = [
      { note: "no bearer token", token: null, status: 401, code: "token_missing", challenge: /^Bearer resource_metadata="[^"]+"$/ },
      { note: "a token the verifier rejects", token: "forged-token", status: 401, code: "token_bad_signature", challenge: /error="invalid_token"/ },
      { note: "an unreachable JWKS", token: TOKENS.alice, failWith: "jwks_unavailable", status: 503, code: "jwks_unavailable", challenge: null },
    ];
    for (const c of cases) {
      it(`refuses ${c.note} with HTTP ${c.status}, audited as unauthenticated, never reaching the upstream`, async () => {
        if (c.failWith) h.verifier.failWith(c.failWith);
        const reply = await h.send(INITIALIZE, { token: c.token });

        assert.equal(reply.status, c.status);
        const challenge = reply.headers.get("www-authenticate");
        if (c.challenge === null) {
          assert.equal(challenge, null);
          assert.ok(reply.headers.get("retry-after"), "a 503 says when to retry");
        } else {
          assert.ok(challenge?.includes(`resource_metadata="${metadataUrl("files")}"`), String(challenge));
          assert.match(challenge ?? "", c.challenge);
        }
        assert.deepEqual(h.upstreams, []);
        const event = h.audit.only();
        assert.equal(event.outcome, "unauthenticated");
        assert.equal(event.error?.code, c.code);
        assert.deepEqual(event.agent, { sub: null, client_id: null });
        assert.deepEqual([event.mcp.server, event.mcp.method, event.input], ["files", "initialize", null]);
      });
    }

    it("never treats a session as a credential: a bad token in a live session is 401 and not forwarded", async () => {
      const session = await h.initialize();
      const reply = await h.rpc(session, "tools/call", { name: "read_file", arguments: {} }, { token: "forged-token" });
      assert.equal(reply.status, 401);
      assert.deepEqual(h.upstream.requests("tools/call"), []);
      assert.deepEqual(h.audit.events.map((e) => [e.outcome, e.mcp.method, e.error?.code]), [["unauthenticated", "tools/call", "token_bad_signature"]]);
    });
  });

  describe("sessions", () => {
    it("opens a session on initialize: relays the upstream's answer with a fresh Mcp-Session-Id", async () => {
      const reply = await h.send(INITIALIZE);
      assert.equal(reply.status, 200);
      assert.deepEqual(reply.json, { jsonrpc: "2.0", id: INITIALIZE.id, result: INITIALIZE_RESULT });
      // Visible ASCII (the spec's rule): key id, '.', the sealed session in base64url.
      assert.match(reply.headers.get("mcp-session-id") ?? "", /^[A-Za-z0-9_-]{1,32}\.[A-Za-z0-9_-]{100,}$/);
      assert.doesNotMatch(reply.headers.get("mcp-session-id") ?? "", /alice/);
      assert.deepEqual(h.upstream.requests(), [INITIALIZE]);
      assert.equal(h.upstream.optionsFor("initialize")[0]!.timeoutMs, UPSTREAM_TIMEOUT_MS);
      assert.equal((await h.send(INITIALIZE)).headers.get("mcp-session-id") === reply.headers.get("mcp-session-id"), false);
    });

    it("refuses a request other than initialize without Mcp-Session-Id with 400", async () => {
      await h.initialize();
      for (const body of [{ jsonrpc: "2.0", id: 5, method: "tools/list" }, { jsonrpc: "2.0", method: "notifications/initialized" }]) {
        const reply = await h.send(body);
        assert.equal(reply.status, 400, JSON.stringify(body));
        assert.equal(reply.json?.error?.code, -32600);
        assert.match(reply.json?.error?.message ?? "", /Mcp-Session-Id/);
      }
      assert.deepEqual(h.upstream.requests("tools/list"), []);
      assert.deepEqual(h.upstream.sent, []);
    });

    it("answers another subject presenting a session id with 404, exactly as for an unknown id", async () => {
      const session = await h.initialize(TOKENS.alice);
      const stolen = await h.send({ jsonrpc: "2.0", id: 9, method: "tools/list" }, { token: TOKENS.bob, session });
      const unknown = await h.send({ jsonrpc: "2.0", id: 9, method: "tools/list" }, { token: TOKENS.bob, session: "A".repeat(32) });

      assert.equal(stolen.status, 404);
      assert.equal(stolen.json?.error?.code, -32001);
      assert.deepEqual([stolen.status, stolen.text], [unknown.status, unknown.text]);
      assert.deepEqual(h.upstream.requests(), [INITIALIZE], "bob's request never reached alice's upstream session");
      assert.deepEqual(h.engine.inputs, []);
      // alice's session is untouched.
      assert.equal((await h.rpc(session, "tools/list")).status, 200);
    });

    it("binds a session to its server path", async () => {
      const session = await h.initialize(TOKENS.alice, "files");
      const reply = await h.rpc(session, "tools/list", undefined, { server: "other" });
      assert.equal(reply.status, 404);
      assert.deepEqual(h.upstream.requests("tools/list"), []);
    });

    it("ends a session on DELETE, here and upstream; the id is then unknown", async () => {
      const session = await h.initialize();
      const byBob = await h.send(undefined, { method: "DELETE", session, token: TOKENS.bob });
      assert.equal(byBob.status, 404, "another subject cannot end it");
      assert.equal(h.upstream.closeCount, 0);

      const deleted = await h.send(undefined, { method: "DELETE", session });
      assert.equal(deleted.status, 200);
      assert.equal(h.upstream.closeCount, 1);

      assert.equal((await h.rpc(session, "tools/list")).status, 404);
      assert.equal((await h.send(undefined, { method: "DELETE", session })).status, 404);
      assert.equal(h.upstream.closeCount, 1, "closed exactly once");
      assert.deepEqual(h.upstream.requests("tools/list"), []);
    });

    const failedInits: Array<{ note: string; reply: UpstreamReply; status: number; rpc: number }> = [
      { note: "answers initialize with an error", reply: { error: { code: -32602, message: "Unsupported protocol version" } }, status: 200, rpc: -32602 },
      { note: "cannot be reached", reply: { throws: new UpstreamError("upstream_unreachable", "connection refused") }, status: 502, rpc: -32603 },
    ];
    for (const c of failedInits) {
      it(`opens no session when the upstream ${c.note}, and closes its connection`, async () => {
        const local = await Harness.start({ script: { initialize: c.reply } });
        try {
          const reply = await local.send(INITIALIZE);
          assert.equal(reply.status, c.status);
          assert.equal(reply.json?.error?.code, c.rpc);
          assert.equal(reply.headers.get("mcp-session-id"), null);
          assert.equal(local.upstream.closeCount, 1);
          assert.equal(local.endpoint.sessions.size, 0);
        } finally {
          await local.close();
        }
      });
    }

    it("refuses initialize with 503 once sessions.maxSessions are open, without connecting upstream", async () => {
      const local = await Harness.start({ sessions: { maxSessions: 1 } });
      try {
        await local.initialize();
        const reply = await local.send(INITIALIZE, { token: TOKENS.bob });
        assert.equal(reply.status, 503);
        assert.equal(reply.json?.error?.code, -32603);
        assert.equal(local.upstreams.length, 1);
      } finally {
        await local.close();
      }
    });

    it("relays the upstream's server→client stream on GET until DELETE ends the session", async () => {
      const local = await Harness.start({ script: { listen: "open" } });
      try {
        const session = await local.initialize();
        const res = await fetch(local.url(), { headers: { authorization: `Bearer ${TOKENS.alice}`, "mcp-session-id": session, accept: "text/event-stream" } });
        assert.equal(res.status, 200);
        assert.match(res.headers.get("content-type") ?? "", /^text\/event-stream/);
        const note = { jsonrpc: "2.0" as const, method: "notifications/message", params: { level: "info", data: "hello" } };
        assert.equal(local.upstream.push(note), true);
        const reader = res.body!.getReader();
        let text = "";
        while (!text.includes("\n\n")) {
          const { value, done } = await reader.read();
          if (done) break;
          text += new TextDecoder().decode(value);
        }
        assert.deepEqual(JSON.parse(/^data: (.*)$/m.exec(text)?.[1] ?? "null"), note);

        assert.equal((await local.send(undefined, { method: "DELETE", session })).status, 200);
        assert.equal(local.upstream.streamAborted, true, "the upstream stream is aborted with the session");
        while (!(await reader.read()).done); // the client's stream ends too
      } finally {
        await local.close();
      }
    });

    it("answers GET with 405 when the upstream has no server→client stream", async () => {
      const session = await h.initialize();
      const reply = await h.send(undefined, { method: "GET", session });
      assert.equal(reply.status, 405);
    });
  });
});
