/**
 * Issue 13, target 1: what a tools/call costs through the gateway, next to what it costs straight
 * to the upstream and through a bare hop, in one run, interleaved:
 *   direct   SDK client → server-everything
 *   hop      SDK client → bench/raw-hop.ts → server-everything (parse, forward; nothing else)
 *   gateway  SDK client → portcullis serve (JWT, starter policy, rate limits, hash-chained JSONL audit)
 *   outbox   the same gateway with the Kafka sink and its durable outbox on (the production setting)
 * Latency is one call at a time, the four paths taking turns call by call; throughput is
 * closed-loop sessions, the paths taking turns round by round; CPU per call is the serving
 * process's CPU time (/proc) over its own calls. Medians over the rounds, ratios paired per round.
 *
 * Part of `npm run bench` (bench/run.ts). Knobs: BENCH_CALLS (600), BENCH_WARMUP (100),
 * BENCH_CONCURRENCY (8), BENCH_THROUGHPUT_MS (2500), BENCH_ROUNDS (3).
 */
import { setTimeout as sleep } from "node:timers/promises";
import { connect, connectMany, type BenchClient } from "./support/clients.js";
import { interleavedLatency, throughputRounds, type LatencyPath, type ThroughputPath } from "./support/load.js";
import { cpuMs } from "./support/processes.js";
import { fixed, heading, median, percentile, printTable, ratio, spread, verdict } from "./support/report.js";
import type { Gateway, Hop } from "./support/setup.js";

const CALLS = Number(process.env.BENCH_CALLS ?? 600);
const WARMUP = Number(process.env.BENCH_WARMUP ?? 100);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 8);
const THROUGHPUT_MS = Number(process.env.BENCH_THROUGHPUT_MS ?? 2500);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const IDLE_MS = 2000;

export interface CostSetup {
  everythingUrl: string;
  hop: Hop;
  gateway: Gateway;
  outbox: Gateway | { skipped: string };
}

interface PathSpec {
  name: "direct" | "hop" | "gateway" | "outbox";
  label: string;
  url: string;
  token?: string;
  pid?: number;
}

