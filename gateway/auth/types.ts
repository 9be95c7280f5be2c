/** What the identity stage produces for every authenticated request. */
export interface AgentIdentity {
  sub: string;
  iss: string;
  client_id: string | null;
  scopes: string[];
  roles: string[];
  /** Every verified claim, as decoded. */
  claims: Record<string, unknown>;
  /** Seconds since epoch at which the token expires. */
  expiresAt: number;
}

/** Why a token was refused. Stable codes: audited and documented in docs/errors.md. */
export type AuthFailureCode =
  | "token_missing"
  | "token_malformed"
  | "token_expired"
  | "token_not_yet_valid"
  | "token_bad_signature"
  | "token_bad_issuer"
  | "token_bad_audience"
  | "token_bad_algorithm"
  | "token_unknown_key"
  | "token_bad_claims"
  | "jwks_unavailable";

export class AuthError extends Error {
  constructor(
    readonly code: AuthFailureCode,
    message: string,
  ) {
    super(message);
    this.name = "AuthError";
  }
}

export interface TokenVerifier {
  /** Verifies a bearer token; rejects with AuthError. */
  verify(token: string): Promise<AgentIdentity>;
}
