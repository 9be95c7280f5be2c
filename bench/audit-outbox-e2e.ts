/**
 * Part 3 of bench/audit-outbox.ts: tools/call through a real in-process gateway (JWT, wasm
 * policy, JSONL file sink, Kafka sink to the local broker, demo upstream, SDK client over HTTP),
 * once with the durable outbox and once with `audit.outbox: false`, calls interleaved one at a
 * time so both see the same machine state. The p50 difference is what the outbox adds.
 */
import type { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { uniqueTopic } from "../test/support/kafka.js";
import { startStack, type Stack } from "../test/support/stack.js";

const pct = (sorted: number[], p: number): number => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;

async function clients(stack: Stack, n: number): Promise<Client[]> {
  // The default policy allows one agent 120 echo calls a minute: spread the calls over agents.
  return Promise.all(Array.from({ length: n }, (_, k) => stack.connect("demo", stack.token(`bench-${k}`, ["analyst"])).then((c) => c.client)));
}

export async function endToEnd(brokers: string[], calls: number): Promise<void> {
  const withOutbox = await startStack({ kafka: { brokers, topic: uniqueTopic("bench.e2e.outbox") } });
  const inMemory = await startStack({ kafka: { brokers, topic: uniqueTopic("bench.e2e.memory") }, audit: { outbox: false } });
  try {
    const agents = Math.ceil(calls / 100) + 1;
    const a = await clients(withOutbox, agents);
    const b = await clients(inMemory, agents);
    const times = { outbox: [] as number[], memory: [] as number[] };
    for (let i = 0; i < calls; i++) {
      for (const [kind, cs] of [["outbox", a], ["memory", b]] as const) {
        const t0 = process.hrtime.bigint();
        const r = await cs[i % agents]!.callTool({ name: "echo", arguments: { text: `e2e-${i}` } });
        if (r.isError) throw new Error(`call ${i} failed: ${JSON.stringify(r)}`);
        if (i >= 100) times[kind].push(Number(process.hrtime.bigint() - t0) / 1e6); // first 100: warm-up
      }
    }
    times.outbox.sort((x, y) => x - y);
    times.memory.sort((x, y) => x - y);
    console.log("tools/call through the gateway, 1 in flight (JSONL file + Kafka sinks on both):");
    for (const kind of ["memory", "outbox"] as const) {
      const t = times[kind];
      console.log(`  ${kind.padEnd(6)}: p50 ${pct(t, 50).toFixed(3)} ms  p90 ${pct(t, 90).toFixed(3)}  p99 ${pct(t, 99).toFixed(3)}`);
    }
    console.log(`  → outbox adds ${(pct(times.outbox, 50) - pct(times.memory, 50)).toFixed(3)} ms at p50`);
  } finally {
    await withOutbox.close();
    await inMemory.close();
  }
}
