/**
 * Issue 13, target 5: the peers, measured in one run rather than asserted.
 *   1. OPA as a sidecar: `opa run --server` with the gateway's bundle (same policy folder, data and
 *      signing key), the same decision (the starter library's tools/call of read_file) over HTTP
 *      POST /v1/data/mcp/authz/decision vs in process (WasmPolicyEngine.decide). The opa of
 *      `make tools-opa` is built without cgo and so has no wasm engine: the sidecar gets the same
 *      sources as a rego bundle, and the bench checks both answer the same decision.
 *   2. IBM ContextForge (`make tools-contextforge`: mcp-contextforge-gateway, pinned, in
 *      .tools/contextforge) in front of the same server-everything as portcullis: its documented
 *      setup (admin JWT from mcpgateway.utils.create_jwt_token, POST /gateways, a virtual server of
 *      POST /servers, Streamable HTTP at /servers/ID/mcp), then tools/call through it, through
 *      portcullis (every stage on) and straight, interleaved; p50/p99, calls/s, CPU per call.
 *      Skipped with the reason when it is not installed or does not come up.
 *
 *   npm run bench:peers      (after make build and make tools-opa; make bench-peers installs ContextForge first)
 *   BENCH_PEER_DECISIONS (5000)  BENCH_PEER_CALLS (100)  BENCH_PEER_THROUGHPUT_MS (3000)  BENCH_PEER_ROUNDS (2)
 */
import { execFile, execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { join } from "node:path";
import { isDeepStrictEqual, promisify } from "node:util";
import { Pool } from "undici";
import { loadBundle, WasmPolicyEngine } from "../gateway/policy/index.js";
import { connect, connectMany, type BenchClient } from "./support/clients.js";
import { interleavedLatency, throughputRounds, type LatencyPath, type ThroughputPath } from "./support/load.js";
import { allowedReadFile } from "./support/policy-inputs.js";
import { onCleanup, runMain, startProcess, stopAll } from "./support/processes.js";
import { ascending, fixed, heading, median, percentile, printSummary, printTable, ratio, targetLines, verdict } from "./support/report.js";
import { buildBenchBundle, freePort, opaPath, repoRoot, startEverything, startGateway, startIssuer, toolsDir, workDir, type BenchBundle, type Gateway, type Upstream } from "./support/setup.js";

const DECISIONS = Number(process.env.BENCH_PEER_DECISIONS ?? 5000);
const CALLS = Number(process.env.BENCH_PEER_CALLS ?? 100);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 8);
const THROUGHPUT_MS = Number(process.env.BENCH_PEER_THROUGHPUT_MS ?? 3000);
const ROUNDS = Number(process.env.BENCH_PEER_ROUNDS ?? 2);
const run = promisify(execFile);

