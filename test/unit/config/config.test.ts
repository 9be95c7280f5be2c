import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConfigError, loadConfig, parseConfig } from "../../../gateway/config/index.js";

const minimal = () => ({
  auth: { issuer: "https://idp.example.com/", audience: "https://gw.example.com/mcp", jwksUri: "https://idp.example.com/jwks.json" },
  policy: { bundle: "bundles/build/mcp-authz.tar.gz", verificationKey: "bundles/keys/dev.pub.pem" },
  upstreams: { files: { url: "http://127.0.0.1:7001/mcp" } },
});

function problems(raw: unknown, env: NodeJS.ProcessEnv = {}): string[] {
  try {
    parseConfig(raw, "gw.yaml", env);
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`);
    assert.equal(err.file, "gw.yaml");
    return err.problems;
  }
  assert.fail("config was accepted");
}

describe("config", () => {
  it("fills defaults and freezes the result", () => {
    const c = parseConfig(minimal(), "/etc/portcullis/gw.yaml", {});
    assert.deepEqual(c.listen, { host: "127.0.0.1", port: 8080 });
    assert.deepEqual(c.auth.algorithms, ["RS256", "ES256"]);
    assert.equal(c.auth.rolesClaim, "roles");
    assert.equal(c.sessions.idleTimeoutSeconds, 1800);
    assert.equal(c.edge.maxBodyBytes, 4 * 1024 * 1024);
    assert.ok(Object.isFrozen(c) && Object.isFrozen(c.auth));
  });

  it("resolves relative paths against the config file's directory", () => {
    const c = parseConfig(minimal(), "/etc/portcullis/gw.yaml", {});
    assert.equal(c.policy.bundle, "/etc/portcullis/bundles/build/mcp-authz.tar.gz");
    assert.equal(c.audit.file, "/etc/portcullis/var/audit.jsonl");
  });

  const cases: Array<{ note: string; mutate: (c: Record<string, any>) => void; expect: RegExp }> = [
    { note: "unknown top-level key", mutate: (c) => (c.polcy = {}), expect: /^\(top level\): unknown key "polcy"$/ },
    { note: "unknown nested key", mutate: (c) => (c.auth.audiance = "x"), expect: /^auth: unknown key "audiance"$/ },
    { note: "missing issuer", mutate: (c) => delete c.auth.issuer, expect: /^auth\.issuer: is required$/ },
    { note: "alg none refused", mutate: (c) => (c.auth.algorithms = ["none"]), expect: /^auth\.algorithms\.0: .*RS256/ },
    { note: "HS256 refused", mutate: (c) => (c.auth.algorithms = ["HS256"]), expect: /^auth\.algorithms\.0: / },
    { note: "bad jwks url", mutate: (c) => (c.auth.jwksUri = "not a url"), expect: /^auth\.jwksUri: / },
    { note: "bad upstream name", mutate: (c) => (c.upstreams = { "bad name": { url: "http://127.0.0.1:1/mcp" } }), expect: /^upstreams\.bad name: / },
    { note: "no upstreams", mutate: (c) => (c.upstreams = {}), expect: /^upstreams: at least one upstream/ },
    { note: "http upstream with stdio key", mutate: (c) => (c.upstreams.files.args = ["x"]), expect: /^upstreams\.files: unknown key\(s\) args for a http upstream$/ },
    { note: "stdio upstream with bad args", mutate: (c) => (c.upstreams = { s: { command: "node", args: "x" } }), expect: /^upstreams\.s\.args: / },
    { note: "port out of range", mutate: (c) => (c.listen = { port: 70000 }), expect: /^listen\.port: / },
  ];
  for (const { note, mutate, expect } of cases) {
    it(`names the field: ${note}`, () => {
      const raw = minimal() as Record<string, any>;
      mutate(raw);
      const p = problems(raw);
      assert.ok(p.some((line) => expect.test(line)), `got: ${JSON.stringify(p)}`);
    });
  }

  it("fills policy.reload defaults and resolves the shadow bundle and key like the live ones (URLs untouched)", () => {
    const c = parseConfig({ ...minimal(), policy: { ...minimal().policy, shadow: { bundle: "bundles/build/candidate.tar.gz", verificationKey: "keys/cand.pub.pem" } } }, "/etc/portcullis/gw.yaml", {});
    assert.deepEqual(c.policy.reload, { intervalSeconds: 5, maxBackoffSeconds: 300 });
    assert.deepEqual(c.policy.shadow, { bundle: "/etc/portcullis/bundles/build/candidate.tar.gz", verificationKey: "/etc/portcullis/keys/cand.pub.pem" });
    const url = parseConfig({ ...minimal(), policy: { ...minimal().policy, bundle: "https://bundles.example.com/mcp-authz.tar.gz", reload: { intervalSeconds: 30 } } }, "/etc/portcullis/gw.yaml", {});
    assert.equal(url.policy.bundle, "https://bundles.example.com/mcp-authz.tar.gz");
    assert.deepEqual(url.policy.reload, { intervalSeconds: 30, maxBackoffSeconds: 300 });
    assert.deepEqual(problems({ ...minimal(), policy: { ...minimal().policy, shadow: { bundel: "x" } } }), ["policy.shadow.bundle: is required", 'policy.shadow: unknown key "bundel"']);
  });

  it("expands ${VAR} from the environment", () => {
    const raw = minimal() as Record<string, any>;
    raw.upstreams.files.headers = { Authorization: "Bearer ${FILES_TOKEN}" };
    const c = parseConfig(raw, "gw.yaml", { FILES_TOKEN: "s3cret" });
    const files = c.upstreams.files;
    assert.ok(files && "url" in files);
    assert.equal(files.headers.Authorization, "Bearer s3cret");
  });

  it("names the field whose environment variable is missing", () => {
    const raw = minimal() as Record<string, any>;
    raw.upstreams.files.headers = { Authorization: "Bearer ${FILES_TOKEN}" };
    assert.deepEqual(problems(raw), ["upstreams.files.headers.Authorization: environment variable FILES_TOKEN is not set"]);
  });

  it("reports YAML syntax errors with the file and line", () => {
    const dir = mkdtempSync(join(tmpdir(), "pc-config-"));
    const file = join(dir, "bad.yaml");
    writeFileSync(file, "auth:\n  issuer: [unclosed\n");
    assert.throws(() => loadConfig(file, {}), (err: unknown) => err instanceof ConfigError && err.file === file && /line \d+/.test(err.message));
  });

  it("reports an unreadable file by name", () => {
    assert.throws(() => loadConfig("/nonexistent/gw.yaml", {}), (err: unknown) => err instanceof ConfigError && /\/nonexistent\/gw\.yaml: cannot read config: ENOENT/.test(err.message));
  });

  it("loads the shipped example config", () => {
    const c = loadConfig(new URL("../../../../examples/gateway.yaml", import.meta.url).pathname, { FILES_TOKEN: "t" });
    assert.ok(Object.keys(c.upstreams).length >= 2);
  });
});
