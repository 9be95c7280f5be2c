import assert from "node:assert/strict";
import { silentLogger } from "../../../gateway/shared/log.js";
import { AuthError, JwtVerifier, type AuthFailureCode, type JwtVerifierOptions } from "../../../gateway/auth/index.js";
import { EXPECTED_CODE, startFakeIdp, type DefectKind, type FakeIdp } from "../../fakes/jwks.js";

function verifierFor(idp: FakeIdp, overrides: Partial<JwtVerifierOptions> = {}): JwtVerifier {
  return new JwtVerifier({
    issuer: idp.issuer,
    audience: idp.audience,
    jwksUri: idp.jwksUri,
    algorithms: ["RS256"],
    // Most tokens here carry no roles: the once-per-verifier rolesClaim warning is tested on its own.
    log: silentLogger,
    ...overrides,
  });
}

async function rejectsWith(promise: Promise<unknown>, code: AuthFailureCode): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof AuthError, `expected AuthError, got ${String(err)}`);
    assert.equal(err.code, code, `expected ${code}, got ${err.code}: ${err.message}`);
    return true;
  });
}

describe("JwtVerifier", () => {
  let idp: FakeIdp;
  let verifier: JwtVerifier;

  before(async () => {
    idp = await startFakeIdp();
    verifier = verifierFor(idp);
  });
  after(() => idp.close());

  describe("a valid token", () => {
    it("yields the identity with sub, iss, roles, scopes and client_id", async () => {
      const token = idp.mint({ sub: "alice", roles: ["analyst", "auditor"], scope: "mcp:tools mcp:read", client_id: "cli-1" });
      const identity = await verifier.verify(token);
      assert.equal(identity.sub, "alice");
      assert.equal(identity.iss, idp.issuer);
      assert.deepEqual(identity.roles, ["analyst", "auditor"]);
      assert.deepEqual(identity.scopes, ["mcp:tools", "mcp:read"]);
      assert.equal(identity.client_id, "cli-1");
      assert.equal(identity.claims["sub"], "alice");
      assert.equal(identity.expiresAt, identity.claims["exp"]);
    });

    it("accepts an aud array that contains the gateway audience", async () => {
      const identity = await verifier.verify(idp.mint({ aud: ["https://other.test", idp.audience] }));
      assert.equal(identity.sub, "agent-1");
    });

    it("rejects an aud array that lacks the gateway audience", async () => {
      await rejectsWith(verifier.verify(idp.mint({ aud: ["https://other.test", `${idp.audience}/`] })), "token_bad_audience");
    });

    it("reads scopes from scp as an array or a space-separated string, and client_id from azp", async () => {
      const fromArray = await verifier.verify(idp.mint({ scp: ["a", "b"], azp: "web-app" }));
      assert.deepEqual(fromArray.scopes, ["a", "b"]);
      assert.equal(fromArray.client_id, "web-app");
      const fromString = await verifier.verify(idp.mint({ scp: "x  y" }));
      assert.deepEqual(fromString.scopes, ["x", "y"]);
      assert.equal(fromString.client_id, null);
    });

    it("has no roles, scopes or client_id when the claims are absent", async () => {
      const identity = await verifier.verify(idp.mint());
      assert.deepEqual([identity.roles, identity.scopes, identity.client_id], [[], [], null]);
    });

    it("returns a frozen identity, so a cached one cannot be altered by a caller", async () => {
      const identity = await verifier.verify(idp.mint({ roles: ["a"] }));
      assert.ok(Object.isFrozen(identity) && Object.isFrozen(identity.roles) && Object.isFrozen(identity.claims));
    });

    it("accepts a token without kid when the JWKS holds exactly one key", async () => {
      assert.equal((await verifier.verify(idp.mint({}, { kid: null }))).sub, "agent-1");
    });
  });

  describe("roles claim", () => {
    const cases: Array<{ note: string; rolesClaim: string; claims: Record<string, unknown>; roles: string[] }> = [
      { note: "dotted path", rolesClaim: "realm_access.roles", claims: { realm_access: { roles: ["admin"] } }, roles: ["admin"] },
      { note: "single string", rolesClaim: "role", claims: { role: "analyst" }, roles: ["analyst"] },
      { note: "namespaced claim containing dots", rolesClaim: "https://example.com/roles", claims: { "https://example.com/roles": ["ops"] }, roles: ["ops"] },
      { note: "absent path", rolesClaim: "realm_access.roles", claims: { realm_access: {} }, roles: [] },
      { note: "path through a non-object", rolesClaim: "a.b", claims: { a: "x" }, roles: [] },
    ];
    for (const c of cases) {
      it(`reads roles from ${c.note}`, async () => {
        const identity = await verifierFor(idp, { rolesClaim: c.rolesClaim }).verify(idp.mint(c.claims));
        assert.deepEqual(identity.roles, c.roles);
      });
    }

    it("rejects a roles claim that is neither a string nor an array of strings", async () => {
      const v = verifierFor(idp, { rolesClaim: "realm_access.roles" });
      await rejectsWith(v.verify(idp.mint({ realm_access: { roles: ["a", 1] } })), "token_bad_claims");
      await rejectsWith(v.verify(idp.mint({ realm_access: { roles: { admin: true } } })), "token_bad_claims");
    });
  });

  describe("refused tokens", () => {
    for (const kind of Object.keys(EXPECTED_CODE) as DefectKind[]) {
      it(`refuses the ${kind} defect with ${EXPECTED_CODE[kind]}`, async () => {
        await rejectsWith(verifier.verify(idp.mintDefective(kind)), EXPECTED_CODE[kind]);
      });
    }

    const more: Array<{ note: string; token: () => string; code: AuthFailureCode }> = [
      { note: "an empty token", token: () => "", code: "token_missing" },
      { note: "a token with four parts", token: () => `${idp.mint()}.x`, code: "token_malformed" },
      { note: "a header that is not JSON", token: () => `bm90IGpzb24.${idp.mint().split(".")[1]}.c2ln`, code: "token_malformed" },
      { note: "a payload that is a JSON string", token: () => `${idp.mint().split(".")[0]}.${Buffer.from('"x"').toString("base64url")}.c2ln`, code: "token_malformed" },
      { note: "an oversized token", token: () => "a".repeat(20_000), code: "token_malformed" },
      { note: "a crit header", token: () => idp.mint({}, { header: { crit: ["exp"] } }), code: "token_malformed" },
      { note: "a non-string kid", token: () => idp.mint({}, { header: { kid: 7 } }), code: "token_malformed" },
      { note: "an RS256 header with an empty signature", token: () => `${idp.mint().split(".").slice(0, 2).join(".")}.`, code: "token_bad_signature" },
      { note: "exp that is a string", token: () => idp.mint({ exp: "tomorrow" }), code: "token_bad_claims" },
      { note: "a missing iss", token: () => idp.mint({ iss: undefined }), code: "token_bad_issuer" },
      { note: "an iss differing by a trailing slash", token: () => idp.mint({ iss: `${idp.issuer}/` }), code: "token_bad_issuer" },
      { note: "a missing aud", token: () => idp.mint({ aud: undefined }), code: "token_bad_audience" },
      { note: "an empty sub", token: () => idp.mint({ sub: "" }), code: "token_bad_claims" },
      { note: "a scope that is not a string", token: () => idp.mint({ scope: ["a"] }), code: "token_bad_claims" },
    ];
    for (const c of more) {
      it(`maps ${c.note} to ${c.code}`, async () => {
        await rejectsWith(verifier.verify(c.token()), c.code);
      });
    }

    it("rejects an alg the allow-list has but the JWK pins otherwise", async () => {
      const v = verifierFor(idp, { algorithms: ["RS256", "RS512"] });
      await rejectsWith(v.verify(idp.mint({}, { alg: "RS512" })), "token_bad_algorithm");
    });

    it("rejects an RS256 token when only ES256 is allowed", async () => {
      await rejectsWith(verifierFor(idp, { algorithms: ["ES256"] }).verify(idp.mint()), "token_bad_algorithm");
    });

    it("accepts a token expired by less than the clock tolerance, and not beyond it", async () => {
      const now = Math.floor(Date.now() / 1000);
      const v = verifierFor(idp, { clockToleranceSeconds: 30 });
      assert.equal((await v.verify(idp.mint({ exp: now - 10 }))).sub, "agent-1");
      await rejectsWith(v.verify(idp.mint({ exp: now - 60 })), "token_expired");
    });

    it("never fetches the JWKS for structurally bad or disallowed-alg tokens", async () => {
      const fresh = verifierFor(idp);
      const before = idp.jwksFetchCount;
      for (const kind of ["garbage", "two_parts", "bad_base64", "alg_none", "hs256_public_key"] as const) {
        await assert.rejects(fresh.verify(idp.mintDefective(kind)));
      }
      assert.equal(idp.jwksFetchCount, before);
    });
  });

  describe("EC keys", () => {
    let ec: FakeIdp;
    before(async () => {
      ec = await startFakeIdp({ keyType: "EC" });
    });
    after(() => ec.close());

    it("verifies an ES256 token and refuses every defect with the same codes", async () => {
      const v = verifierFor(ec, { algorithms: ["ES256"] });
      assert.equal((await v.verify(ec.mint({ sub: "bob" }))).sub, "bob");
      for (const kind of Object.keys(EXPECTED_CODE) as DefectKind[]) {
        await rejectsWith(v.verify(ec.mintDefective(kind)), EXPECTED_CODE[kind]);
      }
    });
  });

  describe("construction", () => {
    const base = { issuer: "https://idp.test/", audience: "https://gw.test/mcp", jwksUri: "https://idp.test/jwks.json" };
    const refused: Array<{ note: string; options: Partial<JwtVerifierOptions>; message: RegExp }> = [
      { note: "alg none", options: { algorithms: ["RS256", "none"] }, message: /"none"/ },
      { note: "HS256", options: { algorithms: ["HS256"] }, message: /HS256.*HMAC/ },
      { note: "lower-case hs384", options: { algorithms: ["hs384"] }, message: /HMAC/ },
      { note: "an unknown algorithm", options: { algorithms: ["RS999"] }, message: /unknown algorithm "RS999", expected one of ES256/ },
      { note: "EdDSA", options: { algorithms: ["EdDSA"] }, message: /EdDSA is not supported/ },
      { note: "an empty allow-list", options: { algorithms: [] }, message: /at least one/ },
      { note: "a plain-http JWKS off loopback", options: { jwksUri: "http://idp.test/jwks.json" }, message: /https/ },
      { note: "an unparsable JWKS URI", options: { jwksUri: "not a url" }, message: /not a valid URL/ },
      { note: "a negative clock tolerance", options: { clockToleranceSeconds: -1 }, message: /clockToleranceSeconds/ },
      { note: "an empty audience", options: { audience: "" }, message: /audience/ },
    ];
    for (const c of refused) {
      it(`refuses ${c.note}`, () => {
        assert.throws(() => new JwtVerifier({ ...base, algorithms: ["RS256"], ...c.options }), c.message);
      });
    }

    it("accepts every supported asymmetric algorithm and a loopback http JWKS", () => {
      const algorithms = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"];
      assert.doesNotThrow(() => new JwtVerifier({ ...base, algorithms, jwksUri: "http://127.0.0.1:9/jwks.json" }));
    });
  });
});
