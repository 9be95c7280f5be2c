/**
 * SIGTERM on `portcullis serve`: stop accepting, let the calls in flight finish and be audited,
 * flush the audit log, exit 0; a call that outlives shutdown.drainTimeoutMs is cut.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startFakeIdp, type FakeIdp } from "../fakes/jwks.js";
import { startSlowUpstream, type SlowUpstream } from "../fakes/slow-upstream.js";
import { mcpCall, mcpInitialize } from "../support/mcp-http.js";
import { spawnServe } from "../support/serve.js";
import { defaultBundle } from "../support/stack.js";

async function until(cond: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe("graceful shutdown of portcullis serve", function () {
  this.timeout(30_000);
  let idp: FakeIdp;
  let upstream: SlowUpstream;

  before(async () => {
    idp = await startFakeIdp({ audience: "http://gateway.test/mcp" });
    upstream = await startSlowUpstream();
  });
  after(async () => {
    await upstream.close();
    await idp.close();
  });

  async function serve(drainTimeoutMs: number) {
    const { bundle, dir } = await defaultBundle();
    const auditFile = join(mkdtempSync(join(tmpdir(), "pc-drain-")), "audit.jsonl");
    const gw = await spawnServe({
      auth: { issuer: idp.issuer, audience: idp.audience, jwksUri: idp.jwksUri, algorithms: ["RS256"] },
      policy: { bundle, verificationKey: join(dir, "pub.pem") },
      upstreams: { demo: { url: upstream.url } },
      audit: { file: auditFile },
      shutdown: { drainTimeoutMs },
    });
    const token = idp.mint({ sub: "alice", roles: ["analyst"], scope: "mcp:tools" });
    const endpoint = `${gw.url}/mcp/demo`;
    const session = await mcpInitialize(endpoint, token);
    return { gw, auditFile, token, endpoint, session };
  }

  it("lets an in-flight call finish, refuses new connections, audits the call and exits 0", async () => {
    const { gw, auditFile, token, endpoint, session } = await serve(10_000);
    const started = upstream.started;
    const inFlight = mcpCall(endpoint, token, session, "echo", { text: "sleep:800" });
    await until(() => upstream.started > started);
    const t0 = Date.now();
    const exited = gw.stop("SIGTERM");
    // Listening stops at once: a new connection is refused while the call drains.
    await until(() => gw.stderr().includes("draining in-flight calls"));
    await assert.rejects(fetch(`${gw.url}/healthz`), "no new connections during the drain");

    const answer = await inFlight;
    assert.equal(answer.status, 200);
    assert.deepEqual(answer.body.result?.content, [{ type: "text", text: "sleep:800" }], "the in-flight call got its real answer");
    assert.equal(await exited, 0, "exit code 0");
    assert.ok(Date.now() - t0 < 5000, "exits once the drain is done, not at the deadline");

    const events = readFileSync(auditFile, "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l) as { outcome: string; mcp: { method: string; tool: string | null } });
    const call = events.filter((e) => e.mcp.method === "tools/call");
    assert.equal(call.length, 1, "the drained call is on record");
    assert.equal(call[0]!.outcome, "allowed");
  });

  it("cuts a call that outlives shutdown.drainTimeoutMs and still exits 0", async () => {
    const { gw, token, endpoint, session } = await serve(300);
    const started = upstream.started;
    // Cut means: the upstream exchange is aborted; the agent gets an error answer or a closed connection.
    const inFlight = mcpCall(endpoint, token, session, "echo", { text: "sleep:5000" }).then(
      (a) => (a.body.result && !a.body.result.isError ? "answered" : "cut"),
      () => "cut",
    );
    await until(() => upstream.started > started);
    const t0 = Date.now();
    assert.equal(await gw.stop("SIGTERM"), 0);
    const took = Date.now() - t0;
    assert.ok(took < 3000, `exited ${took} ms after SIGTERM (deadline 300 ms)`);
    assert.equal(await inFlight, "cut");
    assert.match(gw.stderr(), /drain deadline passed/);
  });
});
