import jwt from "jsonwebtoken";
import { z } from "zod";
import { systemClock } from "../shared/clock.js";
import { createLogger, type Logger } from "../shared/log.js";
import { identityFromClaims } from "./claims.js";
import { IdentityCache } from "./identity-cache.js";
import { JwksCache, type JwksStatus } from "./jwks-cache.js";
import { AuthError, type AgentIdentity, type AuthFailureCode, type TokenVerifier } from "./types.js";

/**
 * Asymmetric algorithms jsonwebtoken 9 can verify. EdDSA is absent because jsonwebtoken 9 (jws 4)
 * does not implement it; HS* and none are never acceptable with keys published in a JWKS.
 */
export const SUPPORTED_ALGORITHMS = [
  "ES256", "ES384", "ES512",
  "PS256", "PS384", "PS512",
  "RS256", "RS384", "RS512",
] as const;

export interface JwtVerifierOptions {
  /** Exact `iss`. */
  issuer: string;
  /** `aud` (string or array) must contain exactly this value. */
  audience: string;
  jwksUri: string;
  /** Allow-list; a token's header `alg` must be one of these. */
  algorithms: string[];
  /** Dotted path of the claim carrying roles. Default "roles". */
  rolesClaim?: string;
  /** Default 30. */
  clockToleranceSeconds?: number;
  /** How long a fetched JWKS is fresh. Default 10 min. */
  jwksCacheMaxAgeMs?: number;
  /** How long past max age a JWKS is still used while the IdP is unreachable. Default 1 h. */
  jwksMaxStaleMs?: number;
  /** An unknown kid triggers at most one JWKS fetch per interval. Default 30 s. */
  unknownKidRefreshIntervalMs?: number;
  /** Default 5 s. */
  jwksTimeoutMs?: number;
  /** Verified tokens remembered until exp; 0 disables. Default 10 000. */
  identityCacheSize?: number;
  clock?: { now(): number };
  /** For the one warning about a rolesClaim no token carries. Default: the gateway's stderr log. */
  log?: Logger;
}

/** Longest token accepted; well above real-world access tokens, far below header limits. */
const MAX_TOKEN_CHARS = 16 * 1024;
const B64URL = /^[A-Za-z0-9_-]+$/;
const B64URL_OR_EMPTY = /^[A-Za-z0-9_-]*$/;

const HeaderSchema = z.looseObject({
  alg: z.string(),
  kid: z.string().optional(),
  crit: z.unknown().optional(),
});

const LOOPBACK_HOSTS = new Set(["127.0.0.1", "localhost", "[::1]"]);

/** Verifies bearer JWTs against the issuer's JWKS. Runs on every request. */
export class JwtVerifier implements TokenVerifier {
  private readonly algorithms: jwt.Algorithm[];
  private readonly rolesClaim: string;
  private readonly clockTolerance: number;
  private readonly clock: { now(): number };
  private readonly keys: JwksCache;
  private readonly cache: IdentityCache;

  /**
   * A rolesClaim that matches nothing usually means a misnamed claim (`roles` where the IdP sends
   * `realm_access.roles`), and every agent silently has no role: said once per verifier, with the
   * claim names the token does carry, so the log is not flooded by every request.
   */
  private rolesClaimWarned = false;
  private readonly warnRolesClaimOnce = (claimNames: string[]): void => {
    if (this.rolesClaimWarned) return;
    this.rolesClaimWarned = true;
    (this.options.log ?? createLogger())("warn", `auth.rolesClaim "${this.rolesClaim}" matched nothing in a verified token: the agent has no roles. Check the claim name (a dotted path such as realm_access.roles is allowed); said once`, { rolesClaim: this.rolesClaim, tokenClaims: claimNames });
  };

