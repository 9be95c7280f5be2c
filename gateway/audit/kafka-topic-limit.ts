import { setTimeout as sleep } from "node:timers/promises";
import type { Admin, ConfigResourceTypes } from "kafkajs";
import type { OutboundMessage } from "./backlog.js";
import type { AuditLogger } from "./logger.js";

/**
 * The largest record batch the audit topic accepts, and fitting the sender's batches under it.
 *
 * Since Kafka 0.11 `max.message.bytes` (topic; default: the broker's `message.max.bytes`, 1 MiB
 * + 12) bounds a whole record batch, and kafkajs sends one batch per partition per request. A
 * batch of small events can therefore be refused with MESSAGE_TOO_LARGE although each of its
 * events alone fits; batches are cut to the limit so that does not happen in the first place.
 */

/** Room kept for Kafka's framing when an event must fit the topic's limit (audit.maxEventBytes + this). */
export const RECORD_OVERHEAD_BYTES = 512;

/** A record batch's header (magic 2: base offset … record count). */
const BATCH_HEADER_BYTES = 61;
/**
 * Per record, beyond key, value and header value: length, attributes, timestamp and offset
 * deltas, key, value and header lengths as varints (at most 46 bytes) and the header name
 * `decision-id` (11). Rounded up: the estimate must never be below what goes on the wire.
 */
const PER_RECORD_BYTES = 64;

/** The admin calls the limit lookup needs (a seam for unit tests). */
export type TopicLimitAdmin = Pick<Admin, "describeConfigs" | "describeCluster">;

// kafkajs's ConfigResourceTypes values. Its CommonJS build does not expose the enum to ESM named
// imports, so the two numbers are spelled out (the Kafka protocol's resource types).
const TOPIC_RESOURCE = 2 as ConfigResourceTypes;
const BROKER_RESOURCE = 4 as ConfigResourceTypes;

/** How long the connect waits for the limit before it goes on without it. */
const PROBE_TIMEOUT_MS = 10_000;

export interface TopicMessageLimit {
  bytes: number;
  /** Where the number came from, for the log line. */
  source: string;
}

/** Upper bound of the bytes one record batch of `messages` takes on the wire (no compression). */
export function estimatedBatchBytes(messages: readonly OutboundMessage[]): number {
  let bytes = BATCH_HEADER_BYTES;
  for (const m of messages) bytes += recordBytes(m);
  return bytes;
}

/** How many of the first messages fit one batch of at most `limitBytes` (at least one: an oversized event is sent alone). */
export function fittingCount(messages: readonly OutboundMessage[], limitBytes: number): number {
  let bytes = BATCH_HEADER_BYTES;
  let n = 0;
  for (const m of messages) {
    bytes += recordBytes(m);
    if (n > 0 && bytes > limitBytes) break;
    n++;
  }
  return n;
}

function recordBytes(m: OutboundMessage): number {
  return PER_RECORD_BYTES + Buffer.byteLength(m.key) + Buffer.byteLength(m.value) + Buffer.byteLength(m.decisionId);
}

/**
 * The topic's effective `max.message.bytes` (DescribeConfigs on the topic: an override, or the
 * broker default it inherits), else the smallest `message.max.bytes` of the brokers. Throws when
 * neither can be read (e.g. no DescribeConfigs permission): the caller logs it and goes on.
 */
