/**
 * Policy evaluation latency: WasmPolicyEngine on the default bundle with realistic inputs, the
 * reference path (the SDK's evaluate, `evaluation: "sdk"`) against the direct path (the default:
 * input written straight into wasm memory, agent and tool views pinned), interleaved in rounds
 * so that load on a shared machine hits both alike. Then a tools/list of 1,000 tools: one
 * decide() per item as filterList does today, against decideItems.
 *
 * Uses bundles/build/mcp-authz.tar.gz (dev key in .tools/dev/) when present and valid, otherwise
 * builds the default policy into a temp dir with the real opa.
 *
 *   node dist/bench/evaluate.js [rounds]      (targets: tools/call p50 ≤ 10 µs; the 1,000-item list's policy part)
 */
import { existsSync, readFileSync } from "node:fs";
import { rm } from "node:fs/promises";
import { createRequire } from "node:module";
import { join } from "node:path";
import type * as OpaWasm from "@open-policy-agent/opa-wasm";
import {
  buildPolicyInput,
  createHostBuiltins,
  DecisionTime,
  listItem,
  loadBundle,
  WasmPolicyEngine,
  type LoadedBundle,
  type McpToolDefinition,
  type PolicyInput,
} from "../gateway/policy/index.js";
import { allowedReadFile, identity, readFileTool, request } from "./support/policy-inputs.js";
import { buildSignedBundle, defaultPolicyDir, generateKeyPair, makeTempDir, repoRoot } from "../test/support/bundles.js";

const ROUNDS = Number(process.argv[2] ?? 25);
const CALLS_PER_ROUND = 2_000;
const LIST_SIZE = 1_000;
const LISTS_PER_ROUND = 2;
const TARGET_CALL_P50_US = 10;