  constructor(private readonly options: JwtVerifierOptions) {
    this.algorithms = checkAlgorithms(options.algorithms);
    if (options.issuer.length === 0) throw new Error("auth.issuer must not be empty");
    if (options.audience.length === 0) throw new Error("auth.audience must not be empty");
    checkJwksUri(options.jwksUri);
    this.rolesClaim = options.rolesClaim ?? "roles";
    if (this.rolesClaim.length === 0) throw new Error("auth.rolesClaim must not be empty");
    this.clockTolerance = nonNegative("auth.clockToleranceSeconds", options.clockToleranceSeconds, 30);
    this.clock = options.clock ?? systemClock;
    this.keys = new JwksCache({
      jwksUri: options.jwksUri,
      maxAgeMs: nonNegative("auth.jwksCacheMaxAgeMs", options.jwksCacheMaxAgeMs, 10 * 60_000),
      maxStaleMs: nonNegative("auth.jwksMaxStaleMs", options.jwksMaxStaleMs, 60 * 60_000),
      refreshIntervalMs: nonNegative(
        "auth.unknownKidRefreshIntervalMs",
        options.unknownKidRefreshIntervalMs,
        30_000,
      ),
      timeoutMs: nonNegative("auth.jwksTimeoutMs", options.jwksTimeoutMs, 5_000),
      clock: this.clock,
    });
    this.cache = new IdentityCache(nonNegative("auth.identityCacheSize", options.identityCacheSize, 10_000));
  }

  /** Fetches the JWKS ahead of the first request. Never throws; a failure shows in the status. */
  start(): Promise<JwksStatus> {
    // Kept fresh without traffic too: an idle replica must not let its keys expire (readiness).
    this.keys.keepFresh();
    return this.keys.load();
  }

  status(): JwksStatus {
    return this.keys.status();
  }

  async verify(token: string): Promise<AgentIdentity> {
    if (typeof token !== "string" || token.length === 0) {
      throw new AuthError("token_missing", "no bearer token");
    }
    if (token.length > MAX_TOKEN_CHARS) {
      throw new AuthError("token_malformed", `token longer than ${MAX_TOKEN_CHARS} characters`);
    }

    const cacheKey = IdentityCache.keyOf(token);
    const hit = this.cache.get(cacheKey);
    if (hit !== undefined) {
      // Time claims are re-checked on every hit: a cached identity is never valid past exp.
      this.checkTimes(hit.exp, hit.nbf, cacheKey);
      if (this.keys.current(hit.key.kid) === hit.key) return hit.identity;
      this.cache.delete(cacheKey); // the key was rotated out or the JWKS expired: verify afresh
    }

    const header = parseCompact(token);
    if (!(this.algorithms as string[]).includes(header.alg)) {
      throw new AuthError("token_bad_algorithm", `alg ${JSON.stringify(header.alg)} is not allowed`);
    }
    const key = await this.keys.keyFor(header.kid ?? null);
    if (key.alg !== null && key.alg !== header.alg) {
      throw new AuthError("token_bad_algorithm", `alg ${header.alg} does not match the key's alg ${key.alg}`);
    }

    let payload: unknown;
    try {
      payload = jwt.verify(token, key.key, {
        algorithms: this.algorithms,
        issuer: this.options.issuer,
        audience: this.options.audience,
        clockTolerance: this.clockTolerance,
        clockTimestamp: Math.floor(this.clock.now() / 1000),
      });
    } catch (err) {
      throw toAuthError(err);
    }
    const identity = identityFromClaims(payload, this.rolesClaim, this.warnRolesClaimOnce);
    const nbf = identity.claims["nbf"];
    this.cache.set(cacheKey, {
      identity,
      key,
      exp: identity.expiresAt,
      nbf: typeof nbf === "number" ? nbf : undefined,
    });
    return identity;
  }

  /** Same arithmetic as jsonwebtoken, so a cache hit and a full verify agree to the second. */
  private checkTimes(exp: number, nbf: number | undefined, cacheKey: string): void {
    const now = Math.floor(this.clock.now() / 1000);
    if (now >= exp + this.clockTolerance) {
      this.cache.delete(cacheKey);
      throw new AuthError("token_expired", "token expired");
    }
    if (nbf !== undefined && nbf > now + this.clockTolerance) {
      throw new AuthError("token_not_yet_valid", "token not valid yet (nbf)");
    }
  }
}

