import { z } from "zod";
import { AuthError, type AgentIdentity } from "./types.js";

/**
 * The registered claims the gateway relies on. jsonwebtoken has already checked signature,
 * iss, aud, exp and nbf by the time this runs; the schema pins the types so nothing downstream
 * sees a surprising shape, and makes `exp` and `sub` mandatory (jsonwebtoken treats a missing
 * `exp` as "never expires").
 */
const VerifiedClaimsSchema = z.looseObject({
  iss: z.string(),
  sub: z.string().min(1),
  exp: z.number().finite(),
  nbf: z.number().finite().optional(),
  iat: z.number().finite().optional(),
  aud: z.union([z.string(), z.array(z.string())]),
  scope: z.string().optional(),
  scp: z.union([z.string(), z.array(z.string())]).optional(),
  client_id: z.string().optional(),
  azp: z.string().optional(),
});

const RolesSchema = z.union([z.string(), z.array(z.string())]);

/**
 * Builds the identity from a payload whose signature and time claims are already verified.
 * `onRolesClaimMissing` hears of a token in which `rolesClaim` matches nothing (the agent then
 * has no roles), with the token's top-level claim names, never their values.
 */
export function identityFromClaims(payload: unknown, rolesClaim: string, onRolesClaimMissing?: (claimNames: string[]) => void): AgentIdentity {
  const parsed = VerifiedClaimsSchema.safeParse(payload);
  if (!parsed.success) {
    throw new AuthError("token_bad_claims", `token claims are invalid: ${describeIssues(parsed.error)}`);
  }
  const claims = parsed.data;
  const identity: AgentIdentity = {
    sub: claims.sub,
    iss: claims.iss,
    client_id: claims.client_id ?? claims.azp ?? null,
    scopes: scopesOf(claims.scope, claims.scp),
    roles: rolesOf(claims, rolesClaim, onRolesClaimMissing),
    claims: claims,
    expiresAt: claims.exp,
  };
  return deepFreeze(identity);
}

/** `scope` (RFC 9068, space-separated) wins; `scp` (Okta array, Entra string) is the fallback. */
function scopesOf(scope: string | undefined, scp: string | string[] | undefined): string[] {
  const raw = scope ?? scp;
  if (raw === undefined) return [];
  const list = typeof raw === "string" ? raw.split(" ") : raw;
  return [...new Set(list.filter((s) => s.length > 0))];
}

function rolesOf(claims: Record<string, unknown>, path: string, onMissing?: (claimNames: string[]) => void): string[] {
  const value = readClaimPath(claims, path);
  if (value === undefined) {
    onMissing?.(Object.keys(claims).sort());
    return [];
  }
  const parsed = RolesSchema.safeParse(value);
  if (!parsed.success) {
    // Fail closed: a roles claim of the wrong type is a token we do not understand.
    throw new AuthError("token_bad_claims", `claim ${path} must be a string or an array of strings`);
  }
  return typeof parsed.data === "string" ? [parsed.data] : [...parsed.data];
}

/**
 * Reads a claim by dotted path ("realm_access.roles"). A top-level claim whose name itself contains
 * dots (Auth0's "https://example.com/roles") is found first, so namespaced claims work unquoted.
 */
export function readClaimPath(claims: Record<string, unknown>, path: string): unknown {
  if (Object.hasOwn(claims, path)) return claims[path];
  let current: unknown = claims;
  for (const segment of path.split(".")) {
    if (current === null || typeof current !== "object" || Array.isArray(current)) return undefined;
    if (!Object.hasOwn(current, segment)) return undefined;
    current = (current as Record<string, unknown>)[segment];
  }
  return current;
}

function describeIssues(error: z.ZodError): string {
  return error.issues
    .map((issue) => `${issue.path.join(".") || "(payload)"}: ${issue.message}`)
    .sort()
    .join("; ");
}

/** Identities are shared through the cache, so nobody may mutate one in place. */
function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === "object" && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}
