/**
 * Issue 5 item 3 end to end: the gateway calls an upstream with its own credentials (OAuth client
 * credentials from a token endpoint, cached, renewed once on a 401) and, optionally, a signed
 * identity assertion; the agent's token and cookies never reach the upstream. The upstream is the
 * demo server recording every header it receives and refusing tokens the token endpoint did not
 * issue (or revoked).
 */
import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import type { IncomingHttpHeaders } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import jwt from "jsonwebtoken";
import { startDemoUpstream } from "../../demo/upstream.js";
import type { AuditEvent } from "../../gateway/audit/index.js";
import { parseConfig } from "../../gateway/config/index.js";
import { startGateway, type RunningGateway } from "../../gateway/compose/index.js";
import type { IdentityAssertionClaims } from "../../gateway/upstream-auth/index.js";
import { startFakeIdp, type FakeIdp } from "../fakes/jwks.js";
import { startFakeTokenEndpoint, type FakeTokenEndpoint } from "../fakes/oauth-token-endpoint.js";
import { defaultBundle, freePort } from "../support/stack.js";

const INIT = { jsonrpc: "2.0", id: 1, method: "initialize", params: { protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: "creds-it", version: "1" } } };

describe("upstream credentials (client credentials, identity assertion)", function () {
  this.timeout(30_000);
  let gateway: RunningGateway;
  let idp: FakeIdp;
  let as: FakeTokenEndpoint;
  let demo: Awaited<ReturnType<typeof startDemoUpstream>>;
  let publicKeyPem: string;
  const seen: IncomingHttpHeaders[] = [];
  const events: AuditEvent[] = [];

  before(async () => {
    const { bundle, dir } = await defaultBundle();
    const work = mkdtempSync(join(tmpdir(), "pc-creds-"));
    as = await startFakeTokenEndpoint({ clientId: "portcullis gw", clientSecret: "s3cret:with/odd&chars" });
    demo = await startDemoUpstream({
      onRequest: (h) => void seen.push(h),
      authorize: (h) => as.isValid((h.authorization ?? "").replace(/^Bearer /, "")),
    });
    const keys = generateKeyPairSync("ec", { namedCurve: "P-256" });
    writeFileSync(join(work, "identity.pem"), keys.privateKey.export({ type: "pkcs8", format: "pem" }));
    publicKeyPem = keys.publicKey.export({ type: "spki", format: "pem" }).toString();
    const port = await freePort();
    const audience = `http://127.0.0.1:${port}/mcp`;
    idp = await startFakeIdp({ audience });
    const config = parseConfig(
      {
        listen: { host: "127.0.0.1", port },
        auth: { issuer: idp.issuer, audience, jwksUri: idp.jwksUri, algorithms: ["RS256"] },
        policy: { bundle, verificationKey: join(dir, "pub.pem") },
        upstreams: {
          demo: {
            url: demo.url,
            auth: { type: "client_credentials", tokenUrl: as.tokenUrl, clientId: "portcullis gw", clientSecret: "s3cret:with/odd&chars", scope: "mcp.read", audience: "demo-api" },
            identityAssertion: { privateKey: join(work, "identity.pem"), ttlSeconds: 45, header: "X-Portcullis-Identity", keyId: "gw-1" },
          },
        },
        audit: { file: join(work, "audit.jsonl") },
      },
      join(work, "gateway.yaml"),
    );
    gateway = await startGateway(config, { log: () => undefined, sinks: [{ name: "test", write: async (e: AuditEvent) => void events.push(e), close: async () => undefined }] });
  });

  after(async () => {
    await gateway?.close();
    await demo?.close();
    await as?.close();
    await idp?.close();
  });

  const post = async (body: unknown, headers: Record<string, string>) => {
    const res = await fetch(`${gateway.url}/mcp/demo`, {
      method: "POST",
      headers: { "content-type": "application/json", accept: "application/json, text/event-stream", ...headers },
      body: JSON.stringify(body),
    });
    return { status: res.status, sid: res.headers.get("mcp-session-id"), json: (await res.json()) as { result?: any; error?: any } };
  };
  const session = async (token: string) => {
    const init = await post(INIT, { authorization: `Bearer ${token}`, cookie: "sid=agent-cookie" });
    assert.equal(init.status, 200, JSON.stringify(init.json));
    return init.sid!;
  };
  const call = (token: string, sid: string, id: number, text: string) =>
    post({ jsonrpc: "2.0", id, method: "tools/call", params: { name: "echo", arguments: { text } } }, { authorization: `Bearer ${token}`, cookie: "sid=agent-cookie", "mcp-session-id": sid });

  it("sends a token from the token endpoint, fetched once and cached, never the agent's token or cookies", async () => {
    const token = idp.mint({ sub: "alice", roles: ["analyst"], scope: "mcp:tools", client_id: "alice-agent" });
    const sid = await session(token);
    for (let i = 0; i < 5; i++) {
      const r = await call(token, sid, 10 + i, `hello ${i}`);
      assert.equal(r.json.result?.content?.[0]?.text, `hello ${i}`, JSON.stringify(r.json));
    }
    assert.equal(as.requests.length, 1, "the token is cached across requests");
    const req = as.requests[0]!;
    assert.deepEqual(req.form, { grant_type: "client_credentials", scope: "mcp.read", audience: "demo-api" }, "client_secret_basic: no secret in the form");
    assert.match(req.headers.authorization ?? "", /^Basic /);
    const all = JSON.stringify(seen);
    assert.ok(!all.includes(token), "agent token reached the upstream");
    assert.ok(!all.includes("agent-cookie"), "agent cookie reached the upstream");
    assert.ok(!all.includes(sid), "gateway session id reached the upstream");
    assert.ok(seen.length >= 6 && seen.every((h) => h.authorization === `Bearer ${as.issued[0]}`), JSON.stringify(seen.map((h) => h.authorization)));
  });

  it("renews the token once when the upstream answers 401, and the agent never notices", async () => {
    const token = idp.mint({ sub: "alice", roles: ["analyst"], scope: "mcp:tools" });
    const sid = await session(token);
    const before = as.requests.length;
    as.revokeAll();
    const r = await call(token, sid, 20, "after revocation");
    assert.equal(r.json.result?.content?.[0]?.text, "after revocation", JSON.stringify(r.json));
    assert.equal(as.requests.length, before + 1, "exactly one renewal");
    assert.equal(seen.at(-1)?.authorization, `Bearer ${as.issued.at(-1)}`);
  });

  it("answers upstream_failed (upstream_auth_failed) when the token endpoint is down and the token was revoked", async () => {
    const token = idp.mint({ sub: "alice", roles: ["analyst"], scope: "mcp:tools" });
    const sid = await session(token);
    as.revokeAll();
    as.setAvailable(false);
    try {
      const r = await call(token, sid, 30, "no credentials");
      assert.equal(r.json.error?.code, -32603, JSON.stringify(r.json));
      assert.equal(r.json.error?.data?.code, "upstream_auth_failed");
      assert.ok(!JSON.stringify(r.json).includes("s3cret"), "the client secret leaked into an error");
    } finally {
      as.setAvailable(true);
    }
    const again = await call(token, sid, 31, "recovered");
    assert.equal(again.json.result?.content?.[0]?.text, "recovered", JSON.stringify(again.json));
  });

  it("forwards the verified identity as a short-lived JWT signed by the gateway, naming the decision", async () => {
    const token = idp.mint({ sub: "bob", roles: ["analyst"], scope: "mcp:tools mcp:resources", client_id: "bob-agent" });
    const sid = await session(token);
    const r = await call(token, sid, 40, "who am i");
    assert.equal(r.status, 200);
    const assertion = seen.at(-1)?.["x-portcullis-identity"];
    assert.equal(typeof assertion, "string", "no identity assertion header");
    const claims = jwt.verify(assertion as string, publicKeyPem, { algorithms: ["ES256"], audience: demo.url, issuer: "portcullis" }) as IdentityAssertionClaims;
    const header = jwt.decode(assertion as string, { complete: true })?.header;
    assert.equal(header?.kid, "gw-1");
    assert.equal(claims.sub, "bob");
    assert.equal(claims.idp, idp.issuer);
    assert.equal(claims.client_id, "bob-agent");
    assert.deepEqual(claims.roles, ["analyst"]);
    assert.equal(claims.scope, "mcp:tools mcp:resources");
    assert.equal(claims.exp - claims.iat, 45);
    const decided = events.filter((e) => e.mcp.method === "tools/call" && e.agent.sub === "bob");
    assert.equal(decided.length, 1);
    assert.equal(claims.decision_id, decided[0]!.decision_id, "the assertion names the audited decision");
    // A signature from any other key is refused by the upstream's check.
    const other = generateKeyPairSync("ec", { namedCurve: "P-256" }).publicKey.export({ type: "spki", format: "pem" }).toString();
    assert.throws(() => jwt.verify(assertion as string, other, { algorithms: ["ES256"] }));
    // The initialize of the session carried an assertion too (no decision for it).
    const initHeaders = seen.filter((h) => typeof h["x-portcullis-identity"] === "string").map((h) => jwt.decode(h["x-portcullis-identity"] as string) as IdentityAssertionClaims);
    assert.ok(initHeaders.some((c) => c.sub === "bob" && c.decision_id === undefined));
  });
});
