import { AuthError } from "./types.js";

/** RFC 6750 §2.1 b64token. */
const B64TOKEN = /^[A-Za-z0-9\-._~+/]+=*$/;
const MAX_HEADER_CHARS = 16 * 1024;

/**
 * The bearer token from an Authorization header value (RFC 6750 §2.1). Only the header: tokens in
 * query strings or cookies leak into logs and caches, so the gateway never looks there.
 *
 * - absent, empty, or another scheme (Basic …) → token_missing: the request carries no bearer
 *   credentials, and RFC 6750 §3.1 answers that with a bare challenge;
 * - several Authorization values, "Bearer" without a token, or a token outside the b64token
 *   alphabet (spaces, commas, a second credential) → token_malformed.
 */
export function extractBearer(authorizationHeader: string | string[] | undefined): string {
  let value = authorizationHeader;
  if (Array.isArray(value)) {
    if (value.length > 1) throw new AuthError("token_malformed", "more than one Authorization header");
    value = value[0];
  }
  if (value === undefined) throw new AuthError("token_missing", "no Authorization header");
  if (value.length > MAX_HEADER_CHARS) throw new AuthError("token_malformed", "Authorization header too long");

  const trimmed = value.trim();
  if (trimmed.length === 0) throw new AuthError("token_missing", "empty Authorization header");
  const match = /^(\S+)(?:[ \t]+(.*))?$/s.exec(trimmed);
  const scheme = match?.[1] ?? "";
  if (scheme.toLowerCase() !== "bearer") {
    throw new AuthError("token_missing", "Authorization header does not use the Bearer scheme");
  }
  const token = match?.[2] ?? "";
  if (token.length === 0) throw new AuthError("token_malformed", "Bearer scheme without a token");
  if (!B64TOKEN.test(token)) throw new AuthError("token_malformed", "Bearer token has invalid characters");
  return token;
}
