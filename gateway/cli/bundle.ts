import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, readdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { promisify } from "node:util";
import {
  BundleError,
  DECISION_ENTRYPOINT,
  isSigningAlgorithm,
  RESULT_ENTRYPOINT,
  loadBundle,
  readTarGz,
  signBundleFiles,
  SIGNING_ALGORITHMS,
  writeTarGz,
  type SigningAlgorithm,
} from "../policy/index.js";
import { packagePath } from "../shared/package.js";
import { GroupUsageError, optional, required, runGroup, type GroupIo, type Subcommand, type Values } from "./group.js";

/**
 * `portcullis bundle build|sign|verify`: the signed-bundle lifecycle for policy authors and CI.
 * build wraps `opa build -t wasm` (the only step that needs opa); sign and verify are pure
 * TypeScript and speak OPA's signature format, so a bundle signed here passes
 * `opa build --verification-key` and one signed by opa passes `bundle verify`.
 */

const execFileAsync = promisify(execFile);

export const DEFAULT_BUNDLE_OUTPUT = "bundles/build/mcp-authz.tar.gz";
/** The builtins the gateway evaluates under wasm: shipped with the package, used wherever the CLI runs. */
export const DEFAULT_CAPABILITIES = packagePath("bundles/capabilities.json");
/** The opa `make tools` installs into the checkout; outside one, opa from PATH. */
const CHECKOUT_OPA = packagePath(".tools/bin/opa");

const signingOptions = {
  "signing-key": { type: "string" },
  "signing-alg": { type: "string" },
  "key-id": { type: "string" },
  scope: { type: "string" },
} as const;

const SUBCOMMANDS: Record<string, Subcommand> = {
  build: {
    summary: `compile policies to a wasm bundle (opa build -t wasm -e ${DECISION_ENTRYPOINT}, plus ${RESULT_ENTRYPOINT} when defined), signed when --signing-key is given`,
    usage:
      `portcullis bundle build [--policies DIR (policies)] [--output FILE (${DEFAULT_BUNDLE_OUTPUT})]\n` +
      `         [--revision REV (git describe --always --dirty)] [--capabilities FILE (the gateway's, shipped with it)] [--opa PATH ($OPA, .tools/bin/opa, opa)]\n` +
      "         [--signing-key PEM [--signing-alg RS256|PS256|ES256|…] [--key-id default] [--scope S]]",
    options: { policies: { type: "string" }, output: { type: "string", short: "o" }, revision: { type: "string", short: "r" }, capabilities: { type: "string" }, opa: { type: "string" }, ...signingOptions },
    run: build,
  },
  sign: {
    summary: "sign a bundle (OPA's .signatures.json: every file's SHA-256 in one JWT), replacing any old signature",
    usage: "portcullis bundle sign --bundle FILE --signing-key PEM [--signing-alg RS256|PS256|ES256|…] [--key-id default] [--scope S] [--output FILE (in place)]",
    options: { bundle: { type: "string", short: "b" }, output: { type: "string", short: "o" }, ...signingOptions },
    async run(values, io) {
      const input = required(values, "bundle");
      const output = optional(values, "output") ?? input;
      const signer = await signerFrom(values, true);
      const files = readTarGz(await readFile(input));
      await writeAtomically(output, writeTarGz(signBundleFiles(files, signer!)));
      io.out.write(`signed ${output} (${signer!.algorithm}, key id "${signer!.keyId}"${signer!.scope ? `, scope "${signer!.scope}"` : ""}, ${files.size} files)\n`);
      return 0;
    },
  },
  verify: {
    summary: "verify a bundle's signature, digests and entrypoint as the gateway does (exit 1 when refused)",
    usage: "portcullis bundle verify --bundle FILE --verification-key PEM [--signing-alg ALG (from the key)] [--key-id default] [--scope S] [--json]",
    options: { bundle: { type: "string", short: "b" }, "verification-key": { type: "string" }, "signing-alg": { type: "string" }, "key-id": { type: "string" }, scope: { type: "string" }, json: { type: "boolean" } },
    async run(values, io) {
      const path = required(values, "bundle");
      const keyPem = await readFile(required(values, "verification-key"), "utf8");
      const alg = optional(values, "signing-alg");
      try {
        const b = await loadBundle(path, { verificationKeyPem: keyPem, keyId: optional(values, "key-id") ?? "default", ...(alg ? { algorithm: alg } : {}), ...(optional(values, "scope") ? { scope: optional(values, "scope")! } : {}) });
        const report = { ok: true, bundle: path, revision: b.revision, key_id: b.keyId, entrypoints: b.entrypoints, sha256: b.sha256 };
        io.out.write(values.json === true ? `${JSON.stringify(report)}\n` : `ok: ${path} revision "${b.revision}", key id "${b.keyId}", entrypoints ${b.entrypoints.join(", ")}\n`);
        return 0;
      } catch (err) {
        if (!(err instanceof BundleError)) throw err;
        const report = { ok: false, bundle: path, code: err.code, error: err.message };
        if (values.json === true) io.out.write(`${JSON.stringify(report)}\n`);
        io.err.write(`refused: ${err.code}: ${err.message}\n`);
        return 1;
      }
    },
  },
};

