import assert from "node:assert/strict";
import type { ProducerConfig, ProducerRecord, RecordMetadata } from "kafkajs";
import {
  KafkaSink,
  MemoryBacklog,
  type AuditLogger,
  type KafkaAdminLike,
  type KafkaClientLike,
  type KafkaProducerLike,
  type KafkaSinkOptions,
} from "../../../gateway/audit/index.js";
import { sampleEvent, sequentialIds } from "./helpers.js";

/**
 * A scripted kafkajs stand-in. `sendBehaviour` decides each send's fate by call number, so a test
 * can reject a send, hang it, or let it succeed; the fake records every call for assertions.
 */
class FakeKafka implements KafkaClientLike {
  producerConfigs: ProducerConfig[] = [];
  producers: FakeProducer[] = [];
  sends: Array<{ producer: number; record: ProducerRecord }> = [];
  inFlight = 0;
  maxInFlight = 0;
  topics = new Set<string>();
  created: string[] = [];
  connectFails = false;
  sendBehaviour: (n: number) => "ok" | "reject" | "hang" = () => "ok";

  producer(config: ProducerConfig): KafkaProducerLike {
    this.producerConfigs.push(config);
    const p = new FakeProducer(this, this.producers.length);
    this.producers.push(p);
    return p;
  }

  admin(): KafkaAdminLike {
    return {
      connect: async () => {
        if (this.connectFails) throw new Error("connect ECONNREFUSED");
      },
      disconnect: async () => undefined,
      listTopics: async () => [...this.topics],
      createTopics: async (o) => {
        for (const t of o.topics) {
          this.topics.add(t.topic);
          this.created.push(t.topic);
        }
        return true;
      },
    };
  }
}

class FakeProducer implements KafkaProducerLike {
  disconnected = false;
  constructor(
    private readonly kafka: FakeKafka,
    private readonly index: number,
  ) {}
  async connect(): Promise<void> {
    if (this.kafka.connectFails) throw new Error("connect ECONNREFUSED");
  }
  async disconnect(): Promise<void> {
    this.disconnected = true;
  }
  async send(record: ProducerRecord): Promise<RecordMetadata[]> {
    const k = this.kafka;
    k.sends.push({ producer: this.index, record });
    const fate = k.sendBehaviour(k.sends.length);
    k.inFlight++;
    k.maxInFlight = Math.max(k.maxInFlight, k.inFlight);
    try {
      await new Promise((r) => setTimeout(r, 1));
      if (fate === "hang") await new Promise(() => undefined);
      if (fate === "reject") throw new Error("OUT_OF_ORDER_SEQUENCE_NUMBER");
      return [];
    } finally {
      k.inFlight--;
    }
  }
}

const quiet: AuditLogger = () => undefined;

function sink(kafka: FakeKafka, over: Partial<KafkaSinkOptions> = {}): KafkaSink {
  return new KafkaSink({
    brokers: ["127.0.0.1:1"],
    topic: "audit",
    client: kafka,
    logger: quiet,
    backoff: { initialMs: 1, maxMs: 5 },
    startTimeoutMs: 100,
    ...over,
  });
}

async function until(cond: () => boolean, timeoutMs = 2000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 2));
  }
}

