/**
 * Test helpers for signed policy bundles: key pairs, real `opa build` bundles, and hand-assembled
 * (and deliberately broken) bundles for verification tests.
 */
import { execFile } from "node:child_process";
import { constants, createHmac, createPrivateKey, generateKeyPairSync, sign, type KeyObject } from "node:crypto";
import { existsSync } from "node:fs";
import { chmod, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { fileDigest, readTarGz, writeTarGz } from "../../gateway/policy/index.js";

const execFileAsync = promisify(execFile);

/** The repository root, from this file's place in dist/test/support/ (or test/support/). */
export function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, "package.json"))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error("cannot find the repository root from test/support/bundles");
    dir = parent;
  }
  return dir;
}

/** The opa CLI: $OPA_BIN, else <repo>/.tools/bin/opa. */
export function opaBin(): string {
  return process.env.OPA_BIN ?? join(repoRoot(), ".tools", "bin", "opa");
}

/** The default policy directory (policies/). */
export function defaultPolicyDir(): string {
  return join(repoRoot(), "policies");
}

export type KeyKind = "rsa" | "ec-p256" | "ec-p384" | "ec-p521";

export interface KeyPairPem {
  privateKeyPem: string;
  /** PKIX "PUBLIC KEY" PEM, the form OPA and loadBundle accept. */
  publicKeyPem: string;
}

const CURVES: Record<Exclude<KeyKind, "rsa">, string> = {
  "ec-p256": "prime256v1",
  "ec-p384": "secp384r1",
  "ec-p521": "secp521r1",
};

/** generateKeyPair makes a fresh signing key pair as PEM (PKCS#8 private, SPKI public). */
export function generateKeyPair(kind: KeyKind = "rsa"): KeyPairPem {
  const publicKeyEncoding = { type: "spki", format: "pem" } as const;
  const privateKeyEncoding = { type: "pkcs8", format: "pem" } as const;
  const pair =
    kind === "rsa"
      ? generateKeyPairSync("rsa", { modulusLength: 2048, publicKeyEncoding, privateKeyEncoding })
      : generateKeyPairSync("ec", { namedCurve: CURVES[kind], publicKeyEncoding, privateKeyEncoding });
  return { privateKeyPem: pair.privateKey, publicKeyPem: pair.publicKey };
}

export async function makeTempDir(prefix = "portcullis-policy-"): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix));
}

export interface BuildSignedBundleOptions {
  policyDir: string;
  outFile: string;
  privateKeyPem: string;
  /** Passed to --signing-alg (RS256, PS256, ES256, …). */
  algorithm: string;
  revision?: string;
  /** Extra claims (e.g. {scope: "prod"}) via --claims-file; note OPA then writes no key id. */
  claims?: Record<string, unknown>;
  entrypoints?: string[];
}

