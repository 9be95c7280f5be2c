/**
 * `serve`'s log as an operator sees it: every stderr line is JSON, the level comes from
 * `logging.level` and `PORTCULLIS_LOG_LEVEL` wins over it, and the "serving" line is always there.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { startDemoUpstream } from "../../demo/upstream.js";
import { startFakeIdp, type FakeIdp } from "../fakes/jwks.js";
import { spawnServe } from "../support/serve.js";
import { defaultBundle, freePort, repoRoot } from "../support/stack.js";

describe("serve logging (logging.level, PORTCULLIS_LOG_LEVEL)", function () {
  this.timeout(60_000);
  let idp: FakeIdp;
  const work = mkdtempSync(join(tmpdir(), "pc-serve-log-"));
  before(async () => {
    idp = await startFakeIdp({ audience: "http://127.0.0.1:8080/mcp" });
  });
  after(async () => idp?.close());

  /** Starts serve, waits for its serving line, stops it; returns the parsed stderr lines. */
  async function serveOnce(level: string | undefined, env: NodeJS.ProcessEnv): Promise<Array<Record<string, unknown>>> {
    const { bundle, dir } = await defaultBundle();
    const file = join(work, `gw-${level ?? "default"}-${Object.keys(env).length}.yaml`);
    writeFileSync(
      file,
      JSON.stringify({
        listen: { host: "127.0.0.1", port: await freePort() },
        auth: { issuer: idp.issuer, audience: "http://127.0.0.1:8080/mcp", jwksUri: idp.jwksUri, algorithms: ["RS256"] },
        policy: { bundle, verificationKey: join(dir, "pub.pem") },
        upstreams: { demo: { url: "http://127.0.0.1:1/mcp" } },
        audit: { file: "audit.jsonl" },
        ...(level ? { logging: { level } } : {}),
      }),
    );
    const childEnv = { ...process.env, ...env };
    if (!("PORTCULLIS_LOG_LEVEL" in env)) delete childEnv.PORTCULLIS_LOG_LEVEL;
    const child = spawn(process.execPath, [join(repoRoot, "dist/gateway/cli/main.js"), "serve", "--config", file], { cwd: repoRoot, env: childEnv, stdio: ["ignore", "pipe", "pipe"] });
    let stderr = "";
    let stdout = "";
    child.stdout.on("data", (c: Buffer) => (stdout += c.toString()));
    const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
    await new Promise<void>((resolve, reject) => {
      child.stderr.on("data", (c: Buffer) => {
        stderr += c.toString();
        if (/serving http/.test(stderr)) resolve();
      });
      void exited.then((code) => reject(new Error(`serve exited ${code}:\n${stderr}`)));
    });
    child.kill("SIGTERM");
    assert.equal(await exited, 0, stderr);
    assert.equal(stdout, "", "stdout stays free");
    return stderr.split("\n").filter((l) => l.length > 0).map((l) => JSON.parse(l) as Record<string, unknown>);
  }

  it("logging.level warn: no info lines but the serving line; every line is JSON", async () => {
    const lines = await serveOnce("warn", {});
    const serving = lines.filter((l) => String(l.msg).includes(" serving http://127.0.0.1:"));
    assert.equal(serving.length, 1);
    assert.deepEqual(serving[0]!.endpoints, [String(serving[0]!.msg).split(" serving ")[1]]);
    assert.deepEqual(lines.filter((l) => l.level === "info" && l !== serving[0]), []);
  });

  it("PORTCULLIS_LOG_LEVEL=debug wins over logging.level", async () => {
    const lines = await serveOnce("error", { PORTCULLIS_LOG_LEVEL: "debug" });
    assert.ok(lines.some((l) => l.level === "info" && l.msg === "gateway listening"), JSON.stringify(lines));
  });

  it("info by default", async () => {
    const lines = await serveOnce(undefined, {});
    assert.ok(lines.some((l) => l.level === "info" && l.msg === "gateway listening"));
    assert.ok(!lines.some((l) => l.level === "debug"));
  });

  it("one access line per request: method, server, tool, outcome, status, duration, decision id (logging.access, on by default)", async () => {
    const demo = await startDemoUpstream();
    const gw = await spawnServe({
      auth: { issuer: idp.issuer, audience: "http://127.0.0.1:8080/mcp", jwksUri: idp.jwksUri, algorithms: ["RS256"] },
      policy: { bundle: (await defaultBundle()).bundle, verificationKey: join((await defaultBundle()).dir, "pub.pem") },
      upstreams: { demo: { url: demo.url } },
      audit: { file: join(work, "access-audit.jsonl") },
    });
    try {
      const token = idp.mint({ sub: "alice", roles: ["analyst"], scope: "mcp:tools" });
      const transport = new StreamableHTTPClientTransport(new URL(`${gw.url}/mcp/demo`), { requestInit: { headers: { Authorization: `Bearer ${token}` } } });
      const client = new Client({ name: "access-log", version: "1" });
      await client.connect(transport);
      await client.callTool({ name: "echo", arguments: { text: "hi" } });
      await client.callTool({ name: "delete_record", arguments: { id: "1" } }).catch(() => undefined); // hidden from analysts: -32602
      await client.close();
      // The line follows the answer (it is never on the answer's path): give stderr a moment.
      for (let i = 0; i < 40 && gw.stderr().split("\n").filter((l) => l.includes('"msg":"request"') && l.includes('"tools/call"')).length < 2; i++) await new Promise((r) => setTimeout(r, 50));
      const lines = gw.stderr().split("\n").filter((l) => l.includes('"msg":"request"')).map((l) => JSON.parse(l) as Record<string, unknown>);
      const calls = lines.filter((l) => l.method === "tools/call");
      assert.deepEqual(calls.map((l) => [l.server, l.tool, l.outcome, l.status]), [["demo", "echo", "allowed", 200], ["demo", "delete_record", "denied", 200]]);
      for (const l of calls) {
        assert.equal(l.level, "info");
        assert.equal(typeof l.duration_ms, "number");
        assert.match(String(l.decision_id), /^[0-9a-f-]{36}$/);
      }
      assert.ok(lines.some((l) => l.method === "initialize" && l.outcome === "allowed"));
    } finally {
      await gw.stop();
      await demo.close();
    }
  });
});