describe("KafkaSink (fake kafkajs client)", () => {
  it("configures the producer against the kafkajs 2.2.4 idempotence hazards", async () => {
    const kafka = new FakeKafka();
    const s = sink(kafka);
    await s.start();
    await s.close();
    const cfg = kafka.producerConfigs[0];
    assert.equal(cfg?.idempotent, true);
    assert.equal(cfg?.maxInFlightRequests, 1);
    assert.equal(cfg?.retry?.retries, Number.MAX_SAFE_INTEGER);
    assert.equal(cfg?.allowAutoTopicCreation, false);
  });

  it("sends each event with acks -1, the subject as key and the decision id header", async () => {
    const kafka = new FakeKafka();
    const s = sink(kafka);
    await s.start();
    const ids = sequentialIds();
    const alice = sampleEvent(ids, "alice");
    const anon = { ...sampleEvent(ids), agent: { sub: null, client_id: null } };
    await s.write(alice);
    await s.write(anon);
    const report = await s.close();
    assert.deepEqual(report, { sent: 2, remaining: 0 });
    const messages = kafka.sends.flatMap((x) => x.record.messages);
    assert.ok(kafka.sends.every((x) => x.record.acks === -1 && x.record.topic === "audit"));
    assert.deepEqual(
      messages.map((m) => [m.key, m.headers?.["decision-id"], JSON.parse(String(m.value)).decision_id]),
      [
        ["alice", alice.decision_id, alice.decision_id],
        ["anonymous", anon.decision_id, anon.decision_id],
      ],
    );
  });

  it("keeps exactly one send in flight and batches what queued meanwhile", async () => {
    const kafka = new FakeKafka();
    const s = sink(kafka, { maxBatch: 50 });
    await s.start();
    const ids = sequentialIds("ev");
    for (let i = 0; i < 400; i++) void s.write(sampleEvent(ids));
    await until(() => s.stats().sent === 400);
    assert.equal(kafka.maxInFlight, 1);
    assert.ok(kafka.sends.every((x) => x.record.messages.length <= 50));
    const order = kafka.sends.flatMap((x) => x.record.messages.map((m) => m.headers?.["decision-id"]));
    assert.deepEqual(order, Array.from({ length: 400 }, (_, i) => `ev-${i + 1}`));
    await s.close();
  });

  it("replaces the producer after a rejected send and retries the identical batch", async () => {
    const kafka = new FakeKafka();
    kafka.sendBehaviour = (n) => (n === 1 ? "reject" : "ok");
    const entries: string[] = [];
    const s = sink(kafka, { logger: (level, msg) => entries.push(`${level} ${msg}`) });
    const ids = sequentialIds();
    for (let i = 0; i < 3; i++) await s.write(sampleEvent(ids));
    await s.start();
    await until(() => s.stats().sent === 3);
    assert.equal(kafka.sends.length, 2);
    assert.deepEqual(kafka.sends[1]?.record.messages, kafka.sends[0]?.record.messages);
    assert.equal(kafka.sends[0]?.producer, 0);
    assert.equal(kafka.sends[1]?.producer, 1, "retried on a new producer instance");
    assert.equal(kafka.producers[0]?.disconnected, true);
    assert.deepEqual(s.stats(), { queued: 0, sent: 3, sendFailures: 1, producerRecreations: 1 });
    assert.ok(entries.some((e) => e.startsWith("warn") && /replacing the producer/.test(e)));
    await s.close();
  });

  it("starts while Kafka is down, queues events, and reports them unsent on close", async () => {
    const kafka = new FakeKafka();
    kafka.connectFails = true;
    const s = sink(kafka);
    await s.start(); // must resolve
    const ids = sequentialIds();
    for (let i = 0; i < 5; i++) await s.write(sampleEvent(ids));
    await until(() => s.stats().sendFailures >= 2);
    assert.equal(s.stats().queued, 5);
    assert.equal(s.stats().sent, 0);
    const report = await s.close({ timeoutMs: 30 });
    assert.deepEqual(report, { sent: 0, remaining: 5 });
    assert.equal(kafka.sends.length, 0);
  });

  it("delivers the backlog once Kafka comes back", async () => {
    const kafka = new FakeKafka();
    kafka.connectFails = true;
    const s = sink(kafka);
    await s.start();
    const ids = sequentialIds();
    for (let i = 0; i < 5; i++) await s.write(sampleEvent(ids));
    await until(() => s.stats().sendFailures >= 1);
    kafka.connectFails = false;
    await until(() => s.stats().sent === 5);
    assert.deepEqual(await s.close(), { sent: 5, remaining: 0 });
  });

  it("gives up at the close deadline on a hanging send and counts the batch as remaining", async () => {
    const kafka = new FakeKafka();
    kafka.sendBehaviour = () => "hang";
    const s = sink(kafka);
    await s.start();
    const ids = sequentialIds();
    for (let i = 0; i < 4; i++) await s.write(sampleEvent(ids));
    await until(() => kafka.sends.length === 1);
    const report = await s.close({ timeoutMs: 20 });
    assert.deepEqual(report, { sent: 0, remaining: 4 });
    assert.equal(kafka.producers[0]?.disconnected, true);
  });

  it("creates the topic when configured and missing, and leaves an existing one alone", async () => {
    const kafka = new FakeKafka();
    const s = sink(kafka, { createTopic: { partitions: 1, replicationFactor: 1 } });
    await s.start();
    await s.close();
    assert.deepEqual(kafka.created, ["audit"]);
    const again = sink(kafka, { createTopic: { partitions: 1, replicationFactor: 1 } });
    await again.start();
    await again.close();
    assert.deepEqual(kafka.created, ["audit"]);
  });

  it("logs loudly when the backlog fails under the sender instead of dying silently", async () => {
    const backlog = new MemoryBacklog();
    backlog.ack = () => Promise.reject(new Error("outbox cursor write failed"));
    const entries: string[] = [];
    const s = sink(new FakeKafka(), { backlog, logger: (level, msg, f) => entries.push(`${level} ${msg} ${String(f?.error)}`) });
    await s.start();
    await s.write(sampleEvent());
    await until(() => entries.some((e) => e.startsWith("error audit: Kafka sender stopped")));
    assert.ok(entries.some((e) => /outbox cursor write failed/.test(e)));
    assert.equal(s.stats().queued, 1, "the event is still accounted for");
    assert.deepEqual(await s.close({ timeoutMs: 20 }), { sent: 0, remaining: 1 });
  });

  it("rejects writes after close", async () => {
    const s = sink(new FakeKafka());
    await s.close();
    await assert.rejects(s.write(sampleEvent()), /closed/);
  });

  it("caps a batch by bytes but always sends an oversized event alone", async () => {
    const kafka = new FakeKafka();
    const s = sink(kafka, { maxBatchBytes: 3000 });
    const ids = sequentialIds();
    const big = { ...sampleEvent(ids), input: { blob: "x".repeat(5000) } };
    for (let i = 0; i < 3; i++) await s.write(sampleEvent(ids));
    await s.write(big);
    await s.write(sampleEvent(ids));
    await s.start();
    await until(() => s.stats().sent === 5);
    for (const x of kafka.sends) {
      const bytes = x.record.messages.reduce((n, m) => n + String(m.value).length + String(m.key).length, 0);
      assert.ok(bytes <= 3000 || x.record.messages.length === 1);
    }
    await s.close();
  });
});