function checkAlgorithms(algorithms: string[]): jwt.Algorithm[] {
  const allowed: readonly string[] = SUPPORTED_ALGORITHMS;
  if (algorithms.length === 0) {
    throw new Error(`auth.algorithms must list at least one of ${allowed.join(", ")}`);
  }
  for (const alg of algorithms) {
    if (alg.toLowerCase() === "none") {
      throw new Error('auth.algorithms must not contain "none": unsigned tokens are never accepted');
    }
    if (/^HS\d+$/i.test(alg)) {
      throw new Error(
        `auth.algorithms must not contain ${alg}: HMAC algorithms cannot be verified with a public JWKS ` +
          "(and allowing them enables key-confusion forgeries)",
      );
    }
    if (alg === "EdDSA") {
      throw new Error("auth.algorithms: EdDSA is not supported by the JWT library in use (jsonwebtoken 9)");
    }
    if (!allowed.includes(alg)) {
      throw new Error(`auth.algorithms: unknown algorithm ${JSON.stringify(alg)}, expected one of ${allowed.join(", ")}`);
    }
  }
  return [...new Set(algorithms)] as jwt.Algorithm[];
}

/** Keys fetched over plain HTTP could be swapped in transit; only loopback is exempt (tests, dev). */
function checkJwksUri(jwksUri: string): void {
  let url: URL;
  try {
    url = new URL(jwksUri);
  } catch {
    throw new Error(`auth.jwksUri is not a valid URL: ${JSON.stringify(jwksUri)}`);
  }
  if (url.protocol === "https:") return;
  if (url.protocol === "http:" && LOOPBACK_HOSTS.has(url.hostname)) return;
  throw new Error(`auth.jwksUri must use https (plain http only on loopback), got ${JSON.stringify(jwksUri)}`);
}

function nonNegative(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isFinite(value) || value < 0) {
    throw new Error(`${name} must be a non-negative number, got ${String(value)}`);
  }
  return value;
}

/** Structural checks before any key lookup, so junk never costs a JWKS fetch. */
function parseCompact(token: string): z.infer<typeof HeaderSchema> {
  const parts = token.split(".");
  if (parts.length !== 3) {
    throw new AuthError("token_malformed", `token has ${parts.length} dot-separated parts, expected 3`);
  }
  const [headerPart = "", payloadPart = "", signaturePart = ""] = parts;
  if (!B64URL.test(headerPart) || !B64URL.test(payloadPart) || !B64URL_OR_EMPTY.test(signaturePart)) {
    throw new AuthError("token_malformed", "token is not base64url");
  }
  const header = HeaderSchema.safeParse(decodeJsonObject(headerPart, "header"));
  if (!header.success) throw new AuthError("token_malformed", "token header lacks a string alg (or kid is not a string)");
  decodeJsonObject(payloadPart, "payload");
  if (header.data.crit !== undefined) {
    // RFC 7515 §4.1.11: extensions we do not understand must cause rejection.
    throw new AuthError("token_malformed", "token header has unsupported crit parameters");
  }
  return header.data;
}

function decodeJsonObject(part: string, what: string): unknown {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(part, "base64url").toString("utf8"));
  } catch {
    throw new AuthError("token_malformed", `token ${what} is not JSON`);
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new AuthError("token_malformed", `token ${what} is not a JSON object`);
  }
  return value;
}

/** jsonwebtoken reports most failures as JsonWebTokenError with a fixed message (pinned 9.0.3). */
function toAuthError(err: unknown): AuthError {
  if (err instanceof jwt.TokenExpiredError) return new AuthError("token_expired", "token expired");
  if (err instanceof jwt.NotBeforeError) return new AuthError("token_not_yet_valid", "token not valid yet (nbf)");
  const message = err instanceof Error ? err.message : String(err);
  return new AuthError(codeForMessage(err instanceof jwt.JsonWebTokenError, message), message);
}

function codeForMessage(fromJwt: boolean, message: string): AuthFailureCode {
  if (!fromJwt) {
    // validateAsymmetricKey throws plain Errors when alg and key type disagree (RS256 on an EC key).
    if (message.startsWith('"alg" parameter') || message.startsWith("Invalid key for this operation")) {
      return "token_bad_algorithm";
    }
    return "token_bad_signature";
  }
  if (message === "invalid signature" || message === "jwt signature is required") return "token_bad_signature";
  if (message === "invalid algorithm" || message.includes("must be a symmetric key")) return "token_bad_algorithm";
  if (message.startsWith("jwt audience invalid")) return "token_bad_audience";
  if (message.startsWith("jwt issuer invalid")) return "token_bad_issuer";
  if (message === "invalid exp value" || message === "invalid nbf value") return "token_bad_claims";
  return "token_malformed";
}
