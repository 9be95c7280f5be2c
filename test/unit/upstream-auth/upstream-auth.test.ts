import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import jwt from "jsonwebtoken";
import { ClientCredentialsSource, IdentityAsserter, UpstreamAuthError, UpstreamAuthorizer, type IdentityAssertionClaims } from "../../../gateway/upstream-auth/index.js";
import { ManualClock, sequentialIds } from "../audit/helpers.js";

type Answer = { status: number; body: unknown } | Error;

/** A scripted token endpoint: answers in order, records every request. */
function fakeFetch(answers: Answer[]) {
  const calls: Array<{ url: string; init: RequestInit }> = [];
  const fn = (async (url: string, init: RequestInit) => {
    calls.push({ url, init });
    const a = answers.length > 1 ? answers.shift()! : answers[0]!;
    if (a instanceof Error) throw a;
    await new Promise((r) => setImmediate(r));
    return new Response(JSON.stringify(a.body), { status: a.status, headers: { "content-type": "application/json" } });
  }) as unknown as typeof fetch;
  return { fn, calls };
}

function source(answers: Answer[], over: Partial<ConstructorParameters<typeof ClientCredentialsSource>[0]> = {}) {
  const clock = new ManualClock();
  const f = fakeFetch(answers);
  const s = new ClientCredentialsSource({ tokenUrl: "https://as.test/token", clientId: "gw", clientSecret: "top-secret", clientAuth: "basic", refreshSkewSeconds: 30, clock, fetch: f.fn, ...over });
  return { s, clock, calls: f.calls };
}

const ok = (token: string, expires_in?: number): Answer => ({ status: 200, body: { access_token: token, token_type: "Bearer", ...(expires_in ? { expires_in } : {}) } });

describe("client credentials source", () => {
  it("caches the token until refreshSkewSeconds before expiry", async () => {
    const { s, clock, calls } = source([ok("t1", 600), ok("t2", 600)]);
    assert.equal(await s.token(), "t1");
    clock.advanceMs(569_000);
    assert.equal(await s.token(), "t1");
    clock.advanceMs(1_000);
    assert.equal(await s.token(), "t2");
    assert.equal(calls.length, 2);
  });

  it("shares one fetch between concurrent callers (single-flight)", async () => {
    const { s, calls } = source([ok("t1", 600)]);
    const got = await Promise.all(Array.from({ length: 20 }, () => s.token()));
    assert.deepEqual(new Set(got), new Set(["t1"]));
    assert.equal(calls.length, 1);
  });

  it("a short-lived token is renewed at half its lifetime, not after it expired", async () => {
    const { s, clock, calls } = source([ok("t1", 10), ok("t2", 10)]);
    await s.token();
    clock.advanceMs(5_000);
    assert.equal(await s.token(), "t2");
    assert.equal(calls.length, 2);
  });

  it("invalidate() drops only the token it names", async () => {
    const { s, calls } = source([ok("t1", 600), ok("t2", 600)]);
    await s.token();
    s.invalidate("someone-else");
    assert.equal(await s.token(), "t1");
    s.invalidate("t1");
    assert.equal(await s.token(), "t2");
    assert.equal(calls.length, 2);
  });

  const bodyCases: Array<{ note: string; clientAuth: "basic" | "post"; scope?: string; audience?: string; form: Record<string, string>; basic: boolean }> = [
    { note: "client_secret_basic keeps the secret out of the form", clientAuth: "basic", form: { grant_type: "client_credentials" }, basic: true },
    { note: "client_secret_post puts id and secret in the form", clientAuth: "post", form: { grant_type: "client_credentials", client_id: "gw", client_secret: "top-secret" }, basic: false },
    { note: "scope and audience are sent when configured", clientAuth: "basic", scope: "a b", audience: "api", form: { grant_type: "client_credentials", scope: "a b", audience: "api" }, basic: true },
  ];
  for (const c of bodyCases) {
    it(c.note, async () => {
      const { s, calls } = source([ok("t", 60)], { clientAuth: c.clientAuth, scope: c.scope, audience: c.audience });
      await s.token();
      const init = calls[0]!.init;
      assert.deepEqual(Object.fromEntries(new URLSearchParams(String(init.body))), c.form);
      const auth = (init.headers as Record<string, string>).authorization;
      assert.equal(auth, c.basic ? `Basic ${Buffer.from("gw:top-secret").toString("base64")}` : undefined);
    });
  }

  const failures: Array<{ note: string; answer: Answer; match: RegExp }> = [
    { note: "endpoint refuses the client", answer: { status: 401, body: { error: "invalid_client" } }, match: /HTTP 401.*invalid_client/ },
    { note: "endpoint unreachable", answer: new Error("ECONNREFUSED"), match: /unreachable: ECONNREFUSED/ },
    { note: "not a bearer token", answer: { status: 200, body: { access_token: "x", token_type: "mac" } }, match: /not a bearer token response/ },
    { note: "no access_token", answer: { status: 200, body: { token_type: "Bearer" } }, match: /not a bearer token response/ },
  ];
  for (const c of failures) {
    it(`fails with UpstreamAuthError, never naming the secret: ${c.note}`, async () => {
      const { s } = source([c.answer]);
      await assert.rejects(s.token(), (err: unknown) => {
        assert.ok(err instanceof UpstreamAuthError);
        assert.equal(err.code, "upstream_auth_failed");
        assert.match(err.message, c.match);
        assert.ok(!err.message.includes("top-secret"));
        return true;
      });
    });
  }
});

