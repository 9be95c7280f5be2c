import { parseArgs, type ParseArgsConfig } from "node:util";
import { ConfigError } from "../config/index.js";

/**
 * Command groups (`portcullis bundle build|sign|verify`, `portcullis policy eval|replay`): one
 * table of subcommands per group, parsed strictly, with `--help` everywhere and the CLI's exit
 * codes (0 ok, 1 runtime failure or a failed check, 2 usage error).
 */

export interface GroupIo {
  out: NodeJS.WritableStream;
  err: NodeJS.WritableStream;
}

export type Values = Record<string, string | boolean | string[] | undefined>;

export interface Subcommand {
  summary: string;
  usage: string;
  options: NonNullable<ParseArgsConfig["options"]>;
  /** The one positional argument's name (`approvals approve ID`); without it none is accepted. */
  argument?: string;
  run(values: Values, io: GroupIo, argument: string | undefined): Promise<number>;
}

/** Thrown for a missing or bad option: exit code 2 with the usage line. */
export class GroupUsageError extends Error {}

export async function runGroup(group: string, subs: Record<string, Subcommand>, argv: string[], io: GroupIo): Promise<number> {
  const [name, ...rest] = argv;
  const help = (): string =>
    [`Usage: portcullis ${group} <${Object.keys(subs).join("|")}> [options]   (each takes --help)`, "", ...Object.entries(subs).map(([n, s]) => `  ${n.padEnd(8)}  ${s.summary}`), ""].join("\n");
  if (name === undefined || name === "--help" || name === "-h") {
    io.out.write(help());
    return name === undefined ? 2 : 0;
  }
  const sub = Object.hasOwn(subs, name) ? subs[name] : undefined;
  if (sub === undefined) {
    io.err.write(`portcullis ${group}: unknown subcommand "${name}"\n\n${help()}`);
    return 2;
  }
  try {
    const { values, positionals } = parseArgs({ args: rest, options: { ...sub.options, help: { type: "boolean", short: "h" } }, strict: true, allowPositionals: sub.argument !== undefined });
    if (values.help === true) {
      io.out.write(`${sub.summary}\n\nUsage: ${sub.usage}\n`);
      return 0;
    }
    if (sub.argument !== undefined && positionals.length !== 1) {
      throw new GroupUsageError(positionals.length === 0 ? `${sub.argument} is required` : `one ${sub.argument} only, not ${positionals.length}`);
    }
    return await sub.run(values as Values, io, positionals[0]);
  } catch (err) {
    // A bad config is exit 2 in the words serve uses for it.
    if (err instanceof ConfigError) {
      io.err.write(`portcullis: config error: ${err.message}\n`);
      return 2;
    }
    const usage = err instanceof GroupUsageError || (err as NodeJS.ErrnoException).code?.startsWith("ERR_PARSE_ARGS") === true;
    io.err.write(`portcullis ${group} ${name}: ${(err as Error).message}\n${usage ? `Usage: ${sub.usage}\n` : ""}`);
    return usage ? 2 : 1;
  }
}

/** A required string option. */
export function required(values: Values, name: string): string {
  const v = values[name];
  if (typeof v !== "string" || v.length === 0) throw new GroupUsageError(`--${name} is required`);
  return v;
}

export function optional(values: Values, name: string): string | undefined {
  const v = values[name];
  return typeof v === "string" && v.length > 0 ? v : undefined;
}

/** A duration option like 500ms, 30s or 2m (a bare number is seconds), in milliseconds. */
export function durationMs(s: string, flag: string): number {
  const m = /^(\d+)(ms|s|m)?$/.exec(s);
  if (!m) throw new GroupUsageError(`${flag}: "${s}" is not a duration like 500ms, 30s or 2m`);
  const n = Number(m[1]);
  return m[2] === "ms" ? n : m[2] === "m" ? n * 60_000 : n * 1000;
}
