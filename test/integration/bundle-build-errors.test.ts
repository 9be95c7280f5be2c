/**
 * `portcullis bundle build` with the real opa, run from outside the checkout as a newcomer would:
 * opa's own error for a Rego syntax error, and the gateway's capabilities applied wherever the CLI
 * runs (before, a policy using http.send built from another directory and then failed every request).
 */
import assert from "node:assert/strict";
import { mkdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { makeTempDir, opaBin } from "../support/bundles.js";
import { runPortcullis, showRun } from "../support/cli.js";

describe("portcullis bundle build with the real opa, outside the checkout", function () {
  this.timeout(60_000);
  let dir: string;
  before(async () => {
    dir = await makeTempDir("pc-bundle-errors-");
  });
  after(async () => rm(dir, { recursive: true, force: true }));

  async function policies(name: string, rego: string): Promise<string> {
    const p = join(dir, name);
    await mkdir(p, { recursive: true });
    await writeFile(join(p, "policy.rego"), rego);
    return p;
  }
  const build = (p: string) => runPortcullis(["bundle", "build", "--policies", p, "-o", join(dir, "out.tar.gz"), "-r", "r1", "--opa", opaBin()], { cwd: dir });

  it("shows opa's parse error, with the file and line", async () => {
    const r = await build(await policies("syntax", 'package mcp.authz\n\ndecision := {"allow": true\n'));
    assert.equal(r.code, 1, showRun(r));
    assert.match(r.stderr, /opa build failed:\n.*\npolicy\.rego:4: rego_parse_error: unexpected eof token/);
  });

  it("refuses a policy calling a builtin the gateway cannot evaluate (http.send)", async () => {
    const r = await build(await policies("http-send", 'package mcp.authz\n\ndecision := {"allow": true, "reasons": []} if {\n\thttp.send({"method": "get", "url": "https://example.com"}).status_code == 200\n}\n'));
    assert.equal(r.code, 1, showRun(r));
    assert.match(r.stderr, /opa build failed:[\s\S]*undefined function http\.send/);
  });

  it("builds a good policy and names the capabilities it used", async () => {
    const r = await build(await policies("good", 'package mcp.authz\n\ndecision := {"allow": false, "reasons": ["nothing granted"]}\n'));
    assert.equal(r.code, 0, showRun(r));
    assert.match(r.stdout, /built .*out\.tar\.gz \(revision r1, unsigned, capabilities .*bundles\/capabilities\.json; entrypoints mcp\/authz\/decision\)/);
  });
});
