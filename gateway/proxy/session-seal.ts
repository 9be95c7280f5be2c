import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import { isObject } from "./jsonrpc.js";
import type { UpstreamState } from "./upstream.js";

/** One `sessions.sealKeys` entry: the id travels in clear, the key (32 bytes) never leaves the gateway. */
export interface SealKey {
  readonly id: string;
  readonly key: Buffer;
}

/**
 * What a gateway session is, carried by the session id itself (sealed): any replica holding the
 * keys can serve the session, and none needs another's memory.
 */
export interface SealedSession {
  /** Stable, random: the session's name in the audit, in policy input and in the shared store. */
  readonly handle: string;
  readonly iss: string;
  readonly sub: string;
  readonly server: string;
  /** Seconds since the epoch: minted at, and no replica serves it after. */
  readonly iat: number;
  readonly exp: number;
  /** Negotiated with the client at initialize. */
  readonly protocolVersion: string | null;
  /** What reaches the upstream session (for HTTP its session id, which only ever travels sealed). */
  readonly upstream: UpstreamState;
}

const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const KEY_ID = /^[A-Za-z0-9_-]{1,32}$/;
/** Largest token accepted for opening: anything longer is not one of ours (and not worth decrypting). */
const MAX_TOKEN_CHARS = 16 * 1024;

/**
 * AES-256-GCM over the session's JSON. The key id is in clear (so the right key is tried first),
 * and bound into the authenticated data with the token's purpose, so a sealed server→client
 * request id can never be presented as a session id or the other way round.
 */
export class SessionSealer {
  private readonly byId: ReadonlyMap<string, Buffer>;
  private readonly sealing: SealKey;

  constructor(keys: readonly SealKey[]) {
    if (keys.length === 0) throw new Error("at least one seal key is needed");
    const byId = new Map<string, Buffer>();
    for (const k of keys) {
      if (!KEY_ID.test(k.id)) throw new Error(`seal key id "${k.id}" must be 1-32 letters, digits, '_' or '-'`);
      if (k.key.length !== 32) throw new Error(`seal key "${k.id}" must be 32 bytes (it has ${k.key.length})`);
      if (byId.has(k.id)) throw new Error(`seal key id "${k.id}" is listed twice`);
      byId.set(k.id, k.key);
    }
    this.byId = byId;
    this.sealing = keys[0]!;
  }

  /** A gateway with no configured keys: one of its own, so its sessions die with the process. */
  static ephemeral(): SessionSealer {
    return new SessionSealer([{ id: "local", key: randomBytes(32) }]);
  }

  seal(purpose: string, value: unknown): string {
    const nonce = randomBytes(NONCE_BYTES);
    const cipher = createCipheriv("aes-256-gcm", this.sealing.key, nonce);
    cipher.setAAD(Buffer.from(`portcullis/${purpose}|${this.sealing.id}`));
    const body = Buffer.concat([cipher.update(JSON.stringify(value), "utf8"), cipher.final()]);
    return `${this.sealing.id}.${Buffer.concat([nonce, body, cipher.getAuthTag()]).toString("base64url")}`;
  }

  /** The sealed value, or null for anything tampered, truncated, foreign-keyed or of another purpose. */
  open(purpose: string, token: string): unknown {
    if (token.length > MAX_TOKEN_CHARS) return null;
    const dot = token.indexOf(".");
    if (dot <= 0) return null;
    const id = token.slice(0, dot);
    const key = this.byId.get(id);
    if (!key) return null;
    const raw = Buffer.from(token.slice(dot + 1), "base64url");
    // base64url decoding skips stray characters: re-encoding must give the token back exactly.
    if (raw.length < NONCE_BYTES + TAG_BYTES + 2 || raw.toString("base64url") !== token.slice(dot + 1)) return null;
    try {
      const decipher = createDecipheriv("aes-256-gcm", key, raw.subarray(0, NONCE_BYTES));
      decipher.setAAD(Buffer.from(`portcullis/${purpose}|${id}`));
      decipher.setAuthTag(raw.subarray(raw.length - TAG_BYTES));
      const plain = Buffer.concat([decipher.update(raw.subarray(NONCE_BYTES, raw.length - TAG_BYTES)), decipher.final()]);
      return JSON.parse(plain.toString("utf8")) as unknown;
    } catch {
      return null;
    }
  }

  sealSession(session: SealedSession): string {
    return this.seal("session/1", session);
  }

  /** The session a token carries, if it is one of ours and well formed (expiry is the caller's check). */
  openSession(token: string): SealedSession | null {
    const v = this.open("session/1", token);
    return isSealedSession(v) ? v : null;
  }
}

function isSealedSession(v: unknown): v is SealedSession {
  if (!isObject(v)) return false;
  const str = (x: unknown) => typeof x === "string";
  return (
    str(v.handle) && str(v.iss) && str(v.sub) && str(v.server) && typeof v.iat === "number" && typeof v.exp === "number" &&
    (v.protocolVersion === null || str(v.protocolVersion)) && isUpstreamState(v.upstream)
  );
}

function isUpstreamState(v: unknown, nested = false): v is UpstreamState {
  if (!isObject(v)) return false;
  if (v.kind === "stdio") return isObject(v.init);
  if (v.kind === "federated") return !nested && isObject(v.members) && Object.values(v.members).every((m) => isUpstreamState(m, true));
  if (v.kind !== "http") return false;
  return (v.era === "legacy" || v.era === "modern") && (v.sessionId === null || typeof v.sessionId === "string") &&
    (v.protocolVersion === null || typeof v.protocolVersion === "string") && (v.envelope === undefined || isObject(v.envelope));
}
