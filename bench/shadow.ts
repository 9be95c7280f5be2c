/**
 * The cost of shadow mode (policy.shadow) on decision latency: the same tools/call input decided
 * by the live engine alone and by a ShadowingEngine (live + candidate), in interleaved rounds so
 * both see the same machine state. Both engines hold the default policy, built by the real opa.
 *
 *   node dist/bench/shadow.js [iterations per round]
 */
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { buildPolicyInput, loadBundle, ShadowingEngine, WasmPolicyEngine, type PolicyEngine } from "../gateway/policy/index.js";
import { buildSignedBundle, defaultPolicyDir, generateKeyPair, makeTempDir } from "../test/support/bundles.js";

const PER_ROUND = Number(process.argv[2] ?? 20_000);
const ROUNDS = 5;

const identity = {
  sub: "alice@example.com",
  iss: "https://idp.example.com/",
  client_id: "claude-desktop",
  scopes: ["mcp:tools"],
  roles: ["analyst"],
  claims: { sub: "alice@example.com", roles: ["analyst"], scope: "mcp:tools" },
};
const tool = {
  name: "read_file",
  description: "Reads a UTF-8 text file under /data.",
  inputSchema: { type: "object", properties: { path: { type: "string" } }, required: ["path"] },
  annotations: { readOnlyHint: true },
};
const input = buildPolicyInput(
  identity,
  { method: "tools/call", server: "demo", tool: "read_file", arguments: { path: "/data/q3.csv" }, resource: null, prompt: null, session_id: "s-1", protocol_version: "2025-11-25", source_ip: "127.0.0.1", time: "2026-11-24T10:00:00.000Z" },
  tool,
);

function samples(engine: PolicyEngine, n: number, into: number[]): void {
  for (let i = 0; i < n; i++) {
    const t0 = process.hrtime.bigint();
    engine.decide(input);
    into.push(Number(process.hrtime.bigint() - t0) / 1000);
  }
}

const pct = (xs: number[], q: number): number => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))] ?? NaN;

async function main(): Promise<void> {
  const dir = await makeTempDir("portcullis-bench-shadow-");
  try {
    const keys = generateKeyPair("rsa");
    const file = join(dir, "b.tar.gz");
    await buildSignedBundle({ policyDir: defaultPolicyDir(), outFile: file, privateKeyPem: keys.privateKeyPem, algorithm: "RS256", revision: "bench" });
    const bundle = await loadBundle(file, { verificationKeyPem: keys.publicKeyPem });
    const live = await WasmPolicyEngine.create(bundle);
    const candidate = await WasmPolicyEngine.create(bundle);
    const shadowing = new ShadowingEngine(() => live, () => candidate);
    if (shadowing.decide(input).shadow?.differs !== false) throw new Error("sanity: the shadow should agree with the live engine");

    const alone: number[] = [];
    const shadowed: number[] = [];
    samples(live, 5_000, []);
    samples(shadowing, 5_000, []);
    for (let r = 0; r < ROUNDS; r++) {
      samples(live, PER_ROUND, alone);
      samples(shadowing, PER_ROUND, shadowed);
    }
    const row = (label: string, xs: number[]): string => `${label.padEnd(34)} p50 ${pct(xs, 0.5).toFixed(1).padStart(6)} µs  p99 ${pct(xs, 0.99).toFixed(1).padStart(6)} µs`;
    console.log(`shadow mode cost: default policy, tools/call, ${ROUNDS} interleaved rounds of ${PER_ROUND}`);
    console.log(row("decide, live only", alone));
    console.log(row("decide, live + shadow candidate", shadowed));
    console.log(`added p50 ${(pct(shadowed, 0.5) - pct(alone, 0.5)).toFixed(1)} µs (×${(pct(shadowed, 0.5) / pct(alone, 0.5)).toFixed(2)})`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
