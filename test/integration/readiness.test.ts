import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startDemoUpstream } from "../../demo/upstream.js";
import { startGateway, type RunningGateway } from "../../gateway/compose/index.js";
import { parseConfig } from "../../gateway/config/index.js";
import { startFakeIdp, type FakeIdp } from "../fakes/jwks.js";
import { defaultBundle, freePort } from "../support/stack.js";

/** GET /readyz (contract 6): 200 only when this replica can decide and record; 503 naming what fails. */
describe("readiness: /readyz names each failing check while /healthz stays live", function () {
  this.timeout(30_000);
  let idp: FakeIdp;
  let demo: Awaited<ReturnType<typeof startDemoUpstream>>;
  const gateways: RunningGateway[] = [];

  before(async () => {
    idp = await startFakeIdp({ audience: "http://127.0.0.1/mcp" });
    demo = await startDemoUpstream();
  });
  after(async () => {
    await Promise.all(gateways.map((g) => g.close()));
    await demo.close();
    await idp.close();
  });

  async function gateway(overrides: { jwksUri?: string; sessions?: Record<string, unknown>; rateLimits?: Record<string, unknown>; kafka?: Record<string, unknown> } = {}): Promise<RunningGateway> {
    const { bundle, dir } = await defaultBundle();
    const work = mkdtempSync(join(tmpdir(), "pc-ready-"));
    const config = parseConfig(
      {
        listen: { host: "127.0.0.1", port: 0 },
        auth: { issuer: idp.issuer, audience: "http://127.0.0.1/mcp", jwksUri: overrides.jwksUri ?? idp.jwksUri, algorithms: ["RS256"] },
        policy: { bundle, verificationKey: join(dir, "pub.pem") },
        upstreams: { demo: { url: demo.url } },
        audit: { file: join(work, "audit.jsonl"), ...(overrides.kafka && { kafka: overrides.kafka }) },
        ...(overrides.sessions && { sessions: overrides.sessions }),
        ...(overrides.rateLimits && { rateLimits: overrides.rateLimits }),
      },
      join(work, "gateway.yaml"),
    );
    const g = await startGateway(config, { log: () => undefined });
    gateways.push(g);
    return g;
  }

  const get = async (url: string) => {
    const res = await fetch(url);
    return { status: res.status, body: (await res.json()) as { status: string; checks: Record<string, { ok: boolean; reason?: string }> } };
  };

  it("is 200 with every check passing when the bundle, the issuer's keys and the audit path are fine", async () => {
    const g = await gateway();
    const r = await get(`${g.url}/readyz`);
    assert.equal(r.status, 200);
    assert.equal(r.body.status, "ready");
    assert.deepEqual(Object.keys(r.body.checks).sort(), ["audit", "bundle", "issuer_keys"]);
    assert.ok(Object.values(r.body.checks).every((c) => c.ok));
  });

  it("is 503 naming issuer_keys when the JWKS cannot be fetched, while /healthz stays 200", async () => {
    const dead = await freePort();
    const g = await gateway({ jwksUri: `http://127.0.0.1:${dead}/jwks.json` });
    const r = await get(`${g.url}/readyz`);
    assert.equal(r.status, 503);
    assert.equal(r.body.status, "not_ready");
    assert.equal(r.body.checks.issuer_keys?.ok, false);
    assert.match(r.body.checks.issuer_keys?.reason ?? "", /not loaded.*jwks\.json/);
    assert.equal(r.body.checks.bundle?.ok, true);
    assert.equal((await fetch(`${g.url}/healthz`)).status, 200);
  });

  it("is 503 naming session_store when the shared session store is unreachable and session requests would be refused", async () => {
    const dead = await freePort();
    const g = await gateway({ sessions: { store: "redis", onRedisDown: "refuse" }, rateLimits: { store: "local", redis: { url: `redis://127.0.0.1:${dead}` } } });
    const r = await get(`${g.url}/readyz`);
    assert.equal(r.status, 503);
    assert.equal(r.body.checks.session_store?.ok, false);
    assert.match(r.body.checks.session_store?.reason ?? "", /Redis/);
  });

  it("is 503 naming audit_kafka when the audit broker cannot be reached (events wait in the outbox)", async function () {
    this.timeout(30_000);
    const dead = await freePort();
    const g = await gateway({ kafka: { brokers: [`127.0.0.1:${dead}`], topic: "mcp.audit" } });
    let r = await get(`${g.url}/readyz`);
    for (let i = 0; i < 20 && r.body.checks.audit_kafka?.ok !== false; i++) {
      await new Promise((res) => setTimeout(res, 250));
      r = await get(`${g.url}/readyz`);
    }
    assert.equal(r.status, 503);
    assert.equal(r.body.checks.audit_kafka?.ok, false);
    assert.match(r.body.checks.audit_kafka?.reason ?? "", /unreachable|not started|127\.0\.0\.1/);
  });
});