async function opaSidecar(work: string, bundle: BenchBundle): Promise<void> {
  heading("OPA sidecar vs in-process: the same decision (starter library, tools/call read_file, allowed)");
  // Same folder, data and key as the gateway's bundle; rego target, since this opa has no wasm engine.
  const regoBundle = join(work, "sidecar-bundle.tar.gz");
  execFileSync(opaPath, ["build", "-b", ".", "--ignore", "*_test.rego", "--capabilities", join(repoRoot, "bundles/capabilities.json"), "--signing-key", join(toolsDir, "dev/bundle-signing.key.pem"), "--signing-alg", "RS256", "-r", "bench", "-o", regoBundle], { cwd: bundle.policyDir });
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const health = new Pool(base, { connections: 1 });
  onCleanup(() => health.close());
  await startProcess(opaPath, ["run", "--server", "--addr", `127.0.0.1:${port}`, "--log-level", "error", "--verification-key", bundle.verificationKey, "--bundle", regoBundle], {
    // /health?bundles answers 200 once the bundle is activated.
    ready: async () => (await health.request({ path: "/health?bundles", method: "GET" }).then(async (r) => (await r.body.dump(), r.statusCode === 200))),
  });

  const engine = await WasmPolicyEngine.create(await loadBundle(bundle.bundle, { verificationKeyPem: readFileSync(bundle.verificationKey, "utf8") }));
  const input = allowedReadFile();
  const pool = new Pool(base, { connections: 1, pipelining: 1 });
  onCleanup(() => pool.close());
  const body = JSON.stringify({ input });
  const overHttp = async (): Promise<unknown> => {
    const r = await pool.request({ path: "/v1/data/mcp/authz/decision", method: "POST", headers: { "content-type": "application/json" }, body });
    const answer = (await r.body.json()) as { result?: unknown };
    if (r.statusCode !== 200) throw new Error(`opa answered HTTP ${r.statusCode}: ${JSON.stringify(answer)}`);
    return answer.result;
  };
  const inProcess = engine.decide(input);
  const sidecar = await overHttp();
  const same = isDeepStrictEqual(sidecar, inProcess.raw);
  if (inProcess.decision.allow !== true) throw new Error(`the in-process decision is not an allow: ${JSON.stringify(inProcess.raw)}`);

  const httpMs: number[] = [];
  const localMs: number[] = [];
  for (let i = 0; i < DECISIONS / 10; i++) {
    await overHttp();
    engine.decide(input);
  }
  for (let i = 0; i < DECISIONS; i++) {
    // Interleaved, one decision at a time each way.
    let t0 = performance.now();
    await overHttp();
    httpMs.push(performance.now() - t0);
    t0 = performance.now();
    engine.decide(input);
    localMs.push(performance.now() - t0);
  }
  // Back to back as well (what bench/evaluate.ts measures): interleaved with I/O, each decision
  // starts with cold caches, as it does between a gateway's requests.
  const tightMs: number[] = [];
  for (let i = 0; i < DECISIONS; i++) {
    const t0 = performance.now();
    engine.decide(input);
    tightMs.push(performance.now() - t0);
  }
  const h = ascending(httpMs);
  const l = ascending(localMs);
  const t = ascending(tightMs);
  const us = (ms: number) => fixed(ms * 1000, 1);
  printTable([
    ["decision", "p50 µs", "p99 µs"],
    ["in process (wasm, WasmPolicyEngine.decide), interleaved", us(percentile(l, 50)), us(percentile(l, 99))],
    ["in process, back to back", us(percentile(t, 50)), us(percentile(t, 99))],
    ["OPA sidecar (HTTP POST, keep-alive, rego), interleaved", us(percentile(h, 50)), us(percentile(h, 99))],
  ]);
  process.stdout.write(`  ${DECISIONS} decisions each way, one at a time, alternating; same answer both ways: ${same ? "yes" : `NO (sidecar ${JSON.stringify(sidecar)}, in process ${JSON.stringify(inProcess.raw)})`}\n`);
  verdict("5 OPA sidecar", same && percentile(l, 50) < percentile(h, 50), `in process ${us(percentile(l, 50))} µs vs sidecar ${us(percentile(h, 50))} µs at p50 (${ratio(percentile(h, 50) / percentile(l, 50))})${same ? "" : "; the two answers differ"}`);
}

interface ContextForge {
  url: string;
  token: string;
  pid: number;
}

