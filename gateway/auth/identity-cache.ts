import { createHash } from "node:crypto";
import type { VerificationKey } from "./jwks-cache.js";
import type { AgentIdentity } from "./types.js";

export interface CachedIdentity {
  identity: AgentIdentity;
  /** The key that verified the signature; the entry dies when the JWKS stops publishing it. */
  key: VerificationKey;
  exp: number;
  nbf: number | undefined;
}

/**
 * A bounded LRU of verified tokens. Signature verification dominates the per-request cost, and
 * agents send the same token on every request of a session.
 *
 * Entries are keyed by a SHA-256 of the token, not the token itself: the gateway must not keep
 * bearer tokens around (MCP security best practices name server-side token caches as a theft
 * vector). Since the signature is part of the hashed string, a forged token cannot hit an entry.
 * The caller still checks exp/nbf and the key on every hit.
 */
export class IdentityCache {
  private readonly entries = new Map<string, CachedIdentity>();

  constructor(private readonly maxEntries: number) {}

  static keyOf(token: string): string {
    return createHash("sha256").update(token).digest("base64url");
  }

  get(cacheKey: string): CachedIdentity | undefined {
    const entry = this.entries.get(cacheKey);
    if (entry === undefined) return undefined;
    // Re-insert to mark as most recently used (Map keeps insertion order).
    this.entries.delete(cacheKey);
    this.entries.set(cacheKey, entry);
    return entry;
  }

  set(cacheKey: string, entry: CachedIdentity): void {
    if (this.maxEntries <= 0) return;
    this.entries.delete(cacheKey);
    this.entries.set(cacheKey, entry);
    while (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next();
      if (oldest.done === true) break;
      this.entries.delete(oldest.value);
    }
  }

  delete(cacheKey: string): void {
    this.entries.delete(cacheKey);
  }

  get size(): number {
    return this.entries.size;
  }
}
