/**
 * A fake identity provider for tests: a JWKS endpoint on 127.0.0.1 (random port) plus a minter for
 * valid tokens and for every class of defective token the gateway must refuse.
 *
 *   const idp = await startFakeIdp({ audience: "https://gw.test/mcp" });
 *   const token = idp.mint({ sub: "alice", roles: ["analyst"] });
 *   const bad = idp.mintDefective("expired");        // EXPECTED_CODE.expired === "token_expired"
 *   idp.jwksFetchCount;                               // GETs of the JWKS so far
 *   const kid = idp.rotate();                         // new signing key, old one still listed
 *   idp.setAvailable(false);                          // JWKS answers 503 until set back
 *   await idp.close();                                // connection refused from now on
 */
import {
  constants,
  createHmac,
  createPublicKey,
  generateKeyPairSync,
  randomUUID,
  sign as cryptoSign,
  type KeyObject,
} from "node:crypto";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import type { AuthFailureCode } from "../../gateway/auth/index.js";

export interface FakeIdpOptions {
  /** Default "https://portcullis.test/mcp". */
  audience?: string;
  /** Default: the server's URL, e.g. http://127.0.0.1:41234. */
  issuer?: string;
  /** Signing keys are RSA-2048 (RS256) or P-256 (ES256). Default RSA. */
  keyType?: "RSA" | "EC";
  /** Milliseconds since the epoch; iat/exp defaults are computed from it. */
  clock?: { now(): number };
}

export interface MintOptions {
  /** Header kid; null omits it. Default: the current key's kid. */
  kid?: string | null;
  /** Private key to sign with. Default: the current key. */
  key?: KeyObject;
  /** Default RS256 (ES256 for EC). "none" gives an unsigned token; HS* is keyed with the public key PEM. */
  alg?: string;
  /** Extra header members, applied last. */
  header?: Record<string, unknown>;
}

export type DefectKind =
  | "expired"
  | "not_yet_valid"
  | "wrong_audience"
  | "wrong_issuer"
  | "alg_none"
  | "hs256_public_key"
  | "alg_not_allowed"
  | "unknown_kid"
  | "wrong_key"
  | "tampered"
  | "no_exp"
  | "no_sub"
  | "sub_not_string"
  | "garbage"
  | "two_parts"
  | "bad_base64";

/** What a verifier with `algorithms: ["RS256"]` (or ["ES256"] for EC) must answer to each defect. */
export const EXPECTED_CODE: Readonly<Record<DefectKind, AuthFailureCode>> = {
  expired: "token_expired",
  not_yet_valid: "token_not_yet_valid",
  wrong_audience: "token_bad_audience",
  wrong_issuer: "token_bad_issuer",
  alg_none: "token_bad_algorithm",
  hs256_public_key: "token_bad_algorithm",
  alg_not_allowed: "token_bad_algorithm",
  unknown_kid: "token_unknown_key",
  wrong_key: "token_bad_signature",
  tampered: "token_bad_signature",
  no_exp: "token_bad_claims",
  no_sub: "token_bad_claims",
  sub_not_string: "token_bad_claims",
  garbage: "token_malformed",
  two_parts: "token_malformed",
  bad_base64: "token_malformed",
};

export interface FakeIdp {
  readonly issuer: string;
  readonly jwksUri: string;
  readonly audience: string;
  /** kid of the current signing key. */
  readonly kid: string;
  /** A private key of the same type that the JWKS never lists. */
  readonly otherKey: KeyObject;
  /** Requests to the JWKS endpoint so far (including refused ones while unavailable). */
  readonly jwksFetchCount: number;
  /** Signs `claims` over defaults {iss, aud, sub: "agent-1", iat: now, exp: now + 300}; undefined values are dropped. */
  mint(claims?: Record<string, unknown>, options?: MintOptions): string;
  mintDefective(kind: DefectKind): string;
  /** Makes a new key current and returns its kid; the previous key stays listed unless keepPrevious is false. */
  rotate(options?: { keepPrevious?: boolean }): string;
  setAvailable(available: boolean): void;
  /** Idempotent. */
  close(): Promise<void>;
}

interface PublishedKey {
  kid: string;
  privateKey: KeyObject;
  alg: string;
}

