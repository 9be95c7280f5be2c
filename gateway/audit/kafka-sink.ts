import { setTimeout as sleep } from "node:timers/promises";
import {
  Kafka,
  Partitioners,
  logLevel,
  type Admin,
  type LogEntry,
  type Message,
  type Producer,
  type ProducerConfig,
} from "kafkajs";
import { MemoryBacklog, type AuditBacklog, type BacklogStats, type OutboundMessage } from "./backlog.js";
import { stderrAuditLogger, type AuditLogger, type AuditLogLevel } from "./logger.js";
import type { AuditEvent, AuditSink, SinkCloseReport } from "./types.js";
import type { KafkaSecurityOptions } from "./kafka-security.js";

/** The parts of a kafkajs producer the sink uses (a seam for unit tests). */
export type KafkaProducerLike = Pick<Producer, "connect" | "disconnect" | "send">;
export type KafkaAdminLike = Pick<Admin, "connect" | "disconnect" | "listTopics" | "createTopics">;
export interface KafkaClientLike {
  producer(config: ProducerConfig): KafkaProducerLike;
  admin(): KafkaAdminLike;
}

export interface KafkaSinkOptions {
  brokers: string[];
  topic: string;
  clientId?: string;
  /** Create the topic at start when it is missing (waiting for leaders); false: it must exist. */
  createTopic?: { partitions: number; replicationFactor: number } | false;
  /** Events per produce request (default 500). */
  maxBatch?: number;
  /** Bytes of keys and values per produce request (default 900 000, under the broker's 1 MiB). */
  maxBatchBytes?: number;
  logger?: AuditLogger;
  /** Where accepted events wait for the sender (default in memory; the outbox replaces it). */
  backlog?: AuditBacklog;
  /** How long `start()` waits for the first connection before it returns anyway (default 5000). */
  startTimeoutMs?: number;
  /** Backoff between failed delivery attempts (default 300 ms doubling to 30 s). */
  backoff?: { initialMs: number; maxMs: number };
  /** The message value of an event (default its JSON); e.g. the OCSF rendering for a second topic. */
  encode?: (event: AuditEvent) => string;
  /** TLS and SASL for the client (kafkaSecurityOptions maps audit.kafka.ssl/sasl). */
  security?: KafkaSecurityOptions;
  /** Test seam: the client to use instead of a kafkajs `Kafka` built from the options above. */
  client?: KafkaClientLike;
}

export interface KafkaSinkStats {
  /** Accepted and not yet acknowledged by Kafka. */
  queued: number;
  /** Acknowledged by Kafka (acks: -1). */
  sent: number;
  /** Failed delivery attempts (connect, topic creation or send). */
  sendFailures: number;
  /** Producers created to replace a failed one. */
  producerRecreations: number;
  /** With the durable outbox as backlog: its counters (refusals, fsyncs, unacked bytes, …). */
  outbox?: BacklogStats;
}

export interface KafkaCloseReport extends SinkCloseReport {
  sent: number;
  /** Events accepted but not confirmed by Kafka when the sink closed. */
  remaining: number;
}

/**
 * Audit events to Kafka through one sender loop with exactly one `send()` in flight
 * (reference/kafka-broker-and-kafkajs.md §7): `write()` appends to the backlog and resolves; the
 * loop peeks a batch, sends it with an idempotent producer (acks -1, unbounded retries), and acks
 * the backlog only after Kafka confirmed. A rejected send ends that producer instance (kafkajs
 * cannot recover its sequence state), and the same batch is retried on a new one after a backoff.
 * Duplicates across producers are possible by design; consumers dedupe on `decision_id`.
 */
export class KafkaSink implements AuditSink {
  readonly name: string;
  private readonly opts: KafkaSinkOptions;
  private readonly client: KafkaClientLike;
  private readonly backlog: AuditBacklog;
  private readonly log: AuditLogger;
  private readonly maxBatch: number;
  private readonly maxBatchBytes: number;
  private readonly backoff: { initialMs: number; maxMs: number };

  private producer: KafkaProducerLike | null = null;
  private producersCreated = 0;
  private topicReady: boolean;
  private loop: Promise<void> | null = null;
  private closed = false;
  // Soft stop: drain what is queued, then exit. Hard stop: the close deadline passed.
  private readonly closing = new AbortController();
  private readonly hardStop = new AbortController();
  private counters = { sent: 0, sendFailures: 0, producerRecreations: 0 };

  constructor(opts: KafkaSinkOptions) {
    this.opts = opts;
    this.name = `kafka:${opts.topic}`;
    this.log = opts.logger ?? stderrAuditLogger;
    this.backlog = opts.backlog ?? new MemoryBacklog();
    this.maxBatch = opts.maxBatch ?? 500;
    this.maxBatchBytes = opts.maxBatchBytes ?? 900_000;
    this.backoff = opts.backoff ?? { initialMs: 300, maxMs: 30_000 };
    this.topicReady = !opts.createTopic;
    this.client = opts.client ?? this.buildClient();
  }

