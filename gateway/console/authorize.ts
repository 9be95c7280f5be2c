import { extractBearer, type TokenVerifier } from "../auth/index.js";
import type { ConsoleOperator } from "./types.js";

/**
 * The usual `authorize` of consoleRouter: the bearer token verified exactly like an agent's (same
 * issuer, audience and keys), admitted when it carries one of `roles` (e.g. config `console.roles`).
 * A missing or invalid token rejects with AuthError (401); a valid one without the role is null (403).
 */
export function roleAuthorizer(verifier: TokenVerifier, roles: readonly string[]): (authorizationHeader: string | undefined) => Promise<ConsoleOperator | null> {
  if (roles.length === 0) throw new Error("console: name at least one operator role");
  const wanted = new Set(roles);
  return async (authorizationHeader) => {
    const identity = await verifier.verify(extractBearer(authorizationHeader));
    return identity.roles.some((r) => wanted.has(r)) ? { sub: identity.sub } : null;
  };
}
