/**
 * Issue 13, target 6: the 2026-07-28 path. The SDK v2 client pinned at 2026-07-28 through the
 * gateway to server-everything (a 2025-only server: the gateway speaks 2025-11-25 upstream), next
 * to the same client in its default 2025 mode, the SDK v1 client, and the v2 client straight to
 * the upstream; latency interleaved call by call, throughput and gateway CPU per call in rotating
 * rounds. Issue 13 sets no target of its own for this path: the figures are printed to compare.
 *
 * Part of `npm run bench` (bench/run.ts). Knobs: BENCH_ERA_CALLS (300), BENCH_CONCURRENCY (8),
 * BENCH_ERA_THROUGHPUT_MS (1500), BENCH_ERA_ROUNDS (2).
 */
import { connect, connectMany, type BenchClient, type ClientKind } from "./support/clients.js";
import { interleavedLatency, throughputRounds, type ThroughputPath } from "./support/load.js";
import { fixed, heading, median, percentile, printTable, ratio } from "./support/report.js";
import type { Gateway } from "./support/setup.js";

const CALLS = Number(process.env.BENCH_ERA_CALLS ?? 300);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 8);
const THROUGHPUT_MS = Number(process.env.BENCH_ERA_THROUGHPUT_MS ?? 1500);
const ROUNDS = Number(process.env.BENCH_ERA_ROUNDS ?? 2);

interface EraPath {
  name: string;
  kind: ClientKind;
  via: "direct" | "gateway";
  era: string;
}

const PATHS: EraPath[] = [
  { name: "v2 client 2025-11-25 direct", kind: "v2-2025", via: "direct", era: "2025-11-25" },
  { name: "v1 client 2025-11-25 via gateway", kind: "v1", via: "gateway", era: "2025-11-25" },
  { name: "v2 client 2025-11-25 via gateway", kind: "v2-2025", via: "gateway", era: "2025-11-25" },
  { name: "v2 client 2026-07-28 via gateway", kind: "v2-2026", via: "gateway", era: "2026-07-28" },
];

export async function protocol2026(s: { everythingUrl: string; gateway: Gateway }): Promise<void> {
  heading("the 2026-07-28 path: SDK v2 client pinned at 2026-07-28 → gateway → server-everything (2025 upstream)");
  const opened: BenchClient[] = [];
  const open = async (p: EraPath, n: number) => {
    const url = p.via === "direct" ? s.everythingUrl : s.gateway.url("everything");
    const token = p.via === "direct" ? undefined : s.gateway.token;
    const clients = n === 1 ? [await connect(p.kind, url, token)] : await connectMany(n, p.kind, url, token);
    opened.push(...clients);
    for (const c of clients) if (c.version !== p.era) throw new Error(`${p.name} negotiated ${c.version}, not ${p.era}`);
    return clients;
  };
  try {
    const single = await Promise.all(PATHS.map(async (p) => ({ name: p.name, client: (await open(p, 1))[0]! })));
    for (const p of single) await p.client.echo();
    const lat = await interleavedLatency(single, CALLS, Math.round(CALLS / 5));
    const tputPaths: ThroughputPath[] = [];
    for (const p of PATHS) tputPaths.push({ name: p.name, clients: await open(p, CONCURRENCY), ...(p.via === "gateway" && { pid: s.gateway.process.pid }) });
    const tput = await throughputRounds(tputPaths, THROUGHPUT_MS, ROUNDS);

    const base = PATHS[0]!.name;
    const p50 = (n: string) => percentile(lat.get(n)!.ms, 50);
    const cps = (n: string) => median(tput.get(n)!.map((r) => r.callsPerSecond));
    const rows: string[][] = [["path", "p50 ms", "p99 ms", "+p50 vs v2 direct", "calls/s", "x v2 direct", `gateway CPU/call (${CONCURRENCY} in flight)`]];
    for (const p of PATHS) {
      rows.push([
        p.name,
        fixed(p50(p.name)),
        fixed(percentile(lat.get(p.name)!.ms, 99)),
        p.name === base ? "" : fixed(p50(p.name) - p50(base)),
        cps(p.name).toFixed(0),
        p.name === base ? "" : ratio(cps(p.name) / cps(base)),
        p.via === "gateway" ? `${fixed(median(tput.get(p.name)!.map((r) => r.cpuPerCall)), 3)} ms` : "",
      ]);
    }
    printTable(rows);
    const modern = PATHS[3]!.name;
    const legacy = PATHS[2]!.name;
    process.stdout.write(`  2026 vs 2025 through the gateway, same v2 client: p50 ${fixed(p50(modern) - p50(legacy))} ms, throughput ${ratio(cps(modern) / cps(legacy))}\n`);
  } finally {
    await Promise.all(opened.map((c) => c.close().catch(() => undefined)));
  }
}
