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
import { KafkaHealthTracker, type KafkaHealth } from "./kafka-health.js";
import { isSizeRefusal, recordRefusal, type KafkaRefusal } from "./kafka-refusal.js";
import { TopicCheck, TopicMissingError } from "./kafka-topic-check.js";
import { estimatedBatchBytes, fittingCount, probeTopicLimit, type TopicMessageLimit } from "./kafka-topic-limit.js";
import { stderrAuditLogger, type AuditLogger, type AuditLogLevel } from "./logger.js";
import { DeadLetterFile, deadLetterLine } from "./outbox-dead-letter.js";
import type { EncodedEvent } from "./jsonl.js";
import type { AuditEvent, AuditSink, SinkCloseReport } from "./types.js";
import type { KafkaSecurityOptions } from "./kafka-security.js";
import { applyKafkaJsIdleFix } from "./kafkajs-idle-fix.js";

/** The parts of a kafkajs producer the sink uses (a seam for unit tests). */
export type KafkaProducerLike = Pick<Producer, "connect" | "disconnect" | "send">;
export type KafkaAdminLike = Pick<Admin, "connect" | "disconnect" | "fetchTopicMetadata" | "createTopics" | "describeConfigs" | "describeCluster">;
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
  /**
   * A batch that is not full waits until this long after the previous send started (default
   * 50 ms; 0: never waits), so events that trickle in share a produce request instead of paying
   * one each. A full batch, the first event after a quiet spell and a closing sink never wait.
   * Delays delivery to Kafka only: an event is durable in the backlog before the agent's answer.
   */
  lingerMs?: number;
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
  /**
   * Where an event Kafka refuses permanently (kafka-refusal.ts) goes, so the events behind it keep
   * flowing (audit.kafka.deadLetterFile). Without it such an event is retried forever, with an
   * error logged per attempt: it blocks the stream, but nothing is dropped.
   */
  deadLetterFile?: string;
  /**
   * The largest event the gateway builds (audit.maxEventBytes). At connect the sink reads the
   * topic's max.message.bytes and logs an error when it is below this plus RECORD_OVERHEAD_BYTES.
   */
  maxEventBytes?: number;
  /** Clock for the dead-letter timestamps, stats().sendLagMs and health() ages (default Date.now). */
  now?: () => number;
  /** How often the topic's existence is checked again while the sink runs (default 30 000 ms). */
  topicCheckIntervalMs?: number;
  /** A send lag (stats().sendLagMs) this long makes health() report a stalled sender (default 60 000 ms). */
  stallMs?: number;
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
  /** Events Kafka refused permanently, written to the dead-letter file and acknowledged in the backlog. */
  deadLettered: number;
  /**
   * How long the sender has been delivering the batch it holds, retries included (0 while it
   * waits for events). Unlike the oldest event's age it does not grow with a long backlog that
   * moves, only when Kafka stops confirming (`portcullis_audit_kafka_send_lag_seconds`).
   */
  sendLagMs: number;
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
 *
 * An event Kafka refuses permanently (kafka-refusal.ts: too large, invalid) is not retried
 * forever: a refused batch is re-sent one event at a time, and each refused event is appended to
 * the dead-letter file before the backlog moves past it (stats().deadLettered). Batches are cut
 * to the topic's max.message.bytes, read at connect (kafka-topic-limit.ts).
 *
 * The topic must exist before anything is sent: kafkajs retries a send to a missing topic inside
 * `send()` forever and says nothing, so the sender checks it first (fetchTopicMetadata), logs an
 * error naming the topic and the fix when it is missing, and backs off with the events kept in
 * the backlog until an operator creates it. `health()` (kafka-health.ts) says whether the sink
 * can deliver now, for /readyz.
 */
export class KafkaSink implements AuditSink {
  readonly name: string;
  private readonly opts: KafkaSinkOptions;
  private readonly client: KafkaClientLike;
  private readonly backlog: AuditBacklog;
  private readonly log: AuditLogger;
  private readonly maxBatch: number;
  private readonly maxBatchBytes: number;
  private readonly lingerMs: number;
  /** performance.now() when the last batch was handed to the producer (the linger counts from it). */
  private lastSendAt = Number.NEGATIVE_INFINITY;
  private readonly backoff: { initialMs: number; maxMs: number };

