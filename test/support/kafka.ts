// Helpers for integration tests against the local broker started by `make kafka-up` (scripts/kafka.sh).
import { randomUUID } from 'node:crypto';
import { Kafka, logLevel } from 'kafkajs';
import type { IHeaders } from 'kafkajs';

process.env.KAFKAJS_NO_PARTITIONER_WARNING = '1';

export interface ConsumedMessage {
  key: string | null;
  value: string | null;
  headers: Record<string, string>;
  partition: number;
  offset: string;
}

/** Brokers from KAFKA_BROKERS (comma-separated), default 127.0.0.1:9092. */
export function kafkaBrokers(): string[] {
  const raw = process.env.KAFKA_BROKERS ?? '127.0.0.1:9092';
  return raw.split(',').map((b) => b.trim()).filter((b) => b.length > 0);
}

/** A topic name no other test (or earlier run against the same broker) uses. */
export function uniqueTopic(prefix = 'test'): string {
  return `${prefix}.${Date.now().toString(36)}.${randomUUID().slice(0, 8)}`;
}

function client(brokers: string[], clientId: string): Kafka {
  // kafkajs logs retried, harmless errors at ERROR level; failures still reject. KAFKA_TEST_LOG=1 shows its logs.
  const level = process.env.KAFKA_TEST_LOG === '1' ? logLevel.INFO : logLevel.NOTHING;
  return new Kafka({ clientId, brokers, connectionTimeout: 3000, logLevel: level });
}

/** Creates the topic (1 partition, RF 1 by default) and waits for its leader; an existing topic is fine. */
export async function createTopic(brokers: string[], topic: string, numPartitions = 1): Promise<void> {
  const admin = client(brokers, 'portcullis-test-admin').admin();
  await admin.connect();
  try {
    if ((await admin.listTopics()).includes(topic)) return;
    await admin.createTopics({ topics: [{ topic, numPartitions, replicationFactor: 1 }], waitForLeaders: true });
  } finally {
    await admin.disconnect();
  }
}

function headersToStrings(headers: IHeaders | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers ?? {})) {
    if (value === undefined) continue;
    out[name] = (Array.isArray(value) ? value[value.length - 1] : value)?.toString() ?? '';
  }
  return out;
}

/**
 * Reads `topic` from the beginning with a fresh consumer group. Resolves as soon as `expected` messages have arrived
 * (with `expected: 0`, or fewer arrived, it resolves with what it has when `timeoutMs` elapses: assert on the
 * length). Values and headers are decoded as UTF-8.
 */
export async function consumeAll(
  brokers: string[],
  topic: string,
  { expected, timeoutMs = 20000 }: { expected: number; timeoutMs?: number },
): Promise<ConsumedMessage[]> {
  const consumer = client(brokers, 'portcullis-test-consumer').consumer({
    groupId: `portcullis-test-${randomUUID()}`,
    maxWaitTimeInMs: 250,
  });
  const messages: ConsumedMessage[] = [];
  let done!: () => void;
  const enough = new Promise<void>((resolve) => (done = resolve));
  const timer = setTimeout(() => done(), timeoutMs);
  try {
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ partition, message }) => {
        messages.push({
          key: message.key?.toString() ?? null,
          value: message.value?.toString() ?? null,
          headers: headersToStrings(message.headers),
          partition,
          offset: message.offset,
        });
        if (expected > 0 && messages.length >= expected) done();
      },
    });
    await enough;
  } finally {
    clearTimeout(timer);
    await consumer.disconnect();
  }
  return messages;
}
