import { readFileSync } from "node:fs";
import { kafkaSecurityOptions, toOcsf, type AuditEvent } from "../audit/index.js";
import {
  ed25519PublicKey,
  followJsonlFile,
  followTopic,
  readJsonlFile,
  readTopicToEnd,
  verifyRecords,
  type StoredRecord,
  type TopicSource,
  type VerifyReport,
} from "../audit/readers.js";
import { loadAuditConfig } from "../config/index.js";
import { durationMs, GroupUsageError, optional, runGroup, type GroupIo, type Subcommand, type Values } from "./group.js";

/**
 * `portcullis audit verify|tail`: the SIEM operator's side of the audit stream. Both read a JSONL
 * file (`--file`) or a Kafka topic (`--brokers … --topic …`), or what a gateway config's `audit`
 * section names (`--config`): its Kafka topic with its TLS/SASL settings, else its `audit.file`.
 * Only that section is read, so only its `${VAR}`s need to be set.
 */

const sourceOptions = {
  file: { type: "string", short: "f" },
  brokers: { type: "string" },
  topic: { type: "string", short: "t" },
  config: { type: "string", short: "c" },
  timeout: { type: "string" },
} as const;

const SOURCE_USAGE = "(--file FILE | --brokers HOST:PORT[,…] --topic T | --config GATEWAY.yaml [--topic T])";

const SUBCOMMANDS: Record<string, Subcommand> = {
  verify: {
    summary: "check the hash chain and signed checkpoints: reports gaps, reordering, edits, deletions, unsigned epochs (exit 1 if any)",
    usage:
      `portcullis audit verify ${SOURCE_USAGE} [--public-key PEM] [--checkpoint-every N] [--strict] [--json] [--timeout 30s]\n` +
      "  with --public-key, records no valid checkpoint signature covers fail (an unsigned epoch, N or more records after the\n" +
      "  last checkpoint); an epoch's unsigned end shorter than N is a warning, a failure with --strict",
    options: {
      ...sourceOptions,
      "public-key": { type: "string" },
      "checkpoint-every": { type: "string" },
      strict: { type: "boolean" },
      json: { type: "boolean" },
    },
    async run(values, io) {
      const keyPath = optional(values, "public-key");
      const publicKey = keyPath ? ed25519PublicKey(readFileSync(keyPath, "utf8")) : undefined;
      const every = optional(values, "checkpoint-every");
      const checkpointEvery = every === undefined ? undefined : positiveInt(every, "--checkpoint-every");
      const records = await readAll(values);
      const strict = values.strict === true;
      if (strict && !publicKey) throw new GroupUsageError("--strict checks signature coverage: give --public-key too");
      const report = verifyRecords(records, { ...(publicKey ? { publicKey } : {}), ...(checkpointEvery ? { checkpointEvery } : {}), strict });
      io.out.write(values.json === true ? `${JSON.stringify(report)}\n` : formatReport(report, publicKey !== undefined));
      return report.ok ? 0 : 1;
    },
  },
  tail: {
    summary: "print events, filtered by agent, method, tool and outcome, as JSON, text or OCSF (follows a topic, or a file with --follow, until Ctrl-C)",
    usage:
      `portcullis audit tail ${SOURCE_USAGE} [--agent SUB,…] [--method tools/call,…] [--tool NAME,…]\n` +
      "                      [--outcome allowed|denied|…,…] [--format json|text|ocsf (json)] [--from-beginning]\n" +
      "                      [--once (a topic: stop at its end)] [--follow (a file: print what is appended, as tail -F)]\n" +
      "  a topic is followed (--follow or not) and a file printed whole by default; following, only new events\n" +
      "  are printed unless --from-beginning",
    options: {
      ...sourceOptions,
      agent: { type: "string" },
      method: { type: "string" },
      tool: { type: "string" },
      outcome: { type: "string" },
      format: { type: "string" },
      "from-beginning": { type: "boolean" },
      once: { type: "boolean" },
      follow: { type: "boolean" },
    },
    async run(values, io) {
      const format = optional(values, "format") ?? "json";
      if (format !== "json" && format !== "text" && format !== "ocsf") throw new GroupUsageError(`--format must be json, text or ocsf, not "${format}"`);
      const keep = eventFilter(values);
      const stop = new AbortController();
      // `tail … | head`: a closed pipe ends the command quietly instead of an EPIPE crash.
      io.out.on("error", (err: NodeJS.ErrnoException) => {
        if (err.code === "EPIPE") stop.abort();
      });
      const print = (r: StoredRecord): void => {
        if (stop.signal.aborted) return;
        const e = parseEvent(r.text);
        if (e === null) {
          io.err.write(`skipped ${r.where}: not an audit event\n`);
        } else if (keep(e)) {
          io.out.write(`${render(e, format)}\n`);
        }
      };
      const source = sourceOf(values);
      const follow = values.follow === true;
      if (follow && values.once === true) throw new GroupUsageError("--follow and --once contradict each other");
      if ((typeof source === "string" && !follow) || values.once === true) {
        for (const r of await readAll(values)) print(r);
        return 0;
      }
      const onSignal = (): void => stop.abort();
      process.once("SIGINT", onSignal);
      process.once("SIGTERM", onSignal);
      const fromBeginning = values["from-beginning"] === true;
      try {
        if (typeof source === "string") await followJsonlFile(source, fromBeginning, stop.signal, print, { onRestart: (why) => io.err.write(`${why}\n`) });
        else await followTopic(source, fromBeginning, stop.signal, print);
      } finally {
        process.off("SIGINT", onSignal);
        process.off("SIGTERM", onSignal);
      }
      return 0;
    },
  },
};