/** ContextForge in front of `upstream`, set up as its documentation says; throws with the reason when it cannot be. */
async function startContextForge(work: string, upstream: Upstream): Promise<ContextForge> {
  const venv = join(toolsDir, "contextforge");
  const bin = join(venv, "bin/mcpgateway");
  if (!existsSync(bin)) throw new Error(`not installed (${venv}): run 'make tools-contextforge'`);
  const dir = join(work, "contextforge");
  mkdirSync(dir, { recursive: true });
  const port = await freePort();
  const password = `Bench-${randomBytes(12).toString("hex")}`;
  // Its security checks refuse placeholder and short secrets; loopback upstreams need SSRF_ALLOW_LOCALHOST.
  // Its rate limits (100 tools/call a minute by default) are raised the way the portcullis bundle's are:
  // both still run their limiter, neither refuses the bench. No Redis here: the in-memory limiter.
  const env: NodeJS.ProcessEnv = {
    HOST: "127.0.0.1",
    PORT: String(port),
    JWT_SECRET_KEY: randomBytes(32).toString("hex"),
    AUTH_ENCRYPTION_SECRET: randomBytes(32).toString("hex"),
    BASIC_AUTH_PASSWORD: password,
    PLATFORM_ADMIN_PASSWORD: password,
    DEFAULT_USER_PASSWORD: password,
    PLATFORM_ADMIN_EMAIL: "admin@example.com",
    DATABASE_URL: `sqlite:///${join(dir, "mcp.db")}`,
    CACHE_TYPE: "memory",
    MCPGATEWAY_UI_ENABLED: "false",
    MCPGATEWAY_ADMIN_API_ENABLED: "true",
    SSRF_ALLOW_LOCALHOST: "true",
    LOG_LEVEL: "ERROR",
    RATE_LIMIT_MEDIUM_RPM: "1000000000",
    RATE_LIMIT_MEDIUM_BURST: "1000000000",
    RATE_LIMITING_REDIS_ENABLED: "false",
  };
  const base = `http://127.0.0.1:${port}`;
  const http = new Pool(base, { connections: 2 });
  onCleanup(() => http.close());
  const started = await startProcess(bin, ["--host", "127.0.0.1", "--port", String(port)], {
    env,
    cwd: dir,
    timeoutMs: 180_000,
    ready: async () => (await http.request({ path: "/health", method: "GET" }).then(async (r) => (await r.body.dump(), r.statusCode === 200))),
  });
  const { stdout } = await run(join(venv, "bin/python"), ["-m", "mcpgateway.utils.create_jwt_token", "-u", "admin@example.com", "--admin", "--exp", "600"], { env: { ...process.env, ...env }, cwd: dir });
  const token = stdout.trim().split("\n").pop()!.trim();
  const api = async <T>(method: "GET" | "POST", path: string, body?: unknown): Promise<T> => {
    const r = await http.request({ path, method, headers: { authorization: `Bearer ${token}`, "content-type": "application/json" }, ...(body !== undefined && { body: JSON.stringify(body) }) });
    const text = await r.body.text();
    if (r.statusCode >= 300) throw new Error(`${method} ${path}: HTTP ${r.statusCode} ${text.slice(0, 400)}`);
    return JSON.parse(text) as T;
  };
  await api("POST", "/gateways", { name: "everything", url: upstream.url, transport: "STREAMABLEHTTP" });
  const tools = await api<Array<{ id: string; name: string }>>("GET", "/tools");
  const echo = tools.find((t) => t.name === "everything-echo");
  if (!echo) throw new Error(`server-everything's echo is not among its tools: ${tools.map((t) => t.name).join(", ")}`);
  const server = await api<{ id: string }>("POST", "/servers", { server: { name: "bench", description: "server-everything's echo", associated_tools: [echo.id] }, visibility: "public" });
  return { url: `${base}/servers/${server.id}/mcp`, token, pid: started.pid };
}

