import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { KafkaSink, Outbox, kafkaReadiness, type KafkaSinkOptions } from "../../../gateway/audit/index.js";
import { FakeKafka, protocolError } from "../../fakes/kafka.js";
import { ManualClock, recorder, sampleEvent, sequentialIds, until } from "./helpers.js";

const MISSING_TOPIC_PROBLEM = "topic audit does not exist on the brokers and audit.kafka.createTopic is off: create it, or set audit.kafka.createTopic";

function sink(kafka: FakeKafka, over: Partial<KafkaSinkOptions> = {}): KafkaSink {
  return new KafkaSink({
    brokers: ["127.0.0.1:1"],
    topic: "audit",
    client: kafka,
    logger: () => undefined,
    backoff: { initialMs: 20, maxMs: 100 },
    startTimeoutMs: 100,
    ...over,
  });
}

describe("KafkaSink.health (fake kafkajs client)", () => {
  let dir = "";
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "pc-kafka-health-"));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it("is ok once connected to an existing topic with nothing waiting", async () => {
    const s = sink(new FakeKafka());
    await s.start();
    assert.deepEqual(await s.health(), { ok: true, problems: [] });
    assert.equal(await kafkaReadiness(s), null);
    await s.close();
  });

  it("reports a sink that has not started, and one that is closed", async () => {
    const s = sink(new FakeKafka());
    assert.deepEqual(await s.health(), { ok: false, problems: ["the Kafka sender has not started"] });
    await s.start();
    await s.close();
    assert.deepEqual(await s.health(), { ok: false, problems: ["the Kafka sink is closed"] });
  });

  it("a missing topic at start is an error naming the topic and audit.kafka.createTopic, never 'connected to Kafka'", async () => {
    const kafka = new FakeKafka({ topics: [] });
    const log = recorder();
    const s = sink(kafka, { logger: log.logger });
    await s.start();
    const errors = log.entries.filter((e) => e.level === "error");
    assert.equal(errors.length, 1, JSON.stringify(log.entries));
    assert.match(errors[0]!.msg, /Kafka topic audit does not exist on the brokers and audit\.kafka\.createTopic is off: create it, or set audit\.kafka\.createTopic/);
    assert.equal(errors[0]!.fields.topic, "audit");
    assert.ok(!log.entries.some((e) => /connected to Kafka|not reachable/.test(e.msg)), JSON.stringify(log.entries));
    const health = await s.health();
    assert.equal(health.ok, false);
    assert.deepEqual(health.problems, [MISSING_TOPIC_PROBLEM]);
    assert.equal(await kafkaReadiness(s), MISSING_TOPIC_PROBLEM);
    await s.close();
  });

  it("while the topic is missing, sends nothing, keeps every event and backs off instead of spinning", async () => {
    const kafka = new FakeKafka({ topics: [] });
    const log = recorder();
    const s = sink(kafka, { logger: log.logger });
    await s.start();
    const ids = sequentialIds("ev");
    for (let i = 0; i < 20; i++) await s.write(sampleEvent(ids));
    await new Promise((r) => setTimeout(r, 400));
    assert.equal(kafka.sends.length, 0, "no send to a topic that does not exist (kafkajs would hang in it)");
    assert.equal(kafka.producers.length, 0);
    assert.equal(s.stats().queued, 20);
    // Backoff 20, 40, 80, 100, 100 ms…: a handful of checks in 400 ms; a spinning loop makes thousands.
    assert.ok(kafka.metadataRequests.length >= 3 && kafka.metadataRequests.length <= 10, `${kafka.metadataRequests.length} topic checks in 400 ms`);
    assert.equal(log.entries.filter((e) => e.level === "error").length, 1, "one error line, not one per attempt");
    assert.ok(!log.entries.some((e) => e.level === "warn"), JSON.stringify(log.entries.filter((e) => e.level === "warn")));
    await s.close({ timeoutMs: 20 });
  });

  it("delivers by itself once an operator creates the topic, logs it, and health goes back to ok", async () => {
    const kafka = new FakeKafka({ topics: [] });
    const log = recorder();
    const s = sink(kafka, { logger: log.logger });
    await s.start();
    const ids = sequentialIds("ev");
    const events = Array.from({ length: 5 }, () => sampleEvent(ids));
    for (const e of events) await s.write(e);
    await until(() => kafka.metadataRequests.length >= 2);
    kafka.topics.add("audit");
    await until(() => s.stats().sent === 5);
    assert.deepEqual(kafka.delivered, events.map((e) => e.decision_id));
    assert.ok(log.entries.some((e) => e.level === "info" && /Kafka topic audit exists now; delivery resumes/.test(e.msg)));
    assert.deepEqual(await s.health(), { ok: true, problems: [] });
    await s.close();
  });

  it("notices a topic deleted while running (periodic re-check) and recovers when it is back", async () => {
    const kafka = new FakeKafka();
    const log = recorder();
    const s = sink(kafka, { logger: log.logger, topicCheckIntervalMs: 20 });
    await s.start();
    kafka.topics.delete("audit");
    await until(() => log.entries.some((e) => e.level === "error" && /topic audit does not exist/.test(e.msg)));
    assert.deepEqual((await s.health()).problems, [MISSING_TOPIC_PROBLEM]);
    kafka.topics.add("audit");
    await until(() => log.entries.some((e) => /exists now/.test(e.msg)));
    assert.deepEqual(await s.health(), { ok: true, problems: [] });
    await s.close();
  });

  it("with audit.kafka.createTopic, a missing topic is created and health is ok", async () => {
    const kafka = new FakeKafka({ topics: [] });
    const s = sink(kafka, { createTopic: { partitions: 1, replicationFactor: 1 } });
    await s.start();
    assert.deepEqual(kafka.created, ["audit"]);
    assert.deepEqual(await s.health(), { ok: true, problems: [] });
    await s.close();
  });

  it("names the broker error when Kafka is unreachable", async () => {
    const kafka = new FakeKafka();
    kafka.connectFails = true;
    const s = sink(kafka);
    await s.start();
    const [problem, ...more] = (await s.health()).problems;
    assert.deepEqual(more, []);
    assert.match(String(problem), /^the Kafka brokers 127\.0\.0\.1:1 are unreachable \(for \d+ s\): Connection error: connect ECONNREFUSED/);
    await s.close();
  });

  it("says the broker refuses the sender, and why, when the topic check is denied", async () => {
    const kafka = new FakeKafka();
    kafka.metadataError = protocolError("TOPIC_AUTHORIZATION_FAILED", 29);
    const s = sink(kafka);
    await s.start();
    assert.deepEqual((await s.health()).problems, ["cannot check topic audit on the brokers: TOPIC_AUTHORIZATION_FAILED from the fake broker"]);
    await s.close();
  });

  it("checks the brokers itself when the sender has not heard from them lately, and goes unhealthy when they went away", async () => {
    const clock = new ManualClock();
    const kafka = new FakeKafka();
    const s = sink(kafka, { now: () => clock.now() });
    await s.start();
    assert.deepEqual(await s.health(), { ok: true, problems: [] });
    const asked = kafka.adminConnects;
    assert.deepEqual(await s.health(), { ok: true, problems: [] });
    assert.equal(kafka.adminConnects, asked, "a fresh answer is not asked again");
    kafka.connectFails = true;
    clock.advanceMs(6000);
    const h = await s.health();
    assert.equal(kafka.adminConnects, asked + 1);
    assert.match(h.problems.join("; "), /are unreachable/);
    await s.close();
  });

  it("answers within a second when the brokers hang", async () => {
    const clock = new ManualClock();
    const kafka = new FakeKafka();
    const s = sink(kafka, { now: () => clock.now() });
    await s.start();
    kafka.metadataHangs = true;
    clock.advanceMs(6000);
    const t0 = Date.now();
    const h = await s.health();
    const took = Date.now() - t0;
    assert.ok(took < 1000, `health() took ${took} ms`);
    assert.equal(h.ok, true, "nothing is known to be wrong yet: the last answer was good");
    await s.close({ timeoutMs: 20 });
  });

  it("reports a stalled sender: one batch held for stallMs without Kafka confirming it", async () => {
    const clock = new ManualClock();
    const kafka = new FakeKafka();
    kafka.sendBehaviour = () => "hang";
    const s = sink(kafka, { now: () => clock.now(), stallMs: 60_000 });
    await s.start();
    const ids = sequentialIds();
    for (let i = 0; i < 3; i++) await s.write(sampleEvent(ids));
    await until(() => kafka.sends.length === 1);
    clock.advanceMs(59_000);
    assert.deepEqual(await s.health(), { ok: true, problems: [] });
    clock.advanceMs(2000);
    assert.deepEqual((await s.health()).problems, ["the Kafka sender has had no send confirmed for 61 s while 3 events wait"]);
    await s.close({ timeoutMs: 20 });
  });

  it("an idle sender is not stalled, nor is one that just got its first event after a long idle time", async () => {
    const clock = new ManualClock();
    const kafka = new FakeKafka();
    const s = sink(kafka, { now: () => clock.now(), stallMs: 60_000 });
    await s.start();
    clock.advanceMs(3_600_000);
    assert.deepEqual(await s.health(), { ok: true, problems: [] });
    kafka.sendBehaviour = () => "hang";
    await s.write(sampleEvent());
    await until(() => kafka.sends.length === 1);
    assert.deepEqual(await s.health(), { ok: true, problems: [] });
    await s.close({ timeoutMs: 20 });
  });

  it("names the outbox bound that is passed: bytes (audit.outbox.maxBytes) or age (audit.outbox.maxAgeSeconds)", async () => {
    const clock = new ManualClock();
    const kafka = new FakeKafka({ topics: [] });
    const bytes = await Outbox.open({ dir: join(dir, "bytes"), maxBytes: 4096, logger: () => undefined });
    const s = sink(kafka, { backlog: bytes });
    await s.start();
    const ids = sequentialIds();
    for (let i = 0; i < 5; i++) await s.write(sampleEvent(ids));
    const full = (await s.health()).problems;
    assert.equal(full.length, 2, JSON.stringify(full));
    assert.equal(full[0], MISSING_TOPIC_PROBLEM);
    assert.match(String(full[1]), /^the audit outbox is over its bound: \d+ bytes not yet acknowledged by Kafka, limit 4096 \(audit\.outbox\.maxBytes\)/);
    await s.close({ timeoutMs: 20 });

    const aged = await Outbox.open({ dir: join(dir, "age"), maxAgeSeconds: 60, now: () => clock.now(), logger: () => undefined });
    const t = sink(new FakeKafka({ topics: [] }), { backlog: aged, now: () => clock.now(), stallMs: 3_600_000 });
    await t.start();
    await t.write(sampleEvent(ids));
    clock.advanceMs(61_000);
    assert.match((await t.health()).problems.join("; "), /oldest event waiting 61 s, limit 60 s \(audit\.outbox\.maxAgeSeconds\)/);
    await t.close({ timeoutMs: 20 });
  });
});

describe("kafkaReadiness", () => {
  it("joins the problems into one /readyz reason", async () => {
    assert.equal(await kafkaReadiness({ health: async () => ({ ok: false, problems: ["a", "b"] }) }), "a; b");
    assert.equal(await kafkaReadiness({ health: async () => ({ ok: true, problems: [] }) }), null);
  });
});
