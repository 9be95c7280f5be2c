/**
 * The durable audit outbox (gateway/audit/outbox.ts), measured against the local broker:
 *
 *   1. sender throughput: events per second the single sender (idempotent producer, acks -1, one
 *      batch in flight) moves from a pre-filled outbox to Kafka, with MemoryBacklog for reference;
 *   2. the latency the outbox adds to a tools/call: the time AuditLog.record waits for the
 *      outbox's group-committed append (write + fdatasync), at 1, 8 and 64 requests in flight,
 *      against the in-memory backlog, with the sender draining to Kafka at the same time;
 *   3. end to end: tools/call p50 through a real gateway (SDK client, demo upstream) with the
 *      outbox on and off (`audit.outbox: false`), interleaved.
 *
 *   make kafka-up && npx tsc -p tsconfig.json && node dist/bench/audit-outbox.js
 *   KAFKA_BROKERS=host:port  BENCH_EVENTS=50000  BENCH_CALLS=2000  BENCH_E2E=0 (skip part 3)
 */
import { closeSync, constants, mkdtempSync, openSync, rmSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AuditLog, KafkaSink, MemoryBacklog, Outbox, type AuditBacklog, type AuditEvent } from "../gateway/audit/index.js";
import { createTopic, kafkaBrokers, uniqueTopic } from "../test/support/kafka.js";

const EVENTS = Number(process.env.BENCH_EVENTS ?? 50_000);
const CALLS = Number(process.env.BENCH_CALLS ?? 2000);
const brokers = kafkaBrokers();
const quiet = (): void => undefined;

function sampleEvent(i: number): AuditEvent {
  return {
    decision_id: `bench-${process.pid}-${i}`,
    timestamp: new Date().toISOString(),
    path: "mcp/authz/decision",
    labels: { id: "bench-gw", version: "0.1.0" },
    bundles: { "mcp-authz": { revision: "bench" } },
    input: { agent: { sub: `agent-${i % 16}`, roles: ["analyst"] }, request: { method: "tools/call", server: "demo", tool: "echo", arguments: { text: "x".repeat(300) } } },
    result: { allow: true, reasons: [], mask: [] },
    erased: [],
    masked: [],
    outcome: "allowed",
    agent: { sub: `agent-${i % 16}`, client_id: "bench" },
    mcp: { server: "demo", method: "tools/call", tool: "echo", session_id: "s", request_id: i },
    tool_result: { is_error: false, bytes: 320, sha256: "0".repeat(64), content: "y".repeat(320), truncated: false },
    requested_by: "127.0.0.1",
    latency_ms: { decision: 0.02, upstream: 1.1, total: 1.4 },
  };
}

const pct = (sorted: number[], p: number): number => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
const fmt = (ms: number): string => ms.toFixed(3);

async function waitDrained(sink: KafkaSink): Promise<void> {
  while (sink.stats().queued > 0) await new Promise((r) => setTimeout(r, 5));
}

async function senderThroughput(kind: "outbox" | "memory"): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "pc-bench-outbox-"));
  const backlog: AuditBacklog = kind === "outbox" ? await Outbox.open({ dir, logger: quiet }) : new MemoryBacklog();
  const topic = uniqueTopic("bench.outbox");
  await createTopic(brokers, topic);
  for (let i = 0; i < EVENTS; i += 1000) {
    await backlog.append(Array.from({ length: Math.min(1000, EVENTS - i) }, (_, k) => {
      const e = sampleEvent(i + k);
      return { decisionId: e.decision_id, key: e.agent.sub ?? "anonymous", value: JSON.stringify(e) };
    }));
  }
  const sink = new KafkaSink({ brokers, topic, backlog, logger: quiet });
  const t0 = process.hrtime.bigint();
  await sink.start();
  await waitDrained(sink);
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  console.log(`sender, ${kind.padEnd(6)} backlog: ${EVENTS} events (${Math.round(JSON.stringify(sampleEvent(0)).length)} B each) in ${s.toFixed(2)} s = ${Math.round(EVENTS / s)} events/s to ${brokers.join(",")}`);
  await sink.close();
  rmSync(dir, { recursive: true, force: true });
}

