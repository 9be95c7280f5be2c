import assert from "node:assert/strict";
import { mkdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { BundleError, loadBundle, WasmPolicyEngine, type LoadedBundle, type PolicyInput } from "../../gateway/policy/index.js";
import { buildSignedBundle, generateKeyPair, makeTempDir, type KeyPairPem } from "../support/bundles.js";

/** A minimal input; the test policies below read only a few fields. */
function input(extra: Record<string, unknown> = {}): PolicyInput {
  return {
    agent: { sub: "alice", iss: "i", client_id: null, scopes: [], roles: [], claims: {} },
    request: {
      method: "tools/call",
      server: "demo",
      tool: "echo",
      arguments: extra,
      resource: null,
      prompt: null,
      session_id: null,
      protocol_version: null,
      source_ip: null,
      time: "2026-11-24T10:00:00.000Z",
    },
    tool: null,
  };
}

describe("WasmPolicyEngine failure modes (fail closed)", function () {
  this.timeout(60_000);
  let dir: string;
  let rsa: KeyPairPem;

  before(async () => {
    dir = await makeTempDir();
    rsa = generateKeyPair("rsa");
  });
  after(async () => rm(dir, { recursive: true, force: true }));

  /** Builds, signs and loads a one-file policy. */
  async function bundleOf(name: string, rego: string, entrypoints?: string[], data?: unknown): Promise<LoadedBundle> {
    const policyDir = join(dir, name);
    await mkdir(policyDir, { recursive: true });
    await writeFile(join(policyDir, "policy.rego"), rego);
    if (data !== undefined) await writeFile(join(policyDir, "data.json"), JSON.stringify(data));
    const outFile = join(dir, `${name}.tar.gz`);
    await buildSignedBundle({ policyDir, outFile, privateKeyPem: rsa.privateKeyPem, algorithm: "RS256", revision: name, entrypoints });
    return loadBundle(outFile, { verificationKeyPem: rsa.publicKeyPem });
  }

  it("evaluates mcp/authz/decision by name, not entrypoint id 0", async () => {
    const bundle = await bundleOf(
      "by-name",
      'package mcp.authz\n\nfirst := {"allow": true}\n\ndecision := {"allow": true, "reasons": ["a"]} if input.request.arguments.go\n',
      ["mcp/authz/first", "mcp/authz/decision"],
    );
    const engine = await WasmPolicyEngine.create(bundle);
    const outcome = engine.decide(input());
    assert.equal(outcome.decision.allow, false);
    assert.equal(outcome.error?.code, "policy_undefined");
    assert.equal(outcome.raw, undefined);
    assert.equal(engine.decide(input({ go: true })).decision.allow, true);
  });

  it("denies a malformed decision and keeps the raw result for audit", async () => {
    const engine = await WasmPolicyEngine.create(await bundleOf("malformed", 'package mcp.authz\n\ndecision := {"allow": "true"}\n'));
    const outcome = engine.decide(input());
    assert.equal(outcome.decision.allow, false);
    assert.equal(outcome.error?.code, "policy_malformed");
    assert.deepEqual(outcome.raw, { allow: "true" });
  });

  it("denies when evaluation throws a string (a rule conflict)", async () => {
    const rego = 'package mcp.authz\n\ndecision := {"allow": true} if input.request.arguments.a\n\ndecision := {"allow": false} if input.request.arguments.b\n';
    const engine = await WasmPolicyEngine.create(await bundleOf("conflict", rego));
    const outcome = engine.decide(input({ a: true, b: true }));
    assert.equal(outcome.decision.allow, false);
    assert.equal(outcome.error?.code, "policy_eval_error");
    assert.match(outcome.error?.message ?? "", /conflict/);
    assert.equal(engine.decide(input({ a: true })).decision.allow, true, "the instance keeps working");
  });

  it("denies when evaluation throws a plain object (a builtin neither the SDK nor the gateway has)", async () => {
    const engine = await WasmPolicyEngine.create(await bundleOf("builtin", 'package mcp.authz\n\ndecision := {"allow": semver.is_valid("1.0.0")}\n'));
    const outcome = engine.decide(input());
    assert.equal(outcome.decision.allow, false);
    assert.equal(outcome.error?.code, "policy_eval_error");
    assert.match(outcome.error?.message ?? "", /not implemented: built-in function .*semver\.is_valid/);
  });

  it("evaluates host builtins, time.now_ns() being the request's time", async () => {
    const rego =
      'package mcp.authz\n\ndecision := {"allow": true, "reasons": [json.marshal(time.now_ns()), time.weekday(time.now_ns())]}\n';
    const engine = await WasmPolicyEngine.create(await bundleOf("host-builtins", rego));
    const outcome = engine.decide(input());
    assert.equal(outcome.error, undefined);
    assert.deepEqual(outcome.decision.reasons, ["1795514400000000000", "Tuesday"]);
  });

  describe("memory limits", () => {
    let engine: WasmPolicyEngine;
    before(async () => {
      const bundle = await bundleOf("memory", 'package mcp.authz\n\ndecision := {"allow": true, "reasons": ["ok"]}\n');
      engine = await WasmPolicyEngine.create(bundle, { memory: { initial: 5, maximum: 8 } });
    });

    it("denies when wasm allocation fails, then rebuilds the instance", () => {
      const before = engine.rebuilds;
      const outcome = engine.decide(input({ big: Array.from({ length: 15_000 }, (_, i) => i) }));
      assert.equal(outcome.decision.allow, false);
      assert.equal(outcome.error?.code, "policy_eval_error");
      assert.match(outcome.error?.message ?? "", /opa_malloc: failed/);
      assert.equal(engine.rebuilds, before + 1);
      assert.equal(engine.decide(input()).decision.allow, true);
    });

    it("denies an input larger than the memory cap", () => {
      const outcome = engine.decide(input({ big: "x".repeat(600_000) }));
      assert.equal(outcome.error?.code, "policy_eval_error");
      assert.match(outcome.error?.message ?? "", /Maximum memory size exceeded/);
      assert.equal(engine.decide(input()).decision.allow, true);
    });
  });

  it("refuses at create time data that does not fit the memory cap", async () => {
    const data = { portcullis: { blob: "y".repeat(1_000_000) } };
    const bundle = await bundleOf("bigdata", 'package mcp.authz\n\ndecision := {"allow": false}\n', undefined, data);
    await assert.rejects(WasmPolicyEngine.create(bundle, { memory: { initial: 5, maximum: 8 } }), (err: unknown) => {
      assert.ok(err instanceof BundleError);
      assert.equal(err.code, "bundle_malformed");
      assert.match(err.message, /bigdata\.tar\.gz: \/policy\.wasm: the wasm module cannot be loaded/);
      return true;
    });
  });

  it("never hands the SDK input it would mangle (falsy values, Buffers, arrays)", async () => {
    const engine = await WasmPolicyEngine.create(await bundleOf("shape", 'package mcp.authz\n\ndecision := {"allow": true}\n'));
    for (const bad of [null, undefined, 0, "", Buffer.from("{}"), [input()]]) {
      const outcome = engine.decide(bad as unknown as PolicyInput);
      assert.equal(outcome.decision.allow, false, `input ${String(bad)}`);
      assert.equal(outcome.error?.code, "policy_eval_error");
    }
    assert.equal(engine.decide(input()).decision.allow, true);
  });

  it("measures latency with the injected clock", async () => {
    let now = 1_000_000n;
    const clock = { monotonicNs: () => (now += 2_500n) };
    const engine = await WasmPolicyEngine.create(await bundleOf("clock", 'package mcp.authz\n\ndecision := {"allow": true}\n'), { clock });
    const outcome = engine.decide(input());
    assert.equal(outcome.elapsedMs, 0.0025);
    assert.equal(outcome.revision, "clock");
  });
});
