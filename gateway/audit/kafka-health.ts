import type { AuditBacklog } from "./backlog.js";
import type { AuditLogger } from "./logger.js";

/**
 * Whether a Kafka sink can deliver now (DESIGN.md contract 6, GET /readyz): the brokers answer,
 * the topic exists, the outbox is under its bounds and the sender moves events. `KafkaSink` feeds
 * a `KafkaHealthTracker` from what its sender and its topic checks see; `health()` reads it.
 */

/** What `KafkaSink.health()` answers: ok, or every reason the sink cannot deliver now. */
export interface KafkaHealth {
  ok: boolean;
  /** One sentence per failing condition, naming the broker error, the topic or the bound, and the fix when there is one. */
  problems: string[];
}

/**
 * The /readyz check of a Kafka sink (gateway/compose/readiness.ts `ReadinessCheck.run`): null
 * when it can deliver, else its problems joined into one reason.
 */
export async function kafkaReadiness(sink: { health(): Promise<KafkaHealth> }): Promise<string | null> {
  const h = await sink.health();
  return h.ok ? null : h.problems.join("; ");
}

export interface KafkaHealthTrackerOptions {
  topic: string;
  brokers: readonly string[];
  /** audit.kafka.createTopic is set: a missing topic is created by the sender, not an operator's job. */
  createsTopic: boolean;
  /** The sender has held one batch this long without Kafka confirming it: it is stalled. */
  stallMs: number;
  /** How long the sender has held the batch it is delivering (KafkaSinkStats.sendLagMs; 0 while idle). */
  sendLagMs: () => number;
  backlog: AuditBacklog;
  now: () => number;
  log: AuditLogger;
}

type LinkState =
  | { state: "unknown" }
  | { state: "up"; at: number }
  /** `answered`: the broker answered with an error (e.g. an authorization error), it is not unreachable. */
  | { state: "down"; since: number; at: number; error: string; answered: boolean };

type TopicState = { state: "unknown" } | { state: "present" } | { state: "missing"; since: number } | { state: "unreadable"; error: string };

/** While the topic stays missing, its error line is repeated this often (an operator reading the log later sees it). */
const MISSING_TOPIC_LOG_EVERY_MS = 60_000;

export class KafkaHealthTracker {
  private link: LinkState = { state: "unknown" };
  private topic: TopicState = { state: "unknown" };
  private isStarted = false;
  private stoppedBy: string | null = null;
  private missingLoggedAt = Number.NEGATIVE_INFINITY;

  constructor(private readonly opts: KafkaHealthTrackerOptions) {}

  /** When the brokers last answered or failed to; the sink probes again when this is old. */
  heardAt(): number {
    return this.link.state === "unknown" ? Number.NEGATIVE_INFINITY : this.link.at;
  }

  /** A request to the brokers succeeded (connect, metadata, send). */
  reached(): void {
    this.link = { state: "up", at: this.opts.now() };
  }

  /** A connect, metadata request or send failed with `err`. */
  failed(err: unknown): void {
    const now = this.opts.now();
    const since = this.link.state === "down" ? this.link.since : now;
    this.link = { state: "down", since, at: now, error: describeKafkaError(err), answered: kafkaErrorType(err) !== null };
  }

  topicPresent(): void {
    if (this.topic.state === "missing") {
      this.opts.log("info", `audit: Kafka topic ${this.opts.topic} exists now; delivery resumes`, { topic: this.opts.topic, waiting: this.opts.backlog.size });
    }
    this.topic = { state: "present" };
  }

