import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { isStdioUpstream, loadConfig, parseConfig, type StdioUpstreamConfig } from "../../../gateway/config/index.js";
import { StdioUpstreamConnection } from "../../../gateway/proxy/index.js";

/**
 * Relative paths mean "next to the config file" for every key (docs/configuration.md), whatever
 * the gateway's working directory: policy, audit (file, outbox, dead letters, signing key, Kafka
 * TLS files), identity assertion keys, and stdio upstreams, which start in their `cwd` (the config
 * file's folder by default) so that a relative `command` or path in `args` means the same.
 */
describe("config: relative paths resolve against the config file's folder", () => {
  const raw = () => ({
    auth: { issuer: "https://idp.example.com/", audience: "https://gw.example.com/mcp", jwksUri: "https://idp.example.com/jwks.json" },
    policy: { bundle: "b.tar.gz", verificationKey: "keys/b.pub.pem" },
    upstreams: {
      files: { url: "http://127.0.0.1:7001/mcp", identityAssertion: { privateKey: "keys/id.pem" } },
      local: { command: "node", args: ["server.js", "--port", "7002", "-y"] },
      elsewhere: { command: "./run.sh", cwd: "servers/x" },
      absolute: { command: "node", cwd: "/srv/mcp" },
    },
    audit: {
      file: "var/audit.jsonl",
      signing: { privateKey: "keys/audit.pem" },
      kafka: { brokers: ["127.0.0.1:1"], topic: "t", ssl: { ca: ["ca/a.pem", "/etc/ssl/b.pem"], cert: "tls/c.pem", key: "tls/k.pem" } },
    },
  });

  it("every file key and each stdio cwd", () => {
    const c = parseConfig(raw(), "/etc/portcullis/gw.yaml", {});
    const stdio = (name: string) => {
      const u = c.upstreams[name]!;
      assert.ok(isStdioUpstream(u));
      return u;
    };
    assert.deepEqual(
      {
        bundle: c.policy.bundle,
        verificationKey: c.policy.verificationKey,
        auditFile: c.audit.file,
        signing: c.audit.signing?.privateKey,
        ssl: c.audit.kafka?.ssl,
        identity: (c.upstreams.files as { identityAssertion: { privateKey: string } }).identityAssertion.privateKey,
        localCwd: stdio("local").cwd,
        elsewhereCwd: stdio("elsewhere").cwd,
        absoluteCwd: stdio("absolute").cwd,
      },
      {
        bundle: "/etc/portcullis/b.tar.gz",
        verificationKey: "/etc/portcullis/keys/b.pub.pem",
        auditFile: "/etc/portcullis/var/audit.jsonl",
        signing: "/etc/portcullis/keys/audit.pem",
        ssl: { ca: ["/etc/portcullis/ca/a.pem", "/etc/ssl/b.pem"], cert: "/etc/portcullis/tls/c.pem", key: "/etc/portcullis/tls/k.pem", rejectUnauthorized: true },
        identity: "/etc/portcullis/keys/id.pem",
        localCwd: "/etc/portcullis",
        elsewhereCwd: "/etc/portcullis/servers/x",
        absoluteCwd: "/srv/mcp",
      },
    );
  });

  it("passes stdio command and args as written: the process resolves them from its cwd", () => {
    const c = parseConfig(raw(), "/etc/portcullis/gw.yaml", {});
    const local = c.upstreams.local as StdioUpstreamConfig;
    const elsewhere = c.upstreams.elsewhere as StdioUpstreamConfig;
    assert.deepEqual([local.command, local.args], ["node", ["server.js", "--port", "7002", "-y"]]);
    assert.equal(elsewhere.command, "./run.sh");
  });

  describe("a stdio upstream started from another working directory", () => {
    const dir = realpathSync(mkdtempSync(join(tmpdir(), "pc-relpaths-")));
    let connection: StdioUpstreamConnection | undefined;
    before(() => {
      mkdirSync(join(dir, "servers"));
      // Answers initialize with the directory it runs in and the argument it was given.
      writeFileSync(
        join(dir, "servers", "where.mjs"),
        [
          'import { createInterface } from "node:readline";',
          "createInterface({ input: process.stdin }).on(\"line\", (line) => {",
          "  const m = JSON.parse(line);",
          '  if (m.method === "initialize") process.stdout.write(JSON.stringify({ jsonrpc: "2.0", id: m.id, result: { protocolVersion: "2025-11-25", capabilities: {}, serverInfo: { name: process.cwd(), version: process.argv[2] } } }) + "\\n");',
          "});",
        ].join("\n"),
      );
      writeFileSync(join(dir, "gw.yaml"), JSON.stringify({ ...raw(), upstreams: { where: { command: process.execPath, args: ["servers/where.mjs", "--flag"] } } }));
    });
    after(async () => {
      await connection?.close();
      rmSync(dir, { recursive: true, force: true });
    });

    it("finds a script named relative to the config file and runs in the config file's folder", async () => {
      assert.notEqual(process.cwd(), dir);
      const config = loadConfig(join(dir, "gw.yaml"), {});
      connection = new StdioUpstreamConnection(config.upstreams.where as StdioUpstreamConfig, () => undefined);
      const answer = await connection.initialize({ jsonrpc: "2.0", id: 1, method: "initialize", params: { protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: "t", version: "1" } } }, { timeoutMs: 10_000 });
      assert.deepEqual((answer as { result?: { serverInfo?: unknown } }).result?.serverInfo, { name: dir, version: "--flag" });
    }).timeout(15_000);
  });
});