export async function gatewayCost(s: CostSetup): Promise<void> {
  heading(`tools/call: direct, bare hop, gateway${"skipped" in s.outbox ? "" : ", gateway + Kafka outbox"} (server-everything echo, SDK v1 client)`);
  const specs: PathSpec[] = [
    { name: "direct", label: "direct", url: s.everythingUrl },
    { name: "hop", label: "bare hop (raw-hop.ts)", url: s.hop.url, pid: s.hop.process.pid },
    { name: "gateway", label: "gateway", url: s.gateway.url("everything"), token: s.gateway.token, pid: s.gateway.process.pid },
  ];
  process.stdout.write("  gateway: portcullis serve, JWT (RS256, JWKS), the shipped policy (rate limits raised), hash-chained JSONL audit, log level warn\n");
  process.stdout.write("  outbox: the same plus audit.kafka to the bench's broker with the durable outbox (group-committed fdatasync) on\n");
  if ("skipped" in s.outbox) process.stdout.write(`  (gateway + Kafka outbox skipped: ${s.outbox.skipped})\n`);
  else specs.push({ name: "outbox", label: "gateway + Kafka outbox", url: s.outbox.url("everything"), token: s.outbox.token, pid: s.outbox.process.pid });

  const opened: BenchClient[] = [];
  try {
    const latencyPaths: LatencyPath[] = [];
    for (const p of specs) {
      const client = await connect("v1", p.url, p.token);
      opened.push(client);
      await client.echo(); // a denied or failing path stops the bench here, before any figure
      latencyPaths.push({ name: p.name, client, ...(p.pid !== undefined && { pid: p.pid }) });
    }
    process.stdout.write(`  latency: ${CALLS} calls per path, one in flight, paths interleaved call by call (after ${WARMUP} warm-up each)\n`);
    const lat = await interleavedLatency(latencyPaths, CALLS, WARMUP);
    // What each process spends with no call at all (timers, GC): the one-at-a-time figure carries it
    // for the time the other paths take their turns; printed so it can be read off.
    const idle = new Map<string, number>();
    const idle0 = new Map(specs.filter((p) => p.pid !== undefined).map((p) => [p.name, cpuMs(p.pid!)]));
    await sleep(IDLE_MS);
    for (const [name, c0] of idle0) idle.set(name, ((cpuMs(specs.find((p) => p.name === name)!.pid!) - c0) * 1000) / IDLE_MS);

    const tputPaths: ThroughputPath[] = [];
    for (const p of specs) {
      const clients = await connectMany(CONCURRENCY, "v1", p.url, p.token);
      opened.push(...clients);
      tputPaths.push({ name: p.name, clients, ...(p.pid !== undefined && { pid: p.pid }) });
    }
    process.stdout.write(`  throughput: ${CONCURRENCY} sessions x ${THROUGHPUT_MS} ms per path per round, ${ROUNDS} rounds in rotating order; medians over the rounds\n`);
    const tput = await throughputRounds(tputPaths, THROUGHPUT_MS, ROUNDS);

    const p50 = (n: string) => percentile(lat.get(n)!.ms, 50);
    const rounds = (n: string) => tput.get(n) ?? [];
    const cps = (n: string) => median(rounds(n).map((r) => r.callsPerSecond));
    const cpuLoaded = (n: string) => median(rounds(n).map((r) => r.cpuPerCall));
    /** Per-round ratios of `a` to `b` (same round, same machine state). */
    const paired = (a: string, b: string, f: (r: { callsPerSecond: number; cpuPerCall: number }) => number) =>
      rounds(a).map((r, i) => f(r) / f(rounds(b)[i]!));

    const rows: string[][] = [["path", "p50 ms", "p99 ms", "+p50 ms", "calls/s", "x direct", "CPU/call 1 in flight", `CPU/call ${CONCURRENCY} in flight`, "CPU x hop"]];
    for (const p of specs) {
      const l = lat.get(p.name)!;
      const cpuRatio = p.pid === undefined || p.name === "hop" ? "" : ratio(median(paired(p.name, "hop", (r) => r.cpuPerCall)));
      rows.push([
        p.label,
        fixed(percentile(l.ms, 50)),
        fixed(percentile(l.ms, 99)),
        p.name === "direct" ? "" : fixed(p50(p.name) - p50("direct")),
        cps(p.name).toFixed(0),
        p.name === "direct" ? "" : ratio(median(paired(p.name, "direct", (r) => r.callsPerSecond))),
        p.pid === undefined ? "" : `${fixed(l.cpuPerCall, 3)} ms`,
        p.pid === undefined ? "" : `${fixed(cpuLoaded(p.name), 3)} ms`,
        cpuRatio,
      ]);
    }
    printTable(rows);
    process.stdout.write(`  idle CPU (no calls, ${IDLE_MS} ms): ${[...idle].map(([n, v]) => `${n} ${fixed(v, 0)} ms/s`).join(", ")}; the one-in-flight CPU/call includes it while the other paths take their turns\n`);
    process.stdout.write(`  per-round spread of the throughput ratio: ${specs.filter((p) => p.name !== "direct").map((p) => `${p.name} ${spread(paired(p.name, "direct", (r) => r.callsPerSecond))}`).join(", ")}\n`);

    const targets = (name: "gateway" | "outbox", cpuMax: number, addedMax: number, tputMin: number, label: string) => {
      if (!specs.some((p) => p.name === name)) {
        const why = "skipped" in s.outbox ? s.outbox.skipped : "not measured";
        for (const t of ["CPU/call", "added p50", "throughput"]) verdict(`1 ${label}: ${t}`, null, why);
        return;
      }
      const loaded = median(paired(name, "hop", (r) => r.cpuPerCall));
      const single = lat.get(name)!.cpuPerCall / lat.get("hop")!.cpuPerCall;
      verdict(`1 ${label}: CPU/call`, loaded <= cpuMax && single <= cpuMax, `${ratio(loaded)} the bare hop's with ${CONCURRENCY} in flight (${spread(paired(name, "hop", (r) => r.cpuPerCall))} over the rounds), ${ratio(single)} one at a time; target <= ${cpuMax}x`);
      const added = p50(name) - p50("direct");
      verdict(`1 ${label}: added p50`, added <= addedMax, `+${fixed(added)} ms over direct (${fixed(p50(name))} vs ${fixed(p50("direct"))} ms); target <= ${addedMax.toFixed(1)} ms`);
      const t = median(paired(name, "direct", (r) => r.callsPerSecond));
      verdict(`1 ${label}: throughput`, t >= tputMin, `${ratio(t)} of direct (${cps(name).toFixed(0)} vs ${cps("direct").toFixed(0)} calls/s); target >= ${tputMin}x`);
    };
    targets("gateway", 1.25, 1.0, 0.75, "gateway");
    targets("outbox", 1.5, 1.5, 0.7, "gateway + outbox");
  } finally {
    await Promise.all(opened.map((c) => c.close().catch(() => undefined)));
  }
}