async function defaultBundle(): Promise<{ bundle: LoadedBundle; cleanup: () => Promise<void> }> {
  const root = repoRoot();
  const built = join(root, "bundles", "build", "mcp-authz.tar.gz");
  const pub = join(root, ".tools", "dev", "bundle-signing.pub.pem");
  if (existsSync(built) && existsSync(pub)) {
    try {
      return { bundle: await loadBundle(built, { verificationKeyPem: readFileSync(pub, "utf8") }), cleanup: async () => {} };
    } catch (err) {
      console.error(`(${(err as Error).message}; building a fresh bundle instead)`);
    }
  }
  const dir = await makeTempDir("portcullis-bench-");
  const keys = generateKeyPair("rsa");
  const outFile = join(dir, "mcp-authz.tar.gz");
  await buildSignedBundle({ policyDir: defaultPolicyDir(), outFile, privateKeyPem: keys.privateKeyPem, algorithm: "RS256", revision: "bench" });
  return {
    bundle: await loadBundle(outFile, { verificationKeyPem: keys.publicKeyPem }),
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
}

/** Per-iteration samples (µs) per variant, the variants taking turns round by round. */
function interleaved(variants: Record<string, () => unknown>, rounds: number, perRound: number): Map<string, Float64Array> {
  const samples = new Map(Object.keys(variants).map((name) => [name, new Float64Array(rounds * perRound)]));
  for (const fn of Object.values(variants)) for (let i = 0; i < Math.min(perRound, 2_000); i++) fn(); // warm-up
  for (let r = 0; r < rounds; r++) {
    for (const [name, fn] of Object.entries(variants)) {
      const out = samples.get(name)!;
      for (let i = 0; i < perRound; i++) {
        const t0 = process.hrtime.bigint();
        fn();
        out[r * perRound + i] = Number(process.hrtime.bigint() - t0) / 1000;
      }
    }
  }
  for (const s of samples.values()) s.sort();
  return samples;
}

const at = (sorted: Float64Array, q: number): number => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;

function print(label: string, sorted: Float64Array, unit: "µs" | "ms", baseline?: Float64Array): void {
  const scale = unit === "ms" ? 1 / 1000 : 1;
  const fmt = (v: number): string => (v * scale).toFixed(unit === "ms" ? 2 : 1).padStart(8);
  const ratio = baseline === undefined ? "" : `  ${(at(sorted, 0.5) / at(baseline, 0.5)).toFixed(2)}× the reference p50`;
  console.log(`  ${label.padEnd(50)} p50 ${fmt(at(sorted, 0.5))} ${unit}  p99 ${fmt(at(sorted, 0.99))} ${unit}${ratio}`);
}

/**
 * The floor: the decision's wasm evaluation alone, its input parsed once beforehand and reused
 * (no serialising, no parsing, no result decoding). Only the policy's own work is left in it.
 * Reads the SDK instance's internals (opa-wasm 1.10.0): a measurement, not a decision path.
 */
function wasmEvaluationAlone(bundle: LoadedBundle, input: PolicyInput): () => unknown {
  const { loadPolicySync } = createRequire(import.meta.url)("@open-policy-agent/opa-wasm") as Pick<typeof OpaWasm, "loadPolicySync">;
  const policy = loadPolicySync(bundle.wasm, { initial: 5, maximum: 2048 }, createHostBuiltins(new DecisionTime(Date.now)));
  policy.setData(bundle.data as object);
  const p = policy as unknown as { wasmInstance: { exports: Record<string, (...args: number[]) => number> }; mem: { buffer: ArrayBuffer }; dataAddr: number; dataHeapPtr: number; entrypoints: Record<string, number> };
  const x = p.wasmInstance.exports;
  const json = Buffer.from(JSON.stringify(input));
  x.opa_heap_ptr_set!(p.dataHeapPtr);
  const raw = x.opa_malloc!(json.length);
  new Uint8Array(p.mem.buffer).set(json, raw);
  const parsed = x.opa_value_parse!(raw, json.length);
  const heap = x.opa_heap_ptr_get!();
  const entrypoint = p.entrypoints["mcp/authz/decision"]!;
  return () => {
    x.opa_heap_ptr_set!(heap);
    const ctx = x.opa_eval_ctx_new!();
    x.opa_eval_ctx_set_input!(ctx, parsed);
    x.opa_eval_ctx_set_data!(ctx, p.dataAddr);
    x.opa_eval_ctx_set_entrypoint!(ctx, entrypoint);
    x.eval!(ctx);
    return x.opa_json_dump!(x.opa_eval_ctx_get_result!(ctx));
  };
}

async function main(): Promise<void> {
  const { bundle, cleanup } = await defaultBundle();
  try {
    const direct = await WasmPolicyEngine.create(bundle);
    const reference = await WasmPolicyEngine.create(bundle, { evaluation: "sdk" });
    if (direct.evaluation !== "direct") throw new Error(`the bundle's module cannot take the direct path (${direct.evaluation})`);
    console.log(`policy evaluation: ${bundle.path} (revision "${bundle.revision}"), ${ROUNDS} interleaved rounds`);

    const call = allowedReadFile();
    const denied = buildPolicyInput(identity, request("tools/call", { tool: "read_file", arguments: { path: "/etc/passwd" } }), readFileTool);
    const listed = buildPolicyInput(identity, request("tools/list", { tool: "read_file" }), readFileTool);
    const masked = buildPolicyInput(identity, request("tools/call", { tool: "echo", arguments: { text: "hello", api_key: "k", auth: { password: "p" } } }), null);
    for (const [name, input, allow] of [["call", call, true], ["denied", denied, false], ["listed", listed, true], ["masked", masked, true]] as const) {
      const a = direct.decide(input);
      const b = reference.decide(input);
      if (a.decision.allow !== allow || JSON.stringify(a.raw) !== JSON.stringify(b.raw)) throw new Error(`sanity check failed for ${name}: ${JSON.stringify(a.raw)} vs ${JSON.stringify(b.raw)}`);
    }

    console.log(`\nsingle decisions (${ROUNDS} × ${CALLS_PER_ROUND} each; before = the SDK's evaluate, after = the direct path):`);
    for (const [label, input] of [
      ["tools/call read_file (allowed)", call],
      ["tools/call read_file /etc/passwd (denied)", denied],
      ["tools/list item", listed],
      ["tools/call with masked arguments", masked],
    ] as const) {
      const s = interleaved({ before: () => reference.decide(input), after: () => direct.decide(input) }, ROUNDS, CALLS_PER_ROUND);
      console.log(` ${label}`);
      print("before", s.get("before")!, "µs");
      print("after", s.get("after")!, "µs", s.get("before"));
    }
    // The result policy (mcp/authz/result) runs on every tool result: server-everything's echo.
    const echoResult = { content: [{ type: "text", text: "Echo: bench" }] };
    if (direct.hasResultPolicy) {
      const r = interleaved({ before: () => reference.decideResult(call, echoResult), after: () => direct.decideResult(call, echoResult) }, ROUNDS, CALLS_PER_ROUND);
      console.log(" decideResult: an echo tool result (the result policy)");
      print("before", r.get("before")!, "µs");
      print("after", r.get("after")!, "µs", r.get("before"));
      console.log(`evaluate result p50 ${at(r.get("after")!, 0.5).toFixed(1)} µs`);
    }
    const fresh = (): PolicyInput => buildPolicyInput(identity, request("tools/call", { tool: "read_file", arguments: { path: "/data/x.csv" }, time: new Date().toISOString() }), readFileTool);
    const floor = wasmEvaluationAlone(bundle, call);
    const s = interleaved({ before: () => reference.decide(fresh()), after: () => direct.decide(fresh()), floor }, ROUNDS, CALLS_PER_ROUND);
    console.log(" buildPolicyInput + decide: tools/call (a new request each time, as the gateway does)");
    print("before", s.get("before")!, "µs");
    print("after", s.get("after")!, "µs", s.get("before"));
    print("floor: the policy's wasm evaluation alone, input pre-parsed", s.get("floor")!, "µs", s.get("before"));
    const p50 = at(s.get("after")!, 0.5);
    // The line bench/run.ts reads for target 3.
    console.log(`evaluate tools/call p50 ${p50.toFixed(1)} µs (floor ${at(s.get("floor")!, 0.5).toFixed(1)} µs)`);
    console.log(`  target p50 ≤ ${TARGET_CALL_P50_US} µs: ${p50 <= TARGET_CALL_P50_US ? "met" : `not met (${p50.toFixed(1)} µs; the floor alone is ${at(s.get("floor")!, 0.5).toFixed(1)} µs)`}`);

    // A listing: the tools are the same definition objects every time (a session's catalogue), as
    // filterList sees them once the upstream's list is parsed; digests are computed once.
    const tools = Array.from({ length: LIST_SIZE }, (_, i): McpToolDefinition => ({ ...readFileTool, name: i % 10 === 0 ? "read_file" : `tool_${i}`, description: `Tool number ${i}.` }));
    const listRequest = request("tools/list", {});
    const base = buildPolicyInput(identity, listRequest, null);
    const items = tools.map((t) => listItem({ tool: t.name }, t));
    const perItem = (engine: WasmPolicyEngine) => (): number => {
      let shown = 0;
      for (const t of tools) if (engine.decide(buildPolicyInput(identity, { ...listRequest, tool: t.name }, t)).decision.allow) shown++;
      return shown;
    };
    const batch = (): number => direct.decideItems(base, items).filter((o) => o.decision.allow).length;
    if (perItem(reference)() !== batch()) throw new Error("the batch and the per-item decisions differ");
    const l = interleaved({ before: perItem(reference), perItemDirect: perItem(direct), batch }, ROUNDS, LISTS_PER_ROUND);
    console.log(`\ntools/list of ${LIST_SIZE} tools, the policy part (${ROUNDS} × ${LISTS_PER_ROUND} lists each; ${batch()} shown):`);
    print("before: buildPolicyInput + decide per item, SDK path", l.get("before")!, "ms");
    print("buildPolicyInput + decide per item, direct path", l.get("perItemDirect")!, "ms", l.get("before"));
    print("after: decideItems (one pass, direct path)", l.get("batch")!, "ms", l.get("before"));
    console.log(`  per item after: ${(at(l.get("batch")!, 0.5) / LIST_SIZE).toFixed(1)} µs (each item is still one evaluation of the policy; nothing is memoised)`);
  } finally {
    await cleanup();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
