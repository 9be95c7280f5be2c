/**
 * CPU per audit event on the gateway's side of the audit path: what one tools/call costs from
 * `AuditRecord` (decision, tool result, `finish`) through `AuditLog.record` (hash chain, sinks)
 * to the event being durable, plus the Kafka sender moving it on. Measured with
 * `process.cpuUsage()` over whole runs (the sender's work and the group commits are included),
 * divided by the events of the run; modes interleaved round by round, medians printed.
 *
 *   npx tsc -p tsconfig.json && node dist/bench/audit-cpu.js
 *   KAFKA_BROKERS=host:port   send to a real broker (kafkajs's own encoding is then counted);
 *                             without it the Kafka sink's producer is a stand-in that acks at once
 *   BENCH_EVENTS=4000 BENCH_ROUNDS=7 BENCH_INFLIGHT=1,8 BENCH_MODES=file,outbox
 *   node --cpu-prof dist/bench/audit-cpu.js   profile it
 *
 * The event is shaped like the gateway bench's (bench/gateway-cost.ts): server-everything's echo
 * tool, a JWT identity, the starter policy's answer, the default sensitive-key masking.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomUUID } from "node:crypto";
import { AuditLog, AuditRecord, JsonlFileSink, KafkaSink, Outbox, sensitiveKeyMatcher, type AuditContext, type AuditSink, type KafkaClientLike } from "../gateway/audit/index.js";
import { buildPolicyInput, type McpToolDefinition, type PolicyIdentity } from "../gateway/policy/index.js";
import { systemClock } from "../gateway/shared/clock.js";

const EVENTS = Number(process.env.BENCH_EVENTS ?? 4000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 7);
const INFLIGHT = (process.env.BENCH_INFLIGHT ?? "1,8").split(",").map(Number);
const MODES = (process.env.BENCH_MODES ?? "file,outbox").split(",") as Mode[];
const BROKERS = process.env.KAFKA_BROKERS?.split(",").filter(Boolean) ?? [];
type Mode = "file" | "outbox";
const quiet = (): void => undefined;

/** A producer that acknowledges every send at once: the sender's own loop without a broker. */
const instantKafka: KafkaClientLike = {
  producer: () => ({
    connect: async () => undefined,
    disconnect: async () => undefined,
    send: async (record) => record.messages.map(() => ({ topicName: record.topic, partition: 0, errorCode: 0 })),
  }),
  admin: () =>
    ({
      connect: async () => undefined,
      disconnect: async () => undefined,
      fetchTopicMetadata: async ({ topics }: { topics: string[] }) => ({ topics: topics.map((name) => ({ name, partitions: [{ partitionId: 0, leader: 0, replicas: [0], isr: [0], partitionErrorCode: 0 }] })) }),
      createTopics: async () => true,
      describeConfigs: async () => ({ resources: [] }),
      describeCluster: async () => ({ brokers: [], controller: 0, clusterId: "bench" }),
    }) as unknown as ReturnType<KafkaClientLike["admin"]>,
};

const identity: PolicyIdentity = deepFreeze({
  sub: "bench",
  iss: "http://127.0.0.1:39795",
  client_id: "bench-agent",
  scopes: ["mcp:tools", "mcp:resources", "mcp:prompts"],
  roles: ["analyst"],
  claims: { iss: "http://127.0.0.1:39795", sub: "bench", exp: 1796205851, iat: 1796205551, aud: "http://127.0.0.1:42863/mcp", scope: "mcp:tools mcp:resources mcp:prompts", client_id: "bench-agent", roles: ["analyst"] },
});
const echoTool: McpToolDefinition = {
  name: "echo",
  description: "Echoes back the input string",
  inputSchema: { $schema: "http://json-schema.org/draft-07/schema#", type: "object", properties: { message: { type: "string", description: "Message to echo" } }, required: ["message"] },
  annotations: { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false },
};

const context: AuditContext = {
  instanceId: "bench-gw-1",
  version: "0.1.0",
  clock: systemClock,
  ids: randomUUID,
  resultCapBytes: 4096,
  maskKeys: sensitiveKeyMatcher({ keys: [], defaultKeys: true }),
  bundleRevision: () => "bench",
};

