import { readFileSync } from "node:fs";
import type { HttpUpstreamConfig } from "../config/index.js";
import type { Clock, IdSource } from "../shared/clock.js";
import { UpstreamAuthorizer } from "./authorizer.js";
import { ClientCredentialsSource } from "./client-credentials.js";
import { IdentityAsserter } from "./identity-assertion.js";

/** Builds one upstream's authorizer from its config (called once per upstream at start). */
export function upstreamAuthorizer(name: string, u: HttpUpstreamConfig, deps: { clock: Clock; ids: IdSource; fetch?: typeof fetch }): UpstreamAuthorizer {
  const a = u.auth;
  const credential =
    a === undefined
      ? null
      : a.type === "bearer"
        ? { type: "bearer" as const, token: a.token }
        : {
            type: "client_credentials" as const,
            source: new ClientCredentialsSource({
              tokenUrl: a.tokenUrl,
              clientId: a.clientId,
              clientSecret: a.clientSecret,
              scope: a.scope,
              audience: a.audience,
              clientAuth: a.clientAuth,
              refreshSkewSeconds: a.refreshSkewSeconds,
              clock: deps.clock,
              ...(deps.fetch ? { fetch: deps.fetch } : {}),
            }),
          };
  const ia = u.identityAssertion;
  let assertion = null;
  if (ia !== undefined) {
    let pem: string;
    try {
      pem = readFileSync(ia.privateKey, "utf8");
    } catch (err) {
      throw new Error(`upstreams.${name}.identityAssertion.privateKey: cannot read ${ia.privateKey} (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
    }
    const signer = new IdentityAsserter({
      privateKeyPem: pem,
      keyId: ia.keyId,
      ttlSeconds: ia.ttlSeconds,
      issuer: ia.issuer,
      audience: ia.audience ?? u.url,
      clock: deps.clock,
      ids: deps.ids,
    });
    assertion = { header: ia.header, signer };
  }
  return new UpstreamAuthorizer(u.headers, credential, assertion);
}
