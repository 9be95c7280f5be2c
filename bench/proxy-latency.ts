/**
 * tools/call latency and throughput straight to an upstream vs through the gateway, in one run,
 * interleaved, with every stage on (JWT verification, wasm policy, audit to a JSONL file).
 * Upstream: @modelcontextprotocol/server-everything over Streamable HTTP, as in
 * ../shared/reference/performance-calibration.md. Client: the official SDK client.
 *
 *   npm run bench            (needs bundles/build/mcp-authz.tar.gz: `make bundle`)
 *   BENCH_RAW=1 npm run bench   the same with a bare pass-through hop (bench/raw-hop.ts) instead
 *   BENCH_GATEWAY_NODE_ARGS=--cpu-prof npm run bench   profile the gateway process
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, writeFileSync, existsSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { mintToken, startDevIssuer, ensureDevKeys } from "../gateway/auth/index.js";

const root = fileURLToPath(new URL("../../", import.meta.url));
const WARMUP = Number(process.env.BENCH_WARMUP ?? 300);
const CALLS = Number(process.env.BENCH_CALLS ?? 1000);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 8);
const THROUGHPUT_MS = Number(process.env.BENCH_THROUGHPUT_MS ?? 4000);

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const a = s.address();
      s.close(() => resolve(typeof a === "object" && a ? a.port : 0));
    });
  });
}

function startChild(cmd: string, args: string[], env: NodeJS.ProcessEnv, ready: string): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
    let seen = "";
    const onData = (c: Buffer) => {
      seen += c.toString();
      if (seen.includes(ready)) resolve(child);
    };
    child.stdout?.on("data", onData);
    child.stderr?.on("data", onData);
    child.once("exit", (code) => reject(new Error(`${cmd} ${args.join(" ")} exited ${code}: ${seen}`)));
    setTimeout(() => reject(new Error(`timeout waiting for "${ready}": ${seen}`)), 30_000).unref();
  });
}

async function connect(url: string, token?: string): Promise<Client> {
  const transport = new StreamableHTTPClientTransport(new URL(url), token ? { requestInit: { headers: { Authorization: `Bearer ${token}` } } } : {});
  const client = new Client({ name: "bench", version: "1.0.0" });
  await client.connect(transport);
  return client;
}

let errors = 0;
const call = async (c: Client) => {
  const r = await c.callTool({ name: "echo", arguments: { message: "bench" } });
  if (r.isError) errors++;
  return r;
};
const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;

async function throughput(clients: Client[], ms: number): Promise<number> {
  let n = 0;
  const end = performance.now() + ms;
  await Promise.all(clients.map(async (c) => {
    while (performance.now() < end) {
      await call(c);
      n++;
    }
  }));
  return (n * 1000) / ms;
}

async function main(): Promise<void> {
  const key = join(root, ".tools/dev/bundle-signing.key.pem");
  const pub = join(root, ".tools/dev/bundle-signing.pub.pem");
  if (!existsSync(key) || !existsSync(pub)) throw new Error("run `make bundle` first");
  const work = mkdtempSync(join(tmpdir(), "pc-bench-"));
  // The default policy (every stage as shipped) with its rate-limit classes raised: the bench makes
  // thousands of calls as one agent and must measure served calls, not rate-limited refusals.
  const policyDir = join(work, "policies");
  cpSync(join(root, "policies"), policyDir, { recursive: true });
  const data = JSON.parse(readFileSync(join(policyDir, "data.json"), "utf8")) as { portcullis: { rate_limits: { classes: Record<string, { limit: number }> } } };
  for (const c of Object.values(data.portcullis.rate_limits.classes)) c.limit = 1_000_000_000;
  writeFileSync(join(policyDir, "data.json"), JSON.stringify(data));
  const bundle = join(work, "bench-bundle.tar.gz");
  execFileSync(join(root, ".tools/bin/opa"), ["build", "-b", policyDir, "-t", "wasm", "-e", "mcp/authz/decision", "--ignore", "*_test.rego", "--capabilities", join(root, "bundles/capabilities.json"), "--signing-key", key, "--signing-alg", "RS256", "-r", "bench", "-o", bundle]);
  const keyDir = join(work, "issuer");
  const keys = await ensureDevKeys(keyDir);
  const issuer = await startDevIssuer({ host: "127.0.0.1", port: 0, keyDir });

  const upstreamPort = await freePort();
  const upstream = await startChild(process.execPath, [join(root, "node_modules/@modelcontextprotocol/server-everything/dist/index.js"), "streamableHttp"], { PORT: String(upstreamPort) }, "listening");
  const gatewayPort = await freePort();
  const audience = `http://127.0.0.1:${gatewayPort}/mcp`;
  const config = join(work, "gateway.yaml");
  writeFileSync(config, JSON.stringify({
    listen: { host: "127.0.0.1", port: gatewayPort },
    auth: { issuer: issuer.issuer, audience, jwksUri: issuer.jwksUri, algorithms: ["RS256"] },
    policy: { bundle, verificationKey: pub },
    upstreams: { everything: { url: `http://127.0.0.1:${upstreamPort}/mcp` } },
    audit: process.env.BENCH_NO_AUDIT ? {} : { file: join(work, "audit.jsonl") },
  }));
  const nodeArgs = (process.env.BENCH_GATEWAY_NODE_ARGS ?? "").split(" ").filter(Boolean); // e.g. --cpu-prof
  const gateway = process.env.BENCH_RAW ? await startChild(process.execPath, [join(root, "dist/bench/raw-hop.js"), String(gatewayPort), `http://127.0.0.1:${upstreamPort}/mcp`], {}, "serving") : await startChild(process.execPath, [...nodeArgs, join(root, "dist/gateway/cli/main.js"), "serve", "--config", config], { PORTCULLIS_LOG_LEVEL: "warn" }, "serving");
  const token = mintToken({ privateKeyPem: keys.privateKeyPem, kid: keys.kid, issuer: issuer.issuer, audience, sub: "bench", roles: ["analyst"], scopes: ["mcp:tools"], ttlSeconds: 3600 });

  try {
    const direct = await connect(`http://127.0.0.1:${upstreamPort}/mcp`);
    const gatedUrl = process.env.BENCH_RAW ? `http://127.0.0.1:${gatewayPort}/mcp` : `http://127.0.0.1:${gatewayPort}/mcp/everything`;
    const gated = await connect(gatedUrl, token);
    const probe = await call(gated);
    if (probe.isError) throw new Error(`the bench call is denied: ${JSON.stringify(probe.content)}`);

    for (let i = 0; i < WARMUP; i++) {
      await call(direct);
      await call(gated);
    }
    const lat = { direct: [] as number[], gateway: [] as number[] };
    for (let i = 0; i < CALLS; i++) {
      // Interleaved so both paths see the same machine state.
      let t = performance.now();
      await call(direct);
      lat.direct.push(performance.now() - t);
      t = performance.now();
      await call(gated);
      lat.gateway.push(performance.now() - t);
    }
    lat.direct.sort((a, b) => a - b);
    lat.gateway.sort((a, b) => a - b);

    const directClients = await Promise.all(Array.from({ length: CONCURRENCY }, () => connect(`http://127.0.0.1:${upstreamPort}/mcp`)));
    const gatedClients = await Promise.all(Array.from({ length: CONCURRENCY }, () => connect(gatedUrl, token)));
    const tput = { direct: 0, gateway: 0 };
    for (let round = 0; round < 2; round++) {
      tput.direct = Math.max(tput.direct, await throughput(directClients, THROUGHPUT_MS));
      tput.gateway = Math.max(tput.gateway, await throughput(gatedClients, THROUGHPUT_MS));
    }

    const f = (n: number) => n.toFixed(2);
    const rows = [
      ["path", "p50 ms", "p99 ms", "calls/s"],
      ["direct", f(pct(lat.direct, 50)), f(pct(lat.direct, 99)), tput.direct.toFixed(0)],
      ["gateway", f(pct(lat.gateway, 50)), f(pct(lat.gateway, 99)), tput.gateway.toFixed(0)],
    ];
    process.stdout.write(`${process.env.BENCH_RAW ? "[bare pass-through hop, not the gateway] " : "[gateway: JWT + wasm policy + JSONL audit]"} tools/call echo, ${CALLS} sequential calls each (interleaved, after ${WARMUP} warm-up), ${CONCURRENCY} sessions x ${THROUGHPUT_MS} ms for throughput (best of 2)\n`);
    for (const r of rows) process.stdout.write(`${r[0]!.padEnd(8)} ${r[1]!.padStart(8)} ${r[2]!.padStart(8)} ${r[3]!.padStart(8)}\n`);
    if (errors > 0) throw new Error(`${errors} calls answered isError: the figures would not measure served calls`);
    process.stdout.write(`added p50: ${f(pct(lat.gateway, 50) - pct(lat.direct, 50))} ms   throughput ratio: ${(tput.gateway / tput.direct).toFixed(2)}x of direct\n`);
    await Promise.all([direct, gated, ...directClients, ...gatedClients].map((c) => c.close()));
  } finally {
    gateway.kill("SIGTERM");
    upstream.kill("SIGTERM");
    await issuer.close();
  }
}

await main();