/** One tools/call's record, filled in as the pipeline fills it, and finished. */
function callEvent(i: number) {
  const record = new AuditRecord(context, { server: "everything", method: "tools/call", requestId: i, sessionId: "-AuCFy6s5idnlTCzp1YBtw", requestedBy: "127.0.0.1" });
  record.agent({ sub: identity.sub, client_id: identity.client_id ?? null });
  const input = buildPolicyInput(identity, { method: "tools/call", server: "everything", tool: "echo", arguments: { message: "bench" }, resource: null, prompt: null, session_id: "-AuCFy6s5idnlTCzp1YBtw", protocol_version: "2025-11-25", source_ip: "127.0.0.1", time: new Date().toISOString() }, echoTool);
  // The engine parses a fresh result object out of wasm memory for every decision.
  const raw = { allow: true, reasons: ["role analyst grants tool echo on server everything"], rate_limit: { key: "bench:everything:echo", limit: 120, window_seconds: 60 } };
  record.decision(input, { decision: { allow: true, reasons: raw.reasons }, raw, revision: "bench", elapsedMs: 0.012 });
  record.upstreamStarted();
  record.upstreamFinished();
  record.toolResult({ content: [{ type: "text", text: "Echo: bench" }] });
  return record.finish("allowed");
}

interface Rig {
  log: AuditLog;
  drained(): Promise<void>;
  close(): Promise<void>;
}

async function rig(mode: Mode): Promise<Rig> {
  const dir = mkdtempSync(join(tmpdir(), "pc-bench-audit-cpu-"));
  const sinks: AuditSink[] = [new JsonlFileSink(join(dir, "audit.jsonl"), { logger: quiet, minFreeBytes: 0 })];
  let kafka: KafkaSink | null = null;
  if (mode === "outbox") {
    const backlog = await Outbox.open({ dir: join(dir, "outbox"), logger: quiet });
    kafka = new KafkaSink({ brokers: BROKERS.length > 0 ? BROKERS : ["127.0.0.1:1"], topic: `bench.audit.cpu.${randomUUID().slice(0, 8)}`, createTopic: { partitions: 1, replicationFactor: 1 }, backlog, logger: quiet, ...(BROKERS.length > 0 ? {} : { client: instantKafka }) });
    sinks.push(kafka);
  }
  const log = new AuditLog(sinks, { logger: quiet });
  await log.start();
  return {
    log,
    drained: async () => {
      while (kafka && kafka.stats().queued > 0) await new Promise((r) => setTimeout(r, 1));
    },
    close: async () => {
      await log.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** µs of CPU (user + system) per event for `EVENTS` calls at `inflight` at once. */
async function run(mode: Mode, inflight: number): Promise<{ user: number; system: number }> {
  const r = await rig(mode);
  const drive = async (n: number): Promise<void> => {
    let next = 0;
    await Promise.all(
      Array.from({ length: inflight }, async () => {
        while (next < n) {
          const i = next++;
          await r.log.admit();
          await r.log.record(callEvent(i));
        }
      }),
    );
    await r.drained();
  };
  await drive(Math.min(500, EVENTS)); // warm-up: JIT, first segment, topic
  const before = process.cpuUsage();
  await drive(EVENTS);
  const used = process.cpuUsage(before);
  await r.close();
  return { user: used.user / EVENTS, system: used.system / EVENTS };
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? (s[(s.length - 1) / 2] as number) : ((s[s.length / 2 - 1] as number) + (s[s.length / 2] as number)) / 2;
};

async function main(): Promise<void> {
  console.log(`audit path CPU per event (node ${process.version}, ${EVENTS} events x ${ROUNDS} rounds, Kafka: ${BROKERS.length > 0 ? BROKERS.join(",") : "stand-in producer"}); one event is ${Buffer.byteLength(JSON.stringify(callEvent(0)))} B before its chain`);
  const results = new Map<string, Array<{ user: number; system: number }>>();
  for (let round = 0; round < ROUNDS; round++) {
    for (const inflight of INFLIGHT) {
      for (const mode of MODES) {
        const key = `${mode.padEnd(6)} ${String(inflight).padStart(2)} in flight`;
        const us = await run(mode, inflight);
        results.set(key, [...(results.get(key) ?? []), us]);
      }
    }
  }
  for (const [key, xs] of results) {
    const total = xs.map((x) => x.user + x.system).sort((a, b) => a - b);
    const user = median(xs.map((x) => x.user));
    const system = median(xs.map((x) => x.system));
    console.log(`  ${key}: median ${median(total).toFixed(1)} µs CPU/event (user ${user.toFixed(1)}, system ${system.toFixed(1)}; range ${total[0]?.toFixed(1)}–${total[total.length - 1]?.toFixed(1)})`);
  }
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === "object" && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