  private producer: KafkaProducerLike | null = null;
  private producersCreated = 0;
  private readonly topicCheck: TopicCheck;
  private topicTimer: NodeJS.Timeout | null = null;
  private readonly tracker: KafkaHealthTracker;
  private loop: Promise<void> | null = null;
  private closed = false;
  // Soft stop: drain what is queued, then exit. Hard stop: the close deadline passed.
  private readonly closing = new AbortController();
  private readonly hardStop = new AbortController();
  private counters = { sent: 0, sendFailures: 0, producerRecreations: 0, deadLettered: 0 };
  private readonly deadLetter: DeadLetterFile | null;
  private readonly now: () => number;
  /** When the sender took the batch it is delivering; null while it waits for events. */
  private deliveringSince: number | null = null;
  /** The topic's batch limit once read at connect (null: unknown, not cut). */
  private topicLimit: TopicMessageLimit | null = null;
  private limitTriedAt = Number.NEGATIVE_INFINITY;
  /** Learned from a whole batch refused for its size while each of its events was accepted alone. */
  private learnedBatchLimit = Number.POSITIVE_INFINITY;

  constructor(opts: KafkaSinkOptions) {
    this.opts = opts;
    this.name = `kafka:${opts.topic}`;
    this.log = opts.logger ?? stderrAuditLogger;
    this.backlog = opts.backlog ?? new MemoryBacklog();
    this.maxBatch = opts.maxBatch ?? 500;
    this.maxBatchBytes = opts.maxBatchBytes ?? 900_000;
    this.lingerMs = Math.max(0, opts.lingerMs ?? DEFAULT_LINGER_MS);
    this.backoff = opts.backoff ?? { initialMs: 300, maxMs: 30_000 };
    this.client = opts.client ?? this.buildClient();
    this.deadLetter = opts.deadLetterFile ? new DeadLetterFile(opts.deadLetterFile) : null;
    this.now = opts.now ?? Date.now;
    this.tracker = new KafkaHealthTracker({
      topic: opts.topic,
      brokers: opts.brokers,
      createsTopic: Boolean(opts.createTopic),
      stallMs: opts.stallMs ?? 60_000,
      sendLagMs: () => this.stats().sendLagMs,
      backlog: this.backlog,
      now: this.now,
      log: this.log,
    });
    this.topicCheck = new TopicCheck({ topic: opts.topic, createTopic: opts.createTopic ?? false, admin: () => this.client.admin(), tracker: this.tracker, log: this.log });
  }

  /**
   * Connects (creating the topic if configured) and starts the sender. Resolves even when Kafka
   * is unreachable: the gateway must serve while the sender keeps retrying in the background and
   * events wait in the backlog.
   */
  async start(): Promise<void> {
    if (this.loop || this.closed) return;
    this.tracker.started();
    const first = this.ready().then(
      () => true,
      async (err: unknown) => {
        // A missing topic has already been logged as an error naming the fix (kafka-health.ts).
        if (!(err instanceof TopicMissingError)) this.log("warn", "audit: Kafka not reachable at start; retrying in the background", errFields(err));
        await this.discardProducer();
        return false;
      },
    );
    // The loop waits for the first attempt so that only one actor ever touches the producer.
    // A throw out of the loop (a backlog that cannot read or ack) must be loud, not an unhandled
    // rejection: events stop moving and stats().queued grows from here on.
    this.loop = first
      .then(() => this.run())
      .catch((err: unknown) => {
        this.tracker.senderStopped(err);
        this.log("error", "audit: Kafka sender stopped unexpectedly", errFields(err));
      });
    // A topic deleted while the gateway runs shows in health() and the log, not only at start.
    this.topicTimer = setInterval(() => void this.topicCheck.run().catch(() => undefined), this.opts.topicCheckIntervalMs ?? 30_000);
    this.topicTimer.unref();
    const connected = await Promise.race([first, delay(this.opts.startTimeoutMs ?? 5000, "timeout")]);
    if (connected === true) {
      this.log("info", "audit: connected to Kafka", { topic: this.opts.topic, brokers: this.opts.brokers });
    } else if (connected === "timeout") {
      this.log("warn", "audit: still connecting to Kafka; the gateway starts anyway", { topic: this.opts.topic });
    }
  }

