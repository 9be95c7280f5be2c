import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { configCheck, type PolicyStarter } from "../../../gateway/cli/config-check.js";
import { runCli } from "../../../gateway/cli/commands.js";
import { loadBundle, signBundleFiles, writeTarGz } from "../../../gateway/policy/index.js";
import { generateKeyPair } from "../../support/bundles.js";

/**
 * `portcullis config check` offline: temp config files whose every path is relative to the
 * config's folder. A bad field is exit 2 with serve's text naming the file and the field. The
 * bundles here are signed but hold a stub wasm module, so the good-config case fakes the policy
 * start after verifying the signature for real (test/integration/config-check.test.ts checks a
 * real opa-built bundle end to end).
 */

interface Run {
  code: number;
  out: string;
  err: string;
}

function capture(): { io: { out: PassThrough; err: PassThrough }; result: () => { out: string; err: string } } {
  const out = new PassThrough();
  const err = new PassThrough();
  let o = "";
  let e = "";
  out.on("data", (c: Buffer) => (o += c.toString()));
  err.on("data", (c: Buffer) => (e += c.toString()));
  return { io: { out, err }, result: () => ({ out: o, err: e }) };
}

async function cli(args: string[]): Promise<Run> {
  const c = capture();
  const code = await runCli(args, c.io);
  return { code, ...c.result() };
}

/** serve's policy start with the wasm compile left out: the signature is still verified by the real loader. */
const verifyOnly: PolicyStarter = async (config) => {
  const b = await loadBundle(config.policy.bundle, { verificationKeyPem: readFileSync(config.policy.verificationKey, "utf8"), keyId: config.policy.keyId });
  const status = { state: "ok" as const, source: config.policy.bundle, revision: b.revision, sha256: b.sha256, swaps: 0, consecutiveFailures: 0 };
  return { status: () => ({ policy: status }), stop: () => undefined };
};

