import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { BUNDLE_ERROR_CODES, BundleError } from "../../../gateway/policy/index.js";
import { repoRoot } from "../../support/bundles.js";

describe("BundleError", () => {
  it("documents every code in gateway/policy/README.md", () => {
    const readme = readFileSync(join(repoRoot(), "gateway", "policy", "README.md"), "utf8");
    const undocumented = BUNDLE_ERROR_CODES.filter((code) => !readme.includes(`| \`${code}\` |`));
    assert.deepEqual(undocumented, []);
  });

  it("reads bundle: file: reason, leaving out what is unknown", () => {
    assert.equal(new BundleError("bundle_unsigned", "no signature").message, "no signature");
    const err = new BundleError("bundle_digest_mismatch", "digest mismatch", { file: "/policy.wasm" }).inBundle("b.tar.gz");
    assert.equal(err.message, "b.tar.gz: /policy.wasm: digest mismatch");
    assert.equal(err.code, "bundle_digest_mismatch");
    assert.equal(err.file, "/policy.wasm");
    assert.equal(err.bundle, "b.tar.gz");
    assert.equal(err.reason, "digest mismatch");
  });
});
