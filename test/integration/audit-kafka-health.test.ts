/**
 * The Kafka sink's health against a real broker with topic auto-creation off (its own,
 * test/support/own-broker.ts; never the shared :9092): a sink pointed at a topic that does not
 * exist logs an error naming the topic and audit.kafka.createTopic, reports it in health(), and
 * keeps every event in the durable outbox; once the topic is created with the kafkajs admin the
 * events arrive and health is ok; with the broker stopped health says it is unreachable.
 * Skipped only with PORTCULLIS_SKIP_KAFKA=1.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Kafka, logLevel } from "kafkajs";
import { KafkaSink, Outbox, kafkaReadiness, type AuditEvent, type KafkaHealth } from "../../gateway/audit/index.js";
import { consumeAll, createTopic, uniqueTopic } from "../support/kafka.js";
import { OwnBroker } from "../support/own-broker.js";
import { recorder, sampleEvent, sequentialIds } from "../unit/audit/helpers.js";

const skip = process.env.PORTCULLIS_SKIP_KAFKA === "1";

/** health() until `want` holds, polled every 250 ms; the last answer when `ms` passes. */
async function healthUntil(sink: KafkaSink, want: (h: KafkaHealth) => boolean, ms: number): Promise<KafkaHealth> {
  const deadline = Date.now() + ms;
  for (;;) {
    const h = await sink.health();
    if (want(h) || Date.now() > deadline) return h;
    await new Promise((r) => setTimeout(r, 250));
  }
}

describe("audit Kafka health with a real broker (auto.create.topics.enable=false)", function () {
  this.timeout(180_000);
  let broker: OwnBroker | null = null;
  let sink: KafkaSink | null = null;
  const work = mkdtempSync(join(tmpdir(), "pc-kafka-health-it-"));
  const topic = uniqueTopic("it.health");
  const log = recorder();
  const ids = sequentialIds("health");
  const events: AuditEvent[] = Array.from({ length: 10 }, () => sampleEvent(ids));

  before(async function () {
    if (skip || !OwnBroker.available()) {
      console.log("    audit-kafka-health: skipped (PORTCULLIS_SKIP_KAFKA=1 or no Kafka jars in .tools/kafka/libs)");
      this.skip();
    }
    broker = await OwnBroker.start();
  });
  after(async () => {
    await sink?.close({ timeoutMs: 1000 });
    await broker?.destroy();
    rmSync(work, { recursive: true, force: true });
  });

  it("runs a broker that does not create topics on its own (the production setting this is about)", async () => {
    const b = broker as OwnBroker;
    const admin = new Kafka({ clientId: "health-it", brokers: b.brokers, logLevel: logLevel.NOTHING }).admin();
    await admin.connect();
    try {
      const { nodeId } = (await admin.describeCluster()).brokers[0]!;
      const r = await admin.describeConfigs({ includeSynonyms: false, resources: [{ type: 4, name: String(nodeId), configNames: ["auto.create.topics.enable"] }] });
      assert.equal(r.resources[0]?.configEntries[0]?.configValue, "false");
    } finally {
      await admin.disconnect();
    }
  });

  it("pointed at a missing topic: an error line names it and the fix, health says so, events wait in the outbox", async () => {
    const b = broker as OwnBroker;
    sink = new KafkaSink({
      brokers: b.brokers,
      topic,
      backlog: await Outbox.open({ dir: join(work, "outbox"), logger: log.logger }),
      logger: log.logger,
      backoff: { initialMs: 100, maxMs: 1000 },
    });
    await sink.start();
    const errors = log.entries.filter((e) => e.level === "error");
    assert.equal(errors.length, 1, JSON.stringify(log.entries.filter((e) => e.level !== "debug")));
    assert.match(errors[0]!.msg, new RegExp(`Kafka topic ${topic.replaceAll(".", "\\.")} does not exist on the brokers and audit\\.kafka\\.createTopic is off: create it, or set audit\\.kafka\\.createTopic`));
    assert.ok(!log.entries.some((e) => /connected to Kafka/.test(e.msg)), "never 'connected to Kafka' while the topic is missing");

    for (const e of events) await sink.write(e);
    await new Promise((r) => setTimeout(r, 2000));
    const problem = `topic ${topic} does not exist on the brokers and audit.kafka.createTopic is off: create it, or set audit.kafka.createTopic`;
    assert.deepEqual(await sink.health(), { ok: false, problems: [problem] });
    assert.equal(await kafkaReadiness(sink), problem);
    const stats = sink.stats();
    assert.deepEqual({ queued: stats.queued, sent: stats.sent, unacked: stats.outbox?.unacked }, { queued: 10, sent: 0, unacked: 10 });
    // Checked, backed off, not spun: 100, 200, 400, 800, 1000 ms… gives a handful of attempts in 2 s.
    assert.ok(stats.sendFailures >= 2 && stats.sendFailures <= 10, `${stats.sendFailures} attempts`);
    assert.equal(log.entries.filter((e) => e.level === "error").length, 1, "one error line, not one per attempt");
  });

  it("once an operator creates the topic, the waiting events are delivered by themselves and health is ok", async () => {
    const b = broker as OwnBroker;
    const s = sink as KafkaSink;
    await createTopic(b.brokers, topic);
    const got = await consumeAll(b.brokers, topic, { expected: events.length, timeoutMs: 30_000 });
    assert.deepEqual(got.map((m) => m.headers["decision-id"]), events.map((e) => e.decision_id));
    const h = await healthUntil(s, (x) => x.ok, 10_000);
    assert.deepEqual(h, { ok: true, problems: [] });
    assert.equal(s.stats().outbox?.unacked, 0);
    assert.ok(log.entries.some((e) => e.level === "info" && e.msg.includes(`Kafka topic ${topic} exists now; delivery resumes`)));
  });

  it("with the broker stopped, health reports it unreachable, naming the broker and the error", async () => {
    const b = broker as OwnBroker;
    const s = sink as KafkaSink;
    await b.stop();
    const h = await healthUntil(s, (x) => x.problems.some((p) => p.includes("unreachable")), 30_000);
    assert.equal(h.ok, false);
    const [problem] = h.problems;
    assert.match(String(problem), new RegExp(`^the Kafka brokers ${b.brokers[0]!.replaceAll(".", "\\.")} are unreachable \\(for \\d+ s\\): .*(ECONNREFUSED|Connection error|connect)`, "i"), JSON.stringify(h));
  });
});
