import { setTimeout as sleep } from "node:timers/promises";
import type { Admin } from "kafkajs";
import { kafkaErrorType, type KafkaHealthTracker } from "./kafka-health.js";
import type { AuditLogger } from "./logger.js";

/**
 * Whether the audit topic exists, asked with the admin client's fetchTopicMetadata (created when
 * `audit.kafka.createTopic` says so). kafkajs retries a send to a missing topic inside `send()`
 * forever without a word, so the sender asks this before its first send and the sink re-asks
 * periodically; what it finds goes to the health tracker, which logs a missing topic as an error.
 */

/** The admin calls a topic check needs (a seam for unit tests). */
export type TopicCheckAdmin = Pick<Admin, "connect" | "disconnect" | "fetchTopicMetadata" | "createTopics">;

/** The sender found the topic missing (and may not create it): it backs off without using a producer. */
export class TopicMissingError extends Error {
  constructor(topic: string) {
    super(`Kafka topic ${topic} does not exist`);
    this.name = "TopicMissingError";
  }
}

/** Longest a topic check may take; a hung broker then counts as unreachable. */
const TOPIC_CHECK_TIMEOUT_MS = 10_000;

export class TopicCheck {
  /** The topic was seen on the brokers (or created) by the last check that got an answer. */
  verified = false;
  private inFlight: Promise<boolean> | null = null;

  constructor(
    private readonly opts: {
      topic: string;
      createTopic: { partitions: number; replicationFactor: number } | false;
      admin: () => TopicCheckAdmin;
      tracker: KafkaHealthTracker;
      log: AuditLogger;
    },
  ) {}

  /**
   * Resolves true when the topic exists (created if configured), false when the brokers say it
   * does not; throws when they cannot be asked. Callers share the check in flight (sender,
   * periodic timer, health()), so there is one admin connection at a time.
   */
  run(): Promise<boolean> {
    if (!this.inFlight) {
      const ask = this.ask();
      ask.catch(() => undefined); // a failure after the timeout below is not an unhandled rejection
      const late = sleep(TOPIC_CHECK_TIMEOUT_MS, undefined, { ref: false }).then(() => Promise.reject(new Error(`no answer from the Kafka brokers within ${TOPIC_CHECK_TIMEOUT_MS} ms`)));
      this.inFlight = Promise.race([ask, late])
        .then(
          (present) => (this.verified = present),
          (err: unknown) => {
            // An error the brokers answered with is about the topic (e.g. not authorized to see it).
            if (kafkaErrorType(err) !== null) {
              this.opts.tracker.reached();
              this.opts.tracker.topicUnreadable(err);
            } else {
              this.opts.tracker.failed(err);
            }
            throw err;
          },
        )
        .finally(() => (this.inFlight = null));
    }
    return this.inFlight;
  }

  private async ask(): Promise<boolean> {
    const { topic, createTopic, tracker } = this.opts;
    const admin = this.opts.admin();
    await admin.connect();
    try {
      let present = await topicExists(admin, topic);
      tracker.reached();
      if (!present && createTopic) {
        await admin.createTopics({ waitForLeaders: true, topics: [{ topic, numPartitions: createTopic.partitions, replicationFactor: createTopic.replicationFactor }] });
        this.opts.log("info", "audit: created Kafka topic", { topic, ...createTopic });
        present = true;
      }
      if (present) tracker.topicPresent();
      else tracker.topicMissing();
      return present;
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
  }
}

/** True when the brokers know `topic`, false when they answer UNKNOWN_TOPIC_OR_PARTITION; throws otherwise. */
async function topicExists(admin: Pick<Admin, "fetchTopicMetadata">, topic: string): Promise<boolean> {
  try {
    const { topics } = await admin.fetchTopicMetadata({ topics: [topic] });
    return topics.some((t) => t.name === topic);
  } catch (err) {
    if (kafkaErrorType(err) === "UNKNOWN_TOPIC_OR_PARTITION") return false;
    throw err;
  }
}