async function contextForge(work: string, upstream: Upstream, gateway: Gateway): Promise<void> {
  heading("IBM ContextForge vs portcullis, in front of the same server-everything (tools/call echo, SDK v1 client)");
  let cf: ContextForge;
  try {
    cf = await startContextForge(work, upstream);
  } catch (err) {
    const why = (err instanceof Error ? err.message : String(err)).split("\n").slice(0, 3).join(" ");
    process.stdout.write(`  skipped: ${why}\n`);
    verdict("5 ContextForge", null, `skipped: ${why}`);
    return;
  }
  const version = execFileSync(join(toolsDir, "contextforge/bin/mcpgateway"), ["--version"], { encoding: "utf8" }).trim();
  const paths = [
    { name: "direct", url: upstream.url, token: undefined, tool: "echo" },
    { name: "portcullis", url: gateway.url("everything"), token: gateway.token, tool: "echo", pid: gateway.process.pid },
    { name: "contextforge", url: cf.url, token: cf.token, tool: "everything-echo", pid: cf.pid, tree: true },
  ];
  const opened: BenchClient[] = [];
  try {
    const latencyPaths: LatencyPath[] = [];
    for (const p of paths) {
      const c = await connect("v1", p.url, p.token, p.tool);
      opened.push(c);
      await c.echo();
      latencyPaths.push({ name: p.name, client: c, ...(p.pid !== undefined && { pid: p.pid, tree: p.tree === true }) });
    }
    process.stdout.write(`  ${version}; latency: ${CALLS} calls per path, interleaved call by call; throughput: ${CONCURRENCY} sessions x ${THROUGHPUT_MS} ms, ${ROUNDS} rounds\n`);
    const lat = await interleavedLatency(latencyPaths, CALLS, Math.max(5, Math.round(CALLS / 10)));
    const tputPaths: ThroughputPath[] = [];
    for (const p of paths) {
      const clients = await connectMany(CONCURRENCY, "v1", p.url, p.token, p.tool);
      opened.push(...clients);
      tputPaths.push({ name: p.name, clients, ...(p.pid !== undefined && { pid: p.pid, tree: p.tree === true }) });
    }
    const tput = await throughputRounds(tputPaths, THROUGHPUT_MS, ROUNDS);
    const p50 = (n: string) => percentile(lat.get(n)!.ms, 50);
    const cps = (n: string) => median(tput.get(n)!.map((r) => r.callsPerSecond));
    const cpu = (n: string) => median(tput.get(n)!.map((r) => r.cpuPerCall));
    const rows = [["path", "p50 ms", "p99 ms", "calls/s", `CPU/call (${CONCURRENCY} in flight)`]];
    for (const p of paths) rows.push([p.name, fixed(p50(p.name)), fixed(percentile(lat.get(p.name)!.ms, 99)), cps(p.name).toFixed(0), p.pid === undefined ? "" : `${fixed(cpu(p.name), 3)} ms`]);
    printTable(rows);
    const lead = p50("portcullis") < p50("contextforge") && cps("portcullis") > cps("contextforge");
    verdict("5 ContextForge", lead, `portcullis ${fixed(p50("portcullis"))} ms p50 and ${cps("portcullis").toFixed(0)} calls/s, ContextForge ${fixed(p50("contextforge"))} ms and ${cps("contextforge").toFixed(0)} calls/s (${ratio(p50("contextforge") / p50("portcullis"))} the latency, ${ratio(cps("portcullis") / cps("contextforge"))} the throughput)`);
  } finally {
    await Promise.all(opened.map((c) => c.close().catch(() => undefined)));
  }
}

async function main(): Promise<void> {
  process.stdout.write(`portcullis peers bench (issue 13 target 5): node ${process.version}, ${cpus().length} cores, load average ${loadavg().map((l) => l.toFixed(2)).join(" ")}\n`);
  const work = workDir("pc-bench-peers-");
  const bundle = buildBenchBundle(work);
  await opaSidecar(work, bundle);
  const issuer = await startIssuer(work);
  const upstream = await startEverything();
  const gateway = await startGateway({ work, name: "gateway", bundle, issuer, upstreams: { everything: { url: upstream.url } } });
  await contextForge(work, upstream, gateway);
  await stopAll();
  printSummary("issue 13 target 5");
  if (process.env.BENCH_STRICT && targetLines().some((l) => l.verdict === "MISS")) process.exitCode = 1;
}

runMain(main);