describe("portcullis config check (offline)", () => {
  const dir = mkdtempSync(join(tmpdir(), "pc-config-check-"));
  const keys = generateKeyPair("ec-p256");
  const other = generateKeyPair("ec-p256");
  const stubFiles = () =>
    new Map<string, Buffer>([
      ["/data.json", Buffer.from("{}")],
      ["/policy.wasm", Buffer.from("\0asm\u0001\0\0\0")],
      ["/.manifest", Buffer.from(JSON.stringify({ revision: "r-check", roots: [""], wasm: [{ entrypoint: "mcp/authz/decision", module: "/policy.wasm" }] }))],
    ]);

  before(() => {
    mkdirSync(join(dir, "keys"));
    mkdirSync(join(dir, "bin"));
    writeFileSync(join(dir, "bundle.tar.gz"), writeTarGz(signBundleFiles(stubFiles(), { privateKeyPem: keys.privateKeyPem, algorithm: "ES256" })));
    writeFileSync(join(dir, "unsigned.tar.gz"), writeTarGz(stubFiles()));
    writeFileSync(join(dir, "keys", "bundle.pub.pem"), keys.publicKeyPem);
    writeFileSync(join(dir, "keys", "other.pub.pem"), other.publicKeyPem);
    const ed = generateKeyPairSync("ed25519", { privateKeyEncoding: { type: "pkcs8", format: "pem" }, publicKeyEncoding: { type: "spki", format: "pem" } });
    writeFileSync(join(dir, "keys", "audit.pem"), ed.privateKey);
    writeFileSync(join(dir, "keys", "rsa.pem"), generateKeyPair("rsa").privateKeyPem);
    writeFileSync(join(dir, "bin", "server"), "#!/bin/sh\nexit 0\n");
    chmodSync(join(dir, "bin", "server"), 0o755);
    writeFileSync(join(dir, "bin", "not-executable"), "#!/bin/sh\n");
    chmodSync(join(dir, "bin", "not-executable"), 0o644);
    writeFileSync(join(dir, "a-file"), "");
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  /** A config every check passes, paths relative to its folder. */
  const good = (): Record<string, any> => ({
    auth: { issuer: "https://idp.example.com/", audience: "https://gw.example.com/mcp", jwksUri: "https://idp.example.com/jwks.json" },
    policy: { bundle: "bundle.tar.gz", verificationKey: "keys/bundle.pub.pem" },
    upstreams: {
      files: { url: "http://127.0.0.1:7001/mcp", identityAssertion: { privateKey: "keys/rsa.pem" } },
      local: { command: "bin/server", args: ["--port", "1"] },
      path: { command: "sh", args: ["-c", "true"] },
    },
    audit: { file: "var/audit.jsonl", signing: { privateKey: "keys/audit.pem" }, fileMinFreeBytes: 0 },
  });

  let n = 0;
  function write(doc: Record<string, any>): string {
    const file = join(dir, `gw-${++n}.yaml`);
    writeFileSync(file, JSON.stringify(doc, null, 2));
    return file;
  }

  it("a good config passes every check: exit 0, one line per check", async () => {
    const file = write(good());
    const c = capture();
    const code = await configCheck(file, { online: false, timeoutMs: 1000, startPolicy: verifyOnly }, c.io);
    const { out, err } = c.result();
    assert.equal(code, 0, `${out}\n${err}`);
    assert.equal(err, "");
    for (const line of [
      /OK +config +schema/,
      new RegExp(`OK +policy\\.bundle +${dir}/bundle\\.tar\\.gz: signature verified .* revision "r-check"`),
      /OK +auth +issuer https:\/\/idp\.example\.com\//,
      new RegExp(`OK +audit\\.file +${dir}/var/audit\\.jsonl \\(writable\\)`),
      /OK +audit\.signing\.privateKey .*\(Ed25519\)/,
      /OK +upstreams\.files +http: .*identity assertion key read/,
      /OK +upstreams\.local +stdio: bin\/server --port 1/,
      /OK +upstreams\.path +stdio: sh -c true/,
    ]) {
      assert.match(out, line);
    }
    assert.match(out, /^ok: 8 checks passed; --online also/m);
  });

  // `realPolicy`: serve's own policy start, for failures found before the wasm is compiled.
  const cases: Array<{ note: string; mutate: (c: Record<string, any>) => void; field: string; says: RegExp; realPolicy?: true }> = [
    { note: "a verification key that does not exist", mutate: (c) => (c.policy.verificationKey = "keys/missing.pem"), field: "policy.verificationKey", says: /keys\/missing\.pem: cannot read policy\.verificationKey \(ENOENT\)/, realPolicy: true },
    { note: "a bundle that does not exist", mutate: (c) => (c.policy.bundle = "nowhere.tar.gz"), field: "policy.bundle", says: /bundle_unreadable: .*nowhere\.tar\.gz/, realPolicy: true },
    { note: "an unsigned bundle", mutate: (c) => (c.policy.bundle = "unsigned.tar.gz"), field: "policy.bundle", says: /bundle_unsigned: .*unsigned\.tar\.gz/, realPolicy: true },
    { note: "a bundle signed by another key", mutate: (c) => (c.policy.verificationKey = "keys/other.pub.pem"), field: "policy.bundle", says: /bundle_signature_invalid: .*bundle\.tar\.gz/, realPolicy: true },
    { note: "an audit signing key that does not exist", mutate: (c) => (c.audit.signing.privateKey = "keys/none.pem"), field: "audit.signing.privateKey", says: /cannot read .*keys\/none\.pem \(ENOENT\)/ },
    { note: "an audit signing key that is not Ed25519", mutate: (c) => (c.audit.signing.privateKey = "keys/rsa.pem"), field: "audit.signing.privateKey", says: /keys\/rsa\.pem: / },
    { note: "an audit file under a file", mutate: (c) => (c.audit.file = "a-file/audit.jsonl"), field: "audit.file", says: /a-file is not a directory/ },
    { note: "a Kafka CA file that does not exist", mutate: (c) => (c.audit.kafka = { brokers: ["127.0.0.1:1"], topic: "t", ssl: { ca: "keys/ca.pem" } }), field: "audit.kafka.ssl.ca", says: /cannot read .*keys\/ca\.pem \(ENOENT\)/ },
    { note: "an outbox directory under a file", mutate: (c) => (c.audit.kafka = { brokers: ["127.0.0.1:1"], topic: "t", deadLetterFile: "var/dead.jsonl" }, c.audit.outbox = { dir: "a-file/outbox" }), field: "audit.outbox.dir", says: /a-file is not a directory/ },
    { note: "an identity assertion key that does not exist", mutate: (c) => (c.upstreams.files.identityAssertion.privateKey = "keys/id.pem"), field: "upstreams.files.identityAssertion.privateKey", says: /cannot read .*keys\/id\.pem \(ENOENT\)/ },
    { note: "a stdio command that does not exist", mutate: (c) => (c.upstreams.local.command = "bin/nope"), field: "upstreams.local.command", says: /bin\/nope does not exist/ },
    { note: "a stdio command that is not executable", mutate: (c) => (c.upstreams.local.command = "./bin/not-executable"), field: "upstreams.local.command", says: /bin\/not-executable is not an executable file/ },
    { note: "a stdio command not in the PATH", mutate: (c) => (c.upstreams.path.command = "portcullis-no-such-command"), field: "upstreams.path.command", says: /"portcullis-no-such-command" is not an executable in the upstream's PATH/ },
    { note: "a stdio cwd that does not exist", mutate: (c) => (c.upstreams.local.cwd = "no-such-dir"), field: "upstreams.local.cwd", says: /no-such-dir is not a directory/ },
    { note: "a JWKS URL over plain http off loopback", mutate: (c) => (c.auth.jwksUri = "http://idp.example.com/jwks.json"), field: "auth.jwksUri", says: /must use https/ },
  ];
  for (const c of cases) {
    it(`exit 2 naming the file and the field: ${c.note}`, async () => {
      const doc = good();
      c.mutate(doc);
      const file = write(doc);
      const io = capture();
      const code = await configCheck(file, { online: false, timeoutMs: 1000, ...(c.realPolicy ? {} : { startPolicy: verifyOnly }) }, io.io);
      const { out, err } = io.result();
      assert.equal(code, 2, `${out}\n${err}`);
      // serve's text for a bad config: the file, then one line per field; only this field failed.
      assert.ok(err.startsWith(`portcullis: config error: ${file}: `), err);
      const line = err.split("\n").find((l) => l.startsWith(`portcullis: config error: ${file}: ${c.field}: `) || l.startsWith(`  ${c.field}: `));
      assert.ok(line !== undefined, `no line for ${c.field} in:\n${err}`);
      assert.match(line, c.says);
      assert.deepEqual(failedFields(out), [c.field], out);
    });
  }

  /** The fields of the FAIL lines of the report. */
  const failedFields = (out: string) => [...out.matchAll(/^ {2}FAIL +(\S+)/gm)].map((m) => m[1]);

  it("a config that does not load is serve's config error, through the real command", async () => {
    const doc = good();
    doc.auth.audiance = "x";
    doc.upstreams.files.headers = { Authorization: "Bearer ${PC_CHECK_UNSET_TOKEN}" };
    const file = write(doc);
    const r = await cli(["config", "check", "--config", file]);
    assert.equal(r.code, 2, `${r.out}\n${r.err}`);
    assert.equal(r.err, `portcullis: config error: ${file}: upstreams.files.headers.Authorization: environment variable PC_CHECK_UNSET_TOKEN is not set\n`);
    delete doc.upstreams.files.headers;
    const r2 = await cli(["config", "check", "--config", write(doc)]);
    assert.equal(r2.code, 2);
    assert.match(r2.err, /: auth: unknown key "audiance"\n$/);
  });

  it("reports every failing field at once, not only the first", async () => {
    const doc = good();
    doc.audit.signing.privateKey = "keys/none.pem";
    doc.upstreams.local.command = "bin/nope";
    const io = capture();
    const code = await configCheck(write(doc), { online: false, timeoutMs: 1000, startPolicy: verifyOnly }, io.io);
    const { out, err } = io.result();
    assert.equal(code, 2);
    assert.deepEqual(failedFields(out), ["audit.signing.privateKey", "upstreams.local.command"]);
    assert.match(err, /: \n {2}audit\.signing\.privateKey: .*\n {2}upstreams\.local\.command: .*\n$/);
    assert.match(out, /^FAILED: 2 of 8 checks$/m);
  });

  it("skips a URL bundle offline and says --online fetches it", async () => {
    const doc = good();
    doc.policy.bundle = "https://bundles.example.com/mcp-authz.tar.gz";
    const c = capture();
    const code = await configCheck(write(doc), { online: false, timeoutMs: 1000 }, c.io);
    assert.equal(code, 0, c.result().err);
    assert.match(c.result().out, /SKIP +policy\.bundle +https:\/\/bundles\.example\.com\/mcp-authz\.tar\.gz is a URL: fetched and verified with --online/);
  });

  it("a missing --config is a usage error; --timeout needs --online", async () => {
    assert.equal((await cli(["config", "check"])).code, 2);
    const r = await cli(["config", "check", "--config", write(good()), "--timeout", "1s"]);
    assert.equal(r.code, 2);
    assert.match(r.err, /--timeout bounds the --online checks/);
  });
});
