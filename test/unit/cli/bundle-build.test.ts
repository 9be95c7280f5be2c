import assert from "node:assert/strict";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { repoRoot } from "../../support/bundles.js";
import { runPortcullis, runPortcullisHere, showRun } from "../../support/cli.js";

/**
 * What `portcullis bundle build` says when opa fails, and which capabilities it passes, with a
 * stand-in `opa` script (test/integration/bundle-build-errors.test.ts runs the real one).
 */
describe("portcullis bundle build: opa's errors and the default capabilities", () => {
  const dir = mkdtempSync(join(tmpdir(), "pc-bundle-build-"));
  const policies = join(dir, "policies");
  const argsFile = join(dir, "opa-args");
  /** A fake opa: records its arguments, then prints like opa does for a Rego parse error (stdout) and exits 1. */
  const failingOpa = join(dir, "opa-fails");
  before(() => {
    mkdirSync(policies);
    writeFileSync(join(policies, "p.rego"), "package mcp.authz\n");
    writeFileSync(
      failingOpa,
      `#!/bin/sh\nprintf '%s\\n' "$@" > '${argsFile}'\necho 'error: load error: bundle .: 1 error occurred:'\necho 'p.rego:4: rego_parse_error: unexpected eof token: non-terminated object'\nexit 1\n`,
    );
    chmodSync(failingOpa, 0o755);
    writeFileSync(join(dir, "not-executable"), "#!/bin/sh\n");
    chmodSync(join(dir, "not-executable"), 0o644);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const build = (opa: string) => ["bundle", "build", "--policies", policies, "-o", join(dir, "out.tar.gz"), "-r", "r1", "--opa", opa];

  it("shows opa's error, which opa prints on stdout", async () => {
    const r = await runPortcullisHere(build(failingOpa));
    assert.equal(r.code, 1, showRun(r));
    assert.match(r.stderr, /opa build failed:\nerror: load error: bundle \.: 1 error occurred:\np\.rego:4: rego_parse_error: unexpected eof token/);
  });

  it("a missing opa binary says how to get one", async () => {
    const missing = join(dir, "no-such-opa");
    const r = await runPortcullisHere(build(missing));
    assert.equal(r.code, 1, showRun(r));
    assert.equal(r.stderr, `portcullis bundle build: ${missing} not found: run 'make tools' or pass --opa\n`);
  });

  it("an opa that is not executable says so", async () => {
    const r = await runPortcullisHere(build(join(dir, "not-executable")));
    assert.equal(r.code, 1, showRun(r));
    assert.match(r.stderr, /not-executable is not executable: run 'make tools' or pass --opa/);
  });

  it("a missing policy folder is a usage error, not 'opa not found'", async () => {
    const r = await runPortcullisHere(["bundle", "build", "--policies", join(dir, "nowhere"), "--opa", failingOpa]);
    assert.equal(r.code, 2, showRun(r));
    assert.match(r.stderr, /--policies .*nowhere: no such directory/);
  });

  it("passes the capabilities shipped with the package, from any working directory", async () => {
    const elsewhere = mkdtempSync(join(tmpdir(), "pc-bundle-cwd-"));
    try {
      const r = await runPortcullis(build(failingOpa), { cwd: elsewhere, timeoutMs: 30_000 });
      assert.equal(r.code, 1, showRun(r));
      const args = readFileSync(argsFile, "utf8").split("\n");
      assert.equal(args[args.indexOf("--capabilities") + 1], join(repoRoot(), "bundles", "capabilities.json"));
    } finally {
      rmSync(elsewhere, { recursive: true, force: true });
    }
  }).timeout(30_000);
});
