import { ClientCredentialsSource } from "./client-credentials.js";
import type { AssertedAgent, IdentityAsserter } from "./identity-assertion.js";

/** What the proxy knows about one forwarded request, for the headers that describe it. */
export interface ForwardContext {
  /** The session's verified agent; absent for requests the gateway makes on its own. */
  agent?: AssertedAgent | undefined;
  decisionId?: string | undefined;
}

/**
 * The gateway's own credentials for one HTTP upstream, as headers: the configured static headers,
 * then the `auth` credential (static bearer or client credentials), then the identity assertion.
 * Nothing here is derived from the agent's request headers: the agent's Authorization and cookies
 * are never forwarded (no token passthrough).
 */
export class UpstreamAuthorizer {
  constructor(
    private readonly staticHeaders: Readonly<Record<string, string>>,
    private readonly credential: { type: "bearer"; token: string } | { type: "client_credentials"; source: ClientCredentialsSource } | null,
    private readonly assertion: { header: string; signer: IdentityAsserter } | null,
  ) {}

  /** Only static headers: what an upstream without `auth` or `identityAssertion` gets. */
  static fixed(headers: Readonly<Record<string, string>>): UpstreamAuthorizer {
    return new UpstreamAuthorizer(headers, null, null);
  }

  /** True when headers() never awaits anything (the common, static case stays synchronous-cheap). */
  get isStatic(): boolean {
    return this.assertion === null && this.credential?.type !== "client_credentials";
  }

  async headers(ctx: ForwardContext): Promise<Record<string, string>> {
    const h: Record<string, string> = { ...this.staticHeaders };
    if (this.credential?.type === "bearer") setAuthorization(h, this.credential.token);
    else if (this.credential?.type === "client_credentials") setAuthorization(h, await this.credential.source.token());
    if (this.assertion && ctx.agent) h[this.assertion.header.toLowerCase()] = this.assertion.signer.sign(ctx.agent, ctx.decisionId);
    return h;
  }

  /**
   * The upstream answered 401 to a request sent with `sent` headers: drop the cached token.
   * Returns true when retrying once can help (a fetched token may have been revoked early).
   */
  rejected(sent: Readonly<Record<string, string>>): boolean {
    if (this.credential?.type !== "client_credentials") return false;
    const auth = sent.authorization;
    if (auth !== undefined) this.credential.source.invalidate(auth.slice("Bearer ".length));
    return true;
  }
}

/** One Authorization header, whatever case the static headers used for theirs. */
function setAuthorization(h: Record<string, string>, token: string): void {
  for (const k of Object.keys(h)) if (k.toLowerCase() === "authorization") delete h[k];
  h.authorization = `Bearer ${token}`;
}