export function runAuditCommand(argv: string[], io: GroupIo): Promise<number> {
  return runGroup("audit", SUBCOMMANDS, argv, io);
}

/** A file path, or the topic to read. */
function sourceOf(values: Values): string | TopicSource {
  const file = optional(values, "file");
  const configPath = optional(values, "config");
  const brokers = optional(values, "brokers");
  if (file !== undefined) {
    if (brokers !== undefined || configPath !== undefined) throw new GroupUsageError("--file reads a file: do not combine it with --brokers or --config");
    return file;
  }
  if (configPath !== undefined) {
    const audit = loadAuditConfig(configPath);
    const k = audit.kafka;
    if (k) {
      return {
        brokers: brokers ? list(brokers) : [...k.brokers],
        topic: optional(values, "topic") ?? k.topic,
        security: kafkaSecurityOptions({ ssl: k.ssl, sasl: k.sasl }),
      };
    }
    if (brokers !== undefined || optional(values, "topic") !== undefined) throw new GroupUsageError(`${configPath} has no audit.kafka section: --brokers and --topic need one (or give them without --config)`);
    if (audit.file) return audit.file;
    throw new GroupUsageError(`${configPath} has neither audit.kafka nor audit.file`);
  }
  const topic = optional(values, "topic");
  if (brokers === undefined || topic === undefined) throw new GroupUsageError(`a source is required: ${SOURCE_USAGE}`);
  return { brokers: list(brokers), topic };
}

async function readAll(values: Values): Promise<StoredRecord[]> {
  const source = sourceOf(values);
  if (typeof source === "string") return readJsonlFile(source);
  const timeout = optional(values, "timeout");
  return readTopicToEnd(source, { timeoutMs: timeout === undefined ? 30_000 : durationMs(timeout, "--timeout") });
}

function formatReport(r: VerifyReport, keyGiven: boolean): string {
  const lines: string[] = [];
  const chains = `${r.chains.length} chain${r.chains.length === 1 ? "" : "s"}`;
  const dups = r.duplicates > 0 ? `, ${r.duplicates} duplicate deliveries ignored` : "";
  const warned = r.warnings.length > 0 ? `, ${r.warnings.length} warning${r.warnings.length === 1 ? "" : "s"}` : "";
  if (r.ok) {
    lines.push(`OK: ${r.records} records, ${chains}${dups}${warned}`);
  } else {
    const first = r.problems[0]!;
    lines.push(`FAIL: ${r.problems.length} problem${r.problems.length === 1 ? "" : "s"} in ${r.records} records, ${chains}${dups}${warned}`);
    lines.push(`first bad record: ${first.where}${first.decision_id ? ` (decision_id ${first.decision_id}, seq ${first.seq})` : ""}: ${first.kind}: ${first.message}`);
    for (const p of r.problems) lines.push(`  ${p.kind.padEnd(18)} ${p.where}${p.seq !== null ? ` seq ${p.seq}` : ""}: ${p.message}`);
  }
  for (const w of r.warnings) lines.push(`warning: ${w.kind} ${w.where}${w.seq !== null ? ` seq ${w.seq}` : ""}: ${w.message} (--strict fails it)`);
  for (const c of r.chains) {
    const signed = keyGiven ? `, ${c.checkpointsVerified} checkpoints verified${c.signedUpTo < c.lastSeq ? ` (seq ${c.signedUpTo + 1}..${c.lastSeq} not yet covered by a signature)` : ""}` : "";
    lines.push(`chain ${c.chain}: seq ${c.firstSeq}..${c.lastSeq}, ${c.records} records${signed}`);
  }
  if (r.unverifiedCheckpoints > 0) lines.push(`note: ${r.unverifiedCheckpoints} signed checkpoints not verified (give --public-key)`);
  return `${lines.join("\n")}\n`;
}

function eventFilter(values: Values): (e: AuditEvent) => boolean {
  const agents = listOpt(values, "agent");
  const methods = listOpt(values, "method");
  const tools = listOpt(values, "tool");
  const outcomes = listOpt(values, "outcome");
  return (e) =>
    (agents === null || agents.includes(e.agent.sub ?? "anonymous")) &&
    (methods === null || methods.includes(e.mcp.method)) &&
    (tools === null || (e.mcp.tool !== null && tools.includes(e.mcp.tool))) &&
    (outcomes === null || outcomes.includes(e.outcome));
}

function parseEvent(text: string): AuditEvent | null {
  try {
    const v = JSON.parse(text) as Partial<AuditEvent> | null;
    return v && typeof v === "object" && typeof v.decision_id === "string" && v.agent && v.mcp ? (v as AuditEvent) : null;
  } catch {
    return null;
  }
}

function render(e: AuditEvent, format: "json" | "text" | "ocsf"): string {
  if (format === "ocsf") return JSON.stringify(toOcsf(e));
  if (format === "json") return JSON.stringify(e);
  const what = e.mcp.tool ?? e.mcp.resource ?? e.mcp.prompt ?? "";
  const err = e.error ? ` ${e.error.code}` : "";
  return `${e.timestamp} ${e.outcome.padEnd(15)} ${(e.agent.sub ?? "anonymous").padEnd(12)} ${e.mcp.server}/${e.mcp.method}${what ? ` ${what}` : ""}${err} ${e.decision_id}`;
}

const list = (s: string): string[] => s.split(/[,\s]+/).filter((x) => x.length > 0);

function listOpt(values: Values, name: string): string[] | null {
  const v = optional(values, name);
  return v === undefined ? null : list(v);
}

function positiveInt(s: string, flag: string): number {
  const n = Number(s);
  if (!Number.isSafeInteger(n) || n < 1) throw new GroupUsageError(`${flag} must be a positive integer`);
  return n;
}