export function runBundleCommand(argv: string[], io: GroupIo): Promise<number> {
  return runGroup("bundle", SUBCOMMANDS, argv, io);
}

async function build(values: Values, io: GroupIo): Promise<number> {
  const policies = resolve(optional(values, "policies") ?? "policies");
  const output = resolve(optional(values, "output") ?? DEFAULT_BUNDLE_OUTPUT);
  const opa = optional(values, "opa") ?? process.env.OPA ?? (existsSync(CHECKOUT_OPA) ? CHECKOUT_OPA : "opa");
  // The gateway's capabilities (only builtins it evaluates under wasm; see `make policy-test`), so
  // an unsupported builtin fails here rather than at request time.
  const capabilities = optional(values, "capabilities") ?? DEFAULT_CAPABILITIES;
  if (!existsSync(capabilities)) throw new GroupUsageError(`--capabilities ${capabilities}: no such file`);
  if (!existsSync(policies)) throw new GroupUsageError(`--policies ${policies}: no such directory`);
  const signer = await signerFrom(values, false);
  const revision = optional(values, "revision") ?? (await gitRevision(policies));

  const tmp = `${output}.tmp-${process.pid}`;
  await mkdir(dirname(output), { recursive: true });
  // `-b .` from inside the policy folder keeps host paths out of the bundle's module names.
  // The optional RESULT_ENTRYPOINT is not named: the policy declares it (`entrypoint: true`), so opa
  // exports it exactly when it is defined, where `-e` would refuse a policy without it.
  const args = ["build", "-b", ".", "-t", "wasm", "-e", DECISION_ENTRYPOINT, "--ignore", "*_test.rego", "-r", revision, "-o", tmp];
  args.push("--capabilities", resolve(capabilities));
  let entrypoints: string[];
  try {
    await execFileAsync(opa, args, { cwd: policies, timeout: 120_000 });
    const files = readTarGz(await readFile(tmp));
    entrypoints = manifestEntrypoints(files);
    if (signer !== undefined) await writeFile(tmp, writeTarGz(signBundleFiles(files, signer)));
    await rename(tmp, output);
  } catch (err) {
    await rm(tmp, { force: true });
    const e = err as NodeJS.ErrnoException & { stdout?: string; stderr?: string };
    // A spawn failure also carries (empty) stdout and stderr: look at the code first.
    if (e.code === "ENOENT" && e.path === opa) throw new Error(`${opa} not found: run 'make tools' or pass --opa`);
    if (e.code === "EACCES" && e.path === opa) throw new Error(`${opa} is not executable: run 'make tools' or pass --opa`);
    // opa prints its errors (Rego parse and compile errors) on stdout, warnings on stderr.
    const said = [e.stdout, e.stderr].map((t) => t?.trim() ?? "").filter((t) => t.length > 0);
    if (e.stdout !== undefined || e.stderr !== undefined) throw new Error(`opa build failed:\n${said.join("\n") || `${opa} exited with code ${String(e.code)} and printed nothing`}`);
    throw err;
  }
  const signed = signer === undefined ? "unsigned" : `signed ${signer.algorithm} key id "${signer.keyId}"${signer.scope ? ` scope "${signer.scope}"` : ""}`;
  io.out.write(`built ${output} (revision ${revision}, ${signed}, capabilities ${capabilities}; entrypoints ${entrypoints.join(", ")})\n`);
  if (!entrypoints.includes(RESULT_ENTRYPOINT) && (await definesResultRule(policies))) {
    io.err.write(`warning: package mcp.authz defines a rule "result" but the bundle does not export ${RESULT_ENTRYPOINT}: annotate it with "# METADATA" and "# entrypoint: true" (docs/result-policy.md)\n`);
  }
  return 0;
}

