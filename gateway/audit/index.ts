/**
 * The audit stage's front door for the running gateway (STYLE.md pattern 2): what the composition
 * root (gateway/compose/) and the pipeline (gateway/proxy/) build and call. The offline tools
 * (`portcullis audit verify|tail`, policy replay) use ./readers.ts. Nothing outside this folder
 * imports deeper; test/unit/audit/ may, because it tests the internals. Each name is exported by
 * one door only (test/unit/audit/front-doors.test.ts).
 */
// The event and its outcome (DESIGN.md contract 4); policy/replay.ts reads truncation markers.
export type { AuditEvent, AuditOutcome, AuditSink, TruncationMarker } from "./types.js";
export { APPROVAL_METHOD, approvalStepEvent, type ApprovalStep } from "./approval-event.js";
// One record per request, opened on arrival and closed by one `finish` (the pipeline).
export { AuditRecord, type AuditContext } from "./record.js";
export { sensitiveKeyMatcher, type KeyMatcher } from "./sensitive-keys.js";
export { bundleRefusedEvent, BUNDLE_REFUSED_METHOD } from "./bundle-event.js";
export type { AuditLogger } from "./logger.js";
// The fan-out, its hash chain and the sinks it delivers to, with their options.
export { AuditLog, type AuditLogOptions } from "./audit-log.js";
export { AuditChain, ed25519PrivateKey } from "./chain.js";
export { JsonlFileSink, type JsonlFileSinkOptions } from "./file-sink.js";
export { KafkaSink, type KafkaClientLike, type KafkaSinkOptions, type KafkaSinkStats } from "./kafka-sink.js";
// What /readyz asks of a Kafka sink (compose: `ready.push({ name: "audit_kafka", run: () => kafkaReadiness(sink) })`).
export { kafkaReadiness, type KafkaHealth } from "./kafka-health.js";
export { kafkaSecurityOptions, type KafkaSecurityOptions } from "./kafka-security.js";
export { MemoryBacklog, type AuditBacklog } from "./backlog.js";
// AuditLog.admit rejects with it (code `audit_backpressure`) when the outbox is full.
export { Outbox, AuditBackpressureError, type OutboxOptions } from "./outbox.js";
// The `ocsf` format of a sink (compose) and of `audit tail --format ocsf` (cli).
export { toOcsf } from "./ocsf.js";
