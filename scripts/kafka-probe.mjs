#!/usr/bin/env node
// Readiness probe for the local test broker (scripts/kafka.sh): succeeds once the broker accepts a produce.
// Each attempt: create the probe topic if missing (waiting for its leader), then produce one record with acks -1 from
// an idempotent producer, then look up the probe consumer group's offsets. The last two also make a fresh broker
// create its transaction-state and consumer-offsets topics, so the first test doesn't wait for them.
// Retries until --timeout ms have passed.
//
// Usage: node scripts/kafka-probe.mjs [--brokers 127.0.0.1:9092] [--topic portcullis.probe]
//                                     [--timeout 60000] [--pid PID] [--quiet]
// Exit codes: 0 ready, 1 not ready before the deadline, 2 the watched JVM (--pid) exited, 64 bad usage.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

process.env.KAFKAJS_NO_PARTITIONER_WARNING = '1';
const { Kafka, logLevel } = await import('kafkajs');

let opts;
try {
  ({ values: opts } = parseArgs({
    options: {
      brokers: { type: 'string', default: process.env.KAFKA_BROKERS ?? '127.0.0.1:9092' },
      topic: { type: 'string', default: 'portcullis.probe' },
      timeout: { type: 'string', default: '60000' },
      pid: { type: 'string' },
      quiet: { type: 'boolean', default: false },
    },
  }));
} catch (err) {
  console.error(`kafka-probe: ${err.message}`);
  process.exit(64);
}

const brokers = opts.brokers.split(',').map((b) => b.trim()).filter(Boolean);
const timeoutMs = Number(opts.timeout);
const pid = opts.pid ? Number(opts.pid) : undefined;
const started = Date.now();
const deadline = started + timeoutMs;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** True while the process exists and is not a zombie (a dead child of our parent shell stays a zombie). */
function alive(p) {
  try {
    const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    try {
      process.kill(p, 0);
      return true;
    } catch {
      return false;
    }
  }
}

async function attempt() {
  const kafka = new Kafka({
    clientId: 'portcullis-probe',
    brokers,
    connectionTimeout: 1000,
    requestTimeout: 5000,
    retry: { retries: 0 },
    logLevel: logLevel.NOTHING,
  });
  const admin = kafka.admin();
  const producer = kafka.producer({
    allowAutoTopicCreation: false,
    idempotent: true,
    maxInFlightRequests: 1,
    retry: { retries: 2, initialRetryTime: 200 },
  });
  try {
    await admin.connect();
    const topics = await admin.listTopics();
    if (!topics.includes(opts.topic)) {
      await admin.createTopics({
        topics: [{ topic: opts.topic, numPartitions: 1, replicationFactor: 1 }],
        waitForLeaders: true,
        timeout: 10000,
      });
    }
    await producer.connect();
    const [meta] = await producer.send({
      topic: opts.topic,
      acks: -1,
      timeout: 5000,
      messages: [{ key: 'probe', value: new Date().toISOString() }],
    });
    await admin.fetchOffsets({ groupId: 'portcullis.probe', topics: [opts.topic] });
    return meta;
  } finally {
    await producer.disconnect().catch(() => {});
    await admin.disconnect().catch(() => {});
  }
}

let lastError = 'no attempt made';
let attempts = 0;
for (;;) {
  if (pid !== undefined && !alive(pid)) {
    console.error(`kafka-probe: broker process ${pid} exited`);
    process.exit(2);
  }
  attempts += 1;
  try {
    const meta = await attempt();
    if (!opts.quiet) {
      console.log(
        `kafka-probe: produce to ${opts.topic} accepted by ${brokers.join(',')} ` +
          `(offset ${meta?.baseOffset ?? '?'}, ${attempts} attempt(s), ${Date.now() - started} ms)`,
      );
    }
    process.exit(0);
  } catch (err) {
    lastError = `${err?.name ?? 'Error'}: ${err?.message ?? err}`;
  }
  if (Date.now() + 200 >= deadline) break;
  await sleep(200);
}
console.error(`kafka-probe: broker at ${brokers.join(',')} did not accept a produce within ${timeoutMs} ms ` +
  `(${attempts} attempt(s)); last error: ${lastError}`);
process.exit(1);
