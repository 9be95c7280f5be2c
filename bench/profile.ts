/**
 * `npm run bench:profile`: where the gateway's CPU goes on tools/call. Starts server-everything, the
 * bench issuer and `portcullis serve` under `--cpu-prof` (the same config as `npm run bench`'s
 * gateway row, or with the Kafka outbox when PROFILE_OUTBOX=1), drives echo calls from 8 sessions
 * (or, with PROFILE_LIST=N, tools/list of an N-tool catalogue from one session; with PROFILE_IDLE=1,
 * nothing at all: what the process spends on its own, per second), stops the gateway
 * so V8 writes its profile, and prints:
 *   - self time by part: each of gateway/'s folders, each node_modules package, Node's own
 *     internals by module, GC, and the rest;
 *   - the functions with the most self time;
 *   - inclusive time of the gateway's pipeline stages (every sample under a stage's frame).
 * The profile file stays in the printed folder for Chrome DevTools or speedscope.
 *
 *   npm run bench:profile -- [seconds=20]      PROFILE_OUTBOX=1, PROFILE_LIST=1000, PROFILE_IDLE=1, BENCH_KEEP=1
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { connectMany } from "./support/clients.js";
import { listServer } from "./list-size.js";
import { startBenchBroker } from "./support/kafka-broker.js";
import { cpuMs, runMain, startProcess, stopAll } from "./support/processes.js";
import { printTable } from "./support/report.js";
import { buildBenchBundle, freePort, repoRoot, startEverything, startGateway, startIssuer, workDir } from "./support/setup.js";

const SECONDS = Number(process.argv[2] ?? 20);
const SESSIONS = 8;
const WARMUP_MS = 3000;

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}
interface CpuProfile {
  startTime: number;
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** The part of the code a frame belongs to. */
function partOf(url: string, fn: string): string {
  if (url === "") return fn.startsWith("(") ? fn : "(native)";
  const gw = /\/dist\/gateway\/([^/]+)\//.exec(url);
  if (gw) return `gateway/${gw[1]}`;
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return pkg[1]!;
  if (url.startsWith("node:")) return url.replace(/^node:(internal\/)?/, "node:").replace(/\/.*$/, "");
  return url;
}

/** Self time per node of the samples taken within [fromUs, toUs] (the monotonic clock, which V8's profile and process.hrtime share). */
function summarise(profile: CpuProfile, callsServed: number, fromUs: number, toUs: number): void {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const selfUs = new Map<number, number>();
  let at = profile.startTime;
  profile.samples.forEach((id, i) => {
    const delta = profile.timeDeltas[i] ?? 0;
    at += delta;
    if (at >= fromUs && at <= toUs) selfUs.set(id, (selfUs.get(id) ?? 0) + delta);
  });
  if (selfUs.size === 0) throw new Error("no profile sample falls in the measured window: are the bench and the gateway on one monotonic clock?");
  const totalUs = [...selfUs.values()].reduce((a, b) => a + b, 0);
  const idleUs = [...selfUs].filter(([id]) => byId.get(id)!.callFrame.functionName === "(idle)").reduce((a, [, v]) => a + v, 0);
  const busyUs = totalUs - idleUs;
  const pct = (us: number) => `${((100 * us) / busyUs).toFixed(1)}%`;
  const perCall = (us: number) => (us / callsServed >= 10_000 ? `${(us / callsServed / 1000).toFixed(2)} ms` : `${(us / callsServed).toFixed(1)} µs`);
  process.stdout.write(`\nprofile of the measured window: ${(totalUs / 1e6).toFixed(1)} s sampled, ${(busyUs / 1e6).toFixed(2)} s busy, ${callsServed} calls: ${(busyUs / callsServed / 1000).toFixed(3)} ms busy per call\n`);

  const parts = new Map<string, number>();
  const fns = new Map<string, number>();
  for (const [id, us] of selfUs) {
    const { functionName, url, lineNumber } = byId.get(id)!.callFrame;
    if (functionName === "(idle)") continue;
    const part = partOf(url, functionName);
    parts.set(part, (parts.get(part) ?? 0) + us);
    const key = `${functionName || "(anonymous)"}  ${part}${url ? `:${lineNumber + 1}` : ""}`;
    fns.set(key, (fns.get(key) ?? 0) + us);
  }
  const top = (m: Map<string, number>, n: number) => [...m].sort((a, b) => b[1] - a[1]).slice(0, n);
  process.stdout.write("\nself time by part (busy time = 100%)\n");
  printTable([["part", "share", "per call"], ...top(parts, 25).map(([k, v]) => [k, pct(v), perCall(v)])]);
  process.stdout.write("\nfunctions with the most self time\n");
  printTable([["function  part:line", "share", "per call"], ...top(fns, 30).map(([k, v]) => [k, pct(v), perCall(v)])]);

  // Inclusive: a sample counts once for each gateway function on its stack (recursion counted once).
  const inclusive = new Map<string, number>();
  for (const [id, us] of selfUs) {
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const { functionName, url } = byId.get(cur)!.callFrame;
      if (!/\/dist\/gateway\//.test(url) || functionName === "") continue;
      const key = `${functionName}  ${partOf(url, functionName)}`;
      if (seen.has(key)) continue;
      seen.add(key);
      inclusive.set(key, (inclusive.get(key) ?? 0) + us);
    }
  }
  process.stdout.write("\ngateway functions by inclusive time (their callees included)\n");
  printTable([["function  part", "share", "per call"], ...top(inclusive, 40).map(([k, v]) => [k, pct(v), perCall(v)])]);
}

