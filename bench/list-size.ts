/**
 * Issue 13, target 2: tools/list of 10, 100 and 1,000 tools, straight to the upstream
 * (bench/fixtures/many-tools-server.ts) and through the gateway, interleaved request by request;
 * and how many audit events the gateway wrote per list request (the target: exactly one, with
 * `list: {visible, hidden}`, however many items the policy judged).
 *
 * Part of `npm run bench` (bench/run.ts). Knob: BENCH_LIST_REQUESTS (scales the requests per size).
 */
import { setTimeout as sleep } from "node:timers/promises";
import { connect, type BenchClient } from "./support/clients.js";
import { interleavedLatency } from "./support/load.js";
import { fixed, heading, percentile, printTable, ratio, verdict } from "./support/report.js";
import { readAudit, type Gateway } from "./support/setup.js";

export const LIST_SIZES = [10, 100, 1000] as const;
/** Requests per size at scale 1: enough for a stable p50, few enough for the 1,000-tool list. */
const REQUESTS: Record<number, number> = { 10: 200, 100: 60, 1000: 16 };
const SCALE = Number(process.env.BENCH_LIST_REQUESTS ?? 1);

export const listServer = (n: number): string => `tools-${n}`;

export interface ListSetup {
  /** The many-tools server's URL for a catalogue of n tools. */
  directUrl(n: number): string;
  gateway: Gateway;
}

export async function listSize(s: ListSetup): Promise<void> {
  heading("tools/list by catalogue size: direct vs gateway (SDK McpServer upstream, SDK v1 client)");
  const rows: string[][] = [["tools", "requests", "direct p50 ms", "gateway p50 ms", "+ms", "x direct", "gateway CPU/list", "audit events/list", "visible/hidden"]];
  const perList: Array<{ n: number; events: number; requests: number; shape: string }> = [];
  let ratioAt1000 = NaN;
  for (const n of LIST_SIZES) {
    const opened: BenchClient[] = [];
    try {
      const direct = await connect("v1", s.directUrl(n));
      const gated = await connect("v1", s.gateway.url(listServer(n)), s.gateway.token);
      opened.push(direct, gated);
      const got = { direct: await direct.listTools(), gateway: await gated.listTools() };
      // A list the policy cut would make the two paths answer different lists: not a fair ratio.
      if (got.direct !== n || got.gateway !== n) throw new Error(`tools/list of ${n}: direct returned ${got.direct}, the gateway ${got.gateway}`);
      const requests = Math.max(4, Math.round(REQUESTS[n]! * SCALE));
      const warmup = Math.max(2, Math.round(requests / 10));
      const before = countLists(s.gateway.auditFile, listServer(n)).events;
      const lat = await interleavedLatency(
        [
          { name: "direct", client: direct },
          { name: "gateway", client: gated, pid: s.gateway.process.pid },
        ],
        requests,
        warmup,
        (c) => c.listTools(),
      );
      await sleep(200); // the audit line is written before the answer; this only rules out a slow disk
      const after = countLists(s.gateway.auditFile, listServer(n));
      const sent = requests + warmup;
      const events = after.events - before;
      perList.push({ n, events, requests: sent, shape: after.shape });
      const d = percentile(lat.get("direct")!.ms, 50);
      const g = percentile(lat.get("gateway")!.ms, 50);
      if (n === 1000) ratioAt1000 = g / d;
      rows.push([String(n), String(requests), fixed(d), fixed(g), fixed(g - d), ratio(g / d), `${fixed(lat.get("gateway")!.cpuPerCall)} ms`, fixed(events / sent, 2), after.shape]);
    } finally {
      await Promise.all(opened.map((c) => c.close().catch(() => undefined)));
    }
  }
  printTable(rows);
  verdict("2 list of 1,000 tools", ratioAt1000 <= 1.5, `${ratio(ratioAt1000)} direct at p50; target <= 1.5x`);
  const wrong = perList.filter((l) => l.events !== l.requests);
  verdict(
    "2 audit events per list",
    wrong.length === 0,
    wrong.length === 0
      ? `one per list request at every size (${perList.map((l) => `${l.events} for ${l.requests} lists of ${l.n}`).join(", ")})`
      : wrong.map((l) => `${l.events} events for ${l.requests} lists of ${l.n} (${fixed(l.events / l.requests, 1)} per list)`).join("; ") + "; target exactly 1",
  );
}

/** tools/list events of `server` in the audit file, and the shape of the last one's `list` field. */
function countLists(file: string, server: string): { events: number; shape: string } {
  const events = readAudit(file, "tools/list").filter((e) => e.mcp?.method === "tools/list" && e.mcp.server === server);
  const last = events[events.length - 1]?.list;
  const size = (v: unknown) => (Array.isArray(v) ? String(v.length) : v === undefined ? "-" : "truncated");
  return { events: events.length, shape: last ? `${size(last.visible)}/${size(last.hidden)}` : "no list field" };
}
