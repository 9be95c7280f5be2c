import assert from "node:assert/strict";
import { createPublicKey } from "node:crypto";
import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  AuthError,
  ensureDevKeys,
  JwtVerifier,
  jwkThumbprint,
  jwksDocument,
  mintToken,
  parseDuration,
  startDevIssuer,
  type DevIssuer,
} from "../../../gateway/auth/index.js";

describe("development issuer", () => {
  let root: string;
  before(async () => {
    root = await mkdtemp(join(tmpdir(), "portcullis-auth-"));
  });
  after(() => rm(root, { recursive: true, force: true }));

  describe("ensureDevKeys", () => {
    it("creates a 0700 directory and 0600 key files on first use", async () => {
      const dir = join(root, "keys-a", "nested");
      await ensureDevKeys(dir);
      assert.equal((await stat(dir)).mode & 0o777, 0o700);
      assert.equal((await stat(join(dir, "dev-issuer.key.pem"))).mode & 0o777, 0o600);
      assert.equal((await stat(join(dir, "dev-issuer.pub.pem"))).mode & 0o777, 0o600);
    });

    it("returns the same key pair and kid on later calls", async () => {
      const dir = join(root, "keys-b");
      const first = await ensureDevKeys(dir);
      const second = await ensureDevKeys(dir);
      assert.deepEqual(second, first);
      assert.equal(await readFile(join(dir, "dev-issuer.pub.pem"), "utf8"), first.publicKeyPem);
    });

    it("agrees with itself when two callers race on first use", async function () {
      // Three RSA key generations at once: seconds on a loaded 2-core machine (not a timing test).
      this.timeout(30_000);
      const dir = join(root, "keys-race");
      const results = await Promise.all([ensureDevKeys(dir), ensureDevKeys(dir), ensureDevKeys(dir)]);
      assert.equal(new Set(results.map((r) => r.kid)).size, 1);
    });

    it("uses the RFC 7638 thumbprint as kid", async () => {
      const keys = await ensureDevKeys(join(root, "keys-b"));
      assert.equal(keys.kid, jwkThumbprint(createPublicKey(keys.publicKeyPem)));
    });

    it("refuses a key file that is not a PEM private key", async () => {
      const dir = join(root, "keys-bad");
      await ensureDevKeys(dir);
      const { writeFile } = await import("node:fs/promises");
      await writeFile(join(dir, "dev-issuer.key.pem"), "nonsense");
      await assert.rejects(ensureDevKeys(dir), /not a PEM private key/);
    });
  });

  it("computes the RFC 7638 §3.1 example thumbprint", () => {
    const n =
      "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";
    const key = createPublicKey({ key: { kty: "RSA", n, e: "AQAB" }, format: "jwk" });
    assert.equal(jwkThumbprint(key), "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
  });

  it("publishes the public key as an RS256 signing JWK", async () => {
    const keys = await ensureDevKeys(join(root, "keys-b"));
    const [jwk] = jwksDocument(keys.publicKeyPem, keys.kid).keys;
    assert.deepEqual([jwk?.kty, jwk?.kid, jwk?.use, jwk?.alg, jwk?.["e"]], ["RSA", keys.kid, "sig", "RS256", "AQAB"]);
    assert.equal("d" in (jwk ?? {}), false);
  });

  describe("startDevIssuer", () => {
    let issuer: DevIssuer;
    before(async () => {
      issuer = await startDevIssuer({ host: "127.0.0.1", port: 0, keyDir: join(root, "keys-srv") });
    });
    after(() => issuer.close());

    it("mints tokens that JwtVerifier accepts against the served JWKS", async () => {
      const keys = await ensureDevKeys(join(root, "keys-srv"));
      const audience = "http://127.0.0.1:8080/mcp/demo";
      const token = mintToken({
        ...keys,
        issuer: issuer.issuer,
        audience,
        sub: "alice",
        roles: ["analyst"],
        scopes: ["mcp:tools"],
        clientId: "portcullis-cli",
        ttlSeconds: 3600,
        extraClaims: { tenant: "acme", sub: "ignored" },
      });
      const verifier = new JwtVerifier({ issuer: issuer.issuer, audience, jwksUri: issuer.jwksUri, algorithms: ["RS256"] });
      const identity = await verifier.verify(token);
      assert.deepEqual(
        [identity.sub, identity.roles, identity.scopes, identity.client_id, identity.claims["tenant"]],
        ["alice", ["analyst"], ["mcp:tools"], "portcullis-cli", "acme"],
      );
      assert.equal(identity.expiresAt - (identity.claims["iat"] as number), 3600);
    });

    it("refuses its own token once the ttl has passed", async () => {
      const keys = await ensureDevKeys(join(root, "keys-srv"));
      const token = mintToken({ ...keys, issuer: issuer.issuer, audience: "a", sub: "s", ttlSeconds: 60, now: Date.now() - 3_600_000 });
      const verifier = new JwtVerifier({ issuer: issuer.issuer, audience: "a", jwksUri: issuer.jwksUri, algorithms: ["RS256"] });
      await assert.rejects(verifier.verify(token), (err: unknown) => err instanceof AuthError && err.code === "token_expired");
    });

    it("serves discovery documents naming the issuer and the JWKS", async () => {
      for (const path of ["/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"]) {
        const response = await fetch(`${issuer.url}${path}`);
        assert.equal(response.status, 200);
        const body = (await response.json()) as Record<string, unknown>;
        assert.equal(body["issuer"], issuer.issuer);
        assert.equal(body["jwks_uri"], issuer.jwksUri);
      }
      assert.equal((await fetch(`${issuer.url}/token`)).status, 404);
      assert.equal((await fetch(issuer.jwksUri, { method: "POST" })).status, 405);
    });

    it("listens on loopback only", async () => {
      await assert.rejects(startDevIssuer({ host: "0.0.0.0", port: 0, keyDir: join(root, "x") }), /loopback only/);
    });
  });

  describe("mintToken", () => {
    it("refuses a non-positive or fractional ttl and an empty sub", async () => {
      const keys = await ensureDevKeys(join(root, "keys-b"));
      const base = { ...keys, issuer: "i", audience: "a", sub: "s" };
      assert.throws(() => mintToken({ ...base, ttlSeconds: 0 }), /ttlSeconds/);
      assert.throws(() => mintToken({ ...base, ttlSeconds: 1.5 }), /ttlSeconds/);
      assert.throws(() => mintToken({ ...base, sub: "", ttlSeconds: 60 }), /sub/);
    });
  });

  describe("parseDuration", () => {
    const valid: Array<[string, number]> = [["45s", 45], ["30m", 1800], ["1h", 3600], ["2d", 172_800], [" 1h ", 3600]];
    for (const [text, seconds] of valid) {
      it(`reads ${JSON.stringify(text)} as ${seconds} seconds`, () => assert.equal(parseDuration(text), seconds));
    }
    for (const text of ["", "1", "0h", "-1h", "1.5h", "1w", "h", "1h30m", "1 h"]) {
      it(`refuses ${JSON.stringify(text)} with a message giving the accepted forms`, () => {
        assert.throws(() => parseDuration(text), /expected a positive whole number followed by s, m, h or d/);
      });
    }
  });
});
