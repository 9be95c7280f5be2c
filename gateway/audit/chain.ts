import { createPrivateKey, hash, createPublicKey, sign, verify, type KeyObject } from "node:crypto";
import { canonicalJsonOfValue } from "../policy/index.js";
import type { AuditChainFields, AuditEvent } from "./types.js";

/** One-shot sha256 of the text's UTF-8 (crypto.hash: no Hash object per event). */
const sha256Hex = (text: string): string => hash("sha256", text, "hex");

/** `chain.prev` of the first event of an epoch: nothing precedes it. */
export const GENESIS_HASH = "0".repeat(64);

/** An event as it leaves `AuditRecord.finish`, before the chain is assigned. */
export type UnchainedAuditEvent = Omit<AuditEvent, "chain">;

export interface AuditChainOptions {
  /** Identifies this run of this instance: seq restarts at 1 with every epoch (every process start). */
  epoch: string;
  /** Ed25519 private key: every `checkpointEvery`-th event carries a signature over its hash. */
  signingKey?: KeyObject;
  /** Optional `chain.key_id` on signed events, so a verifier can pick the key. */
  keyId?: string;
  /** Default 100. */
  checkpointEvery?: number;
}

/**
 * The hash chain of one gateway instance (tamper evidence, docs/audit.md "Integrity"). `seal`
 * must be called in the single order events are handed to the sinks: `AuditLog.record` calls it
 * synchronously before any sink sees the event, so chain order is write order.
 *
 * hash = sha256(canonical JSON of the event with `chain.hash` and `chain.signature`/`key_id`
 * left out). `chain.prev` and `chain.seq` are inside what is hashed, so each hash commits to the
 * whole history of the epoch; a checkpoint signature over one hash commits to everything before it.
 */
export class AuditChain {
  private seq = 0;
  private prev = GENESIS_HASH;
  private readonly epoch: string;
  private readonly key: KeyObject | undefined;
  private readonly keyId: string | undefined;
  private readonly every: number;

  constructor(opts: AuditChainOptions) {
    this.epoch = opts.epoch;
    this.key = opts.signingKey;
    this.keyId = opts.keyId;
    this.every = Math.max(1, Math.floor(opts.checkpointEvery ?? 100));
    if (this.key && this.key.asymmetricKeyType !== "ed25519") {
      throw new Error(`audit.signing.privateKey must be an Ed25519 key, got ${this.key.asymmetricKeyType ?? "unknown"}`);
    }
  }

  /** The last assigned position (seq 0 and the genesis hash before the first event). */
  head(): { epoch: string; seq: number; hash: string } {
    return { epoch: this.epoch, seq: this.seq, hash: this.prev };
  }

  /** Assigns the next position, hash and (at checkpoints) signature. Synchronous on purpose. */
  seal(event: UnchainedAuditEvent): AuditEvent {
    const seq = this.seq + 1;
    const link = { epoch: this.epoch, seq, prev: this.prev };
    // chainHash's input without its copies: `link` holds none of the fields the hash leaves out.
    const hash = sha256Hex(canonicalJsonOfValue({ ...event, chain: link }));
    const chain: AuditChainFields = { ...link, hash };
    if (this.key && seq % this.every === 0) {
      chain.signature = signCheckpoint(hash, this.key);
      if (this.keyId !== undefined) chain.key_id = this.keyId;
    }
    this.seq = seq;
    this.prev = hash;
    return { ...event, chain };
  }
}

/**
 * sha256 (hex) of the event's canonical JSON without `chain.hash`, `chain.signature` and
 * `chain.key_id`. Works on the parsed JSON a verifier reads back: canonical JSON sorts keys, so
 * the field order of the line does not matter, only its content.
 */
export function chainHash(event: { chain?: unknown } & Record<string, unknown>): string {
  const chain = (typeof event.chain === "object" && event.chain !== null ? event.chain : {}) as Record<string, unknown>;
  const { hash: _h, signature: _s, key_id: _k, ...link } = chain;
  return sha256Hex(canonicalJsonOfValue({ ...event, chain: link }));
}

/** Ed25519 over the ASCII bytes of the hex hash, base64. */
export function signCheckpoint(hash: string, key: KeyObject): string {
  return sign(null, Buffer.from(hash, "ascii"), key).toString("base64");
}

export function verifyCheckpoint(hash: string, signature: string, key: KeyObject): boolean {
  try {
    return verify(null, Buffer.from(hash, "ascii"), key, Buffer.from(signature, "base64"));
  } catch {
    return false;
  }
}

/** An Ed25519 private key from PEM (PKCS#8), as written by `openssl genpkey -algorithm ed25519`. */
export function ed25519PrivateKey(pem: string): KeyObject {
  const key = createPrivateKey(pem);
  if (key.asymmetricKeyType !== "ed25519") throw new Error(`not an Ed25519 private key (${key.asymmetricKeyType ?? "unknown"})`);
  return key;
}

/** The public half, from a public (SPKI) or a private PEM. */
export function ed25519PublicKey(pem: string): KeyObject {
  const key = pem.includes("PRIVATE KEY") ? createPublicKey(createPrivateKey(pem)) : createPublicKey(pem);
  if (key.asymmetricKeyType !== "ed25519") throw new Error(`not an Ed25519 public key (${key.asymmetricKeyType ?? "unknown"})`);
  return key;
}