  /**
   * Connects (creating the topic if configured) and starts the sender. Resolves even when Kafka
   * is unreachable: the gateway must serve while the sender keeps retrying in the background and
   * events wait in the backlog.
   */
  async start(): Promise<void> {
    if (this.loop || this.closed) return;
    const first = this.ready().then(
      () => true,
      async (err: unknown) => {
        this.log("warn", "audit: Kafka not reachable at start; retrying in the background", errFields(err));
        await this.discardProducer();
        return false;
      },
    );
    // The loop waits for the first attempt so that only one actor ever touches the producer.
    // A throw out of the loop (a backlog that cannot read or ack) must be loud, not an unhandled
    // rejection: events stop moving and stats().queued grows from here on.
    this.loop = first
      .then(() => this.run())
      .catch((err: unknown) => this.log("error", "audit: Kafka sender stopped unexpectedly", errFields(err)));
    const connected = await Promise.race([first, delay(this.opts.startTimeoutMs ?? 5000, "timeout")]);
    if (connected === true) {
      this.log("info", "audit: connected to Kafka", { topic: this.opts.topic, brokers: this.opts.brokers });
    } else if (connected === "timeout") {
      this.log("warn", "audit: still connecting to Kafka; the gateway starts anyway", { topic: this.opts.topic });
    }
  }

