/**
 * A scripted kafkajs stand-in for the Kafka sink (KafkaClientLike). `sendBehaviour` decides each
 * send's fate by call number, so a test can reject a send, hang it, or let it succeed; the fake
 * records every call for assertions. Topics behave like a broker with auto-creation off: the
 * admin's fetchTopicMetadata answers UNKNOWN_TOPIC_OR_PARTITION for a topic not in `topics`, and a
 * send to one waits (kafkajs retries it inside `send()`) until the topic is added.
 *
 *   const kafka = new FakeKafka();                 // topic "audit" exists
 *   const bare = new FakeKafka({ topics: [] });    // no topic yet: bare.topics.add("audit") creates it
 *   kafka.connectFails = true;                     // every connect (producer and admin) is refused
 *   kafka.metadataHangs = true;                    // fetchTopicMetadata never answers (a frozen broker)
 */
import type { DescribeConfigResponse, ProducerConfig, ProducerRecord, RecordMetadata, ResourceConfigQuery } from "kafkajs";
import type { KafkaClientLike } from "../../gateway/audit/index.js";

// The parts of kafkajs the sink uses, as its client seam names them (no deep import: front doors).
type KafkaAdminLike = ReturnType<KafkaClientLike["admin"]>;
type KafkaProducerLike = ReturnType<KafkaClientLike["producer"]>;

/** What kafkajs 2.2.4 rejects a request with on a protocol error (src/protocol/error.js). */
export interface KafkaProtocolErrorLike extends Error {
  type: string;
  code: number;
  retriable: boolean;
}

export function protocolError(type: string, code: number, retriable = false): KafkaProtocolErrorLike {
  return Object.assign(new Error(`${type} from the fake broker`), { name: "KafkaJSProtocolError", type, code, retriable });
}

/** kafkajs's connection error when nothing listens (its `type` is absent: the broker never answered). */
function connectionRefused(): Error {
  return Object.assign(new Error("Connection error: connect ECONNREFUSED 127.0.0.1:1"), { name: "KafkaJSConnectionError", code: "ECONNREFUSED" });
}

export class FakeKafka implements KafkaClientLike {
  producerConfigs: ProducerConfig[] = [];
  producers: FakeProducer[] = [];
  sends: Array<{ producer: number; record: ProducerRecord }> = [];
  inFlight = 0;
  maxInFlight = 0;
  topics: Set<string>;
  created: string[] = [];
  connectFails = false;
  /** fetchTopicMetadata never answers (connect still works): a broker that hangs. */
  metadataHangs = false;
  /** An error fetchTopicMetadata rejects with instead of answering (e.g. TOPIC_AUTHORIZATION_FAILED). */
  metadataError: Error | null = null;
  /** fetchTopicMetadata calls so far, by topic. */
  metadataRequests: string[][] = [];
  /** Admin connects attempted so far (refused ones too). */
  adminConnects = 0;
  sendBehaviour: (n: number) => "ok" | "reject" | "hang" = () => "ok";
  /** A permanent refusal (a kafkajs protocol error) for a send, or null to go on with sendBehaviour. */
  refuse: (record: ProducerRecord) => KafkaProtocolErrorLike | null = () => null;
  /** Configs by resource type and name, e.g. topicConfigs.get("audit") = { "max.message.bytes": "2048" }. */
  topicConfigs = new Map<string, Record<string, string>>();
  brokerConfigs = new Map<string, Record<string, string>>();
  /** Errors of DescribeConfigs by resource type (2 topic, 4 broker). */
  describeFails = new Set<number>();
  describeRequests: ResourceConfigQuery[][] = [];
  /** Decision ids of every send that succeeded, in order. */
  delivered: string[] = [];

  constructor(opts: { topics?: readonly string[] } = {}) {
    this.topics = new Set(opts.topics ?? ["audit"]);
  }

