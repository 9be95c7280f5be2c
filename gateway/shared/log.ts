import { pino, stdSerializers, stdTimeFunctions, type Logger as Pino } from "pino";

/**
 * The gateway's log: JSON lines on stderr (stdout stays free for CLI output), written by pino.
 * Each line is `{"level":"info","time":"<ISO 8601>", …fields, "msg":"…"}`. Stages take the small
 * `Logger` function below, so a test passes any function and no stage depends on pino.
 */
export const LOG_LEVELS = ["debug", "info", "warn", "error"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
export type Logger = (level: LogLevel, msg: string, fields?: Record<string, unknown>) => void;

/** The environment variable that overrides `logging.level` of the config. */
export const LOG_LEVEL_ENV = "PORTCULLIS_LOG_LEVEL";

/** The logger the composition root makes: a Logger, plus children with fixed fields. */
export interface RootLogger extends Logger {
  readonly level: LogLevel;
  /** Every line of the child carries `bindings` (e.g. a request's decision id, an upstream's name). */
  child(bindings: Record<string, unknown>): RootLogger;
  /** One line written whatever the level (at info): the process is up and where. */
  announce(msg: string, fields?: Record<string, unknown>): void;
}

export interface LoggerOptions {
  /** The configured level (`logging.level`); `PORTCULLIS_LOG_LEVEL` overrides it. Default info. */
  level?: LogLevel;
  env?: NodeJS.ProcessEnv;
  /** Where the lines go; default stderr, written synchronously so nothing is lost on exit. */
  destination?: NodeJS.WritableStream;
}

export function isLogLevel(v: unknown): v is LogLevel {
  return typeof v === "string" && (LOG_LEVELS as readonly string[]).includes(v);
}

/** The level in force: the environment's when it names one, else the configured one, else info. */
export function effectiveLogLevel(configured: LogLevel | undefined, env: NodeJS.ProcessEnv = process.env): { level: LogLevel; badEnv?: string } {
  const fromEnv = env[LOG_LEVEL_ENV];
  if (fromEnv === undefined || fromEnv === "") return { level: configured ?? "info" };
  if (isLogLevel(fromEnv)) return { level: fromEnv };
  return { level: configured ?? "info", badEnv: fromEnv };
}

/** A level (the older call) or options. */
export function createLogger(opts: LogLevel | LoggerOptions = {}): RootLogger {
  const o: LoggerOptions = typeof opts === "string" ? { level: opts } : opts;
  // A level given in code (dev stack, tests) is what the environment overrides, like the config's.
  const { level, badEnv } = effectiveLogLevel(o.level, o.env ?? process.env);
  const root = pino(
    {
      level,
      base: undefined,
      timestamp: stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      serializers: { err: stdSerializers.err, error: stdSerializers.err },
    },
    o.destination ?? pino.destination({ fd: 2, sync: true }),
  );
  const log = wrap(root, level);
  if (badEnv !== undefined) log("warn", `${LOG_LEVEL_ENV}="${badEnv}" is not one of ${LOG_LEVELS.join(", ")}: logging at ${level}`);
  return log;
}

function wrap(p: Pino, level: LogLevel): RootLogger {
  const log: Logger = (lvl, msg, fields) => {
    if (fields === undefined) p[lvl](msg);
    else p[lvl](fields, msg);
  };
  // The announcement goes through a child that logs info whatever the parent's level.
  let announcer: Pino | undefined;
  return Object.assign(log, {
    level,
    child: (bindings: Record<string, unknown>) => wrap(p.child(bindings), level),
    announce: (msg: string, fields?: Record<string, unknown>) => {
      announcer ??= p.child({}, { level: "info" });
      announcer.info(fields ?? {}, msg);
    },
  });
}

/**
 * Fixed fields on any Logger: a pino child when `log` is a RootLogger, else a wrapper that adds
 * them to each line's fields (for the plain functions tests pass).
 */
export function childLogger(log: Logger, bindings: Record<string, unknown>): Logger {
  if ("child" in log && typeof (log as RootLogger).child === "function") return (log as RootLogger).child(bindings);
  return (level, msg, fields) => log(level, msg, { ...bindings, ...fields });
}

export const silentLogger: Logger = () => undefined;