describe("upstream authorizer", () => {
  it("a configured bearer replaces an Authorization in static headers, whatever its case", async () => {
    const a = new UpstreamAuthorizer({ Authorization: "Bearer old", "x-api": "1" }, { type: "bearer", token: "new" }, null);
    assert.deepEqual(await a.headers({}), { "x-api": "1", authorization: "Bearer new" });
    assert.equal(a.rejected({ authorization: "Bearer new" }), false, "a static token cannot be renewed");
  });

  it("static headers alone pass through unchanged", async () => {
    const a = UpstreamAuthorizer.fixed({ Authorization: "Bearer static" });
    assert.deepEqual(await a.headers({ agent: { sub: "a", iss: "i", client_id: null, roles: [], scopes: [] } }), { Authorization: "Bearer static" });
    assert.equal(a.isStatic, true);
  });
});

describe("identity assertion", () => {
  const agent = { sub: "alice", iss: "https://idp.test/", client_id: "cli", roles: ["analyst"], scopes: ["mcp:tools", "mcp:prompts"] };
  const keyCases: Array<{ note: string; key: () => { privateKey: any; publicKey: any }; alg: string }> = [
    { note: "RSA → RS256", key: () => generateKeyPairSync("rsa", { modulusLength: 2048 }), alg: "RS256" },
    { note: "P-256 → ES256", key: () => generateKeyPairSync("ec", { namedCurve: "P-256" }), alg: "ES256" },
    { note: "P-384 → ES384", key: () => generateKeyPairSync("ec", { namedCurve: "P-384" }), alg: "ES384" },
  ];
  for (const c of keyCases) {
    it(`signs with the algorithm of the key: ${c.note}`, () => {
      const { privateKey, publicKey } = c.key();
      const clock = new ManualClock();
      const signer = new IdentityAsserter({ privateKeyPem: privateKey.export({ type: "pkcs8", format: "pem" }) as string, ttlSeconds: 60, issuer: "portcullis", audience: "https://files.internal/mcp", clock, ids: sequentialIds("jti") });
      const token = signer.sign(agent, "decision-7");
      const claims = jwt.verify(token, publicKey.export({ type: "spki", format: "pem" }) as string, { algorithms: [c.alg as jwt.Algorithm], clockTimestamp: clock.now() / 1000 }) as IdentityAssertionClaims;
      assert.deepEqual(claims, {
        iss: "portcullis", aud: "https://files.internal/mcp", sub: "alice", iat: Math.floor(clock.now() / 1000), exp: Math.floor(clock.now() / 1000) + 60,
        jti: "jti-1", idp: "https://idp.test/", client_id: "cli", roles: ["analyst"], scope: "mcp:tools mcp:prompts", decision_id: "decision-7",
      });
    });
  }

  it("refuses a key it cannot sign JWTs with", () => {
    const { privateKey } = generateKeyPairSync("ed25519");
    assert.throws(
      () => new IdentityAsserter({ privateKeyPem: privateKey.export({ type: "pkcs8", format: "pem" }) as string, ttlSeconds: 60, issuer: "p", audience: "a", clock: new ManualClock(), ids: sequentialIds() }),
      /need an RSA or EC/,
    );
  });
});
