/**
 * Policy evaluation latency: WasmPolicyEngine.decide() on the default bundle with realistic
 * inputs. Uses bundles/build/mcp-authz.tar.gz (dev key in .tools/dev/) when present and valid,
 * otherwise builds the default policy into a temp dir with the real opa.
 *
 *   node dist/bench/evaluate.js [iterations]      (issue 13's target: p50 ≤ 10 µs for tools/call)
 */
import { existsSync, readFileSync } from "node:fs";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { buildPolicyInput, loadBundle, WasmPolicyEngine, type LoadedBundle, type PolicyInput } from "../gateway/policy/index.js";
import { allowedReadFile, identity, readFileTool, request } from "./support/policy-inputs.js";
import { buildSignedBundle, defaultPolicyDir, generateKeyPair, makeTempDir, repoRoot } from "../test/support/bundles.js";

const ITERATIONS = Number(process.argv[2] ?? 50_000);
const WARMUP = 5_000;

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

function measure(label: string, fn: () => unknown): void {
  for (let i = 0; i < WARMUP; i++) fn();
  const samples = new Float64Array(ITERATIONS);
  const start = process.hrtime.bigint();
  for (let i = 0; i < ITERATIONS; i++) {
    const t0 = process.hrtime.bigint();
    fn();
    samples[i] = Number(process.hrtime.bigint() - t0) / 1000;
  }
  const totalUs = Number(process.hrtime.bigint() - start) / 1000;
  samples.sort();
  const at = (q: number): number => samples[Math.min(samples.length - 1, Math.floor(q * samples.length))] ?? NaN;
  const fmt = (v: number): string => v.toFixed(1).padStart(7);
  console.log(
    `${label.padEnd(44)} p50 ${fmt(at(0.5))} µs  p99 ${fmt(at(0.99))} µs  mean ${fmt(totalUs / ITERATIONS)} µs  max ${fmt(at(1))} µs`,
  );
}

async function main(): Promise<void> {
  const { bundle, cleanup } = await defaultBundle();
  try {
    const engine = await WasmPolicyEngine.create(bundle);
    console.log(`policy evaluation: ${bundle.path} (revision "${bundle.revision}"), ${ITERATIONS} iterations after ${WARMUP} warm-up`);

    const call: PolicyInput = allowedReadFile();
    const denied = buildPolicyInput(identity, request("tools/call", { tool: "read_file", arguments: { path: "/etc/passwd" } }), readFileTool);
    const listed = buildPolicyInput(identity, request("tools/list", { tool: "read_file" }), readFileTool);
    const masked = buildPolicyInput(
      identity,
      request("tools/call", { tool: "echo", arguments: { text: "hello", api_key: "k", auth: { password: "p" } } }),
      null,
    );
    for (const [name, input, allow] of [["call", call, true], ["denied", denied, false], ["listed", listed, true], ["masked", masked, true]] as const) {
      const got = engine.decide(input).decision.allow;
      if (got !== allow) throw new Error(`sanity check failed for ${name}: allow=${got}`);
    }

    measure("decide: tools/call read_file (allowed)", () => engine.decide(call));
    measure("decide: tools/call read_file /etc/passwd", () => engine.decide(denied));
    measure("decide: tools/list item", () => engine.decide(listed));
    measure("decide: tools/call with masked arguments", () => engine.decide(masked));
    measure("buildPolicyInput + decide: tools/call", () =>
      engine.decide(buildPolicyInput(identity, request("tools/call", { tool: "read_file", arguments: { path: "/data/x.csv" } }), readFileTool)),
    );
  } finally {
    await cleanup();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