/** AuditLog.record latency with `inflight` concurrent requests, while the sender drains to Kafka. */
async function recordLatency(kind: "outbox" | "memory", inflight: number): Promise<number[]> {
  const dir = mkdtempSync(join(tmpdir(), "pc-bench-outbox-"));
  const backlog: AuditBacklog = kind === "outbox" ? await Outbox.open({ dir, logger: quiet }) : new MemoryBacklog();
  const topic = uniqueTopic("bench.outbox.lat");
  await createTopic(brokers, topic);
  const sink = new KafkaSink({ brokers, topic, backlog, logger: quiet });
  const log = new AuditLog([sink], { logger: quiet });
  await log.start();
  const samples: number[] = [];
  let next = 0;
  await Promise.all(Array.from({ length: inflight }, async () => {
    while (next < CALLS) {
      const e = sampleEvent(next++);
      const t0 = process.hrtime.bigint();
      await log.record(e);
      samples.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
  }));
  const fsyncs = sink.stats().outbox?.fsyncs;
  await waitDrained(sink);
  await log.close();
  rmSync(dir, { recursive: true, force: true });
  samples.sort((a, b) => a - b);
  const extra = fsyncs === undefined ? "" : `, ${fsyncs} fsyncs for ${CALLS} events`;
  console.log(`  ${kind.padEnd(6)} in flight ${String(inflight).padStart(2)}: p50 ${fmt(pct(samples, 50))} ms  p90 ${fmt(pct(samples, 90))}  p99 ${fmt(pct(samples, 99))}${extra}`);
  return samples;
}

/** The floor: a synchronous O_DSYNC write of one event on this disk, and the outbox alone. */
async function appendAlone(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "pc-bench-outbox-"));
  const value = JSON.stringify(sampleEvent(0));
  const fd = openSync(join(dir, "raw"), constants.O_WRONLY | constants.O_CREAT | constants.O_APPEND | constants.O_DSYNC);
  const raw: number[] = [];
  for (let i = 0; i < CALLS; i++) {
    const t0 = process.hrtime.bigint();
    writeSync(fd, `${value}\n`);
    raw.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  closeSync(fd);
  const box = await Outbox.open({ dir: join(dir, "outbox"), logger: quiet });
  const alone: number[] = [];
  for (let i = 0; i < CALLS; i++) {
    const t0 = process.hrtime.bigint();
    await box.append([{ decisionId: `a-${i}`, key: "k", value }]);
    alone.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  await box.close();
  rmSync(dir, { recursive: true, force: true });
  raw.sort((a, b) => a - b);
  alone.sort((a, b) => a - b);
  console.log(`disk floor, O_DSYNC write of one event: p50 ${fmt(pct(raw, 50))} ms  p99 ${fmt(pct(raw, 99))}`);
  console.log(`outbox append alone (no sender), 1 in flight: p50 ${fmt(pct(alone, 50))} ms  p99 ${fmt(pct(alone, 99))}`);
}

async function main(): Promise<void> {
  console.log(`audit outbox bench (node ${process.version}, ${EVENTS} events, ${CALLS} calls per latency run)`);
  await appendAlone();
  await senderThroughput("memory");
  await senderThroughput("outbox");
  console.log("AuditLog.record latency (what a tools/call waits for its Kafka audit append):");
  for (const inflight of [1, 8, 64]) {
    const mem = await recordLatency("memory", inflight);
    const box = await recordLatency("outbox", inflight);
    console.log(`  → outbox adds ${fmt(pct(box, 50) - pct(mem, 50))} ms at p50, ${fmt(pct(box, 99) - pct(mem, 99))} ms at p99 (${inflight} in flight)`);
  }
  if (process.env.BENCH_E2E !== "0") {
    const { endToEnd } = await import("./audit-outbox-e2e.js");
    await endToEnd(brokers, CALLS);
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
