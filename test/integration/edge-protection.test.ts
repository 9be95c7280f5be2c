/**
 * Upstream protection and the edge, against a real gateway (startGateway: real bundle, JWKS over
 * HTTP, a real HTTP upstream) on 127.0.0.1: body limit, JSON-RPC validation, batches, Origin,
 * slow clients, and per-upstream timeout and concurrency.
 */
import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseConfig } from "../../gateway/config/index.js";
import { startGateway, type RunningGateway } from "../../gateway/compose/index.js";
import { startFakeIdp, type FakeIdp } from "../fakes/jwks.js";
import { startSlowUpstream, type SlowUpstream } from "../fakes/slow-upstream.js";
import { mcpCall, mcpInitialize } from "../support/mcp-http.js";
import { defaultBundle, freePort } from "../support/stack.js";

const MIB = 1024 * 1024;

/** Writes `chunks` to a raw socket (pausing between them) and returns what the server answered. */
function rawExchange(port: number, chunks: string[], pauseMs: number): Promise<{ text: string; elapsedMs: number }> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const socket = connect(port, "127.0.0.1");
    let text = "";
    socket.on("data", (d) => (text += d.toString()));
    socket.on("error", reject);
    socket.on("close", () => resolve({ text, elapsedMs: performance.now() - t0 }));
    let i = 0;
    const next = () => {
      if (i < chunks.length && !socket.destroyed) socket.write(chunks[i++]!);
      if (i < chunks.length) setTimeout(next, pauseMs);
    };
    socket.on("connect", next);
  });
}

