/** The audit stage's front door (STYLE.md pattern 2): nothing else in gateway/ imports deeper. */
export type { AuditEvent, AuditOutcome, AuditSink, SinkCloseReport, ToolResultSummary } from "./types.js";
export { AuditRecord, type AuditContext, type AuditRecordInit } from "./record.js";
export { applyMasks, REDACTED, type MaskApplied, type MaskTarget } from "./mask.js";
export { summarizeToolResult } from "./result-summary.js";
export { JsonlFileSink, type JsonlFileSinkOptions } from "./file-sink.js";
export {
  KafkaSink,
  type KafkaSinkOptions,
  type KafkaSinkStats,
  type KafkaCloseReport,
  type KafkaClientLike,
  type KafkaProducerLike,
  type KafkaAdminLike,
} from "./kafka-sink.js";
export { MemoryBacklog, type AuditBacklog, type OutboundMessage } from "./backlog.js";
export { AuditLog, AuditWriteError, type SinkCounts } from "./audit-log.js";
export { stderrAuditLogger, type AuditLogger, type AuditLogLevel } from "./logger.js";
