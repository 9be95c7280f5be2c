import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { loadPolicy } from "@open-policy-agent/opa-wasm";
import {
  BundleError,
  createHostBuiltins,
  DecisionTime,
  HOST_BUILTIN_NAMES,
  loadBundle,
  verifyBundleSignature,
  WasmPolicyEngine,
  type DecisionMethod,
  type LoadedBundle,
  type PolicyInput,
} from "../../gateway/policy/index.js";
import {
  buildSignedBundle,
  buildUnsignedBundle,
  defaultPolicyDir,
  generateKeyPair,
  makeTempDir,
  opaBin,
  readBundleFiles,
  rewriteBundleFile,
  type KeyPairPem,
} from "../support/bundles.js";
import { aliceInput } from "../support/policy-input.js";

const execFileAsync = promisify(execFile);

async function expectRefused(promise: Promise<unknown>, code: string, pattern: RegExp): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof BundleError, String(err));
    assert.equal(err.code, code, err.message);
    assert.match(err.message, pattern);
    return true;
  });
}

describe("policy bundles built by the real opa", function () {
  this.timeout(60_000);
  let dir: string;
  let rsa: KeyPairPem;
  let p256: KeyPairPem;
  let p384: KeyPairPem;
  let rs256: string;

  before(async () => {
    dir = await makeTempDir();
    rsa = generateKeyPair("rsa");
    p256 = generateKeyPair("ec-p256");
    p384 = generateKeyPair("ec-p384");
    rs256 = await buildSignedBundle({
      policyDir: defaultPolicyDir(),
      outFile: join(dir, "rs256.tar.gz"),
      privateKeyPem: rsa.privateKeyPem,
      algorithm: "RS256",
      revision: "it-rs256",
    });
  });
  after(async () => rm(dir, { recursive: true, force: true }));

  describe("verification", () => {
    it("verifies an RS256 bundle with the algorithm derived from the key", async () => {
      const bundle = await loadBundle(rs256, { verificationKeyPem: rsa.publicKeyPem });
      assert.equal(bundle.revision, "it-rs256");
      assert.deepEqual(bundle.entrypoints, ["mcp/authz/decision", "mcp/authz/result"]);
      assert.equal(bundle.keyId, "default");
      assert.ok(bundle.wasm.subarray(0, 4).equals(Buffer.from("\0asm")));
      assert.ok(typeof (bundle.data as { portcullis?: unknown }).portcullis === "object");
    });

    const signed: Array<{ alg: string; keys: () => KeyPairPem; configured?: string }> = [
      { alg: "ES256", keys: () => p256 },
      { alg: "ES384", keys: () => p384 },
      { alg: "PS256", keys: () => rsa, configured: "PS256" },
      { alg: "RS512", keys: () => rsa, configured: "RS512" },
    ];
    for (const c of signed) {
      it(`verifies a ${c.alg} bundle`, async () => {
        const out = await buildSignedBundle({
          policyDir: defaultPolicyDir(),
          outFile: join(dir, `${c.alg}.tar.gz`),
          privateKeyPem: c.keys().privateKeyPem,
          algorithm: c.alg,
        });
        const bundle = await loadBundle(out, { verificationKeyPem: c.keys().publicKeyPem, algorithm: c.configured });
        assert.equal(bundle.revision, "");
      });
    }

    it("verifies an HS256 bundle with the raw secret", async () => {
      const out = await buildSignedBundle({
        policyDir: defaultPolicyDir(),
        outFile: join(dir, "hs256.tar.gz"),
        privateKeyPem: "a-shared-secret",
        algorithm: "HS256",
      });
      await loadBundle(out, { verificationKeyPem: "a-shared-secret", algorithm: "HS256" });
      await expectRefused(loadBundle(out, { verificationKeyPem: "another", algorithm: "HS256" }), "bundle_signature_invalid", /does not verify/);
    });

    it("checks a PS256 signature as configured, not as the header says", async () => {
      const out = await buildSignedBundle({
        policyDir: defaultPolicyDir(),
        outFile: join(dir, "ps256-as-rs.tar.gz"),
        privateKeyPem: rsa.privateKeyPem,
        algorithm: "PS256",
      });
      // The key alone implies RS256; a PS256 signature must then fail, whatever the header claims.
      await expectRefused(loadBundle(out, { verificationKeyPem: rsa.publicKeyPem }), "bundle_signature_invalid", /\(RS256\)/);
    });

    it("verifies a scoped bundle signed with a claims file, and refuses it without the scope", async () => {
      const out = await buildSignedBundle({
        policyDir: defaultPolicyDir(),
        outFile: join(dir, "scoped.tar.gz"),
        privateKeyPem: rsa.privateKeyPem,
        algorithm: "RS256",
        claims: { scope: "production" },
      });
      await loadBundle(out, { verificationKeyPem: rsa.publicKeyPem, scope: "production" });
      await expectRefused(loadBundle(out, { verificationKeyPem: rsa.publicKeyPem }), "bundle_scope_mismatch", /scope mismatch \(want: "", got: "production"\)/);
    });

    const refusals: Array<{ note: string; make: () => Promise<string>; key?: () => string; code: string; pattern: (file: string) => RegExp }> = [
      {
        note: "a tampered policy.wasm",
        make: async () => {
          const files = await readBundleFiles(rs256);
          const bytes = Buffer.from(files.get("/policy.wasm") ?? Buffer.alloc(0));
          bytes.writeUInt8(bytes.readUInt8(bytes.length - 1) ^ 1, bytes.length - 1);
          return rewriteBundleFile(rs256, join(dir, "tampered.tar.gz"), "/policy.wasm", bytes);
        },
        code: "bundle_digest_mismatch",
        pattern: (f) => new RegExp(`^${f}: /policy\\.wasm: digest mismatch`),
      },
      {
        note: "tampered data (an extra grant)",
        make: async () => {
          const files = await readBundleFiles(rs256);
          const data = JSON.parse(files.get("/data.json")?.toString() ?? "{}") as { portcullis: { roles: Record<string, unknown> } };
          data.portcullis.roles.guest = { "*": { tools: ["*"] } };
          return rewriteBundleFile(rs256, join(dir, "data.tar.gz"), "/data.json", JSON.stringify(data));
        },
        code: "bundle_digest_mismatch",
        pattern: (f) => new RegExp(`^${f}: /data\\.json: digest mismatch`),
      },
      {
        note: "an unsigned bundle",
        make: () => buildUnsignedBundle({ policyDir: defaultPolicyDir(), outFile: join(dir, "unsigned.tar.gz") }),
        code: "bundle_unsigned",
        pattern: (f) => new RegExp(`^${f}: bundle has no \\.signatures\\.json file`),
      },
      {
        note: "a bundle checked with the wrong key",
        make: async () => rs256,
        key: () => generateKeyPair("rsa").publicKeyPem,
        code: "bundle_signature_invalid",
        pattern: (f) => new RegExp(`^${f}: /\\.signatures\\.json: the signature does not verify`),
      },
      {
        note: "a bundle missing a signed file",
        make: () => rewriteBundleFile(rs256, join(dir, "missing.tar.gz"), "/data.json", null),
        code: "bundle_file_missing",
        pattern: (f) => new RegExp(`^${f}: data\\.json: file\\(s\\) \\[data\\.json\\] specified in the bundle signature but not found`),
      },
      {
        note: "a bundle with an extra file",
        make: () => rewriteBundleFile(rs256, join(dir, "extra.tar.gz"), "/backdoor.rego", "package backdoor\n"),
        code: "bundle_file_unsigned",
        pattern: (f) => new RegExp(`^${f}: /backdoor\\.rego: not included in the bundle signature`),
      },
    ];
    for (const c of refusals) {
      it(`refuses ${c.note}, naming the bundle and file`, async () => {
        const file = await c.make();
        const key = c.key?.() ?? rsa.publicKeyPem;
        await expectRefused(loadBundle(file, { verificationKeyPem: key }), c.code, c.pattern(file.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")));
      });
    }

    it("refuses a bundle built without the decision entrypoint", async () => {
      const policyDir = join(dir, "other-policy");
      await writeTree(policyDir, { "other.rego": "package other\n\nallow := true\n" });
      const out = await buildSignedBundle({
        policyDir,
        outFile: join(dir, "other.tar.gz"),
        privateKeyPem: rsa.privateKeyPem,
        algorithm: "RS256",
        entrypoints: ["other/allow"],
      });
      await expectRefused(loadBundle(out, { verificationKeyPem: rsa.publicKeyPem }), "bundle_entrypoint_missing", /found: \[other\/allow\]/);
    });

    it("agrees with `opa sign` on the structured hash of tricky JSON", async () => {
      const signDir = join(dir, "sign");
      const data = Buffer.concat([
        Buffer.from([0xef, 0xbb, 0xbf]),
        Buffer.from('{"n": [1.50, 1e3, -0, 123456789012345678901234567890], "s\\u2028": "\\u0008\\f\\u001f<>&\\u007f \\ud800 \\ud83d\\ude00 ', "utf8"),
        Buffer.from([0xe9]),
        Buffer.from('", "\u{e000}": 1, "😀": 2, "é": {"b": null, "a": true}, "bad', "utf8"),
        Buffer.from([0xe2, 0x82]),
        Buffer.from('x": false}', "utf8"),
      ]);
      await writeTree(signDir, { "data.json": data, ".manifest": '{ "revision" : "quickbrownfaux", "roots": [""] }', "x.rego": "package x\n" });
      await writeFile(join(dir, "sign.pem"), rsa.privateKeyPem, { mode: 0o600 });
      await execFileAsync(opaBin(), ["sign", "--bundle", ".", "--signing-key", join(dir, "sign.pem"), "-o", "."], { cwd: signDir });
      const files = new Map<string, Buffer>();
      for (const name of ["data.json", ".manifest", "x.rego", ".signatures.json"]) files.set(`/${name}`, await readFile(join(signDir, name)));
      const result = verifyBundleSignature(files, { keys: { default: { key: rsa.publicKeyPem, algorithm: "RS256" } }, keyId: "default" });
      assert.deepEqual(result.files, [".manifest", "data.json", "x.rego"]);
    });
  });

  describe("the default policy evaluated in wasm", () => {
    let bundle: LoadedBundle;
    let engine: WasmPolicyEngine;
    before(async () => {
      bundle = await loadBundle(rs256, { verificationKeyPem: rsa.publicKeyPem });
      engine = await WasmPolicyEngine.create(bundle);
    });

    const input = (roles: string[], method: DecisionMethod, server: string, fields: Partial<PolicyInput["request"]>): PolicyInput =>
      aliceInput(roles, method, { server, ...fields });

    const cases: Array<{ note: string; input: () => PolicyInput; allow: boolean; message?: string; reasons?: string[] }> = [
      { note: "analyst calls echo", input: () => input(["analyst"], "tools/call", "demo", { tool: "echo", arguments: { text: "hi" } }), allow: true, reasons: ["role analyst grants tool echo on server demo"] },
      { note: "analyst calls get-sum on everything", input: () => input(["analyst"], "tools/call", "everything", { tool: "get-sum", arguments: { a: 1, b: 2 } }), allow: true },
      {
        note: "analyst reads /etc/passwd",
        input: () => input(["analyst"], "tools/call", "demo", { tool: "read_file", arguments: { path: "/etc/passwd" } }),
        allow: false,
        message: "read_file is limited to /data",
        reasons: ["path of read_file must be under /data/ with no '..' segment"],
      },
      { note: "analyst escapes /data with ..", input: () => input(["analyst"], "tools/call", "demo", { tool: "read_file", arguments: { path: "/data/../etc/passwd" } }), allow: false, message: "read_file is limited to /data" },
      { note: "analyst deletes a record", input: () => input(["analyst"], "tools/call", "demo", { tool: "delete_record", arguments: { id: "r1" } }), allow: false, reasons: ["no role grants tool delete_record on server demo"] },
      { note: "admin deletes a record", input: () => input(["admin"], "tools/call", "demo", { tool: "delete_record", arguments: { id: "r1" } }), allow: true },
      { note: "undefined role", input: () => input(["intern"], "tools/call", "demo", { tool: "echo", arguments: { text: "hi" } }), allow: false },
      { note: "role with no grants", input: () => input(["guest"], "tools/call", "demo", { tool: "echo", arguments: { text: "hi" } }), allow: false },
      { note: "listed read_file is visible to analyst", input: () => input(["analyst"], "tools/list", "demo", { tool: "read_file" }), allow: true },
      { note: "listed delete_record is hidden from analyst", input: () => input(["analyst"], "tools/list", "demo", { tool: "delete_record" }), allow: false },
      { note: "analyst reads the readme resource", input: () => input(["analyst"], "resources/read", "demo", { resource: "demo://readme" }), allow: true },
      { note: "analyst gets the summarize prompt", input: () => input(["analyst"], "prompts/get", "demo", { prompt: "summarize" }), allow: true },
    ];
    for (const c of cases) {
      it(`decides: ${c.note} → ${c.allow ? "allow" : "deny"}`, () => {
        const outcome = engine.decide(c.input());
        assert.equal(outcome.error, undefined, outcome.error?.message);
        assert.equal(outcome.decision.allow, c.allow, JSON.stringify(outcome.decision));
        assert.equal(outcome.decision.message, c.message);
        if (c.reasons !== undefined) assert.deepEqual(outcome.decision.reasons, c.reasons);
        // A visible list item is decided for its visibility alone (the gateway reads only allow of it);
        // every other decision, a hidden item's included, explains itself.
        if (c.note.startsWith("listed") && c.allow) assert.deepEqual(outcome.raw, { allow: true });
        else assert.ok(outcome.decision.reasons.length > 0, "every decision explains itself");
        assert.equal(outcome.revision, "it-rs256");
        assert.ok(outcome.elapsedMs >= 0);
      });
    }

    it("needs no builtins from the host but those the gateway implements", async () => {
      // Non-native builtins compile fine and fail only at evaluation time, so check the module's list.
      const policy = await loadPolicy(bundle.wasm, undefined, createHostBuiltins(new DecisionTime(() => 0)));
      const exports = (policy.wasmInstance as unknown as { exports: Record<string, (...args: number[]) => number> }).exports;
      const addr = exports.opa_json_dump?.(exports.builtins?.() ?? 0) ?? 0;
      const memory = new Uint8Array(policy.mem.buffer as ArrayBuffer);
      const json = Buffer.from(memory.subarray(addr, memory.indexOf(0, addr))).toString("utf8");
      const imported = Object.keys(JSON.parse(json) as Record<string, number>);
      assert.deepEqual(imported.filter((name) => !HOST_BUILTIN_NAMES.includes(name)), []);
    });

    it("returns the rate limit and mask the policy names, and the raw result for audit", () => {
      const outcome = engine.decide(
        input(["admin"], "tools/call", "demo", { tool: "delete_record", arguments: { id: "r1", api_key: "k", nested: { password: "p" } } }),
      );
      assert.deepEqual(outcome.decision.rate_limit, { key: "alice:demo:delete_record", limit: 5, window_seconds: 60 });
      assert.deepEqual(outcome.decision.mask, ["/input/request/arguments/api_key", "/input/request/arguments/nested/password"]);
      assert.deepEqual(outcome.raw, outcome.decision);
    });
  });
});

async function writeTree(root: string, files: Record<string, string | Buffer>): Promise<void> {
  await mkdir(root, { recursive: true });
  for (const [name, content] of Object.entries(files)) await writeFile(join(root, name), content);
}
