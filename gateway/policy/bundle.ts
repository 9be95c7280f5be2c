import { createHash } from "node:crypto";
import { readFile, stat } from "node:fs/promises";
import { z } from "zod";
import { BundleError } from "./errors.js";
import { resolveSigningAlgorithm, type SigningAlgorithm } from "./keys.js";
import { verifyBundleSignature } from "./signature.js";
import { readTarGz, type TarLimits } from "./tar.js";

export { resolveSigningAlgorithm } from "./keys.js";

/** The entrypoint the gateway evaluates (contract 3). */
export const DECISION_ENTRYPOINT = "mcp/authz/decision";

/** The optional entrypoint evaluated on each tool result (docs/result-policy.md). */
export const RESULT_ENTRYPOINT = "mcp/authz/result";

const MAX_BUNDLE_BYTES = 1 << 30;

const ManifestSchema = z.object({
  revision: z.string().default(""),
  roots: z.array(z.string()).optional(),
  wasm: z.array(z.object({ entrypoint: z.string(), module: z.string() })).default([]),
  rego_version: z.number().optional(),
  metadata: z.record(z.string(), z.unknown()).optional(),
});
export type BundleManifest = z.infer<typeof ManifestSchema>;

export interface LoadBundleOptions {
  /** PEM "PUBLIC KEY" (or the shared secret for HS*). Required: unsigned bundles are refused. */
  verificationKeyPem: string;
  /** Defaults to the algorithm the key implies (RSA → RS256, EC → ES256/384/512 by curve). */
  algorithm?: string;
  /** Configured key id; OPA's default is "default", which `opa build --signing-key` also writes. */
  keyId?: string;
  /** Expected `scope` claim (default: none). */
  scope?: string;
  limits?: TarLimits;
}

/** A verified bundle, ready for WasmPolicyEngine.create. */
export interface LoadedBundle {
  /** Where it was loaded from (file path or URL), for messages and audit. */
  path: string;
  /** The module that serves mcp/authz/decision. */
  wasm: Buffer;
  /** Parsed /data.json ({} when absent). */
  data: unknown;
  manifest: BundleManifest;
  revision: string;
  /** Entrypoints the manifest declares, in manifest order. */
  entrypoints: string[];
  /** Hex SHA-256 of the archive bytes: a cheap identity for reload checks. */
  sha256: string;
  /** The key id the signature was verified with. */
  keyId: string;
}

