import { createPublicKey, type JsonWebKey, type KeyObject } from "node:crypto";
import jwksRsa from "jwks-rsa";
import { z } from "zod";
import { AuthError } from "./types.js";

/** One usable public key from the issuer's JWKS. */
export interface VerificationKey {
  readonly kid: string | null;
  /** The JWK's `alg`, when the issuer pins one; a token must then use exactly that algorithm. */
  readonly alg: string | null;
  readonly key: KeyObject;
  /** Key material and alg, to recognise an unchanged key across refreshes. */
  readonly fingerprint: string;
}

export interface JwksStatus {
  /** fresh: younger than maxAge; stale: served while refreshing or while the IdP is down. */
  state: "not_loaded" | "fresh" | "stale" | "expired";
  keyCount: number;
  fetchedAt: number | null;
  lastError: string | null;
  /** Failed fetches since the cache was created (a cumulative count: `portcullis_jwks_refresh_failures_total`). */
  refreshFailures: number;
}

export interface JwksCacheOptions {
  jwksUri: string;
  maxAgeMs: number;
  maxStaleMs: number;
  refreshIntervalMs: number;
  timeoutMs: number;
  clock: { now(): number };
}

interface KeySet {
  byKid: Map<string, VerificationKey>;
  all: VerificationKey[];
  fetchedAt: number;
}

const JwkSchema = z.looseObject({
  kty: z.string(),
  kid: z.string().min(1).optional(),
  use: z.string().optional(),
  alg: z.string().optional(),
  d: z.unknown().optional(),
});

/**
 * The issuer's key set, fetched whole and shared by every kid.
 *
 * jwks-rsa is the transport (getKeys: GET with timeout); its own cache and rate limiter are off
 * because they memoise per kid (so one fetch cannot teach us a second new kid), use a token bucket
 * rather than "one fetch per interval", and read Date.now() directly. Here:
 * - a set younger than maxAgeMs is used as is;
 * - an older set is still used while one background refresh runs, and for up to maxStaleMs more
 *   if the IdP is unreachable, so an IdP outage does not take the gateway down with it;
 * - an unknown kid may trigger at most one fetch per refreshIntervalMs (attackers choose kids);
 * - fetches are single-flight: concurrent misses share one request.
 */
export class JwksCache {
  private readonly client: jwksRsa.JwksClient;
  private set: KeySet | null = null;
  private inflight: Promise<void> | null = null;
  private lastAttemptAt = Number.NEGATIVE_INFINITY;
  private lastError: string | null = null;
  private refreshFailures = 0;

  constructor(private readonly options: JwksCacheOptions) {
    this.client = new jwksRsa.JwksClient({
      jwksUri: options.jwksUri,
      timeout: options.timeoutMs,
      cache: false,
      rateLimit: false,
    });
  }

  /** Fetches the key set now (e.g. at startup); never throws, see status(). */
  async load(): Promise<JwksStatus> {
    await (this.inflight ?? this.refresh());
    return this.status();
  }

  status(): JwksStatus {
    const set = this.set;
    return {
      state: set === null ? "not_loaded" : this.ageState(set, this.options.clock.now()),
      keyCount: set?.all.length ?? 0,
      fetchedAt: set?.fetchedAt ?? null,
      lastError: this.lastError,
      refreshFailures: this.refreshFailures,
    };
  }

  /**
   * The key a cached identity was verified with, if it is still published and usable. Cheap and
   * synchronous: the identity cache calls it on every hit so that a key dropped from the JWKS
   * stops authenticating cached tokens at the next refresh.
   */
  current(kid: string | null): VerificationKey | undefined {
    const set = this.usableSet();
    return set === null ? undefined : findKey(set, kid);
  }

  /** Resolves the key for a token header's kid; rejects with token_unknown_key or jwks_unavailable. */
  async keyFor(kid: string | null): Promise<VerificationKey> {
    let set = this.usableSet();
    if (set === null) {
      await this.refreshIfAllowed();
      set = this.usableSet();
      if (set === null) throw this.unavailable();
    }
    const found = findKey(set, kid);
    if (found !== undefined) return found;

    // An unknown kid may be a rotation we have not seen yet, or an attacker's guess: refresh at
    // most once per interval, and let concurrent misses share the fetch.
    await this.refreshIfAllowed();
    set = this.usableSet();
    if (set === null) throw this.unavailable();
    const refreshed = findKey(set, kid);
    if (refreshed !== undefined) return refreshed;
    throw new AuthError(
      "token_unknown_key",
      kid === null
        ? "token has no kid and the JWKS does not hold exactly one key"
        : `kid ${JSON.stringify(kid)} is not in the issuer's JWKS`,
    );
  }

