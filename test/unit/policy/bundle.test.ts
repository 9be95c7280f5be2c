import assert from "node:assert/strict";
import { rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { BundleError, loadBundle } from "../../../gateway/policy/index.js";
import { generateKeyPair, makeTempDir, signFiles, writeTarGz, type KeyPairPem } from "../../support/bundles.js";

const WASM = Buffer.from("\0asm\u0001\0\0\0");

function manifest(wasm: Array<{ entrypoint: string; module: string }>): Buffer {
  return Buffer.from(JSON.stringify({ revision: "2026-11-24.1", roots: [""], wasm, rego_version: 1 }));
}

function files(overrides: Record<string, Buffer | null> = {}): Map<string, Buffer> {
  const base = new Map<string, Buffer>([
    ["/data.json", Buffer.from('{"portcullis":{"roles":{}}}')],
    ["/policy.wasm", WASM],
    ["/.manifest", manifest([{ entrypoint: "mcp/authz/decision", module: "/policy.wasm" }])],
  ]);
  for (const [name, content] of Object.entries(overrides)) {
    if (content === null) base.delete(name);
    else base.set(name, content);
  }
  return base;
}

describe("loadBundle", () => {
  let dir: string;
  let rsa: KeyPairPem;
  let p256: KeyPairPem;
  before(async () => {
    dir = await makeTempDir();
    rsa = generateKeyPair("rsa");
    p256 = generateKeyPair("ec-p256");
  });
  after(async () => rm(dir, { recursive: true, force: true }));

  async function write(name: string, content: Map<string, Buffer>): Promise<string> {
    const path = join(dir, name);
    await writeFile(path, writeTarGz(content));
    return path;
  }

  async function expectRefused(path: string, key: string, code: string, message: string | RegExp): Promise<void> {
    await assert.rejects(loadBundle(path, { verificationKeyPem: key }), (err: unknown) => {
      assert.ok(err instanceof BundleError, String(err));
      assert.equal(err.code, code, err.message);
      assert.equal(err.bundle, path);
      if (typeof message === "string") assert.equal(err.message, message);
      else assert.match(err.message, message);
      return true;
    });
  }

  it("loads a signed bundle, deriving the algorithm from the key", async () => {
    const path = await write("ok.tar.gz", signFiles(files(), { key: p256.privateKeyPem, algorithm: "ES256" }));
    const bundle = await loadBundle(path, { verificationKeyPem: p256.publicKeyPem });
    assert.equal(bundle.path, path);
    assert.equal(bundle.revision, "2026-11-24.1");
    assert.deepEqual(bundle.entrypoints, ["mcp/authz/decision"]);
    assert.deepEqual(bundle.data, { portcullis: { roles: {} } });
    assert.deepEqual(bundle.wasm, WASM);
    assert.equal(bundle.keyId, "default");
    assert.match(bundle.sha256, /^[0-9a-f]{64}$/);
  });

  it("uses an explicitly configured algorithm and key id", async () => {
    const signed = signFiles(files(), { key: rsa.privateKeyPem, algorithm: "PS256", keyId: "release-2026" });
    const path = await write("ps.tar.gz", signed);
    const bundle = await loadBundle(path, { verificationKeyPem: rsa.publicKeyPem, algorithm: "PS256", keyId: "release-2026" });
    assert.equal(bundle.keyId, "release-2026");
  });

  it("treats a bundle without data.json as empty data", async () => {
    const path = await write("nodata.tar.gz", signFiles(files({ "/data.json": null }), { key: rsa.privateKeyPem, algorithm: "RS256" }));
    assert.deepEqual((await loadBundle(path, { verificationKeyPem: rsa.publicKeyPem })).data, {});
  });

  it("refuses a missing file, naming it", async () => {
    const path = join(dir, "absent.tar.gz");
    await expectRefused(path, rsa.publicKeyPem, "bundle_unreadable", `${path}: no such file`);
  });

  it("refuses a directory", async () => {
    await expectRefused(dir, rsa.publicKeyPem, "bundle_unreadable", `${dir}: not a regular file`);
  });

  it("names the bundle and the file in a digest mismatch", async () => {
    const signed = signFiles(files(), { key: rsa.privateKeyPem, algorithm: "RS256" });
    signed.set("/policy.wasm", Buffer.from("\0asm\u0001\0\0\0tampered"));
    const path = await write("tampered.tar.gz", signed);
    await expectRefused(path, rsa.publicKeyPem, "bundle_digest_mismatch", new RegExp(`^${escape(path)}: /policy\\.wasm: digest mismatch`));
  });

  it("refuses an unsigned bundle", async () => {
    const path = await write("unsigned.tar.gz", files());
    await expectRefused(path, rsa.publicKeyPem, "bundle_unsigned", /unsigned\.tar\.gz: bundle has no \.signatures\.json file/);
  });

  it("refuses a bundle signed by another key", async () => {
    const path = await write("otherkey.tar.gz", signFiles(files(), { key: generateKeyPair("rsa").privateKeyPem, algorithm: "RS256" }));
    await expectRefused(path, rsa.publicKeyPem, "bundle_signature_invalid", /otherkey\.tar\.gz: \/\.signatures\.json: the signature does not verify/);
  });

  it("refuses a manifest without the decision entrypoint", async () => {
    const content = files({ "/.manifest": manifest([{ entrypoint: "other/allow", module: "/policy.wasm" }]) });
    const path = await write("noentry.tar.gz", signFiles(content, { key: rsa.privateKeyPem, algorithm: "RS256" }));
    await expectRefused(path, rsa.publicKeyPem, "bundle_entrypoint_missing", /\/\.manifest: the manifest has no wasm entrypoint "mcp\/authz\/decision" \(found: \[other\/allow\]\)/);
  });

  it("refuses a result entrypoint served by another module than the decision (the engine loads one)", async () => {
    const content = files({
      "/.manifest": manifest([{ entrypoint: "mcp/authz/decision", module: "/policy.wasm" }, { entrypoint: "mcp/authz/result", module: "/result.wasm" }]),
      "/result.wasm": WASM,
    });
    const path = await write("tworesult.tar.gz", signFiles(content, { key: rsa.privateKeyPem, algorithm: "RS256" }));
    await expectRefused(path, rsa.publicKeyPem, "bundle_malformed", /serves "mcp\/authz\/result" from module "\/result\.wasm", not "\/policy\.wasm"/);
  });

  it("lists a result entrypoint served by the decision's module", async () => {
    const content = files({ "/.manifest": manifest([{ entrypoint: "mcp/authz/decision", module: "/policy.wasm" }, { entrypoint: "mcp/authz/result", module: "policy.wasm" }]) });
    const path = await write("oneresult.tar.gz", signFiles(content, { key: rsa.privateKeyPem, algorithm: "RS256" }));
    assert.deepEqual((await loadBundle(path, { verificationKeyPem: rsa.publicKeyPem })).entrypoints, ["mcp/authz/decision", "mcp/authz/result"]);
  });

  it("refuses a bundle without a manifest", async () => {
    const path = await write("nomanifest.tar.gz", signFiles(files({ "/.manifest": null }), { key: rsa.privateKeyPem, algorithm: "RS256" }));
    await expectRefused(path, rsa.publicKeyPem, "bundle_entrypoint_missing", /no manifest/);
  });

  const layouts: Array<{ note: string; overrides: Record<string, Buffer | null>; code: string; pattern: RegExp }> = [
    {
      note: "a manifest naming an absent module",
      overrides: { "/policy.wasm": null },
      code: "bundle_malformed",
      pattern: /names wasm module "\/policy\.wasm", which is not in the bundle/,
    },
    { note: "a manifest of the wrong shape", overrides: { "/.manifest": Buffer.from('{"wasm": {}}') }, code: "bundle_malformed", pattern: /bad manifest \(wasm:/ },
    { note: "nested data files", overrides: { "/x/data.json": Buffer.from("{}") }, code: "bundle_malformed", pattern: /\/x\/data\.json: nested data files/ },
    { note: "YAML data", overrides: { "/data.yml": Buffer.from("a: 1") }, code: "bundle_malformed", pattern: /\/data\.yml: YAML data is not supported/ },
    { note: "a delta bundle", overrides: { "/patch.json": Buffer.from("{}") }, code: "bundle_malformed", pattern: /delta bundles/ },
    { note: "array data", overrides: { "/data.json": Buffer.from("[1]") }, code: "bundle_malformed", pattern: /root of data\.json must be an object/ },
  ];
  for (const c of layouts) {
    it(`refuses ${c.note}`, async () => {
      const path = await write("layout.tar.gz", signFiles(files(c.overrides), { key: rsa.privateKeyPem, algorithm: "RS256" }));
      await expectRefused(path, rsa.publicKeyPem, c.code, c.pattern);
    });
  }

  it("refuses a key that does not fit the configured algorithm before reading further", async () => {
    const path = await write("fit.tar.gz", signFiles(files(), { key: rsa.privateKeyPem, algorithm: "RS256" }));
    await assert.rejects(loadBundle(path, { verificationKeyPem: rsa.publicKeyPem, algorithm: "ES256" }), { code: "bundle_key_invalid" });
  });
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
}