describe("edge and upstream protection (real gateway)", function () {
  this.timeout(30_000);
  let idp: FakeIdp;
  let upstream: SlowUpstream;
  let gateway: RunningGateway;
  let port: number;
  let token: string;
  const endpoint = () => `${gateway.url}/mcp/demo`;

  before(async () => {
    const { bundle, dir } = await defaultBundle();
    idp = await startFakeIdp({ audience: "http://gateway.test/mcp" });
    upstream = await startSlowUpstream();
    port = await freePort();
    const config = parseConfig(
      {
        listen: { host: "127.0.0.1", port },
        auth: { issuer: idp.issuer, audience: idp.audience, jwksUri: idp.jwksUri, algorithms: ["RS256"] },
        policy: { bundle, verificationKey: join(dir, "pub.pem") },
        upstreams: { demo: { url: upstream.url, timeoutMs: 400, maxConcurrent: 2 } },
        audit: { file: join(mkdtempSync(join(tmpdir(), "pc-edge-")), "audit.jsonl") },
        // edge.maxBodyBytes and edge.allowedOrigins keep their defaults (4 MiB, none).
        edge: { headersTimeoutMs: 500, requestTimeoutMs: 800 },
      },
      join(mkdtempSync(join(tmpdir(), "pc-edge-config-")), "edge-protection.yaml"), // relative paths (the pin file) stay out of the repository
    );
    gateway = await startGateway(config, { log: () => undefined });
    token = idp.mint({ sub: "alice", roles: ["analyst"], scope: "mcp:tools" });
  });
  after(async () => {
    await gateway.close();
    await upstream.close();
    await idp.close();
  });

  const post = (body: string, headers: Record<string, string> = {}) =>
    fetch(endpoint(), { method: "POST", headers: { "content-type": "application/json", accept: "application/json, text/event-stream", ...headers }, body });

  describe("body limit (default 4 MiB)", () => {
    const cases = [
      { note: "a body of exactly 4 MiB passes the size check (then needs a token: 401)", size: 4 * MIB, status: 401 },
      { note: "one byte over 4 MiB is refused with 413", size: 4 * MIB + 1, status: 413 },
    ];
    for (const c of cases) {
      it(c.note, async () => {
        const prefix = '{"jsonrpc":"2.0","id":1,"method":"ping","params":{"pad":"';
        const body = prefix + "x".repeat(c.size - prefix.length - 3) + '"}}';
        assert.equal(Buffer.byteLength(body), c.size);
        const res = await post(body);
        assert.equal(res.status, c.status);
        if (c.status === 413) assert.equal(((await res.json()) as { error: { code: number } }).error.code, -32600);
        else await res.text();
      });
    }
  });

  describe("JSON-RPC validation at the edge", () => {
    const cases = [
      { note: "not JSON", body: "{nope", status: 400, code: -32700 },
      { note: "JSON but not JSON-RPC 2.0", body: '{"id":1,"method":"ping"}', status: 400, code: -32600 },
      { note: "a batch under protocol 2025-06-18", body: '[{"jsonrpc":"2.0","id":1,"method":"ping"}]', headers: { "mcp-protocol-version": "2025-06-18" }, status: 400, code: -32600 },
      { note: "a batch under protocol 2025-11-25", body: '[{"jsonrpc":"2.0","id":1,"method":"ping"}]', headers: { "mcp-protocol-version": "2025-11-25" }, status: 400, code: -32600 },
      // Documented choice (docs/errors.md): batches are refused for 2025-03-26 too.
      { note: "a batch under protocol 2025-03-26", body: '[{"jsonrpc":"2.0","id":1,"method":"ping"}]', headers: { "mcp-protocol-version": "2025-03-26" }, status: 400, code: -32600 },
    ];
    for (const c of cases) {
      it(`refuses ${c.note} with ${c.status} / ${c.code}, before identity`, async () => {
        const res = await post(c.body, c.headers);
        assert.equal(res.status, c.status);
        assert.equal(((await res.json()) as { error: { code: number } }).error.code, c.code);
      });
    }
  });

  describe("Origin (no allowedOrigins configured)", () => {
    for (const method of ["POST", "GET", "DELETE"]) {
      it(`refuses a ${method} carrying any Origin with 403`, async () => {
        const res = await fetch(endpoint(), {
          method,
          headers: { origin: "http://127.0.0.1:3000", authorization: `Bearer ${token}`, "content-type": "application/json", "mcp-session-id": "x" },
          ...(method === "POST" ? { body: '{"jsonrpc":"2.0","id":1,"method":"ping"}' } : {}),
        });
        assert.equal(res.status, 403);
        assert.equal(((await res.json()) as { error: { code: number } }).error.code, -32600);
      });
    }
    it("lets a request without Origin through to identity", async () => {
      const res = await post('{"jsonrpc":"2.0","id":1,"method":"ping"}');
      assert.equal(res.status, 401);
      await res.text();
    });
  });

  describe("slow clients", () => {
    const cases = [
      { note: "headers that never finish (slowloris)", chunks: ["POST /mcp/demo HTTP/1.1\r\nHost: x\r\n", "X-A: 1\r\n", "X-B: 2\r\n", "X-C: 3\r\n", "X-D: 4\r\n", "X-E: 5\r\n", "X-F: 6\r\n", "X-G: 7\r\n"] },
      { note: "a body that stalls after its headers", chunks: ["POST /mcp/demo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{", '"jsonrpc"'] },
    ];
    for (const c of cases) {
      it(`answers ${c.note} with 408 and closes the connection`, async () => {
        // The gateway's own Host: another one is refused at once (host_forbidden), before any timeout.
        const chunks = c.chunks.map((chunk) => chunk.replace("Host: x", `Host: 127.0.0.1:${port}`));
        const { text, elapsedMs } = await rawExchange(port, chunks, 300);
        assert.match(text, /^HTTP\/1\.1 408/);
        assert.ok(elapsedMs < 3000, `closed after ${Math.round(elapsedMs)} ms`);
      });
    }
  });

  describe("the decision's rate_limit with the real default policy", () => {
    it("sheds the 6th delete_record in a minute (class destructive: 5 per 60 s) with the policy bucket named", async () => {
      const admin = idp.mint({ sub: "root", roles: ["admin"], scope: "mcp:tools" });
      const session = await mcpInitialize(endpoint(), admin);
      const answers = [];
      for (let i = 0; i < 6; i++) answers.push(await mcpCall(endpoint(), admin, session, "delete_record", { id: String(i) }));
      assert.deepEqual(answers.map((a) => a.body.result?.isError ?? false), [false, false, false, false, false, true]);
      const last = answers[5]!.body.result;
      assert.match(last.content[0].text, /^Rate limit exceeded: policy bucket root:demo:delete_record \(5 per 60 s\)\. Retry after \d+ s\.$/);
      assert.equal(last._meta["dev.portcullis/rate_limit"].code, "rate_limited");
    });
  });

  describe("per-upstream timeout and concurrency", () => {
    it("answers a call the upstream does not answer within timeoutMs with upstream_timeout", async () => {
      const session = await mcpInitialize(endpoint(), token);
      const a = await mcpCall(endpoint(), token, session, "echo", { text: "sleep:1500" });
      assert.equal(a.body.error?.code, -32603);
      assert.equal(a.body.error?.data?.code, "upstream_timeout");
    });

    it("holds at most maxConcurrent calls in flight to the upstream and sheds the rest with upstream_busy", async () => {
      const session = await mcpInitialize(endpoint(), token);
      await mcpCall(endpoint(), token, session, "echo", { text: "warm the catalog" });
      // The timed-out call of the previous test may still run upstream (the gateway stopped waiting).
      await upstream.resetPeak();
      const before = upstream.started;
      const answers = await Promise.all(Array.from({ length: 6 }, () => mcpCall(endpoint(), token, session, "echo", { text: "sleep:200" })));
      const ok = answers.filter((a) => a.body.result && !a.body.result.isError);
      const busy = answers.filter((a) => a.body.result?._meta?.["dev.portcullis/rate_limit"]?.code === "upstream_busy");
      assert.equal(ok.length, 2);
      assert.equal(busy.length, 4);
      assert.equal(upstream.started - before, 2, "shed calls never reached the upstream");
      assert.ok(upstream.peak <= 2, `upstream saw ${upstream.peak} calls at once`);
    });
  });
});
