import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { Kafka, logLevel, type Consumer } from "kafkajs";
import type { KafkaSecurityOptions } from "./kafka-security.js";
import type { StoredRecord } from "./verify.js";
import { applyKafkaJsIdleFix } from "./kafkajs-idle-fix.js";

/** Where `audit verify` and `audit tail` read from. */
export interface TopicSource {
  brokers: string[];
  topic: string;
  security?: KafkaSecurityOptions;
  clientId?: string;
}

/** Every non-empty line of a JSONL file, numbered from 1. */
export function readJsonlFile(path: string): StoredRecord[] {
  const lines = readFileSync(path, "utf8").split("\n");
  const out: StoredRecord[] = [];
  lines.forEach((text, i) => {
    if (text.trim().length > 0) out.push({ where: `${path}:${i + 1}`, lane: path, text });
  });
  return out;
}

function client(src: TopicSource): Kafka {
  process.env.KAFKAJS_NO_PARTITIONER_WARNING ??= "1";
  applyKafkaJsIdleFix();
  return new Kafka({
    clientId: src.clientId ?? "portcullis-audit-reader",
    brokers: src.brokers,
    connectionTimeout: 3000,
    logLevel: logLevel.NOTHING,
    ...(src.security ?? {}),
  });
}

/**
 * Reads the topic from its first retained offset up to the end offsets it has when the read
 * starts, partition by partition in offset order. A throwaway consumer group (read-only: it never
 * commits), since kafkajs consumes only through groups.
 */
export async function readTopicToEnd(src: TopicSource, opts: { timeoutMs?: number } = {}): Promise<StoredRecord[]> {
  const kafka = client(src);
  const admin = kafka.admin();
  await admin.connect();
  let ends: Map<number, bigint>;
  try {
    const offsets = await admin.fetchTopicOffsets(src.topic);
    ends = new Map(offsets.filter((p) => BigInt(p.high) > BigInt(p.low)).map((p) => [p.partition, BigInt(p.high)]));
  } finally {
    await admin.disconnect();
  }
  const byPartition = new Map<number, StoredRecord[]>();
  if (ends.size > 0) {
    const pending = new Set(ends.keys());
    await consume(kafka, src.topic, true, opts.timeoutMs ?? 30_000, (partition, offset, value, stop) => {
      const end = ends.get(partition);
      if (end === undefined || BigInt(offset) >= end) return;
      let list = byPartition.get(partition);
      if (!list) byPartition.set(partition, (list = []));
      list.push({ where: `partition ${partition} offset ${offset}`, lane: `partition ${partition}`, text: value });
      if (BigInt(offset) + 1n >= end) pending.delete(partition);
      if (pending.size === 0) stop();
    });
    if (pending.size > 0) throw new Error(`timed out reading ${src.topic}: partitions ${[...pending].sort().join(", ")} not read to the end`);
  }
  return [...byPartition.keys()].sort((a, b) => a - b).flatMap((p) => byPartition.get(p) as StoredRecord[]);
}

/** Follows the topic (from the beginning or only new messages) until `signal` aborts. */
export async function followTopic(
  src: TopicSource,
  fromBeginning: boolean,
  signal: AbortSignal,
  onRecord: (r: StoredRecord) => void,
): Promise<void> {
  const kafka = client(src);
  await consume(kafka, src.topic, fromBeginning, null, (partition, offset, value, stop) => {
    onRecord({ where: `partition ${partition} offset ${offset}`, lane: `partition ${partition}`, text: value });
    if (signal.aborted) stop();
  }, signal);
}

type OnMessage = (partition: number, offset: string, value: string, stop: () => void) => void;

async function consume(kafka: Kafka, topic: string, fromBeginning: boolean, timeoutMs: number | null, onMessage: OnMessage, signal?: AbortSignal): Promise<void> {
  const consumer: Consumer = kafka.consumer({ groupId: `portcullis-audit-reader-${randomUUID()}`, maxWaitTimeInMs: 250 });
  let stop!: () => void;
  const stopped = new Promise<void>((resolve) => (stop = resolve));
  const timer = timeoutMs === null ? null : setTimeout(stop, timeoutMs);
  signal?.addEventListener("abort", () => stop(), { once: true });
  try {
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning });
    await consumer.run({
      autoCommit: false,
      eachMessage: async ({ partition, message }) => {
        onMessage(partition, message.offset, message.value?.toString("utf8") ?? "", stop);
      },
    });
    await stopped;
  } finally {
    if (timer) clearTimeout(timer);
    await consumer.disconnect();
  }
}
