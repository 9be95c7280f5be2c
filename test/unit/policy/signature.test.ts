import assert from "node:assert/strict";
import { createHash, createPublicKey } from "node:crypto";
import {
  BundleError,
  resolveSigningAlgorithm,
  verifyBundleSignature,
  type SigningAlgorithm,
  type VerificationConfig,
} from "../../../gateway/policy/index.js";
import { generateKeyPair, signFiles, signJwt, type KeyPairPem } from "../../support/bundles.js";

const MANIFEST = JSON.stringify({
  revision: "r1",
  roots: [""],
  wasm: [{ entrypoint: "mcp/authz/decision", module: "/policy.wasm" }],
  rego_version: 1,
});

function bundleFiles(): Map<string, Buffer> {
  return new Map([
    ["/data.json", Buffer.from('{"portcullis": {"roles": {"analyst": {}}}}\n')],
    ["/mcp/authz/authz.rego", Buffer.from("package mcp.authz\n")],
    ["/policy.wasm", Buffer.from("\0asm\u0001\0\0\0")],
    ["/.manifest", Buffer.from(MANIFEST)],
  ]);
}

function single(key: string, algorithm: SigningAlgorithm, extra: Partial<VerificationConfig> = {}): VerificationConfig {
  return { keys: { default: { key, algorithm } }, keyId: "default", ...extra };
}

