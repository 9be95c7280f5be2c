/**
 * Issue 13, target 4: memory stays flat. A million tools/call through `portcullis serve` (every
 * stage on: JWT, starter policy, rate limits, hash-chained JSONL audit) after a warm-up, and the
 * gateway's resident memory (/proc VmRSS) along the way; the target is < 10% growth from the end
 * of the warm-up to the end of the run. The calls come from many keep-alive HTTP requests in
 * flight at once (undici, JSON-RPC bodies, no SDK), to a minimal fast upstream in a process of its
 * own (bench/fixtures/echo-upstream.ts), so the gateway is what the run spends its time in.
 *
 *   npm run bench:memory     (after make build and make tools-opa; about 10-20 min on 2 cores)
 *   BENCH_MEMORY_CALLS (1000000, after the warm-up)  BENCH_MEMORY_WARMUP (100000)
 *   BENCH_MEMORY_SESSIONS (16)  BENCH_MEMORY_INFLIGHT (32, requests in flight)  BENCH_STRICT=1
 */
import { statSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { join } from "node:path";
import { Pool } from "undici";
import { onCleanup, rssBytes, runMain, startProcess, stopAll } from "./support/processes.js";
import { RawSession } from "./support/raw-mcp.js";
import { fixed, heading, printSummary, printTable, targetLines, verdict } from "./support/report.js";
import { buildBenchBundle, repoRoot, startGateway, startIssuer, workDir } from "./support/setup.js";

const CALLS = Number(process.env.BENCH_MEMORY_CALLS ?? 1_000_000);
const WARMUP = Number(process.env.BENCH_MEMORY_WARMUP ?? 100_000);
const SESSIONS = Number(process.env.BENCH_MEMORY_SESSIONS ?? 16);
const INFLIGHT = Number(process.env.BENCH_MEMORY_INFLIGHT ?? 32);
const SAMPLE_EVERY = Math.max(1000, Math.round(CALLS / 100));
const REPORT_EVERY = Math.max(SAMPLE_EVERY, Math.round(CALLS / 10));
const MiB = 1024 * 1024;

interface Sample {
  calls: number;
  rss: number;
  seconds: number;
}

/** Least-squares slope of rss over calls, in bytes per call. */
function slope(samples: readonly Sample[]): number {
  const n = samples.length;
  if (n < 2) return NaN;
  const mx = samples.reduce((a, s) => a + s.calls, 0) / n;
  const my = samples.reduce((a, s) => a + s.rss, 0) / n;
  const num = samples.reduce((a, s) => a + (s.calls - mx) * (s.rss - my), 0);
  const den = samples.reduce((a, s) => a + (s.calls - mx) ** 2, 0);
  return num / den;
}

async function main(): Promise<void> {
  process.stdout.write(`portcullis memory bench (issue 13 target 4): node ${process.version}, ${cpus().length} cores, load average ${loadavg().map((l) => l.toFixed(2)).join(" ")}\n`);
  const work = workDir("pc-bench-memory-");
  const bundle = buildBenchBundle(work);
  const issuer = await startIssuer(work);
  const upstream = await startProcess(process.execPath, [join(repoRoot, "dist/bench/fixtures/echo-upstream.js")], { ready: /listening (\S+)/ });
  const upstreamUrl = /listening (\S+)/.exec(upstream.output())![1]!;
  const gateway = await startGateway({ work, name: "gateway", bundle, issuer, upstreams: { demo: { url: upstreamUrl } } });
  const url = gateway.url("demo");
  const pool = new Pool(new URL(url).origin, { connections: INFLIGHT, pipelining: 1 });
  onCleanup(() => pool.close());
  const sessions: RawSession[] = [];
  for (let i = 0; i < SESSIONS; i++) sessions.push(await RawSession.open(pool, url, gateway.token));

  const pid = gateway.process.pid;
  let sent = 0;
  const t0 = performance.now();
  /** Sends calls until `until` have been sent overall, INFLIGHT at a time. */
  const drive = async (until: number, onEach: (n: number) => void) => {
    await Promise.all(Array.from({ length: INFLIGHT }, async (_, w) => {
      const session = sessions[w % sessions.length]!;
      while (sent < until) {
        const n = ++sent;
        await session.call("echo", { text: `memory-${n % 1000}` });
        onEach(n);
      }
    }));
  };

  heading(`warm-up: ${WARMUP.toLocaleString("en")} calls (${SESSIONS} sessions, ${INFLIGHT} in flight)`);
  const rssAtStart = rssBytes(pid);
  await drive(WARMUP, () => undefined);
  const warmSeconds = (performance.now() - t0) / 1000;
  const baseline = rssBytes(pid);
  process.stdout.write(`  RSS ${fixed(rssAtStart / MiB, 1)} MiB at start, ${fixed(baseline / MiB, 1)} MiB after the warm-up (${fixed(WARMUP / warmSeconds, 0)} calls/s)\n`);

  heading(`measured: ${CALLS.toLocaleString("en")} calls`);
  const samples: Sample[] = [{ calls: 0, rss: baseline, seconds: 0 }];
  const t1 = performance.now();
  await drive(WARMUP + CALLS, (n) => {
    const done = n - WARMUP;
    if (done % SAMPLE_EVERY !== 0) return;
    const s = { calls: done, rss: rssBytes(pid), seconds: (performance.now() - t1) / 1000 };
    samples.push(s);
    if (done % REPORT_EVERY === 0) {
      process.stdout.write(`  ${done.toLocaleString("en").padStart(9)} calls  ${fixed(s.seconds, 0).padStart(5)} s  ${fixed(done / s.seconds, 0)} calls/s  RSS ${fixed(s.rss / MiB, 1)} MiB (${fixed(((s.rss - baseline) / baseline) * 100, 1)}%)\n`);
    }
  });
  const end = rssBytes(pid);
  const seconds = (performance.now() - t1) / 1000;
  const peak = Math.max(...samples.map((s) => s.rss), end);
  const growth = (end - baseline) / baseline;
  const perMillion = slope(samples) * 1_000_000;
  printTable([
    ["", "RSS MiB", "vs after warm-up"],
    ["after the warm-up", fixed(baseline / MiB, 1), ""],
    ["peak during the run", fixed(peak / MiB, 1), `${fixed(((peak - baseline) / baseline) * 100, 1)}%`],
    ["at the end", fixed(end / MiB, 1), `${fixed(growth * 100, 1)}%`],
  ]);
  process.stdout.write(`  trend (least squares over ${samples.length} samples): ${fixed(perMillion / MiB, 1)} MiB per million calls; ${CALLS.toLocaleString("en")} calls in ${fixed(seconds, 0)} s (${fixed(CALLS / seconds, 0)} calls/s); audit file ${fixed(statSync(gateway.auditFile).size / MiB, 0)} MiB\n`);
  verdict("4 memory flat", growth < 0.1, `RSS ${fixed(growth * 100, 1)}% over ${CALLS.toLocaleString("en")} calls after a ${WARMUP.toLocaleString("en")}-call warm-up (${fixed(baseline / MiB, 1)} → ${fixed(end / MiB, 1)} MiB, peak ${fixed(peak / MiB, 1)}); target < 10%`);
  await stopAll();
  printSummary("issue 13 target 4");
  if (process.env.BENCH_STRICT && targetLines().some((l) => l.verdict === "MISS")) process.exitCode = 1;
}

runMain(main);
