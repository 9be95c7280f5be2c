import { constants, createHmac, createPublicKey, timingSafeEqual, verify, type KeyObject } from "node:crypto";
import { BundleError } from "./errors.js";

/** The JWS algorithms OPA accepts for bundle signatures. */
export const SIGNING_ALGORITHMS = [
  "RS256",
  "RS384",
  "RS512",
  "PS256",
  "PS384",
  "PS512",
  "ES256",
  "ES384",
  "ES512",
  "HS256",
  "HS384",
  "HS512",
] as const;

export type SigningAlgorithm = (typeof SIGNING_ALGORITHMS)[number];

/** Checks a JWS signature over `signingInput`; never throws. */
export type SignatureCheck = (signingInput: Buffer, signature: Buffer) => boolean;

const PUBLIC_KEY_PEM = /^\s*-----BEGIN PUBLIC KEY-----[\s\S]+-----END PUBLIC KEY-----\s*$/;
const ANY_PEM = /-----BEGIN [A-Z0-9 ]+-----/;
const EC_CURVES: Record<string, SigningAlgorithm> = {
  prime256v1: "ES256",
  secp384r1: "ES384",
  secp521r1: "ES512",
};

export function isSigningAlgorithm(value: string): value is SigningAlgorithm {
  return (SIGNING_ALGORITHMS as readonly string[]).includes(value);
}

/**
 * resolveSigningAlgorithm returns the algorithm to verify with: `algorithm` when given (checked
 * against the key), else the one the key implies (RSA → RS256, EC P-256/384/521 → ES256/384/512).
 * An HMAC secret has no type to derive from, so HS* must be given explicitly.
 */
export function resolveSigningAlgorithm(key: string, algorithm?: string): SigningAlgorithm {
  if (algorithm !== undefined) {
    if (!isSigningAlgorithm(algorithm)) {
      throw new BundleError(
        "bundle_key_invalid",
        `unsupported signing algorithm "${algorithm}"; expected one of ${SIGNING_ALGORITHMS.join(", ")}`,
      );
    }
    createSignatureCheck(key, algorithm); // throws when key and algorithm do not fit
    return algorithm;
  }
  if (!ANY_PEM.test(key)) {
    throw new BundleError(
      "bundle_key_invalid",
      "the verification key is not a PEM public key; " +
        "an HMAC secret needs an explicit algorithm (HS256, HS384 or HS512)",
    );
  }
  const publicKey = parsePublicKey(key);
  if (publicKey.asymmetricKeyType === "rsa") return "RS256";
  if (publicKey.asymmetricKeyType === "rsa-pss") return "PS256";
  if (publicKey.asymmetricKeyType === "ec") {
    const alg = EC_CURVES[publicKey.asymmetricKeyDetails?.namedCurve ?? ""];
    if (alg !== undefined) return alg;
  }
  throw new BundleError("bundle_key_invalid", `cannot derive a signing algorithm from a ${describeKey(publicKey)} key`);
}

/**
 * createSignatureCheck binds a configured key to its configured algorithm. The JWT header's `alg`
 * is never consulted: trusting it is the classic algorithm-confusion hole (an RSA public key used
 * as an HMAC secret), which is why OPA takes the algorithm from key configuration too.
 */
export function createSignatureCheck(key: string, algorithm: SigningAlgorithm): SignatureCheck {
  const hash = `sha${algorithm.slice(2)}`;
  if (algorithm.startsWith("HS")) {
    if (ANY_PEM.test(key)) {
      throw new BundleError("bundle_key_invalid", `${algorithm} needs a shared secret, not a PEM key`);
    }
    if (key.length === 0) throw new BundleError("bundle_key_invalid", `${algorithm} secret is empty`);
    // OPA uses the configured string's raw bytes as the HMAC key (no base64 decoding).
    const secret = Buffer.from(key, "utf8");
    return (input, signature) => {
      const expected = createHmac(hash, secret).update(input).digest();
      return expected.length === signature.length && timingSafeEqual(expected, signature);
    };
  }

  const publicKey = parsePublicKey(key);
  const type = publicKey.asymmetricKeyType;
  if (algorithm.startsWith("RS") || algorithm.startsWith("PS")) {
    const pss = algorithm.startsWith("PS");
    if (type !== "rsa" && !(pss && type === "rsa-pss")) {
      throw new BundleError("bundle_key_invalid", `${algorithm} needs an RSA key, got ${describeKey(publicKey)}`);
    }
    const verifyKey = pss
      ? { key: publicKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_AUTO }
      : publicKey;
    return (input, signature) => safeVerify(hash, input, verifyKey, signature);
  }
  // ES*: the curve is fixed by the algorithm, and JWS signatures are raw r‖s, not DER.
  const curve = publicKey.asymmetricKeyDetails?.namedCurve;
  if (type !== "ec" || curve === undefined || EC_CURVES[curve] !== algorithm) {
    const got = describeKey(publicKey);
    throw new BundleError("bundle_key_invalid", `${algorithm} needs an EC key on its curve, got ${got}`);
  }
  const verifyKey = { key: publicKey, dsaEncoding: "ieee-p1363" as const };
  return (input, signature) => safeVerify(hash, input, verifyKey, signature);
}

function safeVerify(hash: string, input: Buffer, key: Parameters<typeof verify>[2], signature: Buffer): boolean {
  try {
    return verify(hash, input, key, signature);
  } catch {
    return false; // e.g. a signature of the wrong length for the key
  }
}

/** Like OPA, only PKIX "PUBLIC KEY" PEM is accepted (no certificates, no PKCS#1 "RSA PUBLIC KEY"). */
function parsePublicKey(pem: string): KeyObject {
  if (!PUBLIC_KEY_PEM.test(pem)) {
    throw new BundleError("bundle_key_invalid", 'the verification key must be a PEM "PUBLIC KEY" block');
  }
  try {
    return createPublicKey({ key: pem, format: "pem" });
  } catch (err) {
    throw new BundleError("bundle_key_invalid", `the verification key cannot be parsed: ${(err as Error).message}`);
  }
}

function describeKey(key: KeyObject): string {
  const curve = key.asymmetricKeyDetails?.namedCurve;
  return curve === undefined ? `${key.asymmetricKeyType ?? "unknown"}` : `${key.asymmetricKeyType ?? "ec"} ${curve}`;
}
