import assert from "node:assert/strict";
import { JwtVerifier } from "../../../gateway/auth/index.js";
import type { LogLevel } from "../../../gateway/shared/log.js";
import { startFakeIdp, type FakeIdp } from "../../fakes/jwks.js";

describe("JwtVerifier: a rolesClaim that matches nothing warns once", () => {
  let idp: FakeIdp;
  before(async () => {
    idp = await startFakeIdp();
  });
  after(() => idp.close());

  function verifier(rolesClaim: string): { v: JwtVerifier; logs: Array<{ level: LogLevel; msg: string; fields?: Record<string, unknown> }> } {
    const logs: Array<{ level: LogLevel; msg: string; fields?: Record<string, unknown> }> = [];
    const v = new JwtVerifier({ issuer: idp.issuer, audience: idp.audience, jwksUri: idp.jwksUri, algorithms: ["RS256"], rolesClaim, log: (level, msg, fields) => void logs.push({ level, msg, ...(fields ? { fields } : {}) }) });
    return { v, logs };
  }

  it("names the claim and the token's claim names (not their values), once for many tokens", async () => {
    const { v, logs } = verifier("roles");
    // A Keycloak-style token: the roles sit in realm_access.roles, not in `roles`.
    for (const sub of ["alice", "bob", "carol"]) {
      const identity = await v.verify(idp.mint({ sub, roles: undefined, realm_access: { roles: ["analyst"] } }));
      assert.deepEqual(identity.roles, []);
    }
    assert.equal(logs.length, 1, JSON.stringify(logs));
    assert.equal(logs[0]!.level, "warn");
    assert.match(logs[0]!.msg, /auth\.rolesClaim "roles" matched nothing in a verified token/);
    assert.equal(logs[0]!.fields?.rolesClaim, "roles");
    assert.ok((logs[0]!.fields?.tokenClaims as string[]).includes("realm_access"));
    assert.ok(!JSON.stringify(logs).includes("analyst"), "claim values stay out of the log");
  });

  it("says nothing when the claim is there, even empty", async () => {
    const { v, logs } = verifier("realm_access.roles");
    await v.verify(idp.mint({ sub: "alice", realm_access: { roles: ["analyst"] } }));
    await v.verify(idp.mint({ sub: "bob", realm_access: { roles: [] } }));
    assert.deepEqual(logs, []);
  });
});
