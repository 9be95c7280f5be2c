import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { Kafka, logLevel, type Consumer } from "kafkajs";
import { AuditRecord, KafkaSink, type AuditEvent, type AuditLogger } from "../../gateway/audit/index.js";
import type { DecisionOutcome, PolicyInput } from "../../gateway/policy/index.js";
import { systemClock } from "../../gateway/shared/clock.js";

/**
 * KafkaSink against a real broker (KAFKA_BROKERS, default 127.0.0.1:9092; `make kafka-up`).
 * Skipped only when PORTCULLIS_SKIP_KAFKA=1; an unreachable broker otherwise fails the suite, so a
 * missing broker can never pass for a green run.
 */
const brokers = (process.env.KAFKA_BROKERS ?? "127.0.0.1:9092").split(",").map((b) => b.trim());
const skip = process.env.PORTCULLIS_SKIP_KAFKA === "1";

function event(sub: string | null, i: number, ctxIds: () => string): AuditEvent {
  const rec = new AuditRecord(
    { instanceId: "gw-it", version: "0.0.0-it", clock: systemClock, ids: ctxIds, resultCapBytes: 128 },
    { server: "files", method: "tools/call", requestId: i, requestedBy: "127.0.0.1" },
  );
  if (sub === null) {
    rec.fail("auth_missing_token", "no bearer token");
    return rec.finish("unauthenticated");
  }
  const input: PolicyInput = {
    agent: { sub, iss: "https://idp.example.com/", client_id: null, scopes: [], roles: [], claims: { sub } },
    request: {
      method: "tools/call",
      server: "files",
      tool: "read_file",
      arguments: { path: `/data/${i}.csv`, password: "hunter2" },
      resource: null,
      prompt: null,
      session_id: null,
      protocol_version: "2025-11-25",
      source_ip: "127.0.0.1",
      time: new Date().toISOString(),
    },
    tool: null,
  };
  const outcome: DecisionOutcome = {
    decision: { allow: true, reasons: [], mask: ["/input/request/arguments/password"] },
    raw: { allow: true, reasons: [], mask: ["/input/request/arguments/password"] },
    revision: "it-rev",
    elapsedMs: 0.01,
  };
  rec.agent({ sub, client_id: null });
  rec.decision(input, outcome);
  rec.upstreamStarted();
  rec.upstreamFinished();
  rec.toolResult({ content: [{ type: "text", text: `row ${i}` }] });
  return rec.finish("allowed");
}

