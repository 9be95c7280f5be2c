import assert from "node:assert/strict";
import { cp, mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import {
  applyRedactions,
  BundleError,
  loadBundle,
  RESULT_REDACTED,
  WasmPolicyEngine,
  type LoadedBundle,
  type ResultRedaction,
} from "../../gateway/policy/index.js";
import {
  buildSignedBundle,
  buildUnsignedBundle,
  defaultPolicyDir,
  generateKeyPair,
  makeTempDir,
  readBundleFiles,
  signFiles,
  writeTarGz,
  type KeyPairPem,
} from "../support/bundles.js";
import { aliceInput } from "../support/policy-input.js";

/**
 * Policy over results with the real opa-built bundle: the shipped starter rules (policies/mcp/result)
 * evaluated by the engine's decideResult on results carrying fake credentials, the redactions
 * applied with applyRedactions, and the fail-closed edges of the optional entrypoint.
 */

// Fake credentials, shaped like real ones (the AWS pair is AWS's own documentation example).
const FAKE = {
  aws_access_key_id: "AKIAIOSFODNN7EXAMPLE",
  aws_secret_access_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
  github_token: "ghp_0123456789abcdefghijABCDEFGHIJklmnop",
  slack_token: "xoxb-1234567890-0987654321-FAKEfakeFAKEfake",
  google_api_key: "AIzaSyA-FAKE_fake0123456789abcdefghijkl",
  stripe_secret_key: "sk_live_FAKE0123456789abcdefgh",
  jwt: "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLW5vdC1yZWFs",
  private_key: "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIFAKEfakeFAKEfake\n-----END EC PRIVATE KEY-----",
  secret_assignment: "hunter2hunter2",
} as const;

type Kind = keyof typeof FAKE;

/** Prose around each secret, as a tool's text content mixes them. */
const TEXT: Record<Kind, string> = {
  aws_access_key_id: `The backup job uses ${FAKE.aws_access_key_id} in eu-west-1.`,
  aws_secret_access_key: `[default]\naws_secret_access_key = ${FAKE.aws_secret_access_key}\noutput = json`,
  github_token: `remote: https://${FAKE.github_token}@github.com/acme/app.git`,
  slack_token: `SLACK_BOT_TOKEN=${FAKE.slack_token} # posts to #ops`,
  google_api_key: `maps.googleapis.com/maps/api/js?key=${FAKE.google_api_key}&callback=init`,
  stripe_secret_key: `Billing runs with ${FAKE.stripe_secret_key} since March.`,
  jwt: `curl -H "Authorization: Bearer ${FAKE.jwt}" https://api.example.com`,
  private_key: `The deploy key is below.\n${FAKE.private_key}\nRotate it yearly.`,
  secret_assignment: `db: host=10.0.0.5 user=app password=${FAKE.secret_assignment} sslmode=require`,
};

const callInput = aliceInput(["analyst"], "tools/call", { tool: "read_file", arguments: { path: "/data/notes.txt" } });

function textResult(text: string): Record<string, unknown> {
  return { content: [{ type: "text", text }], isError: false };
}

describe("policy over results (mcp/authz/result) with the real bundle", function () {
  this.timeout(120_000);
  let dir: string;
  let rsa: KeyPairPem;
  let engine: WasmPolicyEngine;

  async function bundleFrom(policyDir: string, name: string, entrypoints?: string[]): Promise<LoadedBundle> {
    const outFile = join(dir, `${name}.tar.gz`);
    await buildSignedBundle({ policyDir, outFile, privateKeyPem: rsa.privateKeyPem, algorithm: "RS256", revision: name, ...(entrypoints ? { entrypoints } : {}) });
    return loadBundle(outFile, { verificationKeyPem: rsa.publicKeyPem });
  }

  /** A one-file policy folder. */
  async function policyOf(name: string, rego: string): Promise<string> {
    const p = join(dir, name);
    await mkdir(p, { recursive: true });
    await writeFile(join(p, "policy.rego"), rego);
    return p;
  }

  before(async () => {
    dir = await makeTempDir("portcullis-result-");
    rsa = generateKeyPair("rsa");
    // Built as any author would, naming only the decision: the result rule declares itself.
    const bundle = await bundleFrom(defaultPolicyDir(), "default");
    assert.deepEqual(bundle.entrypoints, ["mcp/authz/decision", "mcp/authz/result"]);
    engine = await WasmPolicyEngine.create(bundle);
  });
  after(async () => rm(dir, { recursive: true, force: true }));

  it("the shipped bundle has a result policy, and the decision entrypoint is unaffected", () => {
    assert.equal(engine.hasResultPolicy, true);
    const outcome = engine.decide(callInput);
    assert.equal(outcome.error, undefined);
    assert.equal(outcome.decision.allow, true);
    const outside = engine.decide(aliceInput(["analyst"], "tools/call", { tool: "read_file", arguments: { path: "/etc/passwd" } }));
    assert.deepEqual([outside.decision.allow, outside.decision.message], [false, "read_file is limited to /data"]);
  });

  for (const kind of Object.keys(FAKE) as Kind[]) {
    it(`redacts a fake ${kind} inside prose, leaving the prose`, () => {
      const result = textResult(TEXT[kind]);
      const outcome = engine.decideResult(callInput, result);
      assert.equal(outcome.error, undefined, outcome.error?.message);
      assert.equal(outcome.decision.allow, true);
      assert.ok(outcome.elapsedMs > 0);
      assert.deepEqual(outcome.decision.redact, [{ pointer: "/content/0/text", match: FAKE[kind], kind }]);
      assert.deepEqual(outcome.decision.reasons, [`${kind} at /content/0/text`]);

      const applied = applyRedactions(result, outcome.decision.redact);
      const text = (applied.result.content as Array<{ text: string }>)[0]!.text;
      assert.equal(text, TEXT[kind].replace(FAKE[kind], RESULT_REDACTED));
      assert.deepEqual(applied.redacted, [{ pointer: "/content/0/text", kind, bytes: Buffer.byteLength(FAKE[kind]), scope: "match", occurrences: 1 }]);
      assert.ok(!JSON.stringify(applied.redacted).includes(FAKE[kind]), "the report never carries the secret");
      assert.equal((result.content as Array<{ text: string }>)[0]!.text, TEXT[kind], "the upstream's result is not mutated");
    });
  }

  it("finds secrets in nested structuredContent and in secret-named fields, and redacts all of them at once", () => {
    const result = {
      content: [{ type: "text", text: JSON.stringify({ ok: true }) }],
      structuredContent: {
        service: { name: "billing", env: [{ STRIPE: FAKE.stripe_secret_key }, { note: `id ${FAKE.aws_access_key_id}, ${FAKE.github_token}` }] },
        credentials: { password: "correct horse battery", user: "app" },
      },
      isError: false,
    };
    const outcome = engine.decideResult(callInput, result);
    assert.equal(outcome.decision.allow, true);
    const want: ResultRedaction[] = [
      { pointer: "/structuredContent/credentials/password", kind: "secret_field" },
      { pointer: "/structuredContent/service/env/0/STRIPE", match: FAKE.stripe_secret_key, kind: "stripe_secret_key" },
      { pointer: "/structuredContent/service/env/1/note", match: FAKE.aws_access_key_id, kind: "aws_access_key_id" },
      { pointer: "/structuredContent/service/env/1/note", match: FAKE.github_token, kind: "github_token" },
    ];
    const sortKey = (r: ResultRedaction): string => `${r.pointer} ${r.kind}`;
    assert.deepEqual([...outcome.decision.redact].sort((a, b) => sortKey(a).localeCompare(sortKey(b))), want);
    const applied = applyRedactions(result, outcome.decision.redact);
    assert.deepEqual(applied.result.structuredContent, {
      service: { name: "billing", env: [{ STRIPE: RESULT_REDACTED }, { note: `id ${RESULT_REDACTED}, ${RESULT_REDACTED}` }] },
      credentials: { password: RESULT_REDACTED, user: "app" },
    });
    assert.equal(applied.result.content, result.content, "untouched content is shared, not copied");
    assert.deepEqual(applied.unresolved, []);
  });

  it("passes a clean result untouched", () => {
    const result = {
      content: [{ type: "text", text: "Q3 revenue was 4.2M, up 8% on Q2. Reset your password from Settings." }],
      structuredContent: { rows: [{ month: "july", revenue: 1.3 }], tokens_used: 512 },
      isError: false,
    };
    const outcome = engine.decideResult(callInput, result);
    assert.deepEqual(outcome.decision, { allow: true, reasons: [], redact: [] });
    const applied = applyRedactions(result, outcome.decision.redact);
    assert.equal(applied.result, result);
  });

  it("with result_block_on: [private_key] in data, withholds a result carrying a private key", async () => {
    const policyDir = join(dir, "policies-block");
    await cp(defaultPolicyDir(), policyDir, { recursive: true });
    const data = JSON.parse(await readFile(join(policyDir, "data.json"), "utf8")) as { portcullis: Record<string, unknown> };
    data.portcullis.result_block_on = ["private_key"];
    await writeFile(join(policyDir, "data.json"), JSON.stringify(data));
    const blocking = await WasmPolicyEngine.create(await bundleFrom(policyDir, "block-private-key"));

    const withheld = blocking.decideResult(callInput, textResult(TEXT.private_key));
    assert.equal(withheld.error, undefined);
    assert.equal(withheld.decision.allow, false);
    assert.equal(withheld.decision.message, "the result was withheld by policy: it contains private_key");
    assert.ok(!JSON.stringify(withheld.decision.reasons).includes("MHcCAQ"));
    // Other kinds are still only redacted.
    assert.equal(blocking.decideResult(callInput, textResult(TEXT.aws_access_key_id)).decision.allow, true);
    // And the shipped data only redacts the private key.
    assert.equal(engine.decideResult(callInput, textResult(TEXT.private_key)).decision.allow, true);
  });

  it("an operator's pattern RE2 cannot compile blocks the results it runs on under wasm (it would otherwise find nothing, silently)", async () => {
    const policyDir = join(dir, "policies-broken-pattern");
    await cp(defaultPolicyDir(), policyDir, { recursive: true });
    const data = JSON.parse(await readFile(join(policyDir, "data.json"), "utf8")) as { portcullis: { result_patterns: Record<string, unknown> } };
    data.portcullis.result_patterns.employee_id = { regex: "EMP-([0-9]{6}", hints: ["emp-"], example: "EMP-123456" };
    await writeFile(join(policyDir, "data.json"), JSON.stringify(data));
    const broken = await WasmPolicyEngine.create(await bundleFrom(policyDir, "broken-pattern"));
    const outcome = broken.decideResult(callInput, textResult("ticket EMP-004211 closed"));
    assert.equal(outcome.error, undefined);
    assert.equal(outcome.decision.allow, false);
    assert.deepEqual(outcome.decision.reasons, ["result pattern employee_id does not find its example (not valid RE2, or the example no longer matches)"]);
    assert.equal(broken.decideResult(callInput, textResult("no ticket here")).decision.allow, true, "results it does not run on pass");
  });

  it("a bundle without the result entrypoint has no result policy: results pass as sent", async () => {
    const p = await policyOf("decision-only", 'package mcp.authz\n\ndecision := {"allow": true, "reasons": []}\n');
    const bundle = await bundleFrom(p, "decision-only");
    assert.deepEqual(bundle.entrypoints, ["mcp/authz/decision"]);
    const plain = await WasmPolicyEngine.create(bundle);
    assert.equal(plain.hasResultPolicy, false);
    const outcome = plain.decideResult(callInput, textResult(TEXT.aws_access_key_id));
    assert.deepEqual(outcome.decision, { allow: true, reasons: ["the bundle has no mcp/authz/result entrypoint"], redact: [] });
    assert.equal(outcome.error, undefined);
  });

  describe("fails closed when the result entrypoint exists", () => {
    const cases = [
      {
        note: "undefined for this input (no rule matched)",
        rego: '# METADATA\n# entrypoint: true\nresult := {"allow": true} if input.result.isError == false\n',
        result: { content: [], isError: true },
        code: "policy_undefined",
      },
      { note: "malformed (a misspelt field)", rego: '# METADATA\n# entrypoint: true\nresult := {"allow": true, "redacts": ["/content/0/text"]}\n', result: { content: [] }, code: "policy_malformed" },
      { note: "malformed (a pointer that is not one)", rego: '# METADATA\n# entrypoint: true\nresult := {"allow": true, "redact": ["content/0/text"]}\n', result: { content: [] }, code: "policy_malformed" },
      {
        note: "an evaluation error (conflicting answers)",
        rego: '# METADATA\n# entrypoint: true\nresult := {"allow": true} if input.result.a\n\nresult := {"allow": false} if input.result.b\n',
        result: { a: true, b: true },
        code: "policy_eval_error",
      },
    ];
    for (const [i, c] of cases.entries()) {
      it(`blocks a result when mcp/authz/result is ${c.note}`, async () => {
        const p = await policyOf(`fail-${i}`, `package mcp.authz\n\ndecision := {"allow": true}\n\n${c.rego}`);
        const e = await WasmPolicyEngine.create(await bundleFrom(p, `fail-${i}`));
        assert.equal(e.hasResultPolicy, true);
        const outcome = e.decideResult(callInput, c.result);
        assert.equal(outcome.decision.allow, false);
        assert.deepEqual(outcome.decision.redact, []);
        assert.equal(outcome.decision.message, undefined);
        assert.equal(outcome.error?.code, c.code, outcome.error?.message);
      });
    }

    it("blocks a result that is not an object (the upstream's answer cannot be checked)", () => {
      const outcome = engine.decideResult(callInput, ["not", "an", "object"] as unknown as Record<string, unknown>);
      assert.equal(outcome.decision.allow, false);
      assert.equal(outcome.error?.code, "policy_eval_error");
    });

    it("refuses a bundle whose manifest declares mcp/authz/result that its module does not export", async () => {
      const p = await policyOf("declared-not-built", 'package mcp.authz\n\ndecision := {"allow": true}\n');
      const unsigned = await buildUnsignedBundle({ policyDir: p, outFile: join(dir, "declared-not-built.unsigned.tar.gz") });
      const files = await readBundleFiles(unsigned);
      const manifest = JSON.parse(files.get("/.manifest")!.toString("utf8")) as { wasm: Array<{ entrypoint: string; module: string }> };
      manifest.wasm.push({ entrypoint: "mcp/authz/result", module: "/policy.wasm" });
      files.set("/.manifest", Buffer.from(JSON.stringify(manifest)));
      files.delete("/.signatures.json");
      const out = join(dir, "declared-not-built.tar.gz");
      await writeFile(out, writeTarGz(signFiles(files, { key: rsa.privateKeyPem, algorithm: "RS256" })));
      const bundle = await loadBundle(out, { verificationKeyPem: rsa.publicKeyPem });
      await assert.rejects(WasmPolicyEngine.create(bundle), (err: unknown) => {
        assert.ok(err instanceof BundleError);
        assert.equal(err.code, "bundle_entrypoint_missing");
        assert.match(err.message, /declares "mcp\/authz\/result" but the wasm module does not export it/);
        return true;
      });
    });
  });
});
