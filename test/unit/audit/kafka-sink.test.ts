import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import kafkajs, { type ProducerRecord } from "kafkajs";
import { recordRefusal } from "../../../gateway/audit/kafka-refusal.js";
import { estimatedBatchBytes } from "../../../gateway/audit/kafka-topic-limit.js";
import type { DeadLetterLine } from "../../../gateway/audit/outbox-dead-letter.js";
import {
  KafkaSink,
  MemoryBacklog,
  Outbox,
  type AuditEvent,
  type AuditLogger,
  type KafkaSinkOptions,
} from "../../../gateway/audit/index.js";
import { FakeKafka, protocolError } from "../../fakes/kafka.js";
import { recorder, sampleEvent, sequentialIds, until, type LogEntry } from "./helpers.js";

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

  it("lingers: events that trickle in share one send, the first after a quiet spell and a close do not wait", async () => {
    const kafka = new FakeKafka();
    const s = sink(kafka, { lingerMs: 300 });
    await s.start();
    const ids = sequentialIds("ev");
    const t0 = performance.now();
    await s.write(sampleEvent(ids));
    await until(() => s.stats().sent === 1);
    assert.ok(performance.now() - t0 < 250, "the first event after a quiet spell goes at once");
    // Three more, one by one, each durable in the backlog before the next: one request for all.
    for (let i = 0; i < 3; i++) {
      await s.write(sampleEvent(ids));
      await new Promise((r) => setTimeout(r, 10));
    }
    assert.equal(s.stats().sent, 1, "a partial batch waits out the linger");
    await until(() => s.stats().sent === 4, 2000);
    assert.deepEqual(kafka.sends.map((x) => x.record.messages.length), [1, 3]);
    // A close drains at once instead of lingering.
    await s.write(sampleEvent(ids));
    const closing = performance.now();
    const report = await s.close();
    assert.deepEqual(report, { sent: 5, remaining: 0 });
    assert.ok(performance.now() - closing < 250, "close does not wait out the linger");
  });

  it("sends a full batch without lingering", async () => {
    const kafka = new FakeKafka();
    const s = sink(kafka, { lingerMs: 10_000, maxBatch: 4 });
    await s.start();
    const ids = sequentialIds("ev");
    await s.write(sampleEvent(ids));
    await until(() => s.stats().sent === 1);
    await Promise.all(Array.from({ length: 4 }, () => s.write(sampleEvent(ids))));
    await until(() => s.stats().sent === 5, 1000);
    assert.deepEqual(kafka.sends.map((x) => x.record.messages.length), [1, 4]);
    await s.close();
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
    assert.deepEqual(s.stats(), { queued: 0, sent: 3, sendFailures: 1, producerRecreations: 1, deadLettered: 0, sendLagMs: 0 });
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

  it("reports how long the sender has held its batch (send lag): growing while Kafka does not confirm, 0 once idle", async () => {
    const kafka = new FakeKafka();
    let release = false;
    kafka.sendBehaviour = () => (release ? "ok" : "reject");
    let now = 10_000;
    const s = sink(kafka, { now: () => now });
    assert.equal(s.stats().sendLagMs, 0, "nothing to send: no lag");
    await s.start();
    const ids = sequentialIds();
    for (let i = 0; i < 3; i++) await s.write(sampleEvent(ids));
    await until(() => s.stats().sendFailures >= 2);
    now += 45_000;
    assert.equal(s.stats().sendLagMs, 45_000, "retries of one batch add up");
    release = true;
    await until(() => s.stats().sent === 3);
    assert.equal(s.stats().sendLagMs, 0);
    await s.close();
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
    const kafka = new FakeKafka({ topics: [] });
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

const idsOf = (events: readonly AuditEvent[]): string[] => events.map((e) => e.decision_id);
const carries = (record: ProducerRecord, id: string): boolean => record.messages.some((m) => m.headers?.["decision-id"] === id);
const readLines = (file: string): DeadLetterLine[] => readFileSync(file, "utf8").split("\n").filter((l) => l.length > 0).map((l) => JSON.parse(l) as DeadLetterLine);

describe("KafkaSink: events Kafka refuses permanently (poison pills)", () => {
  let dir = "";
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "pc-dead-letter-"));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it("moves the refused event to the dead-letter file and delivers every later event, in order", async () => {
    const kafka = new FakeKafka();
    const ids = sequentialIds("ev");
    const events = Array.from({ length: 30 }, () => sampleEvent(ids));
    const poison = events[7]!;
    kafka.refuse = (r) => (carries(r, poison.decision_id) ? protocolError("MESSAGE_TOO_LARGE", 10) : null);
    const log = recorder();
    const file = join(dir, "dead-letter.jsonl");
    const s = sink(kafka, { maxBatch: 5, deadLetterFile: file, logger: log.logger, now: () => Date.UTC(2026, 10, 24, 12) });
    for (const e of events) await s.write(e);
    await s.start();
    await until(() => s.stats().sent === 29);
    assert.deepEqual(kafka.delivered, idsOf(events.filter((e) => e !== poison)));
    assert.deepEqual({ ...s.stats(), sendFailures: undefined, producerRecreations: undefined }, { queued: 0, sent: 29, deadLettered: 1, sendLagMs: 0, sendFailures: undefined, producerRecreations: undefined });

    const [line, ...more] = readLines(file);
    assert.equal(more.length, 0);
    assert.deepEqual(
      { ...line, reason: undefined },
      {
        dead_lettered_at: "2026-11-24T12:00:00.000Z",
        topic: "audit",
        decision_id: poison.decision_id,
        key: "alice",
        reason: undefined,
        error: { type: "MESSAGE_TOO_LARGE", code: 10, message: "MESSAGE_TOO_LARGE from the fake broker" },
        value_bytes: Buffer.byteLength(JSON.stringify(poison)),
        event: JSON.parse(JSON.stringify(poison)) as unknown,
      },
    );
    assert.match(String(line?.reason), /larger than the topic accepts/);
    const errors = log.entries.filter((e) => e.level === "error");
    assert.equal(errors.length, 1, JSON.stringify(errors));
    assert.match(errors[0]!.msg, /dead-letter/);
    assert.equal(errors[0]!.fields.decision_id, poison.decision_id);
    assert.equal(errors[0]!.fields.errorType, "MESSAGE_TOO_LARGE");
    assert.ok(log.entries.some((e) => e.level === "warn" && /one at a time/.test(e.msg)), "the refused batch is split and says so");
    await s.close();
  });

  it("moves the durable outbox's cursor past the dead-lettered event: a restart does not resend it", async () => {
    const kafka = new FakeKafka();
    const ids = sequentialIds("ev");
    const events = Array.from({ length: 12 }, () => sampleEvent(ids));
    const poison = events[0]!;
    kafka.refuse = (r) => (carries(r, poison.decision_id) ? protocolError("INVALID_RECORD", 87) : null);
    const outboxDir = join(dir, "outbox");
    const s = sink(kafka, { backlog: await Outbox.open({ dir: outboxDir, logger: quiet }), deadLetterFile: join(outboxDir, "dead-letter.jsonl") });
    for (const e of events) await s.write(e);
    await s.start();
    await until(() => s.stats().sent === 11);
    assert.deepEqual(await s.close(), { sent: 11, remaining: 0 });
    const reopened = await Outbox.open({ dir: outboxDir, logger: quiet });
    try {
      assert.equal(reopened.size, 0, "nothing left to resend after a restart");
    } finally {
      await reopened.close();
    }
    assert.deepEqual(readLines(join(outboxDir, "dead-letter.jsonl")).map((l) => [l.decision_id, l.error.type]), [[poison.decision_id, "INVALID_RECORD"]]);
  });

  it("never skips the refused event while the dead-letter file cannot be written, and goes on once it can", async () => {
    const kafka = new FakeKafka();
    const ids = sequentialIds("ev");
    const events = Array.from({ length: 6 }, () => sampleEvent(ids));
    const poison = events[2]!;
    kafka.refuse = (r) => (carries(r, poison.decision_id) ? protocolError("MESSAGE_TOO_LARGE", 10) : null);
    const blocker = join(dir, "not-a-directory");
    writeFileSync(blocker, "a file where the dead-letter directory should be");
    const file = join(blocker, "dead-letter.jsonl");
    const log = recorder();
    const s = sink(kafka, { deadLetterFile: file, logger: log.logger });
    for (const e of events) await s.write(e);
    await s.start();
    const cannotWrite = (): LogEntry[] => log.entries.filter((e) => e.level === "error" && /cannot write the dead-letter file/.test(e.msg));
    await until(() => cannotWrite().length >= 3);
    assert.deepEqual(kafka.delivered, idsOf(events.slice(0, 2)), "the events before it went out; none after it");
    assert.equal(s.stats().deadLettered, 0);
    assert.equal(s.stats().queued, 4, "the refused event and the ones behind it wait");
    assert.equal(cannotWrite()[0]!.fields.decision_id, poison.decision_id);

    rmSync(blocker);
    await until(() => s.stats().sent === 5);
    assert.deepEqual(kafka.delivered, idsOf(events.filter((e) => e !== poison)));
    assert.deepEqual(readLines(file).map((l) => l.decision_id), [poison.decision_id]);
    assert.equal(s.stats().deadLettered, 1);
    await s.close();
  });

  it("without a dead-letter file, delivers the events before the refused one and holds it with an error, never dropping it", async () => {
    const kafka = new FakeKafka();
    const ids = sequentialIds("ev");
    const events = Array.from({ length: 4 }, () => sampleEvent(ids));
    kafka.refuse = (r) => (carries(r, events[1]!.decision_id) ? protocolError("MESSAGE_TOO_LARGE", 10) : null);
    const log = recorder();
    const s = sink(kafka, { logger: log.logger });
    for (const e of events) await s.write(e);
    await s.start();
    await until(() => log.entries.filter((e) => e.level === "error" && /no dead-letter file/.test(e.msg)).length >= 2);
    assert.deepEqual(kafka.delivered, [events[0]!.decision_id]);
    assert.deepEqual(await s.close({ timeoutMs: 20 }), { sent: 1, remaining: 3 });
  });

  it("splits a batch refused for its size as a whole, delivers each event alone in order, and cuts later batches smaller", async () => {
    const kafka = new FakeKafka();
    kafka.refuse = (r) => (r.messages.length > 3 ? protocolError("MESSAGE_TOO_LARGE", 10) : null);
    const ids = sequentialIds("ev");
    const events = Array.from({ length: 60 }, () => sampleEvent(ids));
    const log = recorder();
    const s = sink(kafka, { maxBatch: 20, deadLetterFile: join(dir, "dlq.jsonl"), logger: log.logger });
    for (const e of events) await s.write(e);
    await s.start();
    await until(() => s.stats().sent === 60);
    assert.deepEqual(kafka.delivered, idsOf(events));
    assert.equal(s.stats().deadLettered, 0);
    assert.ok(s.stats().sendFailures <= 4, `the limit is learned quickly (${s.stats().sendFailures} refused batches)`);
    const lastRefused = kafka.sends.map((x) => x.record.messages.length > 3).lastIndexOf(true);
    const later = kafka.sends.slice(lastRefused + 1).map((x) => x.record.messages.length);
    assert.ok(later.every((n) => n <= 3) && later.some((n) => n > 1), `later batches still batch, under the limit: ${kafka.sends.map((x) => x.record.messages.length).join(",")}`);
    assert.ok(log.entries.some((e) => /cut smaller/.test(e.msg)));
    assert.equal(existsSync(join(dir, "dlq.jsonl")), false, "nothing was dead-lettered");
    await s.close();
  });

  it("retries a permanent error that is about access, not the record, instead of dead-lettering every event", async () => {
    const kafka = new FakeKafka();
    let denials = 3;
    kafka.refuse = () => (denials-- > 0 ? protocolError("TOPIC_AUTHORIZATION_FAILED", 29) : null);
    const ids = sequentialIds("ev");
    const s = sink(kafka, { deadLetterFile: join(dir, "dlq.jsonl") });
    for (let i = 0; i < 3; i++) await s.write(sampleEvent(ids));
    await s.start();
    await until(() => s.stats().sent === 3);
    assert.deepEqual({ deadLettered: s.stats().deadLettered, sendFailures: s.stats().sendFailures }, { deadLettered: 0, sendFailures: 3 });
    assert.equal(existsSync(join(dir, "dlq.jsonl")), false);
    await s.close();
  });
});

describe("recordRefusal (which kafkajs errors dead-letter an event)", () => {
  // The real kafkajs error classes (only on the CommonJS default export).
  const { KafkaJSNonRetriableError, KafkaJSProtocolError } = kafkajs as unknown as {
    KafkaJSNonRetriableError: new (e: Error) => Error;
    KafkaJSProtocolError: new (e: Error) => Error;
  };
  const protocol = (type: string, code: number, retriable: boolean): Error => new KafkaJSProtocolError({ name: "KafkaJSProtocolError", message: `${type} message`, type, code, retriable } as unknown as Error);
  const cases: Array<{ note: string; err: unknown; type: string | null }> = [
    { note: "MESSAGE_TOO_LARGE as kafkajs rejects it", err: protocol("MESSAGE_TOO_LARGE", 10, false), type: "MESSAGE_TOO_LARGE" },
    { note: "INVALID_RECORD", err: protocol("INVALID_RECORD", 87, false), type: "INVALID_RECORD" },
    { note: "RECORD_LIST_TOO_LARGE", err: protocol("RECORD_LIST_TOO_LARGE", 18, false), type: "RECORD_LIST_TOO_LARGE" },
    { note: "CORRUPT_MESSAGE, although kafkajs marks it retriable", err: protocol("CORRUPT_MESSAGE", 2, true), type: "CORRUPT_MESSAGE" },
    { note: "a refusal wrapped as the cause of a KafkaJSNonRetriableError", err: Object.assign(new KafkaJSNonRetriableError(protocol("MESSAGE_TOO_LARGE", 10, false)), { cause: protocol("MESSAGE_TOO_LARGE", 10, false) }), type: "MESSAGE_TOO_LARGE" },
    { note: "not an authorization error", err: protocol("TOPIC_AUTHORIZATION_FAILED", 29, false), type: null },
    { note: "not a producer-state error", err: protocol("OUT_OF_ORDER_SEQUENCE_NUMBER", 45, false), type: null },
    { note: "not a connection error", err: new Error("connect ECONNREFUSED"), type: null },
    { note: "not a non-error", err: "MESSAGE_TOO_LARGE", type: null },
  ];
  for (const c of cases) {
    it(c.note, () => {
      const r = recordRefusal(c.err);
      assert.equal(r?.type ?? null, c.type);
      if (r) assert.ok(r.reason.length > 0 && typeof r.code === "number");
    });
  }
});

describe("KafkaSink: the topic's max.message.bytes", () => {
  const maxEventBytes = 512 * 1024;

  async function connectOnce(kafka: FakeKafka, over: Partial<KafkaSinkOptions> = {}): Promise<LogEntry[]> {
    const log = recorder();
    const s = sink(kafka, { maxEventBytes, logger: log.logger, ...over });
    await s.start();
    await s.close();
    return log.entries;
  }

  it("logs an error naming the topic's limit, audit.maxEventBytes and the fix when the largest event cannot fit", async () => {
    const kafka = new FakeKafka();
    kafka.topicConfigs.set("audit", { "max.message.bytes": "2048" });
    const errors = (await connectOnce(kafka)).filter((e) => e.level === "error");
    assert.equal(errors.length, 1, JSON.stringify(errors));
    const { msg, fields } = errors[0]!;
    assert.match(msg, /accepts records of at most 2048 bytes \(topic audit max\.message\.bytes\)/);
    assert.match(msg, /audit\.maxEventBytes 524288 \+ 512/);
    assert.match(msg, /--add-config max\.message\.bytes=524800/);
    assert.deepEqual({ ...fields, source: undefined }, { topic: "audit", maxMessageBytes: 2048, maxEventBytes, overheadBytes: 512, source: undefined });
    assert.deepEqual(kafka.describeRequests[0], [{ type: 2, name: "audit", configNames: ["max.message.bytes"] }]);
  });

  it("falls back to the smallest broker message.max.bytes when the topic's config cannot be read", async () => {
    const kafka = new FakeKafka();
    kafka.describeFails.add(2);
    kafka.brokerConfigs.set("1", { "message.max.bytes": "600000" });
    kafka.brokerConfigs.set("2", { "message.max.bytes": "100000" });
    const errors = (await connectOnce(kafka)).filter((e) => e.level === "error");
    assert.equal(errors.length, 1, JSON.stringify(errors));
    assert.equal(errors[0]!.fields.maxMessageBytes, 100000);
    assert.match(String(errors[0]!.fields.source), /broker message\.max\.bytes/);
  });

  it("only notes the limit when the largest event fits, and goes on when it cannot be read at all", async () => {
    const fits = new FakeKafka();
    fits.topicConfigs.set("audit", { "max.message.bytes": "1048588" });
    const entries = await connectOnce(fits);
    assert.deepEqual(entries.filter((e) => e.level === "error" || e.level === "warn"), []);
    assert.ok(entries.some((e) => e.level === "info" && e.fields.maxMessageBytes === 1048588));

    const unreadable = new FakeKafka();
    unreadable.describeFails.add(2).add(4);
    unreadable.brokerConfigs.set("1", {});
    const log = recorder();
    const s = sink(unreadable, { maxEventBytes, logger: log.logger });
    await s.start();
    await s.write(sampleEvent());
    await until(() => s.stats().sent === 1);
    await s.close();
    assert.ok(log.entries.some((e) => e.level === "warn" && /cannot read the Kafka topic's max\.message\.bytes/.test(e.msg)));
  });

  it("cuts batches to the topic's limit so none is refused for its size", async () => {
    const kafka = new FakeKafka();
    const limit = 6000;
    kafka.topicConfigs.set("audit", { "max.message.bytes": String(limit) });
    kafka.refuse = (r) => (estimatedBatchBytes(r.messages.map((m) => ({ decisionId: String(m.headers?.["decision-id"]), key: String(m.key), value: String(m.value) }))) > limit ? protocolError("MESSAGE_TOO_LARGE", 10) : null);
    const ids = sequentialIds("ev");
    const events = Array.from({ length: 40 }, () => sampleEvent(ids));
    const s = sink(kafka, { maxBatch: 500 });
    for (const e of events) await s.write(e);
    await s.start();
    await until(() => s.stats().sent === 40);
    assert.equal(s.stats().sendFailures, 0);
    assert.deepEqual(kafka.delivered, idsOf(events));
    assert.ok(kafka.sends.every((x) => x.record.messages.length > 1), "still batched");
    await s.close();
  });
});
