import { createLogger, type Logger, type LogLevel } from "../shared/log.js";

/** The gateway's one Logger (gateway/shared/log.ts); the composition root passes the real one. */
export type AuditLogLevel = LogLevel;
export type AuditLogger = Logger;

/**
 * Used when no logger is given: warnings and errors go to stderr as JSON lines, because audit
 * delivery problems must never be invisible.
 */
export const stderrAuditLogger: AuditLogger = createLogger({ level: "warn", env: {} }).child({ component: "audit" });