function expectError(fn: () => unknown, code: string, file: string | undefined, pattern?: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof BundleError, `expected BundleError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    assert.equal(err.file, file);
    if (pattern !== undefined) assert.match(err.message, pattern);
    return true;
  });
}

describe("verifyBundleSignature", () => {
  let rsa: KeyPairPem;
  let rsa2: KeyPairPem;
  let p256: KeyPairPem;
  let p384: KeyPairPem;
  let p521: KeyPairPem;
  before(() => {
    rsa = generateKeyPair("rsa");
    rsa2 = generateKeyPair("rsa");
    p256 = generateKeyPair("ec-p256");
    p384 = generateKeyPair("ec-p384");
    p521 = generateKeyPair("ec-p521");
  });

  const algorithms: Array<{ alg: SigningAlgorithm; keys: () => { signing: string; verifying: string } }> = [
    { alg: "RS256", keys: () => ({ signing: rsa.privateKeyPem, verifying: rsa.publicKeyPem }) },
    { alg: "RS384", keys: () => ({ signing: rsa.privateKeyPem, verifying: rsa.publicKeyPem }) },
    { alg: "RS512", keys: () => ({ signing: rsa.privateKeyPem, verifying: rsa.publicKeyPem }) },
    { alg: "PS256", keys: () => ({ signing: rsa.privateKeyPem, verifying: rsa.publicKeyPem }) },
    { alg: "PS384", keys: () => ({ signing: rsa.privateKeyPem, verifying: rsa.publicKeyPem }) },
    { alg: "PS512", keys: () => ({ signing: rsa.privateKeyPem, verifying: rsa.publicKeyPem }) },
    { alg: "ES256", keys: () => ({ signing: p256.privateKeyPem, verifying: p256.publicKeyPem }) },
    { alg: "ES384", keys: () => ({ signing: p384.privateKeyPem, verifying: p384.publicKeyPem }) },
    { alg: "ES512", keys: () => ({ signing: p521.privateKeyPem, verifying: p521.publicKeyPem }) },
    { alg: "HS256", keys: () => ({ signing: "s3cret-Ω", verifying: "s3cret-Ω" }) },
    { alg: "HS384", keys: () => ({ signing: "s3cret", verifying: "s3cret" }) },
    { alg: "HS512", keys: () => ({ signing: "s3cret", verifying: "s3cret" }) },
  ];
  for (const { alg, keys } of algorithms) {
    it(`accepts a bundle signed with ${alg}`, () => {
      const { signing, verifying } = keys();
      const signed = signFiles(bundleFiles(), { key: signing, algorithm: alg });
      const result = verifyBundleSignature(signed, single(verifying, alg));
      assert.equal(result.keyId, "default");
      assert.deepEqual(result.files, [".manifest", "data.json", "mcp/authz/authz.rego", "policy.wasm"]);
    });
  }

  it("hashes data.json structurally: re-formatting it keeps the signature valid", () => {
    const signed = signFiles(bundleFiles(), { key: rsa.privateKeyPem, algorithm: "RS256" });
    signed.set("/data.json", Buffer.from('\uFEFF{ "portcullis" : { "roles" : { "analyst" : { } } } }'));
    verifyBundleSignature(signed, single(rsa.publicKeyPem, "RS256"));
  });

  const tampering: Array<{ note: string; edit: (files: Map<string, Buffer>) => void; code: string; file: string | undefined; pattern: RegExp }> = [
    {
      note: "a changed policy.wasm",
      edit: (f) => f.set("/policy.wasm", Buffer.from("\0asm evil")),
      code: "bundle_digest_mismatch",
      file: "/policy.wasm",
      pattern: /^\/policy\.wasm: digest mismatch \(want: [0-9a-f]{64}, got: [0-9a-f]{64}\)$/,
    },
    {
      note: "a changed data value",
      edit: (f) => f.set("/data.json", Buffer.from('{"portcullis": {"roles": {"analyst": {"*": {}}}}}')),
      code: "bundle_digest_mismatch",
      file: "/data.json",
      pattern: /digest mismatch/,
    },
    {
      note: "a changed number lexeme (1.0 vs 1 hash differently, as in OPA)",
      edit: (f) => f.set("/.manifest", Buffer.from(MANIFEST.replace('"rego_version":1', '"rego_version":1.0'))),
      code: "bundle_digest_mismatch",
      file: "/.manifest",
      pattern: /digest mismatch/,
    },
    {
      note: "an extra file",
      edit: (f) => f.set("/zz/extra.rego", Buffer.from("package x\n")),
      code: "bundle_file_unsigned",
      file: "/zz/extra.rego",
      pattern: /^\/zz\/extra\.rego: not included in the bundle signature$/,
    },
    {
      note: "missing listed files (sorted in the message)",
      edit: (f) => {
        f.delete("/policy.wasm");
        f.delete("/data.json");
      },
      code: "bundle_file_missing",
      file: "data.json",
      pattern: /file\(s\) \[data\.json, policy\.wasm\] specified in the bundle signature but not found/,
    },
    {
      note: "no signatures file",
      edit: (f) => f.delete("/.signatures.json"),
      code: "bundle_unsigned",
      file: undefined,
      pattern: /unsigned bundles are refused/,
    },
    {
      note: "data.yaml (its hash cannot be reproduced outside Go)",
      edit: (f) => f.set("/data.yaml", Buffer.from("a: 1\n")),
      code: "bundle_file_unsigned",
      file: "/data.yaml",
      pattern: /not included/,
    },
    {
      note: "the same file with and without a leading slash",
      edit: (f) => f.set("policy.wasm", Buffer.from("x")),
      code: "bundle_malformed",
      file: "policy.wasm",
      pattern: /appears twice/,
    },
    {
      note: "a signatures file below the root (only the root one counts)",
      edit: (f) => f.set("/sub/.signatures.json", Buffer.from('{"signatures":[]}')),
      code: "bundle_file_unsigned",
      file: "/sub/.signatures.json",
      pattern: /not included/,
    },
  ];
  for (const c of tampering) {
    it(`refuses ${c.note}`, () => {
      const signed = signFiles(bundleFiles(), { key: rsa.privateKeyPem, algorithm: "RS256" });
      c.edit(signed);
      expectError(() => verifyBundleSignature(signed, single(rsa.publicKeyPem, "RS256")), c.code, c.file, c.pattern);
    });
  }

  it("refuses a signed data.yaml, whose structured hash cannot be reproduced", () => {
    const files = bundleFiles();
    files.set("/data.yaml", Buffer.from("a: 1\n"));
    const signed = signFiles(files, { key: rsa.privateKeyPem, algorithm: "RS256", omit: ["/data.yaml"], extraEntries: [{ name: "data.yaml", hash: "00", algorithm: "SHA-256" }] });
    expectError(() => verifyBundleSignature(signed, single(rsa.publicKeyPem, "RS256")), "bundle_malformed", "/data.yaml", /data\.yaml is not supported/);
  });

  it("strips exactly one leading slash before matching signed names", () => {
    const files = new Map([["//odd.rego", Buffer.from("package odd\n")]]);
    const signed = signFiles(files, { key: rsa.privateKeyPem, algorithm: "RS256" }); // lists "/odd.rego"
    assert.deepEqual(verifyBundleSignature(signed, single(rsa.publicKeyPem, "RS256")).files, ["/odd.rego"]);
  });

  it("refuses a signature made with another key", () => {
    const signed = signFiles(bundleFiles(), { key: rsa2.privateKeyPem, algorithm: "RS256" });
    expectError(
      () => verifyBundleSignature(signed, single(rsa.publicKeyPem, "RS256")),
      "bundle_signature_invalid",
      "/.signatures.json",
      /does not verify with key "default" \(RS256\)/,
    );
  });

  it("ignores the header alg: an HS256 token MACed with the RSA public key still fails as RS256", () => {
    // The classic confusion attack: if the verifier trusted `alg`, the public key would be the secret.
    const signed = signFiles(bundleFiles(), { key: rsa.publicKeyPem, algorithm: "HS256" });
    expectError(
      () => verifyBundleSignature(signed, single(rsa.publicKeyPem, "RS256")),
      "bundle_signature_invalid",
      "/.signatures.json",
      /\(RS256\)/,
    );
  });

  it("verifies with the configured algorithm even when the header names another", () => {
    const signed = signFiles(bundleFiles(), { key: rsa.privateKeyPem, algorithm: "RS256", header: { alg: "none" } });
    verifyBundleSignature(signed, single(rsa.publicKeyPem, "RS256"));
  });

  describe("scope", () => {
    const scopeCases: Array<{ note: string; signed?: string; configured?: string; keyScope?: string; ok: boolean }> = [
      { note: "neither side has a scope", ok: true },
      { note: "equal scopes", signed: "prod", configured: "prod", ok: true },
      { note: "key scope used when none is configured", signed: "prod", keyScope: "prod", ok: true },
      { note: "configured scope beats the key scope", signed: "prod", configured: "prod", keyScope: "dev", ok: true },
      { note: "signed scope but none expected", signed: "prod", ok: false },
      { note: "expected scope but none signed", configured: "prod", ok: false },
      { note: "different scopes", signed: "dev", configured: "prod", ok: false },
    ];
    for (const c of scopeCases) {
      it(`${c.ok ? "accepts" : "refuses"} ${c.note}`, () => {
        const signed = signFiles(bundleFiles(), { key: rsa.privateKeyPem, algorithm: "RS256", scope: c.signed });
        const config: VerificationConfig = {
          keys: { default: { key: rsa.publicKeyPem, algorithm: "RS256", scope: c.keyScope } },
          keyId: "default",
          scope: c.configured,
        };
        if (c.ok) verifyBundleSignature(signed, config);
        else expectError(() => verifyBundleSignature(signed, config), "bundle_scope_mismatch", "/.signatures.json", /scope mismatch/);
      });
    }
  });

  describe("key id precedence (configured, then header kid, then payload keyid)", () => {
    const twoKeys = (): VerificationConfig["keys"] => ({
      a: { key: rsa.publicKeyPem, algorithm: "RS256" },
      b: { key: rsa2.publicKeyPem, algorithm: "RS256" },
    });

    it("the configured key id wins over the header's kid", () => {
      const signed = signFiles(bundleFiles(), { key: rsa.privateKeyPem, algorithm: "RS256", keyId: "b" });
      assert.equal(verifyBundleSignature(signed, { keys: twoKeys(), keyId: "a" }).keyId, "a");
    });

    it("without a configured id, the header kid picks the key", () => {
      const signed = signFiles(bundleFiles(), { key: rsa2.privateKeyPem, algorithm: "RS256", keyId: "b" });
      assert.equal(verifyBundleSignature(signed, { keys: twoKeys() }).keyId, "b");
    });

    it("without kid, the deprecated payload keyid picks the key", () => {
      const files = bundleFiles();
      const signed = signFiles(files, { key: rsa2.privateKeyPem, algorithm: "RS256", keyId: null });
      const token = signJwt(
        { alg: "RS256" },
        { ...jwtPayload(signed), keyid: "b" },
        rsa2.privateKeyPem,
        "RS256",
      );
      signed.set("/.signatures.json", Buffer.from(JSON.stringify({ signatures: [token] })));
      assert.equal(verifyBundleSignature(signed, { keys: twoKeys() }).keyId, "b");
    });

    it("refuses when no key id can be found", () => {
      const signed = signFiles(bundleFiles(), { key: rsa.privateKeyPem, algorithm: "RS256", keyId: null });
      expectError(() => verifyBundleSignature(signed, { keys: twoKeys() }), "bundle_signature_invalid", "/.signatures.json", /verification key ID is empty/);
    });

    it("refuses an unknown key id", () => {
      const signed = signFiles(bundleFiles(), { key: rsa.privateKeyPem, algorithm: "RS256", keyId: "c" });
      expectError(() => verifyBundleSignature(signed, { keys: twoKeys() }), "bundle_key_invalid", "/.signatures.json", /ID "c" not found/);
    });

    it("does not resolve key ids through the prototype chain", () => {
      const signed = signFiles(bundleFiles(), { key: rsa.privateKeyPem, algorithm: "RS256", keyId: "constructor" });
      expectError(() => verifyBundleSignature(signed, { keys: twoKeys() }), "bundle_key_invalid", "/.signatures.json");
    });
  });

  const badSignatureFiles: Array<{ note: string; content: (token: string) => string; pattern: RegExp }> = [
    { note: "no JWT", content: () => '{"signatures": []}', pattern: /missing JWT \(expected exactly one\)/ },
    { note: "two JWTs", content: (t) => JSON.stringify({ signatures: [t, t] }), pattern: /multiple JWTs not supported/ },
    { note: "not JSON", content: () => "{", pattern: /not valid JSON/ },
    { note: "a custom verifier plugin", content: (t) => JSON.stringify({ signatures: [t], plugin: "acme" }), pattern: /unsupported signature plugin "acme"/ },
    { note: "a token with two parts", content: (t) => JSON.stringify({ signatures: [t.split(".").slice(0, 2).join(".")] }), pattern: /not compact JWS/ },
    { note: "a payload that is not JSON", content: (t) => JSON.stringify({ signatures: [`${t.split(".")[0]}.e30x.${t.split(".")[2]}`] }), pattern: /payload/ },
  ];
  for (const c of badSignatureFiles) {
    it(`refuses a signatures file with ${c.note}`, () => {
      const signed = signFiles(bundleFiles(), { key: rsa.privateKeyPem, algorithm: "RS256" });
      const token = (JSON.parse(signed.get("/.signatures.json")?.toString() ?? "") as { signatures: string[] }).signatures[0] ?? "";
      signed.set("/.signatures.json", Buffer.from(c.content(token)));
      expectError(() => verifyBundleSignature(signed, single(rsa.publicKeyPem, "RS256")), "bundle_signature_invalid", "/.signatures.json", c.pattern);
    });
  }

  it("accepts every hash algorithm OPA names, and refuses other spellings", () => {
    const files = new Map([["/a.rego", Buffer.from("package a\n")]]);
    for (const [algorithm, ok] of [["MD5", true], ["SHA-1", true], ["SHA-512-256", true], ["sha256", false], ["", false]] as const) {
      const signed = new Map(files);
      const hash = hashFor(algorithm, files.get("/a.rego") as Buffer);
      const token = signJwt({ alg: "RS256", kid: "default" }, { files: [{ name: "a.rego", hash, algorithm }] }, rsa.privateKeyPem, "RS256");
      signed.set("/.signatures.json", Buffer.from(JSON.stringify({ signatures: [token] })));
      if (ok) verifyBundleSignature(signed, single(rsa.publicKeyPem, "RS256"));
      else expectError(() => verifyBundleSignature(signed, single(rsa.publicKeyPem, "RS256")), "bundle_signature_invalid", "/a.rego", /unsupported hashing algorithm/);
    }
  });
});

describe("resolveSigningAlgorithm", () => {
  let rsa: KeyPairPem;
  let p256: KeyPairPem;
  let p384: KeyPairPem;
  let p521: KeyPairPem;
  before(() => {
    rsa = generateKeyPair("rsa");
    p256 = generateKeyPair("ec-p256");
    p384 = generateKeyPair("ec-p384");
    p521 = generateKeyPair("ec-p521");
  });

  it("derives the algorithm from the key when none is given", () => {
    assert.equal(resolveSigningAlgorithm(rsa.publicKeyPem), "RS256");
    assert.equal(resolveSigningAlgorithm(p256.publicKeyPem), "ES256");
    assert.equal(resolveSigningAlgorithm(p384.publicKeyPem), "ES384");
    assert.equal(resolveSigningAlgorithm(p521.publicKeyPem), "ES512");
  });

  it("keeps a given algorithm that fits the key", () => {
    assert.equal(resolveSigningAlgorithm(rsa.publicKeyPem, "PS384"), "PS384");
    assert.equal(resolveSigningAlgorithm("secret", "HS256"), "HS256");
  });

  const refused: Array<{ note: string; key: () => string; alg?: string; pattern: RegExp }> = [
    { note: "an RSA key for ES256", key: () => rsa.publicKeyPem, alg: "ES256", pattern: /ES256 needs an EC key/ },
    { note: "a P-256 key for ES384", key: () => p256.publicKeyPem, alg: "ES384", pattern: /on its curve/ },
    { note: "an EC key for RS256", key: () => p256.publicKeyPem, alg: "RS256", pattern: /RS256 needs an RSA key/ },
    { note: "a PEM key as an HMAC secret", key: () => rsa.publicKeyPem, alg: "HS256", pattern: /needs a shared secret/ },
    { note: "an HMAC secret without an algorithm", key: () => "secret", pattern: /explicit algorithm/ },
    { note: "alg none", key: () => rsa.publicKeyPem, alg: "none", pattern: /unsupported signing algorithm "none"/ },
    { note: "a private key", key: () => rsa.privateKeyPem, pattern: /must be a PEM "PUBLIC KEY"/ },
    {
      note: "a PKCS#1 RSA PUBLIC KEY",
      key: () => createPublicKey(rsa.publicKeyPem).export({ type: "pkcs1", format: "pem" }).toString(),
      pattern: /must be a PEM "PUBLIC KEY"/,
    },
    { note: "garbage inside a PUBLIC KEY block", key: () => "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", pattern: /cannot be parsed/ },
  ];
  for (const c of refused) {
    it(`refuses ${c.note}`, () => {
      expectError(() => resolveSigningAlgorithm(c.key(), c.alg), "bundle_key_invalid", undefined, c.pattern);
    });
  }
});

function jwtPayload(signed: Map<string, Buffer>): Record<string, unknown> {
  const token = (JSON.parse(signed.get("/.signatures.json")?.toString() ?? "") as { signatures: string[] }).signatures[0] ?? "";
  return JSON.parse(Buffer.from(token.split(".")[1] ?? "", "base64url").toString()) as Record<string, unknown>;
}

function hashFor(algorithm: string, content: Buffer): string {
  const names: Record<string, string> = { MD5: "md5", "SHA-1": "sha1", "SHA-512-256": "sha512-256", sha256: "sha256", "": "sha256" };
  return createHash(names[algorithm] ?? "sha256").update(content).digest("hex");
}