/** loadBundle reads, verifies and unpacks a signed `opa build -t wasm` bundle from disk. */
export async function loadBundle(path: string, options: LoadBundleOptions): Promise<LoadedBundle> {
  let archive: Buffer;
  try {
    const info = await stat(path);
    if (!info.isFile()) throw new BundleError("bundle_unreadable", "not a regular file", { bundle: path });
    const max = options.limits?.maxBytes ?? MAX_BUNDLE_BYTES;
    if (info.size > max) {
      throw new BundleError("bundle_too_large", `file is ${info.size} bytes; the limit is ${max}`, { bundle: path });
    }
    archive = await readFile(path);
  } catch (err) {
    if (err instanceof BundleError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    const reason = code === "ENOENT" ? "no such file" : `cannot read (${(err as Error).message})`;
    throw new BundleError("bundle_unreadable", reason, { bundle: path });
  }
  return parseBundle(archive, path, options);
}

/** parseBundle verifies and unpacks bundle bytes; `source` names the bundle in errors. */
export function parseBundle(archive: Buffer, source: string, options: LoadBundleOptions): LoadedBundle {
  try {
    return unpack(archive, source, options);
  } catch (err) {
    if (err instanceof BundleError) throw err.bundle === undefined ? err.inBundle(source) : err;
    throw err;
  }
}

function unpack(archive: Buffer, source: string, options: LoadBundleOptions): LoadedBundle {
  const algorithm: SigningAlgorithm = resolveSigningAlgorithm(options.verificationKeyPem, options.algorithm);
  const keyId = options.keyId ?? "default";
  const files = readTarGz(archive, options.limits);
  const { keyId: verifiedKeyId } = verifyBundleSignature(files, {
    keys: { [keyId]: { key: options.verificationKeyPem, algorithm } },
    keyId,
    scope: options.scope,
  });

  checkLayout(files);
  const manifest = parseManifest(files);
  const entrypoints = manifest.wasm.map((w) => w.entrypoint);
  const resolver = manifest.wasm.find((w) => w.entrypoint === DECISION_ENTRYPOINT);
  if (resolver === undefined) {
    const found = [...entrypoints].sort().join(", ");
    const reason = `the manifest has no wasm entrypoint "${DECISION_ENTRYPOINT}" (found: [${found}])`;
    throw new BundleError("bundle_entrypoint_missing", `${reason}; build with -t wasm -e ${DECISION_ENTRYPOINT}`, {
      file: "/.manifest",
    });
  }
  // The engine instantiates one module; a result entrypoint served by another could never run.
  const resultResolver = manifest.wasm.find((w) => w.entrypoint === RESULT_ENTRYPOINT);
  if (resultResolver !== undefined && bare(resultResolver.module) !== bare(resolver.module)) {
    const reason = `the manifest serves "${RESULT_ENTRYPOINT}" from module "${resultResolver.module}", not "${resolver.module}" with "${DECISION_ENTRYPOINT}"; build both in one opa build`;
    throw new BundleError("bundle_malformed", reason, { file: "/.manifest" });
  }
  const wasm = lookup(files, resolver.module);
  if (wasm === undefined) {
    const reason = `the manifest names wasm module "${resolver.module}", which is not in the bundle`;
    throw new BundleError("bundle_malformed", reason, { file: "/.manifest" });
  }

  return {
    path: source,
    wasm,
    data: parseData(files),
    manifest,
    revision: manifest.revision,
    entrypoints,
    sha256: createHash("sha256").update(archive).digest("hex"),
    keyId: verifiedKeyId,
  };
}

/** Refuses layouts whose meaning this loader would silently change. */
function checkLayout(files: ReadonlyMap<string, Buffer>): void {
  for (const name of [...files.keys()].sort()) {
    const path = name.startsWith("/") ? name.slice(1) : name;
    const base = path.slice(path.lastIndexOf("/") + 1);
    if (base === "patch.json") {
      throw new BundleError("bundle_malformed", "delta bundles are not supported", { file: name });
    }
    if (base === "data.yaml" || base === "data.yml") {
      throw new BundleError("bundle_malformed", "YAML data is not supported; use data.json", { file: name });
    }
    // `opa build` merges all data into /data.json; nested data files would be ignored here.
    if (base === "data.json" && path !== "data.json") {
      throw new BundleError("bundle_malformed", "nested data files are not supported; build with opa build", {
        file: name,
      });
    }
  }
}

function parseManifest(files: ReadonlyMap<string, Buffer>): BundleManifest {
  const raw = lookup(files, ".manifest");
  if (raw === undefined) {
    const reason = `no manifest; build with opa build -t wasm -e ${DECISION_ENTRYPOINT}`;
    throw new BundleError("bundle_entrypoint_missing", reason, { file: "/.manifest" });
  }
  const result = ManifestSchema.safeParse(parseJson(raw, "/.manifest"));
  if (!result.success) {
    const issue = result.error.issues[0];
    const where = issue === undefined ? "" : `${issue.path.join(".")}: ${issue.message}`;
    throw new BundleError("bundle_malformed", `bad manifest (${where})`, { file: "/.manifest" });
  }
  return result.data;
}

function parseData(files: ReadonlyMap<string, Buffer>): unknown {
  const raw = lookup(files, "data.json");
  if (raw === undefined) return {};
  const data = parseJson(raw, "/data.json");
  if (data === null || typeof data !== "object" || Array.isArray(data)) {
    throw new BundleError("bundle_malformed", "the root of data.json must be an object", { file: "/data.json" });
  }
  return data;
}

function parseJson(raw: Buffer, file: string): unknown {
  const text = raw.toString("utf8").replace(/^\uFEFF/, "");
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new BundleError("bundle_malformed", `not valid JSON (${(err as Error).message})`, { file });
  }
}

/** Archive names keep OPA's leading '/', manifest references may or may not. */
function lookup(files: ReadonlyMap<string, Buffer>, name: string): Buffer | undefined {
  return files.get(`/${bare(name)}`) ?? files.get(bare(name));
}

function bare(name: string): string {
  return name.startsWith("/") ? name.slice(1) : name;
}
