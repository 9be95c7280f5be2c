/**
 * Issue 5 item 5 end to end: the gateway's JWKS handling (gateway/auth, unit-tested in
 * test/unit/auth/jwks-refresh.test.ts) seen through the whole gateway: an IdP key rotation is
 * picked up without a restart, unknown kids cannot make the gateway hammer the IdP, and an IdP
 * outage is survived on cached keys until they are too old, then refused with 503 (not 401).
 * The gateway and the IdP share a clock the test moves forward, so no test waits for real time.
 */
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startDemoUpstream } from "../../demo/upstream.js";
import { parseConfig } from "../../gateway/config/index.js";
import { startGateway, type RunningGateway } from "../../gateway/compose/index.js";
import type { Clock } from "../../gateway/shared/clock.js";
import { startFakeIdp, type FakeIdp } from "../fakes/jwks.js";
import { defaultBundle, freePort } from "../support/stack.js";

const INIT = { jsonrpc: "2.0", id: 1, method: "initialize", params: { protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: "idp-it", version: "1" } } };
const MIN = 60_000;

describe("identity resilience through the gateway (JWKS rotation, kid flood, IdP outage)", function () {
  this.timeout(30_000);
  let offset = 0;
  const clock: Clock = { now: () => Date.now() + offset, monotonicNs: () => process.hrtime.bigint() };
  let gateway: RunningGateway;
  let idp: FakeIdp;
  let demo: Awaited<ReturnType<typeof startDemoUpstream>>;

  before(async () => {
    const { bundle, dir } = await defaultBundle();
    const work = mkdtempSync(join(tmpdir(), "pc-idp-"));
    demo = await startDemoUpstream();
    const port = await freePort();
    const audience = `http://127.0.0.1:${port}/mcp`;
    idp = await startFakeIdp({ audience, clock });
    const config = parseConfig(
      {
        listen: { host: "127.0.0.1", port },
        auth: { issuer: idp.issuer, audience, jwksUri: idp.jwksUri, algorithms: ["RS256"] },
        policy: { bundle, verificationKey: join(dir, "pub.pem") },
        upstreams: { demo: { url: demo.url } },
        audit: { file: join(work, "audit.jsonl") },
      },
      join(work, "gateway.yaml"),
    );
    gateway = await startGateway(config, { clock, log: () => undefined });
  });
  after(async () => {
    await gateway?.close();
    await demo?.close();
    await idp?.close();
  });

  const init = async (token: string) => {
    const res = await fetch(`${gateway.url}/mcp/demo`, {
      method: "POST",
      headers: { "content-type": "application/json", accept: "application/json, text/event-stream", authorization: `Bearer ${token}` },
      body: JSON.stringify(INIT),
    });
    await res.text();
    return { status: res.status, retryAfter: res.headers.get("retry-after"), challenge: res.headers.get("www-authenticate") ?? "" };
  };
  const mint = () => idp.mint({ sub: "alice", roles: ["analyst"], scope: "mcp:tools" });

  it("picks up a rotated signing key without a restart, once the unknown-kid throttle allows a refresh", async () => {
    assert.equal((await init(mint())).status, 200);
    offset += 31_000; // past the 30 s unknown-kid refresh interval since the startup fetch
    const fetches = idp.jwksFetchCount;
    idp.rotate({ keepPrevious: true });
    assert.equal((await init(mint())).status, 200, "a token signed with the new key is accepted");
    assert.equal(idp.jwksFetchCount, fetches + 1, "one refresh taught the gateway the new key");
  });

  it("a flood of tokens with unknown kids costs the IdP at most one fetch per interval", async () => {
    offset += 31_000;
    const fetches = idp.jwksFetchCount;
    const results = await Promise.all(Array.from({ length: 40 }, () => init(idp.mint({ sub: "mallory" }, { kid: `kid-${randomUUID()}` }))));
    assert.ok(results.every((r) => r.status === 401 && /invalid_token/.test(r.challenge)));
    assert.ok(idp.jwksFetchCount - fetches <= 1, `${idp.jwksFetchCount - fetches} JWKS fetches for 40 unknown kids`);
    // Genuine tokens keep working during the flood.
    assert.equal((await init(mint())).status, 200);
  });

  it("survives an IdP outage on cached keys, then fails closed with 503 when they are too old, and recovers", async () => {
    idp.setAvailable(false);
    try {
      offset += 15 * MIN; // past the 10 min freshness: stale keys are served while refreshes fail
      assert.equal((await init(mint())).status, 200, "stale keys still verify during the outage");
      offset += 60 * MIN; // past the 1 h stale allowance
      const refused = await init(mint());
      assert.equal(refused.status, 503, "no usable keys: temporarily unavailable, not 'your token is bad'");
      assert.ok(refused.retryAfter !== null);
    } finally {
      idp.setAvailable(true);
    }
    offset += 31_000; // the failed refresh is retried after the interval
    assert.equal((await init(mint())).status, 200, "back in service when the IdP is");
  });
});