async function main(): Promise<void> {
  const work = workDir("pc-profile-");
  const outbox = process.env.PROFILE_OUTBOX === "1";
  const broker = outbox ? await startBenchBroker() : undefined;
  if (broker && "skipped" in broker) throw new Error(`PROFILE_OUTBOX=1 needs the bench broker: ${broker.skipped}`);
  const listSize = process.env.PROFILE_LIST ? Number(process.env.PROFILE_LIST) : undefined;
  if (listSize !== undefined && !(Number.isInteger(listSize) && listSize > 0)) throw new Error(`PROFILE_LIST must be a positive integer, got ${process.env.PROFILE_LIST}`);
  const bundle = buildBenchBundle(work, listSize === undefined ? [] : [listServer(listSize)]);
  const issuer = await startIssuer(work);
  const everything = await startEverything();
  const upstreams: Record<string, { url: string }> = { everything: { url: everything.url } };
  if (listSize !== undefined) {
    const port = await freePort();
    await startProcess(process.execPath, [join(repoRoot, "dist/bench/fixtures/many-tools-server.js"), String(port), String(listSize)], { ready: "listening" });
    upstreams[listServer(listSize)] = { url: `http://127.0.0.1:${port}/mcp/${listSize}` };
  }
  const profileDir = join(work, "profile");
  process.env.BENCH_GATEWAY_NODE_ARGS = `--cpu-prof --cpu-prof-dir=${profileDir} ${process.env.BENCH_GATEWAY_NODE_ARGS ?? ""}`;
  const gateway = await startGateway({
    name: "gateway",
    work,
    bundle,
    issuer,
    upstreams,
    ...(broker && "brokers" in broker && {
      audit: { kafka: { brokers: broker.brokers, topic: "portcullis.profile.audit", createTopic: { partitions: 1, replicationFactor: 1 } }, outbox: { dir: join(work, "outbox") } },
    }),
  });
  const what = process.env.PROFILE_IDLE === "1" ? "no calls (figures per second)" : listSize === undefined ? `${SESSIONS} sessions of echo calls` : `one session listing ${listSize} tools`;
  process.stdout.write(`profiling portcullis serve${outbox ? " with the Kafka outbox" : ""}: ${what} for ${SECONDS} s (${repoRoot})\n`);
  const clients = await connectMany(listSize === undefined ? SESSIONS : 1, "v1", gateway.url(listSize === undefined ? "everything" : listServer(listSize)), gateway.token);
  // Warm-up (first sight of the tools, JIT, session set-up) is left out of the summary.
  const idle = process.env.PROFILE_IDLE === "1";
  const drive = async (ms: number): Promise<number> => {
    if (idle) {
      await new Promise((r) => setTimeout(r, ms));
      return ms / 1000; // "per call" reads as per second
    }
    let served = 0;
    const end = performance.now() + ms;
    await Promise.all(clients.map(async (c) => {
      while (performance.now() < end) {
        if (listSize === undefined) await c.echo();
        else await c.listTools();
        served++;
      }
    }));
    return served;
  };
  await drive(WARMUP_MS);
  const fromUs = Number(process.hrtime.bigint() / 1000n);
  const cpu0 = cpuMs(gateway.process.pid);
  const served = await drive(SECONDS * 1000);
  const processCpuMs = cpuMs(gateway.process.pid) - cpu0;
  const toUs = Number(process.hrtime.bigint() / 1000n);
  await Promise.all(clients.map((c) => c.close()));
  await gateway.process.stop();
  const file = readdirSync(profileDir).find((f) => f.endsWith(".cpuprofile"));
  if (!file) throw new Error(`the gateway wrote no profile into ${profileDir}`);
  summarise(JSON.parse(readFileSync(join(profileDir, file), "utf8")) as CpuProfile, served, fromUs, toUs);
  // The profile is of the JS thread; the kernel's figure adds GC helper threads, libuv's pool and system time.
  process.stdout.write(`\nthe process's CPU in the window (every thread, user + system, profiler included): ${(processCpuMs / served).toFixed(3)} ms per ${idle ? "second" : "call"}\n`);
  process.stdout.write(`\nprofile file: ${join(profileDir, file)} (start-up and warm-up are in it too; the summary is of the measured ${SECONDS} s)\n`);
  await stopAll();
}

runMain(main);