  write(event: AuditEvent): Promise<void> {
    if (this.closed) return Promise.reject(new Error(`${this.name}: sink is closed`));
    let msg: OutboundMessage;
    try {
      msg = { decisionId: event.decision_id, key: event.agent.sub ?? "anonymous", value: this.opts.encode ? this.opts.encode(event) : JSON.stringify(event) };
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
    return this.backlog.append([msg]);
  }

  stats(): KafkaSinkStats {
    const outbox = this.backlog.stats?.();
    return { queued: this.backlog.size, ...this.counters, ...(outbox ? { outbox } : {}) };
  }

  /** Back-pressure from a bounded backlog (the outbox): see AuditBacklog.admit. */
  admit(): Promise<void> {
    return this.closed ? Promise.reject(new Error(`${this.name}: sink is closed`)) : (this.backlog.admit?.() ?? Promise.resolve());
  }

  /**
   * Flushes what it can within `timeoutMs` (default 5000), then stops and reports how many
   * accepted events Kafka has not confirmed. They are never reported as sent.
   */
  async close(options: { timeoutMs?: number } = {}): Promise<KafkaCloseReport> {
    this.closed = true;
    this.closing.abort();
    // One deadline for draining and disconnecting: against a frozen broker a disconnect hangs too.
    const deadline = delay(options.timeoutMs ?? 5000, "timeout" as const);
    if (this.loop) {
      const drained = await Promise.race([this.loop.then(() => "done" as const), deadline]);
      if (drained === "timeout") this.hardStop.abort();
    }
    await Promise.race([this.discardProducer(), deadline]);
    // The outbox flushes its last group commit and keeps what is unsent for the next start.
    await this.backlog.close?.();
    const report = { sent: this.counters.sent, remaining: this.backlog.size };
    if (report.remaining > 0) {
      const kept = this.backlog.stats ? " (kept in the durable outbox: sent at the next start)" : "";
      this.log(kept ? "warn" : "error", `audit: closing with ${report.remaining} events not confirmed by Kafka${kept}`, {
        topic: this.opts.topic,
        ...report,
      });
    }
    return report;
  }

  /** The single sender: one batch at a time, acked only after Kafka confirmed it. */
  private async run(): Promise<void> {
    while (!this.hardStop.signal.aborted) {
      if (this.backlog.size === 0) {
        if (this.closing.signal.aborted) return;
        await this.backlog.whenNonEmpty(this.closing.signal);
        continue;
      }
      const batch = await this.backlog.peek(this.maxBatch, this.maxBatchBytes);
      if (!(await this.deliver(batch))) return;
      await this.backlog.ack(batch.length);
      this.counters.sent += batch.length;
    }
  }

  /** Sends `batch` until Kafka confirms it; false only when the hard stop interrupted it. */
  private async deliver(batch: readonly OutboundMessage[]): Promise<boolean> {
    const messages: Message[] = batch.map((m) => ({
      key: m.key,
      value: m.value,
      headers: { "decision-id": m.decisionId },
    }));
    for (let attempt = 1; ; attempt++) {
      if (this.hardStop.signal.aborted) return false;
      try {
        const producer = await this.ready();
        await producer.send({ topic: this.opts.topic, acks: -1, timeout: 30_000, messages });
        return true;
      } catch (err) {
        if (this.hardStop.signal.aborted) return false;
        this.counters.sendFailures++;
        const waitMs = Math.min(this.backoff.maxMs, this.backoff.initialMs * 2 ** Math.min(attempt - 1, 20));
        this.log("warn", "audit: Kafka delivery failed; replacing the producer and retrying the batch", {
          ...errFields(err),
          attempt,
          batch: batch.length,
          firstDecisionId: batch[0]?.decisionId,
          retryInMs: waitMs,
        });
        // kafkajs rolls the sequence back on a failed send and never re-initialises the producer
        // id, so the old instance could reuse a range the broker already holds: never reuse it.
        await this.discardProducer();
        try {
          await sleep(waitMs, undefined, { signal: this.hardStop.signal });
        } catch {
          return false;
        }
      }
    }
  }

  /** Makes sure the topic exists (when configured) and a producer is connected. */
  private async ready(): Promise<KafkaProducerLike> {
    if (!this.topicReady) {
      await this.ensureTopic();
      this.topicReady = true;
    }
    if (this.producer) return this.producer;
    // close() may have discarded the producer while we awaited the topic: do not open another.
    if (this.hardStop.signal.aborted) throw new Error(`${this.name}: closed`);
    const producer = this.client.producer({
      idempotent: true,
      maxInFlightRequests: 1,
      allowAutoTopicCreation: false,
      // Explicit: Kafka#producer() otherwise passes an object and kafkajs falls back to 5 retries
      // (reference §7.2), which reopens the silent-loss window of §7.3.
      retry: { retries: Number.MAX_SAFE_INTEGER },
      // Explicit partitioner: also silences kafkajs's v2 partitioner notice.
      createPartitioner: Partitioners.DefaultPartitioner,
    });
    if (this.producersCreated++ > 0) this.counters.producerRecreations++;
    // Kept before connect() so a close during a hanging connect can still disconnect it.
    this.producer = producer;
    await producer.connect();
    return producer;
  }

  private async ensureTopic(): Promise<void> {
    const spec = this.opts.createTopic;
    if (!spec) return;
    const admin = this.client.admin();
    await admin.connect();
    try {
      const topics = await admin.listTopics();
      if (!topics.includes(this.opts.topic)) {
        await admin.createTopics({
          waitForLeaders: true,
          topics: [{ topic: this.opts.topic, numPartitions: spec.partitions, replicationFactor: spec.replicationFactor }],
        });
        this.log("info", "audit: created Kafka topic", { topic: this.opts.topic, ...spec });
      }
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
  }

  private async discardProducer(): Promise<void> {
    const p = this.producer;
    this.producer = null;
    if (!p) return;
    // Bounded: a disconnect must not hold up recovery or shutdown.
    await Promise.race([p.disconnect().catch(() => undefined), delay(5000, undefined)]);
  }

  private buildClient(): KafkaClientLike {
    // The brief's switch for kafkajs's partitioner notice; harmless with the explicit partitioner.
    process.env.KAFKAJS_NO_PARTITIONER_WARNING ??= "1";
    const log = this.log;
    return new Kafka({
      clientId: this.opts.clientId ?? "portcullis-audit",
      brokers: this.opts.brokers,
      ...(this.opts.security ?? {}),
      connectionTimeout: 3000,
      requestTimeout: 30_000,
      // Connect, metadata and admin retries (the producer overrides with unbounded). Few on
      // purpose: the sender loop retries connects itself, with backoff and a log line per
      // attempt; kafkajs retrying underneath only delays that and outlives close().
      retry: { initialRetryTime: 300, retries: 2 },
      logLevel: logLevel.WARN,
      logCreator: () => (entry: LogEntry) => {
        const { message, timestamp: _ts, ...rest } = entry.log;
        log(kafkajsLevel(entry), `kafkajs: ${message}`, { namespace: entry.namespace, ...rest });
      },
    });
  }
}

/**
 * kafkajs warnings inside a hanging send (Produce request timeouts against a frozen broker) are
 * the only sign of that outage, so they stay warnings. Connection and broker-pool errors are
 * demoted: they come two per connect attempt, and the sender loop already logs every failed
 * attempt with its error.
 */
function kafkajsLevel(entry: LogEntry): AuditLogLevel {
  if (entry.level > logLevel.WARN) return "debug";
  return entry.namespace === "Connection" || entry.namespace === "BrokerPool" ? "debug" : "warn";
}

function errFields(err: unknown): Record<string, unknown> {
  if (err instanceof Error) {
    const retriable = (err as { retriable?: unknown }).retriable;
    return { error: err.message, errorName: err.name, ...(typeof retriable === "boolean" ? { retriable } : {}) };
  }
  return { error: String(err) };
}

/** A timer that does not keep the process alive (a pending start/close race must not). */
function delay<T>(ms: number, value: T): Promise<T> {
  return sleep(ms, value, { ref: false });
}
