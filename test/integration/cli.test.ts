import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import jwt from "jsonwebtoken";
import { startFakeIdp, type FakeIdp } from "../fakes/jwks.js";
import { readBundleFiles, rewriteBundleFile } from "../support/bundles.js";
import { defaultBundle } from "../support/stack.js";

/** This file runs from dist/test/integration/; the CLI is dist/gateway/cli/main.js. */
const repo = fileURLToPath(new URL("../../../", import.meta.url));
const cliMain = join(repo, "dist", "gateway", "cli", "main.js");
const version = (JSON.parse(readFileSync(join(repo, "package.json"), "utf8")) as { version: string }).version;

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

function cli(args: string[], timeoutMs = 30_000): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cliMain, ...args], { cwd: repo, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c: Buffer) => (stdout += c.toString()));
    child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`portcullis ${args.join(" ")} did not exit within ${timeoutMs} ms\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, timeoutMs);
    child.once("error", reject);
    child.once("close", (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

const show = (r: Run) => `exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`;

const COMMANDS = ["serve", "token", "dev", "version"] as const;

describe("portcullis CLI (node dist/gateway/cli/main.js)", function () {
  this.timeout(60_000);
  let work: string;
  let idp: FakeIdp;
  let good: { bundle: string; key: string };
  const children: ChildProcess[] = [];

  before(async () => {
    work = mkdtempSync(join(tmpdir(), "pc-cli-"));
    const { bundle, dir } = await defaultBundle();
    good = { bundle, key: join(dir, "pub.pem") };
    idp = await startFakeIdp({ audience: "http://127.0.0.1/mcp" });
  });
  after(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
    await idp?.close();
  });

  /** A valid config as YAML text (JSON is YAML); `edit` changes the document first. */
  function writeConfig(name: string, edit: (doc: Record<string, any>) => void = () => undefined): string {
    const doc: Record<string, any> = {
      listen: { host: "127.0.0.1", port: 0 },
      auth: { issuer: idp.issuer, audience: "http://127.0.0.1/mcp", jwksUri: idp.jwksUri, algorithms: ["RS256"] },
      policy: { bundle: good.bundle, verificationKey: good.key },
      upstreams: { demo: { url: "http://127.0.0.1:9/mcp" } },
      audit: { file: join(work, `${name}.audit.jsonl`) },
    };
    edit(doc);
    const file = join(work, `${name}.yaml`);
    writeFileSync(file, JSON.stringify(doc, null, 2));
    return file;
  }

  describe("help and usage", () => {
    it("prints the command list and exits 0 for --help, -h and help", async () => {
      for (const flag of ["--help", "-h", "help"]) {
        const r = await cli([flag]);
        assert.equal(r.code, 0, show(r));
        assert.match(r.stdout, /Usage: portcullis <command>/);
        for (const c of COMMANDS) assert.match(r.stdout, new RegExp(`^  ${c} +\\S`, "m"), `${flag} does not list ${c}`);
      }
    });

    for (const command of COMMANDS) {
      it(`${command} --help prints its usage and exits 0`, async () => {
        const r = await cli([command, "--help"]);
        assert.equal(r.code, 0, show(r));
        assert.match(r.stdout, new RegExp(`Usage: portcullis ${command}\\b`));
        assert.equal(r.stderr, "");
      });
    }

    it("exits 2 with the help when no command is given", async () => {
      const r = await cli([]);
      assert.equal(r.code, 2, show(r));
      assert.match(r.stdout + r.stderr, /Usage: portcullis <command>/);
    });

    it("exits 2 on an unknown command, naming it", async () => {
      const r = await cli(["frobnicate"]);
      assert.equal(r.code, 2, show(r));
      assert.match(r.stderr, /unknown command "frobnicate"/);
      assert.equal(r.stdout, "");
    });

    it("exits 2 on an unknown option", async () => {
      const r = await cli(["serve", "--confg", "x.yaml"]);
      assert.equal(r.code, 2, show(r));
      assert.match(r.stderr, /--confg/);
      assert.match(r.stderr, /Usage: portcullis serve --config FILE/);
    });

    it("version prints the package version and exits 0", async () => {
      const r = await cli(["version"]);
      assert.equal(r.code, 0, show(r));
      assert.equal(r.stdout, `portcullis ${version}\n`);
    });
  });

  describe("serve", () => {
    it("exits 2 with its usage when --config is missing", async () => {
      const r = await cli(["serve"]);
      assert.equal(r.code, 2, show(r));
      assert.match(r.stderr, /serve needs --config FILE/);
      assert.match(r.stderr, /Usage: portcullis serve --config FILE/);
    });

    it("exits 2 naming the file when the config file does not exist", async () => {
      const missing = join(work, "no-such-config.yaml");
      const r = await cli(["serve", "--config", missing]);
      assert.equal(r.code, 2, show(r));
      assert.ok(r.stderr.includes(missing), show(r));
      assert.match(r.stderr, /config error: .*cannot read config: ENOENT/);
    });

    it("exits 2 naming the file, the section and the key for a misspelt key", async () => {
      const file = join(work, "typo.yaml");
      writeFileSync(
        file,
        [
          "listen: { host: 127.0.0.1, port: 0 }",
          "auth:",
          `  issuer: ${idp.issuer}`,
          "  audience: http://127.0.0.1/mcp",
          "  audiance: http://127.0.0.1/mcp",
          `  jwksUri: ${idp.jwksUri}`,
          "policy:",
          `  bundle: ${good.bundle}`,
          `  verificationKey: ${good.key}`,
          "upstreams:",
          "  demo: { url: 'http://127.0.0.1:9/mcp' }",
          "",
        ].join("\n"),
      );
      const r = await cli(["serve", "--config", file]);
      assert.equal(r.code, 2, show(r));
      assert.ok(r.stderr.includes(file), show(r));
      assert.match(r.stderr, /auth: unknown key "audiance"/);
    });

    it("exits 2 naming upstreams when none is configured", async () => {
      const file = writeConfig("no-upstreams", (d) => (d.upstreams = {}));
      const r = await cli(["serve", "--config", file]);
      assert.equal(r.code, 2, show(r));
      assert.ok(r.stderr.includes(file), show(r));
      assert.match(r.stderr, /upstreams: at least one upstream is required/);
    });

    it("exits 1 naming the bundle and the reason when the bundle was tampered with", async () => {
      const files = await readBundleFiles(good.bundle);
      const wasm = Buffer.from(files.get("/policy.wasm") ?? assert.fail("no /policy.wasm"));
      wasm.writeUInt8(wasm.readUInt8(100) ^ 0xff, 100);
      const tampered = await rewriteBundleFile(good.bundle, join(work, "tampered.tar.gz"), "/policy.wasm", wasm);
      const file = writeConfig("tampered", (d) => (d.policy.bundle = tampered));
      const r = await cli(["serve", "--config", file]);
      assert.equal(r.code, 1, show(r));
      assert.ok(r.stderr.includes(`${tampered}: /policy.wasm: digest mismatch`), show(r));
      assert.doesNotMatch(r.stderr, /serving/);
      assert.equal(r.stdout, "");
    });

    it("serves with a valid config until SIGTERM, then exits 0", async () => {
      const file = writeConfig("valid");
      const child = spawn(process.execPath, [cliMain, "serve", "--config", file], { cwd: repo, stdio: ["ignore", "pipe", "pipe"] });
      children.push(child);
      let stderr = "";
      const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
        child.once("exit", (code, signal) => resolve({ code, signal })),
      );
      const base = await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no "serving" line within 20 s:\n${stderr}`)), 20_000);
        child.stderr.on("data", (c: Buffer) => {
          stderr += c.toString();
          // A JSON log line like every other one on stderr.
          const m = /^\{.*"msg":"portcullis \S+ serving (http:\/\/127\.0\.0\.1:\d+)\/mcp\/demo"\}$/m.exec(stderr);
          if (m) {
            clearTimeout(timer);
            resolve(m[1]!);
          }
        });
        void exited.then((e) => {
          clearTimeout(timer);
          reject(new Error(`serve exited early (${e.code ?? e.signal}):\n${stderr}`));
        });
      });

      const res = await fetch(`${base}/.well-known/oauth-protected-resource/mcp/demo`);
      assert.equal(res.status, 200);
      const prm = (await res.json()) as { resource?: string; authorization_servers?: string[] };
      assert.equal(prm.resource, `${base}/mcp/demo`);
      assert.deepEqual(prm.authorization_servers, [idp.issuer]);

      child.kill("SIGTERM");
      let timer: NodeJS.Timeout | undefined;
      const exit = await Promise.race([
        exited,
        new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`serve did not exit within 10 s of SIGTERM:\n${stderr}`)), 10_000))),
      ]).finally(() => clearTimeout(timer));
      assert.deepEqual(exit, { code: 0, signal: null }, stderr);
      const port = Number(new URL(base).port);
      const after = await new Promise<string>((resolve) => {
        const s = connect({ host: "127.0.0.1", port });
        s.once("connect", () => (s.destroy(), resolve("accepted")));
        s.once("error", (err: NodeJS.ErrnoException) => resolve(err.code ?? "error"));
      });
      assert.equal(after, "ECONNREFUSED", "the port is still open after serve exited");
    });
  });

  describe("token", () => {
    it("prints one RS256 JWT with the requested sub, roles, scope and a 10 minute lifetime", async () => {
      const keyDir = join(work, "keys");
      const r = await cli(["token", "--sub", "bob", "--roles", "analyst", "--scopes", "mcp:tools", "--ttl", "10m", "--key-dir", keyDir]);
      assert.equal(r.code, 0, show(r));
      const lines = r.stdout.split("\n");
      assert.equal(lines.length, 2, `expected one line, got ${JSON.stringify(r.stdout)}`);
      assert.equal(lines[1], "");
      const token = lines[0]!;
      assert.match(token, /^[\w-]+\.[\w-]+\.[\w-]+$/);
      const payload = JSON.parse(Buffer.from(token.split(".")[1]!, "base64url").toString("utf8")) as Record<string, unknown>;
      assert.equal(payload.sub, "bob");
      assert.deepEqual(payload.roles, ["analyst"]);
      assert.equal(payload.scope, "mcp:tools");
      assert.equal(typeof payload.iat, "number");
      assert.equal((payload.exp as number) - (payload.iat as number), 600);
      // Signed by the development key the command created in --key-dir.
      const pub = readFileSync(join(keyDir, "dev-issuer.pub.pem"), "utf8");
      const verified = jwt.verify(token, pub, { algorithms: ["RS256"], ignoreExpiration: false }) as Record<string, unknown>;
      assert.equal(verified.sub, "bob");
    });

    it("exits 2 with its usage when --sub is missing", async () => {
      const r = await cli(["token", "--roles", "analyst", "--key-dir", join(work, "keys-nosub")]);
      assert.equal(r.code, 2, show(r));
      assert.match(r.stderr, /token needs --sub NAME/);
      assert.match(r.stderr, /Usage: portcullis token/);
      assert.equal(r.stdout, "");
    });

    it("exits 2 on a malformed --ttl", async () => {
      const r = await cli(["token", "--sub", "bob", "--ttl", "10x", "--key-dir", join(work, "keys-badttl")]);
      assert.equal(r.code, 2, show(r));
      assert.match(r.stderr, /--ttl: invalid duration "10x"/);
      assert.equal(r.stdout, "");
    });
  });
});
