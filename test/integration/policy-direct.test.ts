import assert from "node:assert/strict";
import { mkdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import {
  buildPolicyInput,
  itemInput,
  listItem,
  loadBundle,
  WasmPolicyEngine,
  type DecisionOutcome,
  type LoadedBundle,
  type McpToolDefinition,
  type PolicyIdentity,
  type PolicyInput,
  type PolicyListItem,
  type ResultDecisionOutcome,
} from "../../gateway/policy/index.js";
import { buildSignedBundle, defaultPolicyDir, generateKeyPair, makeTempDir, type KeyPairPem } from "../support/bundles.js";
import { policyRequest } from "../support/policy-input.js";

/**
 * The direct path (wasm-direct.ts: input written straight into wasm memory, agent and tool views
 * pinned) against the reference path (the SDK's own evaluate) on the starter library: every
 * decision, raw result and error must be the same, for ordinary and odd inputs alike, for single
 * decisions, listings and result decisions. Each engine has its own instance, so neither path
 * can disturb the other's memory.
 */

const identity = (sub: string, roles: string[], scopes = ["mcp:tools", "mcp:resources", "mcp:prompts"], claims: Record<string, unknown> = {}): PolicyIdentity => ({
  sub,
  iss: "https://idp.example.com/",
  client_id: "cli",
  scopes,
  roles,
  claims: { sub, roles, ...claims },
});

const AGENTS: PolicyIdentity[] = [
  identity("alice", ["analyst"], undefined, { email: "alice@example.com", aud: ["https://gw/mcp"], iat: 1_795_000_000 }),
  identity("olga", ["ops"]),
  identity("root", ["admin"]),
  identity("gus", ["guest", "analyst"], ["mcp:tools"]),
  identity("", []),
  identity("ünï😀\u2028", ["analyst"], undefined, { note: "\u0000\u202e\u2029", nested: { deep: [1, -0, 1e308, 5e-324, 123456789012345680000] } }),
];

/** OPA's parser refuses a lone surrogate's \\u escape (opa_abort): a deny with policy_eval_error on both paths. */
const LONE_SURROGATE_AGENT = identity("lone", ["analyst"], undefined, { note: "\ud800" });

const TOOLS: McpToolDefinition[] = [
  { name: "read_file", title: "Read file", description: "Reads a file under /data", inputSchema: { type: "object", properties: { path: { type: "string" } }, required: ["path"] }, annotations: { readOnlyHint: true } },
  { name: "echo", inputSchema: { type: "object" } },
  { name: "delete_record", description: "Deletes", inputSchema: { type: "object" }, annotations: { destructiveHint: true } },
  { name: "query", inputSchema: { type: "object", properties: { sql: { type: "string" } } }, annotations: { readOnlyHint: true } },
  { name: "ëcho😀\u2028", description: "x".repeat(100_000), inputSchema: { type: "object", properties: { "a\"b\\c": { type: "string" }, "": { type: "null" } } } },
];


/** Nested arrays and objects `depth` levels deep (the edge admits up to edge.maxJsonDepth, at most 512). */
function nested(depth: number): unknown {
  let v: unknown = "bottom";
  for (let i = 0; i < depth; i++) v = i % 2 === 0 ? { [`k${i}`]: v } : [v];
  return v;
}

const ODD_ARGUMENTS: Array<Record<string, unknown>> = [
  { path: "/data/q3.csv" },
  { path: "/etc/passwd" },
  { path: "/data/../etc/passwd" },
  { text: "hello", api_key: "k", auth: { password: "p" }, token: "Bearer abc", aws: "AKIAABCDEFGHIJKLMNOP" },
  { sql: "select count(*) from t" },
  { sql: "SELECT pg_sleep(100)" },
  { text: "😀 ünïcödé \u2028\u2029 \u0000 \u202e RTL \ud800 \udfff", "a\"b\\c": "\\\"", "": "" },
  { deep: nested(63) },
  { deep: nested(512) },
  { big: "y".repeat(1_000_000) },
  { numbers: [0, -0, 0.1, 1e308, 5e-324, 9_007_199_254_740_993, 123456789012345680000, -1.5e-7] },
  Object.fromEntries(Array.from({ length: 5_000 }, (_, i) => [`key${i}`, i])),
];

/** Varied inputs: methods × agents × tools × arguments, times and source addresses, plus views that are not frozen. */
function varied(): PolicyInput[] {
  const inputs: PolicyInput[] = [];
  const agent = AGENTS[0]!;
  for (const a of AGENTS) {
    for (const t of TOOLS) {
      inputs.push(buildPolicyInput(a, policyRequest("tools/call", { tool: t.name, arguments: { path: "/data/q3.csv" } }), t));
      inputs.push(buildPolicyInput(a, policyRequest("tools/list", { tool: t.name }), t));
    }
    for (const method of ["initialize", "ping", "notifications/initialized", "admin/exec", "Tools/Call", "tasks/list"]) inputs.push(buildPolicyInput(a, policyRequest(method), null));
    inputs.push(buildPolicyInput(a, policyRequest("resources/read", { resource: "demo://readme" }), null));
    inputs.push(buildPolicyInput(a, policyRequest("resources/list", { resource: "demo://files/{path}" }), null));
    inputs.push(buildPolicyInput(a, policyRequest("prompts/get", { prompt: "summarize", arguments: { topic: "q3" } }), null));
    inputs.push(buildPolicyInput(a, policyRequest("completion/complete", { prompt: "summarize", resource: "demo://readme" }), null));
  }
  for (const args of ODD_ARGUMENTS) {
    inputs.push(buildPolicyInput(agent, policyRequest("tools/call", { tool: "read_file", arguments: args }), TOOLS[0]!));
    inputs.push(buildPolicyInput(agent, policyRequest("tools/call", { tool: "echo", arguments: args }), null));
    inputs.push(buildPolicyInput(AGENTS[2]!, policyRequest("tools/call", { tool: "query", arguments: args }), TOOLS[3]!));
  }
  const ops = AGENTS[1]!;
  for (const time of ["2026-11-24T10:00:00.000Z", "2026-11-28T10:00:00.000Z", "2026-11-24T23:59:59.999Z", "not a time"]) {
    for (const source_ip of ["127.0.0.1", "10.1.2.3", "::ffff:10.0.0.1", "192.0.2.1", null]) {
      inputs.push(buildPolicyInput(ops, policyRequest("tools/call", { tool: "read_file", arguments: { path: "/data/x" }, time, source_ip }), TOOLS[0]!));
    }
  }
  inputs.push(buildPolicyInput(LONE_SURROGATE_AGENT, policyRequest("tools/call", { tool: "echo", arguments: { text: "hi" } }), TOOLS[1]!));
  inputs.push(buildPolicyInput(agent, policyRequest("tools/call", { tool: "x\udfffy" }), { name: "x\udfffy", inputSchema: { type: "object" } }));
  // Not built by buildPolicyInput, so not frozen: serialised per call instead of pinned.
  inputs.push({ agent: { ...buildPolicyInput(agent, policyRequest("ping"), null).agent }, request: policyRequest("tools/call", { tool: "echo", arguments: { text: "hi" } }), tool: { name: "echo", description: null, input_schema: {}, annotations: {}, digest: "sha256:00" } });
  return inputs;
}

/** What must be equal between the paths: everything but the measured time. */
const decided = (o: DecisionOutcome): unknown => ({ decision: o.decision, raw: o.raw, error: o.error, revision: o.revision });
const resultDecided = (o: ResultDecisionOutcome): unknown => ({ decision: o.decision, error: o.error, revision: o.revision });

/** The engine's instance, for the one test that changes pinned memory behind the engine's back. */
interface EngineInternals {
  policy: { mem: { buffer: ArrayBuffer }; dataHeapPtr: number };
  direct: { pinnedBytes: number; resets: number } | undefined;
}
const internals = (engine: WasmPolicyEngine): EngineInternals => engine as unknown as EngineInternals;

describe("the direct evaluation path decides exactly as the SDK's evaluate", function () {
  this.timeout(120_000);
  let dir: string;
  let keys: KeyPairPem;
  let starter: LoadedBundle;
  let direct: WasmPolicyEngine;
  let reference: WasmPolicyEngine;

  before(async () => {
    dir = await makeTempDir("pc-direct-");
    keys = generateKeyPair("ec-p256");
    const file = await buildSignedBundle({ policyDir: defaultPolicyDir(), outFile: join(dir, "starter.tar.gz"), privateKeyPem: keys.privateKeyPem, algorithm: "ES256", revision: "direct" });
    starter = await loadBundle(file, { verificationKeyPem: keys.publicKeyPem });
    direct = await WasmPolicyEngine.create(starter);
    reference = await WasmPolicyEngine.create(starter, { evaluation: "sdk" });
    assert.equal(direct.evaluation, "direct");
    assert.equal(reference.evaluation, "sdk");
  });
  after(() => rm(dir, { recursive: true, force: true }));

  async function bundleOf(name: string, rego: string, entrypoints?: string[]): Promise<LoadedBundle> {
    const policyDir = join(dir, name);
    await mkdir(policyDir, { recursive: true });
    await writeFile(join(policyDir, "policy.rego"), rego);
    const outFile = join(dir, `${name}.tar.gz`);
    await buildSignedBundle({ policyDir, outFile, privateKeyPem: keys.privateKeyPem, algorithm: "ES256", revision: name, entrypoints });
    return loadBundle(outFile, { verificationKeyPem: keys.publicKeyPem });
  }

  it("gives the same decision, raw result and error for every varied input, twice over (pins reused)", () => {
    const inputs = varied();
    const seen = { allow: 0, deny: 0, mask: 0, rateLimit: 0, error: 0 };
    for (const round of [0, 1]) {
      for (const [i, input] of (round === 0 ? inputs : [...inputs].reverse()).entries()) {
        const want = reference.decide(input);
        assert.deepEqual(decided(direct.decide(input)), decided(want), `round ${round}, input ${i}: ${JSON.stringify(input.request).slice(0, 200)}`);
        if (round === 0) {
          seen[want.decision.allow ? "allow" : "deny"]++;
          if (want.decision.mask !== undefined) seen.mask++;
          if (want.decision.rate_limit !== undefined) seen.rateLimit++;
          if (want.error !== undefined) seen.error++;
        }
      }
    }
    // The set exercises the policy's branches, not one answer repeated.
    assert.ok(seen.allow > 20 && seen.deny > 20 && seen.mask > 0 && seen.rateLimit > 0 && seen.error > 0, JSON.stringify(seen));
    assert.equal(direct.pinChanges, 0);
    assert.ok((internals(direct).direct?.pinnedBytes ?? 0) > 100_000, `the agent and tool views were pinned (${JSON.stringify({ pinned: internals(direct).direct?.pinnedBytes, resets: internals(direct).direct?.resets, rebuilds: direct.rebuilds })})`);
  });

  it("hands the policy the same input, value for value (a policy that returns its whole input)", async () => {
    // json.marshal(input) inside wasm: any difference in what either path parsed or linked in shows.
    const rego = 'package mcp.authz\n\ndecision := {"allow": true, "reasons": [json.marshal(input)]}\n\nresult := {"allow": true, "reasons": [json.marshal(input)]}\n';
    const bundle = await bundleOf("echo-input", rego, ["mcp/authz/decision", "mcp/authz/result"]);
    const [d, r] = [await WasmPolicyEngine.create(bundle), await WasmPolicyEngine.create(bundle, { evaluation: "sdk" })];
    assert.ok(d.hasResultPolicy);
    let echoed = 0;
    for (const input of varied()) {
      const want = r.decide(input);
      assert.deepEqual(decided(d.decide(input)), decided(want), JSON.stringify(input.request).slice(0, 200));
      if (want.error === undefined) {
        assert.deepEqual(JSON.parse(want.decision.reasons[0]!), JSON.parse(JSON.stringify(input)), "the reference sees the input itself");
        echoed++;
      }
    }
    assert.ok(echoed > 100);
    const b = buildPolicyInput(AGENTS[0]!, policyRequest("tools/list", { arguments: { ignored: false } }), null);
    const items = [listItem({ tool: "read_file" }, TOOLS[0]!), listItem({ resource: "demo://readme" }, null), listItem({ prompt: "summarize" }, null), listItem({ tool: "big" }, TOOLS[4]!)];
    assert.deepEqual(d.decideItems(b, items).map(decided), items.map((item) => decided(r.decide(itemInput(b, item)))));
    const input = buildPolicyInput(AGENTS[1]!, policyRequest("tools/call", { tool: "echo", arguments: { text: "hi" } }), TOOLS[1]!);
    const result = { content: [{ type: "text", text: "😀 \u2028" }], structuredContent: { n: [1.5, -0, 1e308] } };
    const echoedResult = d.decideResult(input, result);
    assert.deepEqual(resultDecided(echoedResult), resultDecided(r.decideResult(input, result)));
    assert.deepEqual(JSON.parse(echoedResult.decision.reasons[0]!), JSON.parse(JSON.stringify({ ...input, result })));
  });

  it("gives the same result decisions (mcp/authz/result) for ordinary and odd results", () => {
    assert.ok(direct.hasResultPolicy);
    const input = buildPolicyInput(AGENTS[0]!, policyRequest("tools/call", { tool: "read_file", arguments: { path: "/data/q3.csv" } }), TOOLS[0]!);
    const results: Array<Record<string, unknown>> = [
      { content: [{ type: "text", text: "plain" }] },
      { content: [{ type: "text", text: "key AKIAABCDEFGHIJKLMNOP and Bearer eyJhbGciOi.x.y" }], structuredContent: { token: "ghp_0123456789abcdefghij0123456789abcdef" } },
      { content: [{ type: "text", text: "😀 \u2028 \ud800 \u0000".repeat(1_000) }], isError: false },
      { content: [{ type: "text", text: "z".repeat(500_000) }] },
      { structuredContent: { deep: nested(200) } },
    ];
    for (const [i, result] of results.entries()) {
      assert.deepEqual(resultDecided(direct.decideResult(input, result)), resultDecided(reference.decideResult(input, result)), `result ${i}`);
    }
  });

  describe("listings", () => {
    const base = (agent: PolicyIdentity, method: string): PolicyInput => buildPolicyInput(agent, policyRequest(method), null);
    const toolItems = (count: number): PolicyListItem[] =>
      Array.from({ length: count }, (_, i) => {
        const def: McpToolDefinition = { ...TOOLS[i % TOOLS.length]!, name: i % 7 === 0 ? "read_file" : `tool_${i}`, description: `tool ${i} ${"d".repeat(i % 50)}` };
        return listItem({ tool: def.name }, def);
      });

    it("decides every item as decide() decides itemInput(base, item), in order", () => {
      for (const agent of AGENTS) {
        for (const [method, items] of [
          ["tools/list", toolItems(300)],
          ["resources/list", ["demo://readme", "demo://secret", "demo://files/{path}", ""].map((uri) => listItem({ resource: uri }, null))],
          ["prompts/list", ["summarize", "other", "ünï"].map((name) => listItem({ prompt: name }, null))],
        ] as const) {
          const b = base(agent, method);
          const got = direct.decideItems(b, items).map(decided);
          const want = items.map((item) => decided(reference.decide(itemInput(b, item))));
          assert.deepEqual(got, want, `${agent.sub} ${method}`);
        }
      }
      const shown = direct.decideItems(base(AGENTS[0]!, "tools/list"), toolItems(300)).filter((o) => o.decision.allow).length;
      assert.ok(shown > 0 && shown < 300, `a listing shows some items and hides others (${shown})`);
    });

    it("stays exact when the listing outgrows the pinned budget (the region is emptied and refilled)", async () => {
      const small = await WasmPolicyEngine.create(starter, { pinnedBudgetBytes: 64 * 1024 });
      const b = base(AGENTS[0]!, "tools/list");
      const items = toolItems(1_000);
      for (const round of [0, 1]) {
        assert.deepEqual(small.decideItems(b, items).map(decided), items.map((item) => decided(reference.decide(itemInput(b, item)))), `round ${round}`);
      }
      assert.ok((internals(small).direct?.resets ?? 0) > 1, "the budget was reached");
      assert.ok((internals(small).direct?.pinnedBytes ?? Infinity) < 64 * 1024 + 200_000, "the region stays near its budget");
    });

    it("fails an item closed on its own: the others are still decided", async () => {
      // Two complete rules with different values: both defined for item "b", a conflict there only.
      const rego = 'package mcp.authz\n\ndecision := {"allow": true}\n\ndecision := {"allow": false} if input.request.tool == "b"\n';
      const engine = await WasmPolicyEngine.create(await bundleOf("item-conflict", rego));
      const items = ["a", "b", "c"].map((name) => listItem({ tool: name }, { name, inputSchema: { type: "object" } }));
      const outcomes = engine.decideItems(base(AGENTS[0]!, "tools/list"), items);
      assert.deepEqual(outcomes.map((o) => o.decision.allow), [true, false, true]);
      assert.deepEqual(outcomes.map((o) => o.error?.code), [undefined, "policy_eval_error", undefined]);
      assert.match(outcomes[1]!.error!.message, /conflict/);
    });
  });

  describe("fail closed", () => {
    it("an evaluation error is the same deny on both paths, and the instance keeps working", async () => {
      const bundle = await bundleOf("conflict", 'package mcp.authz\n\ndecision := {"allow": true} if input.request.arguments.a\n\ndecision := {"allow": false} if input.request.arguments.b\n');
      const [d, r] = [await WasmPolicyEngine.create(bundle), await WasmPolicyEngine.create(bundle, { evaluation: "sdk" })];
      const bad = buildPolicyInput(AGENTS[0]!, policyRequest("tools/call", { tool: "echo", arguments: { a: true, b: true } }), null);
      const outcome = d.decide(bad);
      assert.equal(outcome.decision.allow, false);
      assert.equal(outcome.error?.code, "policy_eval_error");
      assert.deepEqual(decided(outcome), decided(r.decide(bad)));
      assert.equal(d.decide(buildPolicyInput(AGENTS[0]!, policyRequest("tools/call", { tool: "echo", arguments: { a: true } }), null)).decision.allow, true);
    });

    it("an input the shapes check refuses is denied on both paths", () => {
      const input = buildPolicyInput(AGENTS[0]!, policyRequest("ping"), null);
      for (const bad of [{ ...input, tool: undefined }, { ...input, request: null }, { ...input, agent: [input.agent] }] as unknown as PolicyInput[]) {
        const outcome = direct.decide(bad);
        assert.equal(outcome.error?.code, "policy_eval_error");
        assert.deepEqual(decided(outcome), decided(reference.decide(bad)));
      }
    });

    it("a pinned value changed behind the engine's back is caught: the answer is recomputed unpinned on a fresh instance", async () => {
      const engine = await WasmPolicyEngine.create(starter);
      const input = buildPolicyInput(identity("pinned-analyst", ["analyst"]), policyRequest("tools/call", { tool: "echo", arguments: { text: "hi" } }), TOOLS[1]!);
      assert.equal(engine.decide(input).decision.allow, true); // pins the agent (and its role)
      // Overwrite the role name wherever it sits in the pinned region: "analyst" → "analysX".
      const { policy } = internals(engine);
      const memory = Buffer.from(policy.mem.buffer);
      const region = memory.subarray(policy.dataHeapPtr, policy.dataHeapPtr + (internals(engine).direct?.pinnedBytes ?? 0));
      let changed = 0;
      for (let at = region.indexOf("pinned-analyst"); at >= 0; at = region.indexOf("pinned-analyst", at + 1)) {
        region.write("X", at + "pinned-analyst".length - 1);
        changed++;
      }
      for (let at = region.indexOf("analyst"); at >= 0; at = region.indexOf("analyst", at + 1)) {
        region.write("X", at + "analyst".length - 1);
        changed++;
      }
      assert.ok(changed > 0, "the pinned agent was found in wasm memory");
      const rebuilds = engine.rebuilds;
      const outcome = engine.decide(input);
      assert.deepEqual(decided(outcome), decided(reference.decide(input)), "the policy's answer on the real input");
      assert.equal(engine.pinChanges, 1);
      assert.equal(engine.rebuilds, rebuilds + 1);
      assert.equal(engine.decide(input).decision.allow, true, "the fresh instance pins again and decides");
      assert.equal(engine.pinChanges, 1);
    });
  });
});