export async function startFakeIdp(options: FakeIdpOptions = {}): Promise<FakeIdp> {
  const keyType = options.keyType ?? "RSA";
  const defaultAlg = keyType === "RSA" ? "RS256" : "ES256";
  const now = (): number => Math.floor((options.clock?.now() ?? Date.now()) / 1000);
  const newKey = (): PublishedKey => ({ kid: `kid-${randomUUID()}`, privateKey: generateKey(keyType), alg: defaultAlg });

  let published: PublishedKey[] = [newKey()];
  let current = published[0] as PublishedKey;
  let available = true;
  let fetches = 0;

  const server = createServer((req, res) => {
    if (req.url !== "/.well-known/jwks.json") {
      res.writeHead(404).end();
      return;
    }
    fetches += 1;
    if (!available) {
      res.writeHead(503).end();
      return;
    }
    const keys = published.map((k) => ({
      ...createPublicKey(k.privateKey).export({ format: "jwk" }),
      kid: k.kid,
      alg: k.alg,
      use: "sig",
    }));
    res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ keys }));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const issuer = options.issuer ?? url;
  const audience = options.audience ?? "https://portcullis.test/mcp";
  let otherKey: KeyObject | undefined;
  // Generated on first use: RSA key generation is slow and most tests never need it.
  const getOtherKey = (): KeyObject => (otherKey ??= generateKey(keyType));
  let closing: Promise<void> | undefined;

  const mint = (claims: Record<string, unknown> = {}, opts: MintOptions = {}): string => {
    const iat = now();
    const payload: Record<string, unknown> = { iss: issuer, aud: audience, sub: "agent-1", iat, exp: iat + 300, ...claims };
    for (const [name, value] of Object.entries(payload)) if (value === undefined) delete payload[name];
    const alg = opts.alg ?? defaultAlg;
    const header: Record<string, unknown> = { alg, typ: "JWT" };
    const kid = opts.kid === undefined ? current.kid : opts.kid;
    if (kid !== null) header["kid"] = kid;
    Object.assign(header, opts.header);
    const signingInput = `${b64(JSON.stringify(header))}.${b64(JSON.stringify(payload))}`;
    const signature = signWith(alg, opts.key ?? current.privateKey, signingInput);
    return `${signingInput}.${signature.toString("base64url")}`;
  };

  const mintDefective = (kind: DefectKind): string => {
    const t = now();
    switch (kind) {
      case "expired":
        return mint({ iat: t - 7200, exp: t - 3600 });
      case "not_yet_valid":
        return mint({ nbf: t + 3600 });
      case "wrong_audience":
        return mint({ aud: "https://some-other-resource.test/mcp" });
      case "wrong_issuer":
        return mint({ iss: "https://evil.test/" });
      case "alg_none":
        return mint({}, { alg: "none" });
      case "hs256_public_key":
        return mint({}, { alg: "HS256" });
      case "alg_not_allowed":
        return mint({}, { alg: keyType === "RSA" ? "RS512" : "ES384", key: keyType === "RSA" ? undefined : generateKey("EC", "P-384") });
      case "unknown_kid":
        return mint({}, { kid: "kid-not-in-jwks" });
      case "wrong_key":
        return mint({}, { key: getOtherKey() });
      case "tampered": {
        const [header, , signature] = mint({ sub: "agent-1" }).split(".");
        const forged = b64(JSON.stringify({ iss: issuer, aud: audience, sub: "admin", iat: t, exp: t + 300 }));
        return `${header}.${forged}.${signature}`;
      }
      case "no_exp":
        return mint({ exp: undefined });
      case "no_sub":
        return mint({ sub: undefined });
      case "sub_not_string":
        return mint({ sub: 42 });
      case "garbage":
        return "this-is-not-a-jwt";
      case "two_parts":
        return mint().split(".").slice(0, 2).join(".");
      case "bad_base64":
        return `${mint().split(".")[0]}.%%%not-base64%%%.c2ln`;
    }
  };

  return {
    issuer,
    jwksUri: `${url}/.well-known/jwks.json`,
    audience,
    get otherKey() {
      return getOtherKey();
    },
    get kid() {
      return current.kid;
    },
    get jwksFetchCount() {
      return fetches;
    },
    mint,
    mintDefective,
    rotate({ keepPrevious = true } = {}) {
      current = newKey();
      published = keepPrevious ? [...published, current] : [current];
      return current.kid;
    },
    setAvailable(up) {
      available = up;
    },
    close() {
      closing ??= new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeAllConnections();
      });
      return closing;
    },
  };

  function signWith(alg: string, key: KeyObject, input: string): Buffer {
    const data = Buffer.from(input);
    const hash = `sha${alg.slice(2)}`;
    if (alg === "none") return Buffer.alloc(0);
    // The classic key-confusion attack: HMAC keyed with the issuer's public key PEM.
    if (alg.startsWith("HS")) return createHmac(hash, createPublicKey(current.privateKey).export({ format: "pem", type: "spki" })).update(data).digest();
    if (alg.startsWith("RS")) return cryptoSign(hash, data, key);
    if (alg.startsWith("PS")) {
      return cryptoSign(hash, data, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST });
    }
    if (alg.startsWith("ES")) return cryptoSign(hash, data, { key, dsaEncoding: "ieee-p1363" });
    throw new Error(`fake IdP cannot sign ${alg}`);
  }
}

function generateKey(type: "RSA" | "EC", curve = "P-256"): KeyObject {
  return type === "RSA"
    ? generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey
    : generateKeyPairSync("ec", { namedCurve: curve }).privateKey;
}

function b64(text: string): string {
  return Buffer.from(text).toString("base64url");
}