/**
 * A cheap look for `result := …` / `result if …` in a package mcp.authz file: a result policy
 * its author forgot to declare would otherwise be left out of the bundle without a word.
 */
async function definesResultRule(policies: string): Promise<boolean> {
  const names = (await readdir(policies, { recursive: true })).filter((n) => n.endsWith(".rego") && !n.endsWith("_test.rego"));
  for (const name of names) {
    const text = await readFile(join(policies, name), "utf8");
    if (/^package\s+mcp\.authz\s*$/m.test(text) && /^(default\s+)?result\s*(:?=|if\b|\{|contains\b)/m.test(text)) return true;
  }
  return false;
}

/** The wasm entrypoints opa wrote into the manifest, sorted (an author sees whether the result policy made it). */
function manifestEntrypoints(files: ReadonlyMap<string, Buffer>): string[] {
  const raw = files.get("/.manifest") ?? files.get(".manifest");
  const manifest = raw === undefined ? {} : (JSON.parse(raw.toString("utf8")) as { wasm?: Array<{ entrypoint?: unknown }> });
  return (manifest.wasm ?? []).flatMap((w) => (typeof w.entrypoint === "string" ? [w.entrypoint] : [])).sort();
}

interface Signer {
  privateKeyPem: string;
  algorithm: SigningAlgorithm;
  keyId: string;
  scope?: string;
}

async function signerFrom(values: Values, requireKey: boolean): Promise<Signer | undefined> {
  const keyFile = optional(values, "signing-key");
  if (keyFile === undefined) {
    if (requireKey) throw new GroupUsageError("--signing-key is required");
    for (const o of ["signing-alg", "key-id", "scope"]) if (optional(values, o) !== undefined) throw new GroupUsageError(`--${o} needs --signing-key`);
    return undefined;
  }
  const algorithm = optional(values, "signing-alg") ?? "RS256";
  if (!isSigningAlgorithm(algorithm)) throw new GroupUsageError(`--signing-alg: "${algorithm}" is not one of ${SIGNING_ALGORITHMS.join(", ")}`);
  // HS* takes the secret itself, as opa's --signing-key does; everything else a PEM file.
  const privateKeyPem = algorithm.startsWith("HS") ? keyFile : await readFile(keyFile, "utf8");
  const scope = optional(values, "scope");
  return { privateKeyPem, algorithm, keyId: optional(values, "key-id") ?? "default", ...(scope !== undefined ? { scope } : {}) };
}

/** The policies' git revision (`git describe --always --dirty`), or "dev" outside a checkout. */
async function gitRevision(dir: string): Promise<string> {
  try {
    const { stdout } = await execFileAsync("git", ["describe", "--always", "--dirty"], { cwd: dir, timeout: 10_000 });
    return stdout.trim() || "dev";
  } catch {
    return "dev";
  }
}

async function writeAtomically(path: string, bytes: Buffer): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`;
  await writeFile(tmp, bytes);
  await rename(tmp, path);
}
