import { createHash } from "node:crypto";
import { z } from "zod";
import { canonicalJson, JsonSyntaxError } from "./canonical-json.js";
import { BundleError } from "./errors.js";
import { createSignatureCheck, type SigningAlgorithm } from "./keys.js";

/**
 * Bundle signature verification, mirroring OPA's v1/bundle (verify.go, hash.go, bundle.go) so a
 * bundle `opa run --verification-key` accepts is accepted here and vice versa, with two deliberate
 * tightenings: an unsigned bundle is always refused (OPA accepts one when no key id is configured),
 * and only the root `.signatures.json` is a signature file (OPA skips any path ending in it).
 */

export interface VerificationKey {
  /** PEM "PUBLIC KEY" for RS/PS/ES; the shared secret itself for HS. */
  key: string;
  /** Always from configuration: the JWT header's `alg` is ignored. */
  algorithm: SigningAlgorithm;
  /** Scope this key expects when the configuration names none. */
  scope?: string;
}

export interface VerificationConfig {
  /** Keys by id (OPA's `keys:` section). */
  keys: Readonly<Record<string, VerificationKey>>;
  /** Configured key id. When empty, the JWT header `kid`, then the payload `keyid`, picks the key. */
  keyId?: string;
  /** Expected `scope` claim; empty means the key's scope, and both empty match a token without one. */
  scope?: string;
}

export interface VerifiedSignature {
  keyId: string;
  /** Names of the verified files as listed in the signature (no leading `/`), sorted. */
  files: string[];
}

export const SIGNATURES_FILE = ".signatures.json";

/** Hash names OPA accepts in `files[].algorithm`, spelled exactly as it spells them. */
const HASHES: Readonly<Record<string, string>> = {
  MD5: "md5",
  "SHA-1": "sha1",
  "SHA-224": "sha224",
  "SHA-256": "sha256",
  "SHA-384": "sha384",
  "SHA-512": "sha512",
  "SHA-512-224": "sha512-224",
  "SHA-512-256": "sha512-256",
};

const SignaturesFileSchema = z.object({
  signatures: z.array(z.string()).nullish(),
  plugin: z.string().optional(),
});

const PayloadSchema = z.object({
  files: z.array(z.object({ name: z.string(), hash: z.string(), algorithm: z.string() })).nullish(),
  keyid: z.string().nullish(),
  scope: z.string().nullish(),
  iat: z.number().int().nullish(),
  iss: z.string().nullish(),
});
type Payload = z.infer<typeof PayloadSchema>;

const HeaderSchema = z.object({ kid: z.string().nullish() });
const BASE64URL = /^[A-Za-z0-9_-]*$/;

/**
 * verifyBundleSignature checks the one JWT in `/.signatures.json` against `config`, then checks
 * that every other file is listed with a matching digest and every listed file is present.
 * `files` maps names as stored in the archive (with or without a leading `/`) to contents.
 */
export function verifyBundleSignature(
  files: ReadonlyMap<string, Buffer>,
  config: VerificationConfig,
): VerifiedSignature {
  // OPA strips exactly one leading '/' before comparing with the signed names.
  const byPath = new Map<string, { stored: string; content: Buffer }>();
  for (const [stored, content] of files) {
    const path = stored.startsWith("/") ? stored.slice(1) : stored;
    if (byPath.has(path)) {
      throw new BundleError("bundle_malformed", "file appears twice in the archive", { file: stored });
    }
    byPath.set(path, { stored, content });
  }

  const sigFile = byPath.get(SIGNATURES_FILE);
  if (sigFile === undefined) {
    throw new BundleError("bundle_unsigned", `bundle has no ${SIGNATURES_FILE} file; unsigned bundles are refused`);
  }
  byPath.delete(SIGNATURES_FILE);
  const { keyId, payload } = verifyToken(readToken(sigFile.stored, sigFile.content), config, sigFile.stored);

  const signed = new Map<string, { hash: string; algorithm: string }>();
  for (const entry of payload.files ?? []) {
    if (signed.has(entry.name)) {
      throw new BundleError("bundle_signature_invalid", "signature lists the file twice", { file: entry.name });
    }
    signed.set(entry.name, { hash: entry.hash, algorithm: entry.algorithm });
  }

  // Sorted so that the first problem reported is the same on every run.
  const verified: string[] = [];
  for (const path of [...byPath.keys()].sort()) {
    const { stored, content } = byPath.get(path) as { stored: string; content: Buffer };
    const entry = signed.get(path);
    if (entry === undefined) {
      throw new BundleError("bundle_file_unsigned", "not included in the bundle signature", { file: stored });
    }
    const hashName = HASHES[entry.algorithm];
    if (hashName === undefined) {
      throw new BundleError(
        "bundle_signature_invalid",
        `unsupported hashing algorithm "${entry.algorithm}"; expected one of ${Object.keys(HASHES).join(", ")}`,
        { file: stored },
      );
    }
    const got = digestFile(path, stored, content, hashName);
    if (got !== entry.hash) {
      throw new BundleError("bundle_digest_mismatch", `digest mismatch (want: ${entry.hash}, got: ${got})`, {
        file: stored,
      });
    }
    signed.delete(path);
    verified.push(path);
  }

  if (signed.size > 0) {
    const missing = [...signed.keys()].sort();
    throw new BundleError(
      "bundle_file_missing",
      `file(s) [${missing.join(", ")}] specified in the bundle signature but not found in the bundle`,
      { file: missing[0] },
    );
  }
  return { keyId, files: verified };
}