export async function readTopicMessageLimit(admin: TopicLimitAdmin, topic: string): Promise<TopicMessageLimit> {
  let topicProblem = "";
  try {
    const r = await admin.describeConfigs({
      includeSynonyms: false,
      resources: [{ type: TOPIC_RESOURCE, name: topic, configNames: ["max.message.bytes"] }],
    });
    const bytes = smallestValue(r.resources, "max.message.bytes");
    if (bytes !== null) return { bytes, source: `topic ${topic} max.message.bytes` };
    topicProblem = "no max.message.bytes in the topic's config";
  } catch (err) {
    topicProblem = err instanceof Error ? err.message : String(err);
  }
  const cluster = await admin.describeCluster();
  const brokers = cluster.brokers.map((b) => String(b.nodeId));
  if (brokers.length === 0) throw new Error(`cannot read the topic's max.message.bytes (${topicProblem}) and the cluster lists no brokers`);
  const r = await admin.describeConfigs({
    includeSynonyms: false,
    resources: brokers.map((name) => ({ type: BROKER_RESOURCE, name, configNames: ["message.max.bytes"] })),
  });
  const bytes = smallestValue(r.resources, "message.max.bytes");
  if (bytes === null) throw new Error(`cannot read the topic's max.message.bytes (${topicProblem}) nor the brokers' message.max.bytes`);
  return { bytes, source: `broker message.max.bytes (topic config unreadable: ${topicProblem})` };
}

type DescribedResource = Awaited<ReturnType<Admin["describeConfigs"]>>["resources"][number];

function smallestValue(resources: readonly DescribedResource[], name: string): number | null {
  let smallest: number | null = null;
  for (const res of resources) {
    if (res.errorCode !== 0) continue;
    for (const entry of res.configEntries) {
      const n = Number(entry.configValue);
      if (entry.configName === name && Number.isSafeInteger(n) && n > 0) smallest = smallest === null ? n : Math.min(smallest, n);
    }
  }
  return smallest;
}

/**
 * Connects `admin`, reads the limit (readTopicMessageLimit) and logs what it means: an error
 * naming both numbers and the fix when `maxEventBytes` + RECORD_OVERHEAD_BYTES does not fit, an
 * info line otherwise. Returns null (with a warning) when the limit cannot be read in time.
 */
export async function probeTopicLimit(
  admin: TopicLimitAdmin & Pick<Admin, "connect" | "disconnect">,
  topic: string,
  maxEventBytes: number | undefined,
  log: AuditLogger,
): Promise<TopicMessageLimit | null> {
  const read = (async () => {
    await admin.connect();
    try {
      return await readTopicMessageLimit(admin, topic);
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
  })();
  read.catch(() => undefined); // a failure after the timeout below is not an unhandled rejection
  let limit: TopicMessageLimit | "timeout";
  try {
    limit = await Promise.race([read, sleep(PROBE_TIMEOUT_MS, "timeout" as const, { ref: false })]);
  } catch (err) {
    log("warn", "audit: cannot read the Kafka topic's max.message.bytes; batches are not cut to it", { topic, error: err instanceof Error ? err.message : String(err) });
    return null;
  }
  if (limit === "timeout") {
    log("warn", "audit: reading the Kafka topic's max.message.bytes timed out; batches are not cut to it", { topic, timeoutMs: PROBE_TIMEOUT_MS });
    return null;
  }
  if (maxEventBytes !== undefined && limit.bytes < maxEventBytes + RECORD_OVERHEAD_BYTES) {
    const need = maxEventBytes + RECORD_OVERHEAD_BYTES;
    log(
      "error",
      `audit: Kafka topic ${topic} accepts records of at most ${limit.bytes} bytes (${limit.source}), ` +
        `less than audit.maxEventBytes ${maxEventBytes} + ${RECORD_OVERHEAD_BYTES} bytes of record overhead: larger events will be refused and dead-lettered. ` +
        `Fix: raise max.message.bytes on the topic to at least ${need} ` +
        `(kafka-configs.sh --alter --entity-type topics --entity-name ${topic} --add-config max.message.bytes=${need}), ` +
        `or lower audit.maxEventBytes to ${Math.max(0, limit.bytes - RECORD_OVERHEAD_BYTES)}`,
      { topic, maxMessageBytes: limit.bytes, maxEventBytes, overheadBytes: RECORD_OVERHEAD_BYTES, source: limit.source },
    );
  } else {
    log("info", "audit: Kafka topic record limit", { topic, maxMessageBytes: limit.bytes, source: limit.source, ...(maxEventBytes !== undefined ? { maxEventBytes } : {}) });
  }
  return limit;
}
