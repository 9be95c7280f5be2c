/** The audit stage's front door (STYLE.md pattern 2): nothing else in gateway/ imports deeper. */
export type { AuditEvent, AuditOutcome, AuditSink, FoldedRefusals, SinkCloseReport, ToolResultSummary, TruncationMarker } from "./types.js";
export { AuditRecord, type AuditContext, type AuditRecordInit } from "./record.js";
export { applyMasks, REDACTED, type MaskApplied, type MaskTarget } from "./mask.js";
export { summarizeToolResult } from "./result-summary.js";
export { AuditUnavailableError, JsonlFileSink, type FileSinkIo, type JsonlFileSinkOptions } from "./file-sink.js";
export { DEFAULT_MAX_EVENT_BYTES, MIN_MAX_EVENT_BYTES } from "./event-budget.js";
export { jsonLine } from "./jsonl.js";
export {
  KafkaSink,
  type KafkaSinkOptions,
  type KafkaSinkStats,
  type KafkaCloseReport,
  type KafkaClientLike,
  type KafkaProducerLike,
  type KafkaAdminLike,
} from "./kafka-sink.js";
export { MemoryBacklog, type AuditBacklog, type BacklogStats, type OutboundMessage } from "./backlog.js";
export { Outbox, AuditBackpressureError, type OutboxOptions } from "./outbox.js";
export { AuditLog, AuditWriteError, type AuditLogOptions, type SinkCounts } from "./audit-log.js";
export { REFUSALS_FOLDED_CODE, type RefusalFoldingOptions } from "./refusal-folding.js";
export { stderrAuditLogger, type AuditLogger, type AuditLogLevel } from "./logger.js";
// Tamper evidence, SIEM rendering, Kafka security and readers (issue 4, items 3-6).
export { AuditChain, chainHash, ed25519PrivateKey, ed25519PublicKey, GENESIS_HASH, signCheckpoint, verifyCheckpoint, type AuditChainOptions, type UnchainedAuditEvent } from "./chain.js";
export type { AuditChainFields } from "./types.js";
export { verifyRecords, type ChainProblem, type ChainProblemKind, type ChainSummary, type StoredRecord, type VerifyOptions, type VerifyReport } from "./verify.js";
export { DEFAULT_SENSITIVE_KEYS, sensitiveArgumentPointers, sensitiveKeyMatcher, type KeyMatcher } from "./sensitive-keys.js";
export { toOcsf, OCSF_VERSION, type OcsfApiActivity } from "./ocsf.js";
export { kafkaSecurityOptions, type KafkaSaslConfig, type KafkaSecurityOptions, type KafkaSslConfig } from "./kafka-security.js";
export { followTopic, readJsonlFile, readTopicToEnd, type TopicSource } from "./topic-reader.js";
// Policy bundle lifecycle (issue 3, item 5).
export { bundleRefusedEvent, BUNDLE_REFUSED_METHOD, type BundleRefusal } from "./bundle-event.js";