  producer(config: ProducerConfig): KafkaProducerLike {
    this.producerConfigs.push(config);
    const p = new FakeProducer(this, this.producers.length);
    this.producers.push(p);
    return p;
  }

  admin(): KafkaAdminLike {
    return {
      connect: async () => {
        this.adminConnects++;
        if (this.connectFails) throw connectionRefused();
      },
      disconnect: async () => undefined,
      fetchTopicMetadata: async (o) => {
        const wanted = o?.topics ?? [...this.topics];
        this.metadataRequests.push(wanted);
        if (this.connectFails) throw connectionRefused();
        if (this.metadataHangs) await new Promise(() => undefined);
        if (this.metadataError) throw this.metadataError;
        const missing = wanted.find((t) => !this.topics.has(t));
        // kafkajs rejects the whole request with the first topic's error (metadata response parse).
        if (missing !== undefined) throw protocolError("UNKNOWN_TOPIC_OR_PARTITION", 3, true);
        return { topics: wanted.map((name) => ({ name, partitions: [{ partitionErrorCode: 0, partitionId: 0, leader: 1, replicas: [1], isr: [1], offlineReplicas: [] }] })) };
      },
      createTopics: async (o) => {
        for (const t of o.topics) {
          this.topics.add(t.topic);
          this.created.push(t.topic);
        }
        return true;
      },
      describeCluster: async () => ({ brokers: [...this.brokerConfigs.keys()].map((id) => ({ nodeId: Number(id), host: "127.0.0.1", port: 1 })), controller: 1, clusterId: "fake" }),
      describeConfigs: async ({ resources }): Promise<DescribeConfigResponse> => {
        this.describeRequests.push(resources);
        if (resources.some((r) => this.describeFails.has(r.type))) throw Object.assign(new Error("Cluster authorization failed"), { type: "CLUSTER_AUTHORIZATION_FAILED" });
        return {
          throttleTime: 0,
          resources: resources.map((r) => {
            const configs = (r.type === 2 ? this.topicConfigs : this.brokerConfigs).get(r.name);
            return {
              errorCode: configs ? 0 : 3,
              errorMessage: configs ? "" : "unknown",
              resourceName: r.name,
              resourceType: r.type,
              configEntries: Object.entries(configs ?? {})
                .filter(([name]) => !r.configNames || r.configNames.includes(name))
                .map(([configName, configValue]) => ({ configName, configValue, isDefault: false, configSource: 1, isSensitive: false, readOnly: false, configSynonyms: [] })),
            };
          }),
        };
      },
    };
  }
}

export class FakeProducer implements KafkaProducerLike {
  disconnected = false;
  constructor(
    private readonly kafka: FakeKafka,
    private readonly index: number,
  ) {}
  async connect(): Promise<void> {
    if (this.kafka.connectFails) throw connectionRefused();
  }
  async disconnect(): Promise<void> {
    this.disconnected = true;
  }
  async send(record: ProducerRecord): Promise<RecordMetadata[]> {
    const k = this.kafka;
    k.sends.push({ producer: this.index, record });
    const fate = k.sendBehaviour(k.sends.length);
    const refusal = k.refuse(record);
    k.inFlight++;
    k.maxInFlight = Math.max(k.maxInFlight, k.inFlight);
    try {
      await new Promise((r) => setTimeout(r, 1));
      // kafkajs retries UNKNOWN_TOPIC_OR_PARTITION inside send() (unbounded retries): it waits.
      while (!k.topics.has(record.topic) && !this.disconnected) await new Promise((r) => setTimeout(r, 5));
      if (!k.topics.has(record.topic)) throw new Error("The producer is disconnected");
      if (refusal) throw refusal;
      if (fate === "hang") await new Promise(() => undefined);
      if (fate === "reject") throw new Error("OUT_OF_ORDER_SEQUENCE_NUMBER");
      k.delivered.push(...record.messages.map((m) => String(m.headers?.["decision-id"])));
      return [];
    } finally {
      k.inFlight--;
    }
  }
}
