/**
 * The audit poison pill against a real broker (its own, test/support/own-broker.ts; never the
 * shared :9092): a topic created with max.message.bytes 2048, a KafkaSink over the durable
 * outbox, and one event larger than the topic accepts between ordinary ones. The oversized event
 * goes to the dead-letter file, every other event arrives in order, the outbox drains, and the
 * sink's connect-time check names the topic's limit. Skipped only with PORTCULLIS_SKIP_KAFKA=1.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Kafka, logLevel } from "kafkajs";
import { KafkaSink, Outbox, type AuditEvent, type AuditLogger, type KafkaClientLike } from "../../gateway/audit/index.js";
import type { DeadLetterLine } from "../../gateway/audit/readers.js";
import { consumeAll, uniqueTopic } from "../support/kafka.js";
import { OwnBroker } from "../support/own-broker.js";
import { sampleEvent, sequentialIds } from "../unit/audit/helpers.js";

const skip = process.env.PORTCULLIS_SKIP_KAFKA === "1";
const TOPIC_LIMIT = 2048;

describe("audit dead letter with a real broker (topic max.message.bytes 2048)", function () {
  this.timeout(180_000);
  let broker: OwnBroker | null = null;
  const work = mkdtempSync(join(tmpdir(), "pc-dead-letter-it-"));

  before(async function () {
    if (skip || !OwnBroker.available()) {
      console.log("    audit-dead-letter: skipped (PORTCULLIS_SKIP_KAFKA=1 or no Kafka jars in .tools/kafka/libs)");
      this.skip();
    }
    broker = await OwnBroker.start();
  });
  after(async () => {
    await broker?.destroy();
    rmSync(work, { recursive: true, force: true });
  });

  async function createSmallTopic(b: OwnBroker): Promise<string> {
    const topic = uniqueTopic("it.dead-letter");
    const admin = new Kafka({ clientId: "dead-letter-it", brokers: b.brokers, logLevel: logLevel.NOTHING }).admin();
    await admin.connect();
    try {
      await admin.createTopics({ waitForLeaders: true, topics: [{ topic, numPartitions: 1, replicationFactor: 1, configEntries: [{ name: "max.message.bytes", value: String(TOPIC_LIMIT) }] }] });
    } finally {
      await admin.disconnect();
    }
    return topic;
  }

  /** 5 events, one oversized, 100 more through a sink over a fresh outbox; checks what the brief promises. */
  async function poisonRun(name: string, client?: (topic: string) => KafkaClientLike): Promise<Array<{ level: string; msg: string; fields: Record<string, unknown> }>> {
    const b = broker as OwnBroker;
    const topic = await createSmallTopic(b);
    const ids = sequentialIds(name);
    const before = Array.from({ length: 5 }, () => sampleEvent(ids));
    const oversized: AuditEvent = { ...sampleEvent(ids), input: { blob: "x".repeat(4 * TOPIC_LIMIT) } as unknown as AuditEvent["input"] };
    const afterIt = Array.from({ length: 100 }, () => sampleEvent(ids));
    const outboxDir = join(work, name);
    const deadLetterFile = join(outboxDir, "dead-letter.jsonl");
    const logs: Array<{ level: string; msg: string; fields: Record<string, unknown> }> = [];
    const logger: AuditLogger = (level, msg, fields) => logs.push({ level, msg, fields: fields ?? {} });

    const sink = new KafkaSink({
      brokers: b.brokers,
      topic,
      backlog: await Outbox.open({ dir: outboxDir, logger }),
      deadLetterFile,
      maxEventBytes: 512 * 1024,
      logger,
      backoff: { initialMs: 50, maxMs: 500 },
      ...(client ? { client: client(topic) } : {}),
    });
    // Queued before the sender starts, so the first batch holds the oversized event among others.
    for (const e of [...before, oversized, ...afterIt]) await sink.write(e);
    await sink.start();
    const deadline = Date.now() + 60_000;
    while (sink.stats().sent + sink.stats().deadLettered < 106 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    const stats = sink.stats();
    assert.deepEqual({ sent: stats.sent, deadLettered: stats.deadLettered, queued: stats.queued }, { sent: 105, deadLettered: 1, queued: 0 }, JSON.stringify(logs.filter((l) => l.level !== "debug" && l.level !== "info")));
    assert.deepEqual(await sink.close(), { sent: 105, remaining: 0 });

    const got = await consumeAll(b.brokers, topic, { expected: 105, timeoutMs: 30_000 });
    // At-least-once: a duplicate would be legal; the order of first arrivals must be write order.
    const firstSeen = [...new Set(got.map((m) => m.headers["decision-id"]))];
    assert.deepEqual(firstSeen, [...before, ...afterIt].map((e) => e.decision_id));

    const lines = readFileSync(deadLetterFile, "utf8").split("\n").filter((l) => l.length > 0).map((l) => JSON.parse(l) as DeadLetterLine);
    assert.equal(lines.length, 1);
    assert.equal(lines[0]?.decision_id, oversized.decision_id);
    assert.equal(lines[0]?.error.type, "MESSAGE_TOO_LARGE");
    assert.equal(lines[0]?.topic, topic);
    assert.deepEqual(lines[0]?.event, JSON.parse(JSON.stringify(oversized)));

    const deadLetterErrors = logs.filter((l) => l.level === "error" && /moved it to the dead-letter file/.test(l.msg));
    assert.deepEqual(deadLetterErrors.map((l) => l.fields.decision_id), [oversized.decision_id]);

    const reopened = await Outbox.open({ dir: outboxDir, logger });
    try {
      assert.equal(reopened.size, 0, "the outbox moved past the dead-lettered event: a restart resends nothing");
    } finally {
      await reopened.close();
    }
    return logs;
  }

  it("dead-letters the one oversized event and delivers the 100 after it, in order; the connect check names the limit", async () => {
    const logs = await poisonRun("limit-read");
    const limitError = logs.find((l) => l.level === "error" && /accepts records of at most/.test(l.msg));
    assert.ok(limitError, "the connect-time check read the topic's max.message.bytes");
    assert.equal(limitError.fields.maxMessageBytes, TOPIC_LIMIT);
  });

  it("finds the oversized event inside batches the broker refuses as a whole when the limit cannot be read", async () => {
    // The real client, except that DescribeConfigs is denied (as without that ACL): batches are
    // not cut in advance, so the broker refuses whole batches and the sender must split them.
    const client = (): KafkaClientLike => {
      const kafka = new Kafka({ clientId: "dead-letter-it-noacl", brokers: (broker as OwnBroker).brokers, logLevel: logLevel.NOTHING, retry: { retries: 2 } });
      return {
        producer: (config) => kafka.producer(config),
        admin: () => Object.assign(kafka.admin(), { describeConfigs: () => Promise.reject(new Error("Cluster authorization failed")) }),
      };
    };
    const logs = await poisonRun("limit-unknown", client);
    assert.ok(logs.some((l) => l.level === "warn" && /refused a batch permanently/.test(l.msg)), "a whole batch was refused and split");
    assert.ok(logs.some((l) => l.level === "warn" && /cannot read the Kafka topic's max\.message\.bytes/.test(l.msg)));
  });
});
