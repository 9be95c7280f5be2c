export type AuditLogLevel = "debug" | "info" | "warn" | "error";

/** Structured logging hook for the audit sinks; the composition root wires the real logger. */
export type AuditLogger = (level: AuditLogLevel, msg: string, fields?: Record<string, unknown>) => void;

/**
 * Used when no logger is given: warnings and errors go to stderr as JSON lines, because audit
 * delivery problems must never be invisible.
 */
export const stderrAuditLogger: AuditLogger = (level, msg, fields) => {
  if (level === "debug" || level === "info") return;
  process.stderr.write(`${JSON.stringify({ level, component: "audit", msg, ...fields })}\n`);
};
