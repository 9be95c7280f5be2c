/**
 * Which Kafka errors mean "the broker will never accept this record" (the sender dead-letters
 * it and moves on) rather than "Kafka, or our access to it, is not working right now" (the sender
 * keeps retrying, and the outbox holds the events meanwhile).
 *
 * Only errors about the record itself count. Non-retriable errors about the producer, the topic
 * or the cluster (TOPIC_AUTHORIZATION_FAILED, INVALID_PRODUCER_EPOCH, OUT_OF_ORDER_SEQUENCE_NUMBER,
 * UNSUPPORTED_VERSION, POLICY_VIOLATION, INVALID_TIMESTAMP from a skewed gateway clock, …) would
 * refuse every event alike: dead-lettering on them would empty the stream into a local file, so
 * they keep the old behaviour (retry with backoff, log every attempt, back-pressure when full).
 *
 * kafkajs 2.2.4 (`src/protocol/error.js`) marks MESSAGE_TOO_LARGE, RECORD_LIST_TOO_LARGE and
 * INVALID_RECORD `retriable: false`: `send()` rejects at once with a KafkaJSProtocolError that
 * carries `type` and `code` (or a KafkaJSNonRetriableError whose `cause` does). CORRUPT_MESSAGE is
 * `retriable: true`, so with the producer's unbounded retries kafkajs retries it inside `send()`
 * and it only reaches the sink if kafkajs ever gives up; it is still classified here for then.
 */

/** A permanent refusal of one record (or of a batch holding it), as kafkajs reported it. */
export interface KafkaRefusal {
  /** The Kafka error name, e.g. MESSAGE_TOO_LARGE. */
  type: string;
  /** The Kafka protocol error code, e.g. 10. */
  code: number | null;
  /** kafkajs's message for it. */
  message: string;
  /** Why this error means the record can never be delivered, for the dead-letter file and logs. */
  reason: string;
}

/** Record-level refusals and what each one means for the record. */
const RECORD_REFUSALS: Readonly<Record<string, string>> = {
  MESSAGE_TOO_LARGE: "the event is larger than the topic accepts (max.message.bytes, or the broker's message.max.bytes)",
  RECORD_LIST_TOO_LARGE: "the event is larger than the topic's segment size (segment.bytes)",
  INVALID_RECORD: "the broker's validation refused the record",
  CORRUPT_MESSAGE: "the broker found the record corrupt (CRC or size check)",
};

export const RECORD_REFUSAL_TYPES: readonly string[] = Object.keys(RECORD_REFUSALS).sort();

/** True for refusals caused by size: a batch refused for one of these may only be too big as a whole. */
export function isSizeRefusal(r: KafkaRefusal): boolean {
  return r.type === "MESSAGE_TOO_LARGE" || r.type === "RECORD_LIST_TOO_LARGE";
}

/**
 * The record-level refusal in `err` (itself or its `cause` chain), or null when `err` is anything
 * else: a connection problem, a timeout, or a permanent error that is not about the record.
 */
export function recordRefusal(err: unknown): KafkaRefusal | null {
  let e: unknown = err;
  for (let depth = 0; depth < 5 && typeof e === "object" && e !== null; depth++) {
    const { type, code, message, cause } = e as { type?: unknown; code?: unknown; message?: unknown; cause?: unknown };
    if (typeof type === "string" && Object.hasOwn(RECORD_REFUSALS, type)) {
      return {
        type,
        code: typeof code === "number" ? code : null,
        message: typeof message === "string" ? message : String(e),
        reason: RECORD_REFUSALS[type] as string,
      };
    }
    e = cause;
  }
  return null;
}
