import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { BundleError, loadBundle, readTarGz, signBundleFiles, writeTarGz, type SigningAlgorithm } from "../../gateway/policy/index.js";
import {
  buildSignedBundle,
  buildUnsignedBundle,
  defaultPolicyDir,
  generateKeyPair,
  makeTempDir,
  opaBin,
  rewriteBundle,
  writeKeyFile,
  type KeyKind,
  type KeyPairPem,
} from "../support/bundles.js";
import { runPortcullis, runPortcullisHere, showRun } from "../support/cli.js";

const execFileAsync = promisify(execFile);

/**
 * Verification vectors: bundles signed by the real opa (and by `portcullis bundle sign`), intact and
 * broken in each way a signature must catch, judged by both `opa build --verification-key` and the
 * gateway's pure-TypeScript verifier. The two must agree on every vector.
 */
const ALGORITHMS: Array<{ alg: SigningAlgorithm; kind: KeyKind }> = [
  { alg: "RS256", kind: "rsa" },
  { alg: "PS256", kind: "rsa" },
  { alg: "ES256", kind: "ec-p256" },
];

interface Vector {
  note: string;
  /** Makes the bundle file to check from a good one signed with scope "prod". */
  make: (good: string, out: string) => Promise<string>;
  /** Verify with this scope (default "prod"). */
  scope?: string;
  wrongKey?: boolean;
  /** Expected refusal code; undefined = accepted. */
  code?: string;
}

const VECTORS: Vector[] = [
  { note: "an intact bundle", make: async (good) => good },
  { note: "a tampered file (data.json grants more)", make: (good, out) => rewriteBundle(good, out, (f) => f.set("/data.json", Buffer.from('{"grants":{"everyone":["*"]}}'))), code: "bundle_digest_mismatch" },
  { note: "a tampered wasm module", make: (good, out) => rewriteBundle(good, out, (f) => f.set("/policy.wasm", Buffer.concat([f.get("/policy.wasm")!, Buffer.from([0])]))), code: "bundle_digest_mismatch" },
  { note: "a missing file", make: (good, out) => rewriteBundle(good, out, (f) => f.delete("/data.json")), code: "bundle_file_missing" },
  { note: "an extra file", make: (good, out) => rewriteBundle(good, out, (f) => f.set("/extra.rego", Buffer.from("package extra\n\nallow := true\n"))), code: "bundle_file_unsigned" },
  { note: "a wrong scope", make: async (good) => good, scope: "staging", code: "bundle_scope_mismatch" },
  { note: "a missing scope", make: async (good) => good, scope: "", code: "bundle_scope_mismatch" },
  { note: "a wrong key", make: async (good) => good, wrongKey: true, code: "bundle_signature_invalid" },
];

async function opaAccepts(bundle: string, pubFile: string, alg: string, scope: string, work: string): Promise<{ ok: boolean; stderr: string }> {
  const args = ["build", "-b", bundle, "--verification-key", pubFile, "--signing-alg", alg, "-o", join(work, "opa-verified.tar.gz")];
  if (scope !== "") args.push("--scope", scope);
  try {
    await execFileAsync(opaBin(), args, { timeout: 60_000 });
    return { ok: true, stderr: "" };
  } catch (err) {
    return { ok: false, stderr: String((err as { stderr?: string }).stderr ?? err) };
  }
}

async function tsVerdict(bundle: string, publicKeyPem: string, alg: string, scope: string): Promise<{ ok: boolean; code?: string }> {
  try {
    await loadBundle(bundle, { verificationKeyPem: publicKeyPem, algorithm: alg, ...(scope !== "" ? { scope } : {}) });
    return { ok: true };
  } catch (err) {
    if (!(err instanceof BundleError)) throw err;
    return { ok: false, code: err.code };
  }
}

