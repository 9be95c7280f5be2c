import { constants, createHmac, createPrivateKey, sign, type KeyObject } from "node:crypto";
import { BundleError } from "./errors.js";
import { isSigningAlgorithm, SIGNING_ALGORITHMS, type SigningAlgorithm } from "./keys.js";
import { fileDigest, SIGNATURES_FILE } from "./signature.js";

/**
 * Bundle signing, the inverse of ./signature.ts, in OPA's format (v1/bundle/sign.go): one JWT in
 * `/.signatures.json` whose payload lists every other file with its SHA-256 digest (JSON files
 * hashed in canonical form), header `kid` and payload `keyid` naming the key, and an optional
 * `scope`. `opa build --verification-key` accepts what this writes (the integration suite checks).
 */

export interface SignOptions {
  /** PKCS#8 (or PKCS#1/SEC1) private key PEM for RS/PS/ES; the shared secret for HS. */
  privateKeyPem: string;
  algorithm: SigningAlgorithm;
  /** Written as header `kid` and payload `keyid` (default "default", as opa build does). */
  keyId?: string;
  scope?: string;
  /** Extra payload claims (`iss`, `iat`, …), as opa's --claims-file. */
  claims?: Record<string, unknown>;
}

/** signBundleFiles returns `files` with a fresh `/.signatures.json` (any old one is dropped). */
export function signBundleFiles(files: ReadonlyMap<string, Buffer>, opts: SignOptions): Map<string, Buffer> {
  if (!isSigningAlgorithm(opts.algorithm)) {
    throw new BundleError("bundle_key_invalid", `unsupported signing algorithm "${String(opts.algorithm)}"; expected one of ${SIGNING_ALGORITHMS.join(", ")}`);
  }
  const out = new Map<string, Buffer>();
  const entries: Array<{ name: string; hash: string; algorithm: string }> = [];
  for (const [name, content] of files) {
    const bare = name.startsWith("/") ? name.slice(1) : name;
    if (bare === SIGNATURES_FILE) continue;
    out.set(name, content);
    entries.push({ name: bare, hash: fileDigest(name, content), algorithm: "SHA-256" });
  }
  const keyId = opts.keyId ?? "default";
  const payload: Record<string, unknown> = { files: entries, keyid: keyId, ...(opts.claims ?? {}) };
  if (opts.scope !== undefined && opts.scope !== "") payload.scope = opts.scope;
  const token = signJws({ alg: opts.algorithm, kid: keyId, typ: "JWT" }, payload, opts.privateKeyPem, opts.algorithm);
  out.set(`/${SIGNATURES_FILE}`, Buffer.from(JSON.stringify({ signatures: [token] })));
  return out;
}

function signJws(header: object, payload: object, keyPem: string, algorithm: SigningAlgorithm): string {
  const b64 = (v: object): string => Buffer.from(JSON.stringify(v)).toString("base64url");
  const input = Buffer.from(`${b64(header)}.${b64(payload)}`, "ascii");
  const hash = `sha${algorithm.slice(2)}`;
  let signature: Buffer;
  if (algorithm.startsWith("HS")) {
    if (keyPem.length === 0 || keyPem.includes("-----BEGIN")) {
      throw new BundleError("bundle_key_invalid", `${algorithm} needs a shared secret, not a PEM key`);
    }
    signature = createHmac(hash, Buffer.from(keyPem, "utf8")).update(input).digest();
  } else {
    const key = privateKey(keyPem);
    const type = key.asymmetricKeyType;
    if (algorithm.startsWith("ES")) {
      const curve = key.asymmetricKeyDetails?.namedCurve;
      const want = { ES256: "prime256v1", ES384: "secp384r1", ES512: "secp521r1" }[algorithm as "ES256"];
      if (type !== "ec" || curve !== want) {
        throw new BundleError("bundle_key_invalid", `${algorithm} needs an EC ${want} private key, got ${type ?? "unknown"} ${curve ?? ""}`.trim());
      }
      // JWS wants the raw r‖s form, not DER.
      signature = sign(hash, input, { key, dsaEncoding: "ieee-p1363" });
    } else {
      if (type !== "rsa" && type !== "rsa-pss") {
        throw new BundleError("bundle_key_invalid", `${algorithm} needs an RSA private key, got ${type ?? "unknown"}`);
      }
      signature = algorithm.startsWith("PS")
        ? // Salt as long as the digest, as Go's jwx signs PS*.
          sign(hash, input, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST })
        : sign(hash, input, key);
    }
  }
  return `${input.toString("ascii")}.${signature.toString("base64url")}`;
}

function privateKey(pem: string): KeyObject {
  try {
    return createPrivateKey({ key: pem, format: "pem" });
  } catch (err) {
    throw new BundleError("bundle_key_invalid", `the signing key cannot be parsed as a PEM private key: ${(err as Error).message}`);
  }
}
