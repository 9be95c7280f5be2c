import { z } from "zod";
import type { Clock } from "../shared/clock.js";
import { UpstreamAuthError } from "./errors.js";

export interface ClientCredentialsOptions {
  tokenUrl: string;
  clientId: string;
  clientSecret: string;
  scope?: string | undefined;
  audience?: string | undefined;
  clientAuth: "basic" | "post";
  refreshSkewSeconds: number;
  clock: Clock;
  /** Injected for tests; default the global fetch. */
  fetch?: typeof fetch;
  /** Token endpoint timeout; default 10 s. */
  timeoutMs?: number;
}

/** RFC 6749 §5.1; extra members (refresh_token, id_token, …) are ignored. */
const tokenResponseSchema = z.object({
  access_token: z.string().min(1),
  token_type: z.string().refine((t) => t.toLowerCase() === "bearer", "token_type must be Bearer"),
  expires_in: z.number().positive().optional(),
});

/** A token endpoint that says nothing about lifetime gets this much; a 401 still renews it sooner. */
const DEFAULT_LIFETIME_SECONDS = 300;

/**
 * OAuth 2.0 client credentials (RFC 6749 §4.4) against an upstream's token endpoint. The token is
 * cached until `refreshSkewSeconds` before it expires; concurrent callers share one fetch
 * (single-flight), so a burst of calls after expiry costs the token endpoint one request. The
 * client secret never appears in an error message or log line.
 */
export class ClientCredentialsSource {
  private cached: { token: string; renewAtMs: number } | null = null;
  private inflight: Promise<string> | null = null;
  /** Token endpoint requests made so far (tests, diagnostics). */
  fetches = 0;

  constructor(private readonly opts: ClientCredentialsOptions) {}

  async token(): Promise<string> {
    const c = this.cached;
    if (c && this.opts.clock.now() < c.renewAtMs) return c.token;
    this.inflight ??= this.fetchToken().finally(() => {
      this.inflight = null;
    });
    return this.inflight;
  }

  /**
   * The upstream refused `token` (HTTP 401): forget it so the next call fetches a new one. A
   * token other than the cached one means another request renewed it already.
   */
  invalidate(token: string): void {
    if (this.cached?.token === token) this.cached = null;
  }

  private async fetchToken(): Promise<string> {
    const o = this.opts;
    const form = new URLSearchParams({ grant_type: "client_credentials" });
    if (o.scope !== undefined) form.set("scope", o.scope);
    if (o.audience !== undefined) form.set("audience", o.audience);
    const headers: Record<string, string> = { "content-type": "application/x-www-form-urlencoded", accept: "application/json" };
    if (o.clientAuth === "basic") {
      // RFC 6749 §2.3.1: both parts are form-urlencoded before base64.
      const pair = `${encodeURIComponent(o.clientId)}:${encodeURIComponent(o.clientSecret)}`;
      headers.authorization = `Basic ${Buffer.from(pair).toString("base64")}`;
    } else {
      form.set("client_id", o.clientId);
      form.set("client_secret", o.clientSecret);
    }
    this.fetches++;
    let res: Response;
    try {
      res = await (o.fetch ?? fetch)(o.tokenUrl, {
        method: "POST",
        headers,
        body: form.toString(),
        signal: AbortSignal.timeout(o.timeoutMs ?? 10_000),
        redirect: "error",
      });
    } catch (err) {
      throw new UpstreamAuthError(`token endpoint ${o.tokenUrl} unreachable: ${err instanceof Error ? err.message : String(err)}`);
    }
    const text = await res.text().catch(() => "");
    if (!res.ok) {
      // The error body is the IdP's (error, error_description); it never echoes our secret.
      throw new UpstreamAuthError(`token endpoint ${o.tokenUrl} answered HTTP ${res.status}: ${text.slice(0, 200)}`);
    }
    let parsed: z.infer<typeof tokenResponseSchema>;
    try {
      parsed = tokenResponseSchema.parse(JSON.parse(text));
    } catch {
      throw new UpstreamAuthError(`token endpoint ${o.tokenUrl} answered something that is not a bearer token response`);
    }
    const lifetimeMs = (parsed.expires_in ?? DEFAULT_LIFETIME_SECONDS) * 1000;
    // Renew skew before expiry, but never sooner than half the lifetime (short-lived tokens).
    const skewMs = Math.min(o.refreshSkewSeconds * 1000, lifetimeMs / 2);
    this.cached = { token: parsed.access_token, renewAtMs: o.clock.now() + lifetimeMs - skewMs };
    return parsed.access_token;
  }
}
