/**
 * A fake token verifier: known token strings map to identities; anything else is a bad signature.
 *
 *   const verifier = new FakeVerifier({ "alice-token": identity("alice", { roles: ["analyst"] }) });
 *   verifier.failWith("jwks_unavailable");   // every verify() now rejects with that code
 *   verifier.seen;                           // tokens presented so far
 */
import { AuthError, type AgentIdentity, type AuthFailureCode, type TokenVerifier } from "../../gateway/auth/index.js";

export const FAKE_ISSUER = "https://idp.test/";

export function identity(sub: string, over: Partial<AgentIdentity> = {}): AgentIdentity {
  return Object.freeze({
    sub,
    iss: FAKE_ISSUER,
    client_id: `${sub}-client`,
    scopes: ["mcp:tools"],
    roles: [],
    claims: { sub, iss: FAKE_ISSUER, exp: 4_102_444_800 },
    expiresAt: 4_102_444_800,
    ...over,
  });
}

export class FakeVerifier implements TokenVerifier {
  readonly seen: string[] = [];
  private failure: AuthFailureCode | null = null;

  constructor(private readonly tokens: Record<string, AgentIdentity> = {}) {}

  /** From now on every verify() rejects with `code`; null restores normal behaviour. */
  failWith(code: AuthFailureCode | null): void {
    this.failure = code;
  }

  async verify(token: string): Promise<AgentIdentity> {
    this.seen.push(token);
    if (this.failure !== null) throw new AuthError(this.failure, `fake verifier: ${this.failure}`);
    const known = Object.hasOwn(this.tokens, token) ? this.tokens[token] : undefined;
    if (known === undefined) throw new AuthError("token_bad_signature", "fake verifier: unknown token");
    return known;
  }
}
