import assert from "node:assert/strict";
import { parseConfig } from "../../../gateway/config/index.js";

/** Issue 5 items 3 and 4: upstream credentials, identity assertion, trusted proxies. */
const base = (over: { upstream?: Record<string, unknown>; edge?: Record<string, unknown> } = {}) => ({
  auth: { issuer: "https://idp.test/", audience: "https://gw.test/mcp", jwksUri: "https://idp.test/jwks.json" },
  policy: { bundle: "b.tar.gz", verificationKey: "k.pem" },
  upstreams: { files: { url: "http://127.0.0.1:7001/mcp", ...over.upstream } },
  ...(over.edge ? { edge: over.edge } : {}),
});

describe("config: upstream credentials and trusted proxies", () => {
  it("defaults: no trusted proxies, no upstream auth, no assertion", () => {
    const c = parseConfig(base(), "gw.yaml", {});
    assert.deepEqual(c.edge.trustedProxies, []);
    const u = c.upstreams.files as { auth?: unknown; identityAssertion?: unknown };
    assert.equal(u.auth, undefined);
    assert.equal(u.identityAssertion, undefined);
  });

  it("fills client-credentials and identity-assertion defaults, expanding ${VAR} secrets", () => {
    const c = parseConfig(
      base({ upstream: { auth: { type: "client_credentials", tokenUrl: "https://as.test/token", clientId: "gw", clientSecret: "${SECRET}" }, identityAssertion: { privateKey: "id.pem" } } }),
      "/etc/gw.yaml",
      { SECRET: "s3" },
    );
    const u = c.upstreams.files as { auth: Record<string, unknown>; identityAssertion: Record<string, unknown> };
    assert.deepEqual(u.auth, { type: "client_credentials", tokenUrl: "https://as.test/token", clientId: "gw", clientSecret: "s3", clientAuth: "basic", refreshSkewSeconds: 30 });
    assert.equal(u.identityAssertion.ttlSeconds, 60);
    assert.equal(u.identityAssertion.header, "X-Portcullis-Identity");
    assert.equal(u.identityAssertion.issuer, "portcullis");
  });

  const refused: Array<{ note: string; raw: unknown; field: RegExp }> = [
    { note: "a CIDR with a bad prefix", raw: base({ edge: { trustedProxies: ["10.0.0.0/33"] } }), field: /edge\.trustedProxies\.0/ },
    { note: "a hostname as a trusted proxy", raw: base({ edge: { trustedProxies: ["lb.internal"] } }), field: /edge\.trustedProxies\.0/ },
    { note: "an unknown auth type", raw: base({ upstream: { auth: { type: "api_key", key: "x" } } }), field: /upstreams\.files/ },
    { note: "a bearer without a token", raw: base({ upstream: { auth: { type: "bearer" } } }), field: /upstreams\.files/ },
    { note: "a misspelt client-credentials key", raw: base({ upstream: { auth: { type: "client_credentials", tokenUrl: "https://as.test/t", clientId: "a", clientSecret: "b", scopes: "x" } } }), field: /upstreams\.files/ },
    { note: "an assertion header that is not a header name", raw: base({ upstream: { identityAssertion: { privateKey: "k", header: "X Bad:" } } }), field: /upstreams\.files/ },
  ];
  for (const c of refused) {
    it(`refuses ${c.note}, naming the field`, () => {
      assert.throws(() => parseConfig(c.raw, "gw.yaml", {}), (err: Error) => c.field.test(err.message) && /gw\.yaml/.test(err.message));
    });
  }
});
