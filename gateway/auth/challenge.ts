import type { AuthFailureCode } from "./types.js";

/** RFC 6750 §3 error codes the gateway emits. */
export type BearerErrorCode = "invalid_token" | "insufficient_scope" | "invalid_request";

export interface ChallengeOptions {
  /** Absolute URL of this resource's RFC 9728 metadata document. */
  resourceMetadataUrl: string;
  /** Omit when the request carried no credentials (RFC 6750 §3.1). */
  error?: BearerErrorCode;
  errorDescription?: string;
  /** Scopes the client should request, as a list or a space-separated string. */
  scope?: string | string[];
}

/**
 * A `WWW-Authenticate` value. Every parameter is rendered as an RFC 9110 quoted-string from
 * characters RFC 6750 allows, so text from an error can never break the header (no CR/LF, no
 * stray quote, no second challenge).
 */
export function wwwAuthenticate(options: ChallengeOptions): string {
  const params = [`resource_metadata=${quoted(options.resourceMetadataUrl)}`];
  if (options.error !== undefined) params.push(`error=${quoted(options.error)}`);
  if (options.errorDescription !== undefined && options.errorDescription.length > 0) {
    params.push(`error_description=${quoted(options.errorDescription)}`);
  }
  const scopes = scopeList(options.scope);
  if (scopes.length > 0) params.push(`scope=${quoted(scopes.join(" "))}`);
  return `Bearer ${params.join(", ")}`;
}

/**
 * RFC 6750 limits error_description (and our other values) to %x20-21 / %x23-5B / %x5D-7E:
 * printable ASCII without `"` and `\`. Anything else becomes a space and runs of spaces collapse,
 * which also makes escaping unnecessary.
 */
function quoted(value: string): string {
  const safe = value
    .replace(/[^\x20\x21\x23-\x5B\x5D-\x7E]/g, " ")
    .replace(/ {2,}/g, " ")
    .trim();
  return `"${safe}"`;
}

/** RFC 6750 §3 scope-token: %x21 / %x23-5B / %x5D-7E. Invalid tokens are dropped, not fixed. */
function scopeList(scope: string | string[] | undefined): string[] {
  if (scope === undefined) return [];
  const list = typeof scope === "string" ? scope.split(" ") : scope;
  // A challenge must always be emittable, so a bad scope name is dropped rather than thrown.
  return [...new Set(list.filter((s) => /^[\x21\x23-\x5B\x5D-\x7E]+$/.test(s)))];
}

export interface ProtectedResourceMetadataOptions {
  /** Canonical URI of the protected resource, e.g. https://gw.example.com/mcp/files. */
  resource: string;
  /** At least one issuer URL (MCP requires ≥ 1). */
  authorizationServers: string[];
  scopesSupported: string[];
  resourceName?: string;
}

/** The RFC 9728 protected-resource metadata document. */
export interface ProtectedResourceMetadata {
  resource: string;
  authorization_servers: string[];
  scopes_supported: string[];
  bearer_methods_supported: ["header"];
  resource_name?: string;
}

export function protectedResourceMetadata(options: ProtectedResourceMetadataOptions): ProtectedResourceMetadata {
  if (options.authorizationServers.length === 0) {
    throw new Error("protected resource metadata needs at least one authorization server");
  }
  const document: ProtectedResourceMetadata = {
    resource: options.resource,
    authorization_servers: [...new Set(options.authorizationServers)],
    scopes_supported: [...new Set(options.scopesSupported)],
    // Only the header: query and form-body tokens leak into logs (RFC 6750 §5.3, MCP §5.2).
    bearer_methods_supported: ["header"],
  };
  if (options.resourceName !== undefined) document.resource_name = options.resourceName;
  return document;
}

const WELL_KNOWN_PRM = "/.well-known/oauth-protected-resource";

/**
 * RFC 9728 §3.1: the well-known segment goes between host and path.
 * "/mcp/demo" → "/.well-known/oauth-protected-resource/mcp/demo"; "/" → the root document.
 */
export function resourceMetadataPath(resourcePath: string): string {
  const trimmed = resourcePath.replace(/\/+$/, "");
  if (trimmed.length === 0) return WELL_KNOWN_PRM;
  return `${WELL_KNOWN_PRM}${trimmed.startsWith("/") ? "" : "/"}${trimmed}`;
}

/** The metadata URL for a resource URI: https://gw/mcp/demo → https://gw/.well-known/oauth-protected-resource/mcp/demo. */
export function resourceMetadataUrl(resource: string): string {
  const url = new URL(resource);
  return `${url.origin}${resourceMetadataPath(url.pathname)}`;
}

/**
 * What an agent may be told about a refused token: enough for a client to decide between
 * refreshing and re-authorising (RFC 6750 §3.1), never which check failed inside signature or key
 * handling (that detail is in AuthError.message, for the audit log only).
 */
export function publicErrorDescription(code: AuthFailureCode): string {
  switch (code) {
    case "token_missing":
      return "Bearer token required";
    case "token_malformed":
      return "The access token is malformed";
    case "token_expired":
      return "The access token expired";
    case "token_not_yet_valid":
      return "The access token is not valid yet";
    case "token_bad_audience":
      return "The access token was not issued for this resource";
    case "token_bad_issuer":
      return "The access token was not issued by a trusted authorization server";
    case "token_bad_signature":
    case "token_bad_algorithm":
    case "token_unknown_key":
    case "token_bad_claims":
      return "The access token is invalid";
    case "jwks_unavailable":
      return "Token verification is temporarily unavailable";
  }
}

export interface AuthFailureResponse {
  status: 401 | 503;
  headers: Record<string, string>;
  body: { error: string; error_description: string };
}

/**
 * The HTTP answer for a refused token, in one place. A missing token gets a bare challenge
 * (RFC 6750 §3.1: no error code); any other token failure is invalid_token. jwks_unavailable is
 * a 503, not a 401: the token may be fine, and a 401 would send clients into re-authorisation
 * loops while the IdP is down.
 */
export function authFailureResponse(
  code: AuthFailureCode,
  resourceMetadataUrl: string,
  scope?: string | string[],
): AuthFailureResponse {
  const description = publicErrorDescription(code);
  if (code === "jwks_unavailable") {
    return {
      status: 503,
      headers: { "Retry-After": "30" }, // the default JWKS retry interval
      body: { error: "temporarily_unavailable", error_description: description },
    };
  }
  const missing = code === "token_missing";
  const challenge: ChallengeOptions = { resourceMetadataUrl };
  if (!missing) {
    challenge.error = "invalid_token";
    challenge.errorDescription = description;
  }
  if (scope !== undefined) challenge.scope = scope;
  return {
    status: 401,
    headers: { "WWW-Authenticate": wwwAuthenticate(challenge) },
    // The body is informational; SDK clients expect an OAuth error code there even when missing.
    body: { error: "invalid_token", error_description: description },
  };
}
