/**
 * `portcullis config check --online` as an operator runs it (the built CLI in a child process):
 * a real opa-built signed bundle, a real JWKS server on 127.0.0.1, a live HTTP upstream and dead
 * ports for what is down. No Kafka is started: the broker check is tried against a dead port only.
 */
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startFakeIdp, type FakeIdp } from "../fakes/jwks.js";
import { runPortcullis, showRun } from "../support/cli.js";
import { defaultBundle, freePort } from "../support/stack.js";

describe("portcullis config check --online", function () {
  this.timeout(60_000);
  const work = mkdtempSync(join(tmpdir(), "pc-config-online-"));
  let idp: FakeIdp;
  let upstream: Server;
  let upstreamUrl: string;
  let deadPort: number;
  let bundle: { bundle: string; dir: string };

  before(async () => {
    bundle = await defaultBundle();
    idp = await startFakeIdp({ audience: "http://127.0.0.1:8080/mcp" });
    // Stands in for an MCP endpoint: it answers HEAD the way Streamable HTTP servers do (405).
    upstream = createServer((req, res) => res.writeHead(req.method === "POST" ? 400 : 405).end());
    await new Promise<void>((resolve) => upstream.listen(0, "127.0.0.1", resolve));
    const a = upstream.address();
    upstreamUrl = `http://127.0.0.1:${typeof a === "object" && a ? a.port : 0}/mcp`;
    deadPort = await freePort();
  });
  after(async () => {
    await idp?.close();
    await new Promise((resolve) => upstream?.close(resolve));
  });

  function config(name: string, over: { jwksUri?: string; upstreams?: Record<string, unknown>; kafka?: unknown } = {}): string {
    const file = join(work, `${name}.yaml`);
    const doc = {
      auth: { issuer: idp.issuer, audience: "http://127.0.0.1:8080/mcp", jwksUri: over.jwksUri ?? idp.jwksUri, algorithms: ["RS256"] },
      policy: { bundle: bundle.bundle, verificationKey: join(bundle.dir, "pub.pem") },
      upstreams: over.upstreams ?? { live: { url: upstreamUrl } },
      audit: { file: "var/audit.jsonl", ...(over.kafka ? { kafka: over.kafka } : {}) },
    };
    writeFileSync(file, JSON.stringify(doc, null, 2));
    return file;
  }

  it("exit 0 when the JWKS has keys and every HTTP upstream answers; offline checks included", async () => {
    const r = await runPortcullis(["config", "check", "--config", config("good"), "--online", "--timeout", "3s"]);
    assert.equal(r.code, 0, showRun(r));
    assert.match(r.stdout, /OK +policy\.bundle +.*signature verified .*revision "test-rev-1", compiled/);
    assert.match(r.stdout, new RegExp(`OK +auth\\.jwksUri +${idp.jwksUri.replace(/[.]/g, "\\.")}: 1 usable key`));
    assert.match(r.stdout, /OK +upstreams\.live\.url +.*reachable \(HEAD answered 405\)/);
    assert.match(r.stdout, /^ok: \d+ checks passed$/m);
    assert.equal(r.stderr, "");
  });

  it("exit 2 naming each unreachable dependency: the JWKS, an HTTP upstream, the Kafka broker", async () => {
    const dead = `127.0.0.1:${deadPort}`;
    const file = config("down", {
      jwksUri: `http://${dead}/jwks.json`,
      upstreams: { live: { url: upstreamUrl }, gone: { url: `http://${dead}/mcp` } },
      kafka: { brokers: [dead], topic: "mcp.audit" },
    });
    const started = Date.now();
    const r = await runPortcullis(["config", "check", "--config", file, "--online", "--timeout", "2s"]);
    assert.equal(r.code, 2, showRun(r));
    assert.ok(Date.now() - started < 20_000, "the checks are bounded by --timeout");
    assert.match(r.stdout, new RegExp(`FAIL +auth\\.jwksUri +http://${dead}/jwks\\.json: .*ECONNREFUSED`));
    assert.match(r.stdout, new RegExp(`FAIL +upstreams\\.gone\\.url +http://${dead}/mcp: ECONNREFUSED`));
    assert.match(r.stdout, /OK +upstreams\.live\.url/);
    assert.match(r.stdout, new RegExp(`FAIL +audit\\.kafka\\.brokers +${dead}: cannot connect: .*(ECONNREFUSED|Connection error)`));
    assert.ok(r.stderr.startsWith(`portcullis: config error: ${file}: \n`), showRun(r));
    for (const field of ["auth.jwksUri", "upstreams.gone.url", "audit.kafka.brokers"]) assert.match(r.stderr, new RegExp(`^ {2}${field.replace(/[.]/g, "\\.")}: `, "m"));
  });

  it("a JWKS that answers with an error is a failure naming the status", async () => {
    idp.setAvailable(false);
    try {
      const r = await runPortcullis(["config", "check", "--config", config("idp-down"), "--online", "--timeout", "3s"]);
      assert.equal(r.code, 2, showRun(r));
      assert.match(r.stdout, /FAIL +auth\.jwksUri +.*503/);
    } finally {
      idp.setAvailable(true);
    }
  });
});
