/**
 * Overload: what the gateway sustains, then 5× that. The gateway (a `portcullis serve` process,
 * every stage on: JWT, wasm policy with its per-agent rate limits, JSONL audit) sits in front of
 * an upstream whose echo takes SERVICE_MS; `upstreams.demo.maxConcurrent` caps what reaches it.
 *
 *   1. sustained: CONCURRENCY closed-loop clients for PHASE_MS → X calls/s, p50/p99
 *   2. overload: an open loop firing 5·X calls/s for PHASE_MS, whatever the answers do
 *   3. the gateway must still answer (/healthz and a real call), every answer must be a result
 *      or a clear shed (rate_limited / upstream_busy), and after SIGTERM the audit log must hold
 *      exactly one tools/call event per call sent.
 *
 *   node dist/bench/overload.js        (needs bundles/build/mcp-authz.tar.gz: `make bundle`)
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Pool } from "undici";
import { ensureDevKeys, mintToken, startDevIssuer } from "../gateway/auth/index.js";
import { startSlowUpstream } from "../test/fakes/slow-upstream.js";

const root = fileURLToPath(new URL("../../", import.meta.url));
const SERVICE_MS = Number(process.env.BENCH_SERVICE_MS ?? 20);
const MAX_CONCURRENT = Number(process.env.BENCH_MAX_CONCURRENT ?? 8);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? MAX_CONCURRENT);
const PHASE_MS = Number(process.env.BENCH_PHASE_MS ?? 5000);
const FACTOR = Number(process.env.BENCH_FACTOR ?? 5);
const AGENTS = Number(process.env.BENCH_AGENTS ?? 200);

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const a = s.address();
      s.close(() => resolve(typeof a === "object" && a ? a.port : 0));
    });
  });
}

function startGateway(config: string): Promise<{ child: ChildProcess; exited: Promise<number | null> }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(root, "dist/gateway/cli/main.js"), "serve", "--config", config], { env: { ...process.env, PORTCULLIS_LOG_LEVEL: "warn" }, stdio: ["ignore", "ignore", "pipe"] });
    const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
    let seen = "";
    child.stderr!.on("data", (c: Buffer) => {
      seen += c.toString();
      if (seen.includes("serving")) resolve({ child, exited });
    });
    void exited.then((code) => reject(new Error(`gateway exited ${code}: ${seen}`)));
  });
}

type Kind = "ok" | "rate_limited" | "upstream_busy" | "ratelimit_unavailable" | "other_error" | "transport";
interface Sample {
  kind: Kind;
  ms: number;
}

const pct = (sorted: number[], p: number) => (sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!);

async function main(): Promise<void> {
  const bundle = join(root, "bundles/build/mcp-authz.tar.gz");
  const pub = join(root, ".tools/dev/bundle-signing.pub.pem");
  if (!existsSync(bundle) || !existsSync(pub)) throw new Error("run `make bundle` first");
  const work = mkdtempSync(join(tmpdir(), "pc-overload-"));
  const keyDir = join(work, "issuer");
  const keys = await ensureDevKeys(keyDir);
  const issuer = await startDevIssuer({ host: "127.0.0.1", port: 0, keyDir });
  const upstream = await startSlowUpstream();
  const port = await freePort();
  const audience = `http://127.0.0.1:${port}/mcp`;
  const auditFile = join(work, "audit.jsonl");
  const config = join(work, "gateway.yaml");
  writeFileSync(
    config,
    JSON.stringify({
      listen: { host: "127.0.0.1", port },
      auth: { issuer: issuer.issuer, audience, jwksUri: issuer.jwksUri, algorithms: ["RS256"] },
      policy: { bundle, verificationKey: pub },
      upstreams: { demo: { url: upstream.url, maxConcurrent: MAX_CONCURRENT, timeoutMs: 10_000 } },
      audit: { file: auditFile },
      sessions: { maxSessions: AGENTS + 10 },
    }),
  );
  const gw = await startGateway(config);
  const pool = new Pool(`http://127.0.0.1:${port}`, { connections: 512, pipelining: 1 });
  let sent = 0;

  const post = async (token: string, session: string | null, body: unknown): Promise<{ status: number; json: any; sid: string | null }> => {
    const res = await pool.request({
      method: "POST",
      path: "/mcp/demo",
      headers: { "content-type": "application/json", accept: "application/json, text/event-stream", authorization: `Bearer ${token}`, ...(session ? { "mcp-session-id": session } : {}) },
      body: JSON.stringify(body),
      headersTimeout: 60_000,
      bodyTimeout: 60_000,
    });
    const text = await res.body.text();
    const sid = res.headers["mcp-session-id"];
    return { status: res.statusCode, json: text ? JSON.parse(text) : null, sid: typeof sid === "string" ? sid : null };
  };

  // One session per agent; the default policy gives each agent its own 120-per-minute bucket.
  const agents: Array<{ token: string; session: string }> = [];
  for (let i = 0; i < AGENTS; i++) {
    const token = mintToken({ privateKeyPem: keys.privateKeyPem, kid: keys.kid, issuer: issuer.issuer, audience, sub: `bench-${i}`, roles: ["analyst"], scopes: ["mcp:tools"], ttlSeconds: 3600 });
    const init = await post(token, null, { jsonrpc: "2.0", id: 0, method: "initialize", params: { protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: "overload", version: "1" } } });
    if (!init.sid) throw new Error(`initialize failed: ${init.status} ${JSON.stringify(init.json)}`);
    agents.push({ token, session: init.sid });
  }

  let nextAgent = 0;
  let id = 1;
  const one = async (): Promise<Sample> => {
    const a = agents[nextAgent++ % agents.length]!;
    const t0 = performance.now();
    sent++;
    try {
      const r = await post(a.token, a.session, { jsonrpc: "2.0", id: id++, method: "tools/call", params: { name: "echo", arguments: { text: `sleep:${SERVICE_MS}` } } });
      const ms = performance.now() - t0;
      const hint = r.json?.result?._meta?.["dev.portcullis/rate_limit"]?.code as Kind | undefined;
      if (hint) return { kind: hint, ms };
      if (r.status === 200 && r.json?.result && !r.json.result.isError) return { kind: "ok", ms };
      return { kind: "other_error", ms };
    } catch {
      return { kind: "transport", ms: performance.now() - t0 };
    }
  };

  // Warm-up (catalog lookups, JIT), not counted in the figures (but audited and counted in `sent`).
  await Promise.all(agents.slice(0, 50).map(() => one()));

  // 1. sustained: closed loop.
  const sustained: Sample[] = [];
  const end1 = performance.now() + PHASE_MS;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (performance.now() < end1) sustained.push(await one());
    }),
  );
  const x = (sustained.filter((s) => s.kind === "ok").length * 1000) / PHASE_MS;

  // 2. overload: open loop at FACTOR·x calls/s, fired in 5 ms ticks regardless of answers.
  const rate = FACTOR * x;
  const overload: Promise<Sample>[] = [];
  const t0 = performance.now();
  await new Promise<void>((resolve) => {
    const tick = setInterval(() => {
      const elapsed = performance.now() - t0;
      const due = Math.floor((Math.min(elapsed, PHASE_MS) * rate) / 1000);
      while (overload.length < due) overload.push(one());
      if (elapsed >= PHASE_MS) {
        clearInterval(tick);
        resolve();
      }
    }, 5);
  });
  const fired = performance.now() - t0;
  const samples = await Promise.all(overload);
  const drainedMs = performance.now() - t0;

  // 3. still up and serving, then every call on record.
  const health = await pool.request({ method: "GET", path: "/healthz" }).then(async (r) => (await r.body.text(), r.statusCode), () => 0);
  await new Promise((r) => setTimeout(r, 1500));
  const after = await one();
  await pool.close();
  gw.child.kill("SIGTERM");
  const exitCode = await gw.exited;
  const audited = readFileSync(auditFile, "utf8").split("\n").filter((l) => l.includes('"method":"tools/call"')).length;

  const count = (ss: Sample[], k: Kind) => ss.filter((s) => s.kind === k).length;
  const lat = (ss: Sample[]) => ss.map((s) => s.ms).sort((a, b) => a - b);
  const f = (n: number) => (Number.isNaN(n) ? "-" : n.toFixed(1));
  const okS = samples.filter((s) => s.kind === "ok");
  const shedS = samples.filter((s) => s.kind === "rate_limited" || s.kind === "upstream_busy" || s.kind === "ratelimit_unavailable");
  const out = process.stdout;
  out.write(`overload bench: upstream echo ${SERVICE_MS} ms, maxConcurrent ${MAX_CONCURRENT}, ${AGENTS} agents (default policy: 120 calls/min each), ${PHASE_MS} ms per phase\n`);
  out.write(`sustained (${CONCURRENCY} closed-loop clients): ${x.toFixed(0)} calls/s ok, p50 ${f(pct(lat(sustained), 50))} ms, p99 ${f(pct(lat(sustained), 99))} ms, non-ok ${sustained.length - count(sustained, "ok")}\n`);
  out.write(`overload (open loop ${rate.toFixed(0)} calls/s = ${FACTOR}x, ${samples.length} calls fired in ${f(fired)} ms, all answered after ${f(drainedMs)} ms):\n`);
  out.write(`  ok             ${String(okS.length).padStart(6)}  ${((okS.length * 1000) / PHASE_MS).toFixed(0)} calls/s  p50 ${f(pct(lat(okS), 50))} ms  p99 ${f(pct(lat(okS), 99))} ms\n`);
  out.write(`  shed (clear)   ${String(shedS.length).padStart(6)}  rate_limited ${count(samples, "rate_limited")}, upstream_busy ${count(samples, "upstream_busy")}, ratelimit_unavailable ${count(samples, "ratelimit_unavailable")}  p50 ${f(pct(lat(shedS), 50))} ms  p99 ${f(pct(lat(shedS), 99))} ms\n`);
  out.write(`  other errors   ${String(count(samples, "other_error")).padStart(6)}   transport failures ${count(samples, "transport")}\n`);
  out.write(`  all answers    p50 ${f(pct(lat(samples), 50))} ms  p99 ${f(pct(lat(samples), 99))} ms  answered ${((samples.length * 1000) / drainedMs).toFixed(0)} calls/s\n`);
  out.write(`after: /healthz ${health}, a new call ${after.kind} in ${f(after.ms)} ms; SIGTERM exit ${exitCode}\n`);
  out.write(`audit: ${audited} tools/call events for ${sent} calls sent ${audited === sent ? "(one each)" : "(MISMATCH)"}; upstream saw ${upstream.started} calls, peak ${upstream.peak} in flight (limit ${MAX_CONCURRENT})\n`);
  await upstream.close();
  await issuer.close();
  if (audited !== sent || health !== 200 || exitCode !== 0) process.exitCode = 1;
}

await main();