  write(event: AuditEvent, encoded?: EncodedEvent): Promise<void> {
    if (this.closed) return Promise.reject(new Error(`${this.name}: sink is closed`));
    let msg: OutboundMessage;
    try {
      const value = this.opts.encode ? this.opts.encode(event) : (encoded?.json ?? JSON.stringify(event));
      msg = { decisionId: event.decision_id, key: event.agent.sub ?? "anonymous", value };
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
    return this.backlog.append([msg]);
  }

  stats(): KafkaSinkStats {
    const outbox = this.backlog.stats?.();
    const sendLagMs = this.deliveringSince === null ? 0 : Math.max(0, this.now() - this.deliveringSince);
    return { queued: this.backlog.size, ...this.counters, sendLagMs, ...(outbox ? { outbox } : {}) };
  }

  /**
   * Whether the sink can deliver now (kafka-health.ts): the brokers answer, the topic exists, the
   * outbox is under its bounds and the sender is not stalled. Answers from what the sender saw;
   * when the brokers have not been heard from for HEALTH_FRESH_MS it checks the topic first,
   * waiting at most HEALTH_PROBE_WAIT_MS (a hung broker must not hang /readyz).
   */
  async health(): Promise<KafkaHealth> {
    if (this.loop && !this.closed && this.now() - this.tracker.heardAt() >= HEALTH_FRESH_MS) {
      const checked = this.topicCheck.run().then(
        () => undefined,
        () => undefined,
      );
      await Promise.race([checked, delay(HEALTH_PROBE_WAIT_MS, undefined)]);
    }
    const problems = this.tracker.problems(this.closed);
    return { ok: problems.length === 0, problems };
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
    if (this.topicTimer) clearInterval(this.topicTimer);
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
        this.deliveringSince = null;
        if (this.closing.signal.aborted) return;
        await this.backlog.whenNonEmpty(this.closing.signal);
        continue;
      }
      await this.linger();
      // Each batch starts its own clock: a backlog that drains batch after batch shows no lag.
      this.deliveringSince = this.now();
      const peeked = await this.backlog.peek(this.maxBatch, this.maxBatchBytes);
      // Under the topic's batch limit (kafka-topic-limit.ts); the rest stays for the next batch.
      const batch = peeked.slice(0, fittingCount(peeked, this.batchLimit()));
      const result = await this.deliver(batch);
      if (result.kind === "stopped") return;
      if (result.kind === "sent") {
        await this.backlog.ack(batch.length);
        this.counters.sent += batch.length;
        continue;
      }
      if (batch.length > 1) {
        this.log("warn", "audit: Kafka refused a batch permanently; sending its events one at a time to find the refused ones", {
          ...refusalFields(result.refusal),
          batch: batch.length,
          firstDecisionId: batch[0]?.decisionId,
        });
      }
      const isolated = await this.oneByOne(batch.length, batch.length === 1 ? result.refusal : null);
      if (isolated === "stopped") return;
      if (isolated === 0 && batch.length > 1 && isSizeRefusal(result.refusal)) {
        // Every event went through alone: the batch was too big as a whole (the topic's limit could
        // not be read, or is below what it said). Cut later batches to the size of its first half.
        this.learnedBatchLimit = estimatedBatchBytes(batch.slice(0, Math.floor(batch.length / 2)));
        this.log("warn", "audit: Kafka refused a batch for its size; later batches are cut smaller", { batchLimitBytes: this.learnedBatchLimit });
      }
    }
  }

  /**
   * Waits, when the batch would not be full, until `lingerMs` after the previous send: at one
   * call in flight every event would otherwise be a produce request of its own, and a request
   * costs the gateway about as much CPU as the call it records. One timer per batch, none per event.
   */
  private async linger(): Promise<void> {
    if (this.lingerMs === 0 || this.backlog.size >= this.maxBatch || this.closing.signal.aborted) return;
    const waitMs = this.lastSendAt + this.lingerMs - performance.now();
    if (waitMs <= 0) return;
    // A close ends the wait at once: it drains what is queued without lingering.
    await sleep(waitMs, undefined, { signal: this.closing.signal, ref: false }).catch(() => undefined);
  }

  private batchLimit(): number {
    return Math.min(this.learnedBatchLimit, this.topicLimit?.bytes ?? Number.POSITIVE_INFINITY);
  }

  /**
   * Delivers the next `count` events of the backlog one at a time, in order: those Kafka accepts
   * are sent, those it refuses permanently are dead-lettered, so only the culprits leave the
   * stream. `knownRefusal`: the first event's refusal is already known (a batch of one).
   * Returns how many were dead-lettered, or "stopped" (hard stop).
   */
  private async oneByOne(count: number, knownRefusal: KafkaRefusal | null): Promise<number | "stopped"> {
    let deadLettered = 0;
    for (let i = 0; i < count; i++) {
      // peek/ack in steps of one: an ack applies to the last peek.
      const [msg] = await this.backlog.peek(1, this.maxBatchBytes);
      if (!msg) break;
      const outcome = await this.settle(msg, i === 0 ? knownRefusal : null);
      if (outcome === "stopped") return "stopped";
      await this.backlog.ack(1);
      // Each event sent alone is a batch of its own for the send lag.
      this.deliveringSince = this.now();
      if (outcome === "sent") {
        this.counters.sent++;
      } else {
        this.counters.deadLettered++;
        deadLettered++;
      }
    }
    return deadLettered;
  }

  /** One event, until Kafka took it ("sent"), the dead-letter file took it ("dead"), or the hard stop. */
  private async settle(msg: OutboundMessage, knownRefusal: KafkaRefusal | null): Promise<"sent" | "dead" | "stopped"> {
    let result: DeliveryResult = knownRefusal ? { kind: "refused", refusal: knownRefusal } : await this.deliver([msg]);
    for (let attempt = 1; result.kind === "refused"; attempt++) {
      if (await this.moveToDeadLetter(msg, result.refusal)) return "dead";
      // Never skip an event that is on record nowhere else: it stays at the head (later events
      // wait, back-pressure follows) and is tried again, on Kafka first: its limit may have been
      // raised meanwhile.
      if (!(await this.pause(attempt))) return "stopped";
      result = await this.deliver([msg]);
    }
    return result.kind;
  }

  /** Writes the refused event to the dead-letter file; false (logged loudly) when it could not. */
  private async moveToDeadLetter(msg: OutboundMessage, refusal: KafkaRefusal): Promise<boolean> {
    const fields = { topic: this.opts.topic, decision_id: msg.decisionId, valueBytes: Buffer.byteLength(msg.value), ...refusalFields(refusal) };
    if (!this.deadLetter) {
      this.log("error", "audit: Kafka refuses this event permanently and no dead-letter file is configured: it blocks every later event until it is accepted", fields);
      return false;
    }
    try {
      await this.deadLetter.append(deadLetterLine(msg, this.opts.topic, refusal, new Date(this.now())));
    } catch (err) {
      this.log("error", "audit: cannot write the dead-letter file; the event Kafka refuses stays in the outbox and blocks every later event until the file is writable", {
        ...fields,
        deadLetterFile: this.deadLetter.path,
        deadLetterError: err instanceof Error ? err.message : String(err),
      });
      return false;
    }
    this.log("error", "audit: Kafka refused an event permanently; moved it to the dead-letter file", { ...fields, deadLetterFile: this.deadLetter.path });
    return true;
  }

  /**
   * Sends `batch` until Kafka confirms it ("sent"), refuses it permanently ("refused": an error
   * about a record, kafka-refusal.ts), or the hard stop interrupts it ("stopped"). Any other
   * failure is retried on a new producer after a backoff.
   */
  private async deliver(batch: readonly OutboundMessage[]): Promise<DeliveryResult> {
    const messages: Message[] = batch.map((m) => ({
      key: m.key,
      value: m.value,
      headers: { "decision-id": m.decisionId },
    }));
    for (let attempt = 1; ; attempt++) {
      if (this.hardStop.signal.aborted) return { kind: "stopped" };
      let sending = false;
      try {
        const producer = await this.ready();
        sending = true;
        this.lastSendAt = performance.now();
        await producer.send({ topic: this.opts.topic, acks: -1, timeout: 30_000, messages });
        this.tracker.reached();
        this.tracker.topicPresent();
        return { kind: "sent" };
      } catch (err) {
        if (this.hardStop.signal.aborted) return { kind: "stopped" };
        this.counters.sendFailures++;
        if (err instanceof TopicMissingError) {
          // Logged by the check; no producer was used. Back off: an operator has to act.
          if (!(await this.pause(attempt))) return { kind: "stopped" };
          continue;
        }
        // kafkajs rolls the sequence back on a failed send and never re-initialises the producer
        // id, so the old instance could reuse a range the broker already holds: never reuse it.
        const refusal = recordRefusal(err);
        if (refusal) {
          this.tracker.reached();
          await this.discardProducer();
          return { kind: "refused", refusal };
        }
        // ready() records its own failures (topic check, connect) in the tracker.
        if (sending) this.tracker.failed(err);
        const waitMs = this.backoffMs(attempt);
        this.log("warn", "audit: Kafka delivery failed; replacing the producer and retrying the batch", {
          ...errFields(err),
          attempt,
          batch: batch.length,
          firstDecisionId: batch[0]?.decisionId,
          retryInMs: waitMs,
        });
        await this.discardProducer();
        if (!(await this.pause(attempt))) return { kind: "stopped" };
      }
    }
  }

  private backoffMs(attempt: number): number {
    return Math.min(this.backoff.maxMs, this.backoff.initialMs * 2 ** Math.min(attempt - 1, 20));
  }

  /** Waits the backoff of `attempt`; false when the hard stop came first. */
  private async pause(attempt: number): Promise<boolean> {
    try {
      await sleep(this.backoffMs(attempt), undefined, { signal: this.hardStop.signal });
      return true;
    } catch {
      return false;
    }
  }

  /** Makes sure the topic exists (created when configured) and a producer is connected. */
  private async ready(): Promise<KafkaProducerLike> {
    if (!this.topicCheck.verified && !(await this.topicCheck.run())) throw new TopicMissingError(this.opts.topic);
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
    try {
      await producer.connect();
    } catch (err) {
      this.tracker.failed(err);
      throw err;
    }
    this.tracker.reached();
    if (!this.topicLimit && this.now() - this.limitTriedAt >= LIMIT_RETRY_MS) await this.checkTopicLimit();
    return producer;
  }

  /**
   * Reads the topic's record batch limit once Kafka is reachable: batches are cut to it, and an
   * `audit.maxEventBytes` the topic cannot take is an error in the log now rather than dead
   * letters later. Never fails the connect (probeTopicLimit logs and returns null).
   */
  private async checkTopicLimit(): Promise<void> {
    this.limitTriedAt = this.now();
    this.topicLimit = await probeTopicLimit(this.client.admin(), this.opts.topic, this.opts.maxEventBytes, this.log);
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
    applyKafkaJsIdleFix();
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

/** KafkaSinkOptions.lingerMs: at most this much later on Kafka; 20 events per request at 400 calls/s. */
const DEFAULT_LINGER_MS = 50;

/** health() checks the topic itself when the brokers have not been heard from for this long (an idle sender asks nothing). */
const HEALTH_FRESH_MS = 5_000;
/** How long health() waits for that check: under /readyz's 1 s per check. */
const HEALTH_PROBE_WAIT_MS = 700;

/** After a failed read of the topic's limit, the next producer connect tries again only after this long. */
const LIMIT_RETRY_MS = 5 * 60_000;

type DeliveryResult = { kind: "sent" } | { kind: "stopped" } | { kind: "refused"; refusal: KafkaRefusal };

function refusalFields(r: KafkaRefusal): Record<string, unknown> {
  return { error: r.message, errorType: r.type, errorCode: r.code, reason: r.reason };
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