describe("audit to Kafka (real broker)", function () {
  this.timeout(60_000);
  const logs: string[] = [];
  const logger: AuditLogger = (level, msg, fields) => logs.push(`${level} ${msg} ${JSON.stringify(fields ?? {})}`);
  let admin: ReturnType<Kafka["admin"]> | null = null;
  let consumer: Consumer | null = null;
  const kafka = new Kafka({
    clientId: "portcullis-it",
    brokers,
    connectionTimeout: 3000,
    retry: { retries: 2 },
    logLevel: logLevel.NOTHING,
  });

  before(async function () {
    if (skip) {
      console.log("    audit-kafka: skipped because PORTCULLIS_SKIP_KAFKA=1 (no broker started)");
      this.skip();
    }
    admin = kafka.admin();
    try {
      await admin.connect();
      await admin.listTopics();
    } catch (err) {
      throw new Error(
        `Kafka broker at ${brokers.join(",")} is unreachable (${String(err)}). ` +
          "Start one with `make kafka-up` (or set KAFKA_BROKERS), or set PORTCULLIS_SKIP_KAFKA=1 to skip.",
      );
    }
  });

  after(async () => {
    await consumer?.disconnect();
    await admin?.disconnect();
  });

  afterEach(function () {
    if (this.currentTest?.state === "failed") console.log(logs.join("\n"));
    logs.length = 0;
  });

  it("delivers every event once per decision id, keyed by subject, in the contract 4 shape", async () => {
    const topic = `portcullis-audit-it-${randomUUID()}`;
    const sink = new KafkaSink({
      brokers,
      topic,
      createTopic: { partitions: 1, replicationFactor: 1 },
      maxBatch: 100,
      logger,
    });
    const started = performance.now();
    await sink.start();
    const startMs = performance.now() - started;

    const N = 1000;
    const subs = ["alice", "bob", null];
    const sent = Array.from({ length: N }, (_, i) => event(subs[i % subs.length] as string | null, i, randomUUID));
    const t0 = performance.now();
    await Promise.all(sent.map((e) => sink.write(e)));
    const report = await sink.close({ timeoutMs: 20_000 });
    const drainMs = performance.now() - t0;
    assert.deepEqual(report, { sent: N, remaining: 0 });
    assert.deepEqual(sink.stats(), { queued: 0, sent: N, sendFailures: 0, producerRecreations: 0, deadLettered: 0, sendLagMs: 0 });

    // Short long-poll: disconnect waits for the fetch in progress.
    consumer = kafka.consumer({ groupId: `it-${randomUUID()}`, maxWaitTimeInMs: 100 });
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    const got = new Map<string, { key: string; header: string; value: AuditEvent }>();
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`only ${got.size}/${N} events consumed`)), 30_000);
      void consumer!.run({
        eachMessage: async ({ message }) => {
          const value = JSON.parse(String(message.value)) as AuditEvent;
          got.set(value.decision_id, {
            key: String(message.key),
            header: String(message.headers?.["decision-id"]),
            value,
          });
          if (got.size === N) {
            clearTimeout(timer);
            resolve();
          }
        },
      });
    });
    console.log(`    audit-kafka: start ${startMs.toFixed(0)} ms (incl. topic creation), ${N} events acked in ${drainMs.toFixed(0)} ms`);

    for (const e of sent) {
      const m = got.get(e.decision_id);
      assert.ok(m, `event ${e.decision_id} arrived`);
      assert.equal(m.key, e.agent.sub ?? "anonymous");
      assert.equal(m.header, e.decision_id);
      assert.deepEqual(m.value, JSON.parse(JSON.stringify(e)));
    }
    const sample = got.get(sent[0]!.decision_id)!.value;
    assert.match(sample.timestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/);
    assert.equal(sample.path, "mcp/authz/decision");
    assert.deepEqual(sample.labels, { id: "gw-it", version: "0.0.0-it" });
    assert.deepEqual(sample.bundles, { "mcp-authz": { revision: "it-rev" } });
    assert.deepEqual(sample.masked, ["/input/request/arguments/password"]);
    assert.equal((sample.input as PolicyInput).request.arguments?.password, "**REDACTED**");
    assert.equal(sample.outcome, "allowed");
    assert.deepEqual(sample.mcp.tool, "read_file");
    assert.equal(typeof sample.latency_ms.total, "number");
    assert.equal(sample.tool_result?.is_error, false);
    const anon = got.get(sent[2]!.decision_id)!.value;
    assert.equal(anon.outcome, "unauthenticated");
    assert.equal(anon.input, null);
  });

  it("starts while its broker is unreachable and reports the queued events as not sent on close", async () => {
    // Port 1 on loopback refuses at once: a Kafka that is down.
    const sink = new KafkaSink({ brokers: ["127.0.0.1:1"], topic: "never", logger, startTimeoutMs: 500 });
    const t0 = performance.now();
    await sink.start();
    assert.ok(performance.now() - t0 < 2000, "start() returned without waiting for Kafka");
    const ids = Array.from({ length: 3 }, () => randomUUID());
    let n = 0;
    for (let i = 0; i < 3; i++) await sink.write(event("alice", i, () => ids[n++] as string));
    const report = await sink.close({ timeoutMs: 300 });
    assert.deepEqual(report, { sent: 0, remaining: 3 });
    assert.ok(logs.some((l) => l.startsWith("error") && /3 events not confirmed/.test(l)));
  });
});