/** buildSignedBundle runs the real `opa build -t wasm --signing-key …` and returns outFile. */
export async function buildSignedBundle(opts: BuildSignedBundleOptions): Promise<string> {
  const work = await makeTempDir("portcullis-sign-");
  try {
    const keyFile = join(work, "signing-key.pem");
    await writeFile(keyFile, opts.privateKeyPem, { mode: 0o600 });
    const args = ["--signing-key", keyFile, "--signing-alg", opts.algorithm];
    if (opts.claims !== undefined) {
      const claimsFile = join(work, "claims.json");
      await writeFile(claimsFile, JSON.stringify(opts.claims));
      args.push("--claims-file", claimsFile);
    }
    await runOpaBuild(opts.policyDir, opts.outFile, opts.revision, opts.entrypoints, args);
    return opts.outFile;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** buildUnsignedBundle runs `opa build -t wasm` without a signing key. */
export async function buildUnsignedBundle(opts: {
  policyDir: string;
  outFile: string;
  revision?: string;
  entrypoints?: string[];
}): Promise<string> {
  await runOpaBuild(opts.policyDir, opts.outFile, opts.revision, opts.entrypoints, []);
  return opts.outFile;
}

async function runOpaBuild(
  policyDir: string,
  outFile: string,
  revision: string | undefined,
  entrypoints: string[] | undefined,
  extra: string[],
): Promise<void> {
  // Run inside the policy dir with `-b .` so the bundle's module names carry no host paths.
  const args = ["build", "-b", ".", "-t", "wasm", "--ignore", "*_test.rego", "-o", resolve(outFile)];
  for (const e of entrypoints ?? ["mcp/authz/decision"]) args.push("-e", e);
  if (revision !== undefined) args.push("-r", revision);
  args.push(...extra);
  try {
    await execFileAsync(opaBin(), args, { cwd: resolve(policyDir), timeout: 60_000 });
  } catch (err) {
    const stderr = (err as { stderr?: string }).stderr ?? "";
    throw new Error(`opa ${args.join(" ")} failed: ${stderr || (err as Error).message}`);
  }
}

// ---------------------------------------------------------------- hand-assembled bundles

// The gateway's own writer (gateway/policy/tar-write.ts, used by `portcullis bundle sign`); the
// reader is still checked against archives the real opa writes.
export { writeTarGz };

export interface SignFilesOptions {
  /** Private key PEM (RS/PS/ES) or shared secret (HS). */
  key: string | KeyObject;
  algorithm: string;
  /** Written as header `kid` and payload `keyid`, as `opa build --signing-key` does (default "default"). */
  keyId?: string | null;
  scope?: string;
  /** Header fields to override (e.g. {alg: "HS256"} for algorithm-confusion tests). */
  header?: Record<string, unknown>;
  /** Names to leave out of the signed list. */
  omit?: string[];
  /** Extra entries to list (e.g. a file that is not in the bundle). */
  extraEntries?: Array<{ name: string; hash: string; algorithm: string }>;
}

/** signFiles computes OPA-style digests for `files` and returns them with a /.signatures.json added. */
export function signFiles(files: ReadonlyMap<string, Buffer>, opts: SignFilesOptions): Map<string, Buffer> {
  const entries = [...files]
    .filter(([name]) => !(opts.omit ?? []).includes(name))
    .map(([name, content]) => ({
      name: name.replace(/^\//, ""),
      hash: fileDigest(name, content),
      algorithm: "SHA-256",
    }));
  entries.push(...(opts.extraEntries ?? []));
  const keyId = opts.keyId === undefined ? "default" : opts.keyId;
  const payload: Record<string, unknown> = { files: entries };
  if (keyId !== null) payload.keyid = keyId;
  if (opts.scope !== undefined) payload.scope = opts.scope;
  const header: Record<string, unknown> = { alg: opts.algorithm, typ: "JWT" };
  if (keyId !== null) header.kid = keyId;
  Object.assign(header, opts.header);
  const token = signJwt(header, payload, opts.key, opts.algorithm);
  const out = new Map(files);
  out.set("/.signatures.json", Buffer.from(JSON.stringify({ signatures: [token], plugin: "_default" }, null, 1)));
  return out;
}

/** signJwt makes a compact JWS with `algorithm` regardless of what `header.alg` claims. */
export function signJwt(
  header: Record<string, unknown>,
  payload: Record<string, unknown>,
  key: string | KeyObject,
  algorithm: string,
): string {
  const b64 = (v: unknown): string => Buffer.from(JSON.stringify(v)).toString("base64url");
  const input = `${b64(header)}.${b64(payload)}`;
  const hash = `sha${algorithm.slice(2)}`;
  let sig: Buffer;
  if (algorithm.startsWith("HS")) {
    const secret = typeof key === "string" ? Buffer.from(key, "utf8") : key.export();
    sig = createHmac(hash, secret).update(input).digest();
  } else {
    const privateKey = typeof key === "string" ? createPrivateKey(key) : key;
    if (algorithm.startsWith("PS")) {
      sig = sign(hash, Buffer.from(input), {
        key: privateKey,
        padding: constants.RSA_PKCS1_PSS_PADDING,
        saltLength: constants.RSA_PSS_SALTLEN_DIGEST,
      });
    } else if (algorithm.startsWith("ES")) {
      sig = sign(hash, Buffer.from(input), { key: privateKey, dsaEncoding: "ieee-p1363" });
    } else {
      sig = sign(hash, Buffer.from(input), privateKey);
    }
  }
  return `${input}.${sig.toString("base64url")}`;
}

/** readBundleFiles unpacks a bundle archive on disk. */
export async function readBundleFiles(file: string): Promise<Map<string, Buffer>> {
  return readTarGz(await readFile(file));
}

/** rewriteBundle writes a copy of `inFile` with `edit` applied to its files (signature untouched). */
export async function rewriteBundle(
  inFile: string,
  outFile: string,
  edit: (files: Map<string, Buffer>) => void,
): Promise<string> {
  const files = await readBundleFiles(inFile);
  edit(files);
  await writeFile(outFile, writeTarGz(files));
  return outFile;
}

/** rewriteBundleFile replaces (or, with null, deletes) one file inside a bundle, for tamper tests. */
export async function rewriteBundleFile(
  inFile: string,
  outFile: string,
  name: string,
  content: Buffer | string | null,
): Promise<string> {
  return rewriteBundle(inFile, outFile, (files) => {
    if (content === null) files.delete(name);
    else files.set(name, typeof content === "string" ? Buffer.from(content, "utf8") : content);
  });
}

/** writeKeyFile writes a PEM to `dir/name` with owner-only permissions and returns its path. */
export async function writeKeyFile(dir: string, name: string, pem: string): Promise<string> {
  const file = join(dir, name);
  await writeFile(file, pem, { mode: 0o600 });
  await chmod(file, 0o600);
  return file;
}