  /** The set if it may be used now; starts a background refresh when it has gone stale. */
  private usableSet(): KeySet | null {
    const set = this.set;
    if (set === null) return null;
    const state = this.ageState(set, this.options.clock.now());
    if (state === "stale") void this.refreshIfAllowed();
    return state === "expired" ? null : set;
  }

  private ageState(set: KeySet, now: number): "fresh" | "stale" | "expired" {
    const age = now - set.fetchedAt;
    if (age < this.options.maxAgeMs) return "fresh";
    return age < this.options.maxAgeMs + this.options.maxStaleMs ? "stale" : "expired";
  }

  /**
   * Refreshes a stale set in the background every half maxAge, traffic or not (an unref'd timer):
   * keys are otherwise refreshed only when a request needs one, and an idle replica's set would
   * expire and make it not ready, with no request ever coming to refresh it.
   */
  keepFresh(): void {
    if (this.keeper) return;
    this.keeper = setInterval(() => {
      const set = this.set;
      if (set === null || this.ageState(set, this.options.clock.now()) !== "fresh") void this.refreshIfAllowed();
    }, Math.max(1000, Math.floor(this.options.maxAgeMs / 2)));
    this.keeper.unref();
  }

  private keeper: NodeJS.Timeout | null = null;

  private refreshIfAllowed(): Promise<void> {
    if (this.inflight !== null) return this.inflight;
    if (this.options.clock.now() - this.lastAttemptAt < this.options.refreshIntervalMs) {
      return Promise.resolve();
    }
    return this.refresh();
  }

  /** Single-flight fetch; always resolves (failures are recorded in lastError). */
  private refresh(): Promise<void> {
    this.lastAttemptAt = this.options.clock.now();
    const attempt = this.fetchSet().then(
      (set) => {
        this.set = set;
        this.lastError = null;
      },
      (err: unknown) => {
        this.lastError = err instanceof Error ? err.message : String(err);
        this.refreshFailures++;
      },
    );
    this.inflight = attempt.finally(() => {
      this.inflight = null;
    });
    return this.inflight;
  }

  private async fetchSet(): Promise<KeySet> {
    const raw = await this.client.getKeys();
    const list = z.array(z.unknown()).safeParse(raw);
    if (!list.success) throw new Error("JWKS document has no `keys` array");
    const previous = this.set;
    const byKid = new Map<string, VerificationKey>();
    const all: VerificationKey[] = [];
    for (const entry of list.data) {
      const key = importJwk(entry, previous);
      if (key === null) continue;
      all.push(key);
      // Duplicate kids are ambiguous; the first one published wins, as in most JOSE libraries.
      if (key.kid !== null && !byKid.has(key.kid)) byKid.set(key.kid, key);
    }
    return { byKid, all, fetchedAt: this.options.clock.now() };
  }

  private unavailable(): AuthError {
    const detail = this.lastError ?? "no key set loaded yet";
    return new AuthError("jwks_unavailable", `issuer keys unavailable: ${detail}`);
  }
}

function findKey(set: KeySet, kid: string | null): VerificationKey | undefined {
  if (kid !== null) return set.byKid.get(kid);
  // A token without kid is only unambiguous against a single-key set.
  return set.all.length === 1 ? set.all[0] : undefined;
}

/** Imports a signing JWK; anything else (encryption keys, private keys, junk) is skipped. */
function importJwk(entry: unknown, previous: KeySet | null): VerificationKey | null {
  const parsed = JwkSchema.safeParse(entry);
  if (!parsed.success) return null;
  const jwk = parsed.data;
  if (jwk.use !== undefined && jwk.use !== "sig") return null;
  if (jwk.kty !== "RSA" && jwk.kty !== "EC") return null;
  if (jwk.d !== undefined) return null; // a published private key is a broken IdP, not a key
  const material = ["kty", "n", "e", "crv", "x", "y"].map((name) => String(jwk[name] ?? ""));
  const fingerprint = [jwk.alg ?? "", ...material].join("|");
  const kid = jwk.kid ?? null;
  // Reusing the KeyObject keeps identities cached under it valid across routine refreshes.
  const same = previous?.all.find((k) => k.kid === kid && k.fingerprint === fingerprint);
  if (same !== undefined) return same;
  try {
    const key = createPublicKey({ key: jwk as JsonWebKey, format: "jwk" });
    return { kid, alg: jwk.alg ?? null, key, fingerprint };
  } catch {
    return null;
  }
}
