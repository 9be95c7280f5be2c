/**
 * The audit stage's front door for the offline tools (gateway/cli/: `audit verify`, `audit tail`,
 * `policy replay`): reading stored events from a JSONL file or a topic, and checking their chain.
 * Nothing here runs in the gateway's request path. The event type, `toOcsf` and
 * `kafkaSecurityOptions` are shared with the running gateway, so they stay in ./index.ts.
 */
export { verifyRecords, type StoredRecord, type VerifyReport } from "./verify.js";
// `audit verify --public-key`: the checkpoint signatures' key.
export { ed25519PublicKey } from "./chain.js";
export { followTopic, readJsonlFile, readTopicToEnd, type TopicSource } from "./topic-reader.js";
// `audit tail --file … --follow`.
export { followJsonlFile } from "./file-follow.js";
// One line of the dead-letter file (audit.kafka.deadLetterFile), for whoever reads it back.
export type { DeadLetterLine } from "./outbox-dead-letter.js";