describe("portcullis bundle build|sign|verify agrees with opa", function () {
  this.timeout(120_000);
  let work: string;
  let unsigned: string;

  before(async () => {
    work = await makeTempDir("pc-bundle-cli-");
    unsigned = await buildUnsignedBundle({ policyDir: defaultPolicyDir(), outFile: join(work, "unsigned.tar.gz"), revision: "vec-1" });
  });

  for (const { alg, kind } of ALGORITHMS) {
    for (const signer of ["opa", "portcullis"] as const) {
      describe(`${alg}, signed by ${signer}`, () => {
        let keys: KeyPairPem;
        let wrong: KeyPairPem;
        let good: string;
        before(async () => {
          keys = generateKeyPair(kind);
          wrong = generateKeyPair(kind);
          good = join(work, `${alg}-${signer}.tar.gz`);
          if (signer === "opa") {
            await buildSignedBundle({ policyDir: defaultPolicyDir(), outFile: good, privateKeyPem: keys.privateKeyPem, algorithm: alg, revision: "vec-1", claims: { scope: "prod" } });
          } else {
            const files = readTarGz(await readFile(unsigned));
            await writeFile(good, writeTarGz(signBundleFiles(files, { privateKeyPem: keys.privateKeyPem, algorithm: alg, scope: "prod" })));
          }
        });
        VECTORS.forEach((v, i) => {
          it(`${v.code === undefined ? "accepts" : `refuses (${v.code})`} ${v.note}, as opa does`, async () => {
            const file = await v.make(good, join(work, `${alg}-${signer}-${i}.tar.gz`));
            const pair = v.wrongKey === true ? wrong : keys;
            const pubFile = await writeKeyFile(work, `${alg}-${signer}-${i}.pub.pem`, pair.publicKeyPem);
            const scope = v.scope ?? "prod";
            const [opa, ts] = await Promise.all([opaAccepts(file, pubFile, alg, scope, work), tsVerdict(file, pair.publicKeyPem, alg, scope)]);
            assert.equal(ts.ok, opa.ok, `portcullis ${JSON.stringify(ts)} vs opa ${opa.ok ? "ok" : opa.stderr}`);
            assert.equal(ts.code, v.code);
          });
        });
      });
    }
  }

  describe("the CLI", () => {
    let keys: KeyPairPem;
    let keyFile: string;
    let pubFile: string;
    before(async () => {
      keys = generateKeyPair("ec-p256");
      keyFile = await writeKeyFile(work, "cli.key.pem", keys.privateKeyPem);
      pubFile = await writeKeyFile(work, "cli.pub.pem", keys.publicKeyPem);
    });

    it("build signs with a scope and a revision, verify accepts it and names the revision", async () => {
      const out = join(work, "cli-built.tar.gz");
      const built = await runPortcullis(["bundle", "build", "--policies", defaultPolicyDir(), "-o", out, "-r", "cli-rev-7", "--signing-key", keyFile, "--signing-alg", "ES256", "--scope", "prod"]);
      assert.equal(built.code, 0, showRun(built));
      const files = [...readTarGz(await readFile(out)).keys()].sort();
      assert.ok(!files.some((f) => f.endsWith("_test.rego")), `test files must be ignored: ${files.join(", ")}`);
      const ok = await runPortcullisHere(["bundle", "verify", "-b", out, "--verification-key", pubFile, "--scope", "prod", "--json"]);
      assert.equal(ok.code, 0, showRun(ok));
      const report = JSON.parse(ok.stdout) as { ok: boolean; revision: string; entrypoints: string[] };
      assert.deepEqual([report.ok, report.revision, report.entrypoints], [true, "cli-rev-7", ["mcp/authz/decision", "mcp/authz/result"]]);
      const opa = await opaAccepts(out, pubFile, "ES256", "prod", work);
      assert.ok(opa.ok, opa.stderr);
    });

    it("build exports mcp/authz/result when the policy declares it, and warns when a result rule is not declared", async () => {
      const cases = [
        { note: "declared", rego: "# METADATA\n# entrypoint: true\nresult := {\"allow\": true}\n", entrypoints: ["mcp/authz/decision", "mcp/authz/result"], warns: false },
        { note: "undeclared", rego: "result := {\"allow\": true}\n", entrypoints: ["mcp/authz/decision"], warns: true },
        { note: "absent", rego: "", entrypoints: ["mcp/authz/decision"], warns: false },
      ];
      for (const c of cases) {
        const dir = join(work, `result-${c.note}`);
        await mkdir(dir, { recursive: true });
        await writeFile(join(dir, "policy.rego"), `package mcp.authz\n\ndecision := {"allow": false}\n\n${c.rego}`);
        const out = join(work, `result-${c.note}.tar.gz`);
        const r = await runPortcullisHere(["bundle", "build", "--policies", dir, "-o", out, "-r", c.note]);
        assert.equal(r.code, 0, showRun(r));
        assert.match(r.stdout, new RegExp(`entrypoints ${c.entrypoints.join(", ")}\\)`), c.note);
        assert.equal(/does not export mcp\/authz\/result/.test(r.stderr), c.warns, `${c.note}: ${r.stderr}`);
        const manifest = JSON.parse(readTarGz(await readFile(out)).get("/.manifest")!.toString("utf8")) as { wasm: Array<{ entrypoint: string }> };
        assert.deepEqual(manifest.wasm.map((w) => w.entrypoint).sort(), c.entrypoints, c.note);
      }
    });

    it("verify exits 1 with the refusal code for a wrong scope", async () => {
      const out = join(work, "cli-built.tar.gz");
      const r = await runPortcullisHere(["bundle", "verify", "-b", out, "--verification-key", pubFile, "--scope", "staging"]);
      assert.equal(r.code, 1, showRun(r));
      assert.match(r.stderr, /bundle_scope_mismatch/);
    });

    it("sign re-signs an opa bundle for another key, and the old key no longer verifies it", async () => {
      const rsa = generateKeyPair("rsa");
      const rsaKey = await writeKeyFile(work, "rsa.key.pem", rsa.privateKeyPem);
      const rsaPub = await writeKeyFile(work, "rsa.pub.pem", rsa.publicKeyPem);
      const out = join(work, "resigned.tar.gz");
      const s = await runPortcullisHere(["bundle", "sign", "-b", join(work, "cli-built.tar.gz"), "--signing-key", rsaKey, "--signing-alg", "PS256", "-o", out]);
      assert.equal(s.code, 0, showRun(s));
      assert.equal((await runPortcullisHere(["bundle", "verify", "-b", out, "--verification-key", rsaPub, "--signing-alg", "PS256"])).code, 0);
      assert.equal((await runPortcullisHere(["bundle", "verify", "-b", out, "--verification-key", pubFile])).code, 1);
    });

    const usage: Array<{ note: string; args: string[]; code: number; pattern: RegExp }> = [
      { note: "no subcommand", args: ["bundle"], code: 2, pattern: /build\|sign\|verify/ },
      { note: "an unknown subcommand", args: ["bundle", "publish"], code: 2, pattern: /unknown subcommand "publish"/ },
      { note: "sign without a key", args: ["bundle", "sign", "-b", "x.tar.gz"], code: 2, pattern: /--signing-key is required/ },
      { note: "an unsupported algorithm", args: ["bundle", "build", "--signing-key", "k.pem", "--signing-alg", "none"], code: 2, pattern: /not one of/ },
      { note: "a scope without a key", args: ["bundle", "build", "--scope", "prod"], code: 2, pattern: /--scope needs --signing-key/ },
    ];
    for (const u of usage) {
      it(`exits ${u.code} on ${u.note}`, async () => {
        const r = await runPortcullisHere(u.args);
        assert.equal(r.code, u.code, showRun(r));
        assert.match(r.stdout + r.stderr, u.pattern);
      });
    }
  });
});
