import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseConfig } from "../../gateway/config/index.js";
import { startGateway, type RunningGateway } from "../../gateway/compose/index.js";
import { startFakeIdp, type FakeIdp } from "../fakes/jwks.js";
import { defaultBundle, freePort, repoRoot } from "../support/stack.js";

const INIT = { jsonrpc: "2.0", id: 1, method: "initialize", params: { protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: "t", version: "1" } } };

describe("stdio upstream", function () {
  this.timeout(30_000);
  let gateway: RunningGateway;
  let idp: FakeIdp;
  let url: string;
  const logs: { level: string; msg: string; fields?: Record<string, unknown> }[] = [];
  before(async () => {
    const { bundle, dir } = await defaultBundle();
    const port = await freePort();
    idp = await startFakeIdp({ audience: `http://127.0.0.1:${port}/mcp` });
    const config = parseConfig(
      {
        listen: { host: "127.0.0.1", port },
        auth: { issuer: idp.issuer, audience: `http://127.0.0.1:${port}/mcp`, jwksUri: idp.jwksUri, algorithms: ["RS256"] },
        policy: { bundle, verificationKey: join(dir, "pub.pem") },
        // Granted to admin by the default policy's "*" rules.
        upstreams: {
          crashing: { command: process.execPath, args: [join(repoRoot, "dist/test/fakes/scripted-stdio-server.js")] },
          // Dies at start, saying why on stderr, as a server with a missing module does.
          dies: { command: process.execPath, args: ["-e", "console.error('Error: Cannot find module ./server.js'); process.exit(3)"] },
        },
        audit: { file: join(mkdtempSync(join(tmpdir(), "pc-stdio-")), "audit.jsonl") },
      },
      join(mkdtempSync(join(tmpdir(), "pc-stdio-config-")), "stdio.yaml"), // relative paths (the pin file) stay out of the repository
    );
    gateway = await startGateway(config, { log: (level, msg, fields) => void logs.push({ level, msg, ...(fields && { fields }) }) });
    url = `${gateway.url}/mcp/crashing`;
  });
  after(async () => {
    await gateway?.close();
    await idp?.close();
  });

  it("a stdio upstream that dies at start: 502 with data.code, and its stderr in an error-level log line", async () => {
    const auth = { authorization: `Bearer ${idp.mint({ sub: "root", roles: ["admin"], scope: "mcp:tools" })}`, "content-type": "application/json" };
    const res = await fetch(`${gateway.url}/mcp/dies`, { method: "POST", headers: auth, body: JSON.stringify(INIT) });
    assert.equal(res.status, 502);
    const body = (await res.json()) as { error: { code: number; data?: { code?: string } } };
    assert.equal(body.error.data?.code, "upstream_closed");
    const line = logs.find((l) => l.msg === "upstream initialize failed" && l.fields?.server === "dies");
    assert.ok(line, JSON.stringify(logs.map((l) => l.msg)));
    assert.equal(line.level, "error");
    assert.match(String(line.fields?.error), /Cannot find module \.\/server\.js/);
  });

  const session = async () => {
    const auth = { authorization: `Bearer ${idp.mint({ sub: "root", roles: ["admin"], scope: "mcp:tools" })}`, "content-type": "application/json" };
    const init = await fetch(url, { method: "POST", headers: auth, body: JSON.stringify(INIT) });
    assert.equal(init.status, 200);
    return { auth, sid: init.headers.get("mcp-session-id")! };
  };
  const rpc = async (s: { auth: Record<string, string>; sid: string }, body: unknown) => {
    const res = await fetch(url, { method: "POST", headers: { ...s.auth, "mcp-session-id": s.sid }, body: JSON.stringify(body) });
    return (await res.json()) as { id: unknown; result?: Record<string, unknown>; error?: { code: number } };
  };

  it("never lets a client id collide with the gateway's own requests on the shared pipe", async () => {
    const s = await session();
    // The first call makes the gateway list the upstream's tools itself (50 ms); meanwhile the
    // client sends requests whose ids look like the gateway's and like each other.
    const [call, ping, ping2] = await Promise.all([
      rpc(s, { jsonrpc: "2.0", id: "portcullis:catalog:0", method: "tools/call", params: { name: "whoami", arguments: {} } }),
      rpc(s, { jsonrpc: "2.0", id: "portcullis:catalog:0", method: "ping" }),
      rpc(s, { jsonrpc: "2.0", id: 1, method: "ping" }),
    ]);
    assert.equal(call.id, "portcullis:catalog:0");
    assert.match(JSON.stringify(call.result), /upstream saw id \d+/);
    assert.deepEqual(ping, { jsonrpc: "2.0", id: "portcullis:catalog:0", result: {} });
    assert.deepEqual(ping2, { jsonrpc: "2.0", id: 1, result: {} });
  });

  it("answers the call in flight with an upstream error, then 404 so the client re-initializes", async () => {
    const { auth, sid } = await session();
    const call = await fetch(url, {
      method: "POST",
      headers: { ...auth, "mcp-session-id": sid },
      body: JSON.stringify({ jsonrpc: "2.0", id: 2, method: "tools/call", params: { name: "crash", arguments: {} } }),
    });
    const answer = (await call.json()) as { error?: { code: number; data?: { code?: string } } };
    assert.equal(answer.error?.code, -32603);
    assert.equal(answer.error?.data?.code, "upstream_closed");
    const next = await fetch(url, {
      method: "POST",
      headers: { ...auth, "mcp-session-id": sid },
      body: JSON.stringify({ jsonrpc: "2.0", id: 3, method: "tools/list", params: {} }),
    });
    assert.equal(next.status, 404);
  });
});
