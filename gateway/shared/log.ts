/** Structured JSON log lines on stderr; stdout stays free for CLI output. */
export type LogLevel = "debug" | "info" | "warn" | "error";
export type Logger = (level: LogLevel, msg: string, fields?: Record<string, unknown>) => void;

const order: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export function createLogger(minLevel: LogLevel = (process.env.PORTCULLIS_LOG_LEVEL as LogLevel) || "info"): Logger {
  const min = order[minLevel] ?? order.info;
  return (level, msg, fields) => {
    if (order[level] < min) return;
    process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), level, msg, ...fields })}\n`);
  };
}

export const silentLogger: Logger = () => undefined;