  /** The brokers say the topic does not exist: an error line on the first sighting, then once a minute. */
  topicMissing(): void {
    const now = this.opts.now();
    const fresh = this.topic.state !== "missing";
    if (fresh) this.topic = { state: "missing", since: now };
    if (!fresh && now - this.missingLoggedAt < MISSING_TOPIC_LOG_EVERY_MS) return;
    this.missingLoggedAt = now;
    const fields = { topic: this.opts.topic, brokers: this.opts.brokers, waiting: this.opts.backlog.size };
    if (this.opts.createsTopic) {
      this.opts.log("warn", `audit: Kafka topic ${this.opts.topic} does not exist on the brokers; the sender creates it again (audit.kafka.createTopic)`, fields);
      return;
    }
    this.opts.log(
      "error",
      `audit: Kafka topic ${this.opts.topic} does not exist on the brokers and audit.kafka.createTopic is off: ` +
        `create it, or set audit.kafka.createTopic. Nothing is sent until it exists; events wait ${this.opts.backlog.stats ? "in the outbox" : "in memory (audit.outbox is off)"}`,
      fields,
    );
  }

  /** The brokers answered the topic check with another error (e.g. TOPIC_AUTHORIZATION_FAILED). */
  topicUnreadable(err: unknown): void {
    this.topic = { state: "unreadable", error: describeKafkaError(err) };
  }

  started(): void {
    this.isStarted = true;
  }

  /** The sender loop ended with an error (a backlog that cannot be read or acked). */
  senderStopped(err: unknown): void {
    this.stoppedBy = err instanceof Error ? err.message : String(err);
  }

  /** Every reason the sink cannot deliver now, in a fixed order (empty: healthy). */
  problems(closed: boolean): string[] {
    if (closed) return ["the Kafka sink is closed"];
    if (!this.isStarted) return ["the Kafka sender has not started"];
    const out: string[] = [];
    const now = this.opts.now();
    const brokers = this.opts.brokers.join(",");
    if (this.stoppedBy !== null) out.push(`the Kafka sender stopped (${this.stoppedBy}): nothing is delivered until the gateway restarts`);
    if (this.link.state === "unknown") out.push(`not connected to the Kafka brokers ${brokers} yet`);
    if (this.link.state === "down") {
      const since = `for ${seconds(now - this.link.since)} s`;
      out.push(this.link.answered ? `the Kafka brokers ${brokers} refuse the sender (${since}): ${this.link.error}` : `the Kafka brokers ${brokers} are unreachable (${since}): ${this.link.error}`);
    }
    if (this.topic.state === "missing") {
      out.push(
        this.opts.createsTopic
          ? `topic ${this.opts.topic} does not exist on the brokers; the sender creates it (audit.kafka.createTopic) before its next send`
          : `topic ${this.opts.topic} does not exist on the brokers and audit.kafka.createTopic is off: create it, or set audit.kafka.createTopic`,
      );
    }
    if (this.topic.state === "unreadable") out.push(`cannot check topic ${this.opts.topic} on the brokers: ${this.topic.error}`);
    const overBound = this.opts.backlog.fullReason?.() ?? null;
    if (overBound !== null) out.push(`the audit outbox is over its bound: ${overBound}; calls are refused or wait (audit.onFull) until Kafka catches up`);
    const lagMs = this.opts.sendLagMs();
    if (lagMs >= this.opts.stallMs) {
      const oldest = this.opts.backlog.stats?.().oldestAgeMs;
      out.push(
        `the Kafka sender has had no send confirmed for ${seconds(lagMs)} s while ${this.opts.backlog.size} events wait` +
          `${oldest ? ` (the oldest for ${seconds(oldest)} s)` : ""}`,
      );
    }
    return out;
  }
}

function seconds(ms: number): number {
  return Math.round(ms / 1000);
}

/**
 * The Kafka protocol error name in `err` or its `cause` chain (kafkajs wraps it in
 * KafkaJSNumberOfRetriesExceeded / KafkaJSNonRetriableError), or null when the broker never
 * answered (a connection error, a timeout).
 */
export function kafkaErrorType(err: unknown): string | null {
  let e: unknown = err;
  for (let depth = 0; depth < 5 && typeof e === "object" && e !== null; depth++) {
    const { type, cause } = e as { type?: unknown; cause?: unknown };
    if (typeof type === "string") return type;
    e = cause;
  }
  return null;
}

/** The error as one line: its Kafka error name when it has one, then kafkajs's message. */
function describeKafkaError(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  const type = kafkaErrorType(err);
  return type && !message.includes(type) ? `${type}: ${message}` : message;
}
