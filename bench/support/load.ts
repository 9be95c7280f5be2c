/**
 * The two load shapes of the benches, both interleaved so every path sees the same machine state:
 *   - latency: one call at a time, the paths taking turns call by call (A B C D, B C D A, ...);
 *   - throughput: closed-loop sessions for a fixed time per path, the paths taking turns round by
 *     round in a rotating order (ABCD, BCDA, ...), the figures kept per round for medians.
 * Each path may name the process that serves it (the hop, a gateway): its CPU time over the
 * path's own calls, divided by the calls, is the CPU per call.
 */
import type { BenchClient } from "./clients.js";
import { cpuMs, treeCpuMs } from "./processes.js";
import { ascending } from "./report.js";

export type Operation = (c: BenchClient) => Promise<unknown>;
export const echo: Operation = (c) => c.echo();

interface Served {
  /** The process whose CPU is charged to this path's calls. */
  pid?: number;
  /** Charge its descendants' CPU too (a server that forks helpers). */
  tree?: boolean;
}

const cpuOf = (p: Served): number => (p.pid === undefined ? NaN : p.tree ? treeCpuMs(p.pid) : cpuMs(p.pid));

export interface LatencyPath extends Served {
  name: string;
  client: BenchClient;
}

export interface LatencyResult {
  /** Milliseconds per call, ascending. */
  ms: number[];
  /** CPU ms of the path's process per call, one call in flight; NaN without a process. */
  cpuPerCall: number;
}

const rotate = <T>(xs: readonly T[], by: number): T[] => xs.map((_, i) => xs[(i + by) % xs.length]!);

export async function interleavedLatency(paths: readonly LatencyPath[], calls: number, warmup: number, op: Operation = echo): Promise<Map<string, LatencyResult>> {
  for (let i = 0; i < warmup; i++) for (const p of paths) await op(p.client);
  const samples = new Map(paths.map((p) => [p.name, [] as number[]]));
  // Each process's CPU over the whole loop: it serves only its own path's calls (idle while the
  // others take their turn), and work it finishes after answering (its audit line, its sockets)
  // is still charged to it.
  const cpu0 = new Map(paths.map((p) => [p.name, cpuOf(p)]));
  for (let i = 0; i < calls; i++) {
    for (const p of rotate(paths, i)) {
      const t0 = performance.now();
      await op(p.client);
      samples.get(p.name)!.push(performance.now() - t0);
    }
  }
  return new Map(paths.map((p) => [p.name, { ms: ascending(samples.get(p.name)!), cpuPerCall: (cpuOf(p) - cpu0.get(p.name)!) / calls }]));
}

export interface ThroughputPath extends Served {
  name: string;
  clients: readonly BenchClient[];
}

export interface ThroughputRound {
  callsPerSecond: number;
  /** CPU ms of the path's process per call under this load; NaN without a process. */
  cpuPerCall: number;
}

async function closedLoop(clients: readonly BenchClient[], ms: number, op: Operation): Promise<number> {
  let n = 0;
  const end = performance.now() + ms;
  await Promise.all(clients.map(async (c) => {
    while (performance.now() < end) {
      await op(c);
      n++;
    }
  }));
  return n;
}

export async function throughputRounds(paths: readonly ThroughputPath[], ms: number, rounds: number, op: Operation = echo, warmupMs = 500): Promise<Map<string, ThroughputRound[]>> {
  for (const p of paths) await closedLoop(p.clients, warmupMs, op);
  const out = new Map(paths.map((p) => [p.name, [] as ThroughputRound[]]));
  for (let r = 0; r < rounds; r++) {
    for (const p of rotate(paths, r)) {
      const c0 = cpuOf(p);
      const t0 = performance.now();
      const n = await closedLoop(p.clients, ms, op);
      const elapsed = performance.now() - t0;
      const cpu = (cpuOf(p) - c0) / n;
      out.get(p.name)!.push({ callsPerSecond: (n * 1000) / elapsed, cpuPerCall: cpu });
    }
  }
  return out;
}