/** fileDigest hashes a bundle file as OPA does: structured documents canonically, others raw. */
export function fileDigest(path: string, content: Buffer, algorithm = "SHA-256"): string {
  const hashName = HASHES[algorithm];
  if (hashName === undefined) throw new TypeError(`unsupported hashing algorithm "${algorithm}"`);
  return digestFile(path.startsWith("/") ? path.slice(1) : path, path, content, hashName);
}

function digestFile(path: string, stored: string, content: Buffer, hashName: string): string {
  const base = path.slice(path.lastIndexOf("/") + 1);
  if (base === "data.yaml") {
    // OPA hashes data.yaml after Go's YAML→JSON conversion, which cannot be reproduced exactly.
    throw new BundleError("bundle_malformed", "data.yaml is not supported in signed bundles; use data.json", {
      file: stored,
    });
  }
  const hash = createHash(hashName);
  if (base === "data.json" || base === ".manifest") {
    try {
      hash.update(canonicalJson(content), "utf8");
    } catch (err) {
      if (!(err instanceof JsonSyntaxError)) throw err;
      throw new BundleError("bundle_malformed", `not valid JSON (${err.message})`, { file: stored });
    }
  } else {
    hash.update(content);
  }
  return hash.digest("hex");
}

function readToken(stored: string, content: Buffer): string {
  let parsed: unknown;
  try {
    parsed = JSON.parse(content.toString("utf8"));
  } catch {
    throw new BundleError("bundle_signature_invalid", "not valid JSON", { file: stored });
  }
  const result = SignaturesFileSchema.safeParse(parsed);
  if (!result.success) {
    throw new BundleError("bundle_signature_invalid", 'expected {"signatures": ["<JWT>"]}', { file: stored });
  }
  const { signatures, plugin } = result.data;
  if (plugin !== undefined && plugin !== "" && plugin !== "_default") {
    throw new BundleError("bundle_signature_invalid", `unsupported signature plugin "${plugin}"`, { file: stored });
  }
  if (signatures === undefined || signatures === null || signatures.length === 0) {
    throw new BundleError("bundle_signature_invalid", "missing JWT (expected exactly one)", { file: stored });
  }
  if (signatures.length > 1) {
    throw new BundleError("bundle_signature_invalid", "multiple JWTs not supported (expected exactly one)", {
      file: stored,
    });
  }
  return signatures[0] as string;
}

function verifyToken(
  token: string,
  config: VerificationConfig,
  stored: string,
): { keyId: string; payload: Payload } {
  const invalid = (reason: string): BundleError =>
    new BundleError("bundle_signature_invalid", reason, { file: stored });

  const parts = token.split(".");
  if (parts.length !== 3 || !parts.every((p) => BASE64URL.test(p))) throw invalid("the JWT is not compact JWS");
  const [h, p, s] = parts as [string, string, string];
  const header = HeaderSchema.safeParse(decodeSegment(h));
  if (!header.success) throw invalid("the JWT header is not a JSON object");
  const payloadResult = PayloadSchema.safeParse(decodeSegment(p));
  if (!payloadResult.success) throw invalid("the JWT payload does not have OPA's claims shape");
  const payload = payloadResult.data;

  // OPA's precedence: configured key id, then the header's kid, then the deprecated keyid claim.
  const keyId = nonEmpty(config.keyId) ?? nonEmpty(header.data.kid) ?? nonEmpty(payload.keyid);
  if (keyId === undefined) throw invalid("verification key ID is empty");
  if (!Object.hasOwn(config.keys, keyId)) {
    throw new BundleError("bundle_key_invalid", `verification key corresponding to ID "${keyId}" not found`, {
      file: stored,
    });
  }
  const key = config.keys[keyId] as VerificationKey;
  const check = createSignatureCheck(key.key, key.algorithm);
  if (!check(Buffer.from(`${h}.${p}`, "ascii"), Buffer.from(s, "base64url"))) {
    throw invalid(`the signature does not verify with key "${keyId}" (${key.algorithm})`);
  }

  const expectedScope = nonEmpty(config.scope) ?? key.scope ?? "";
  const gotScope = payload.scope ?? "";
  if (gotScope !== expectedScope) {
    throw new BundleError("bundle_scope_mismatch", `scope mismatch (want: "${expectedScope}", got: "${gotScope}")`, {
      file: stored,
    });
  }
  return { keyId, payload };
}

function decodeSegment(segment: string): unknown {
  try {
    return JSON.parse(Buffer.from(segment, "base64url").toString("utf8"));
  } catch {
    return undefined;
  }
}

function nonEmpty(value: string | null | undefined): string | undefined {
  return value === undefined || value === null || value === "" ? undefined : value;
}
