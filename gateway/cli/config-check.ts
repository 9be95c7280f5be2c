import { accessSync, constants, existsSync, statfsSync, statSync } from "node:fs";
import { delimiter, dirname, isAbsolute, resolve } from "node:path";
import { kafkaSecurityOptions } from "../audit/index.js";
import { auditChainFromConfig } from "../compose/index.js";
import { startPolicy } from "../compose/index.js";
import { ConfigError, isStdioUpstream, loadConfig, type GatewayConfig, type StdioUpstreamConfig } from "../config/index.js";
import { BundleError, type ReloaderStatus } from "../policy/index.js";
import { upstreamAuthorizer } from "../upstream-auth/index.js";
import { randomIds, systemClock } from "../shared/clock.js";
import type { Logger } from "../shared/log.js";
import { onlineChecks, verifierFor } from "./config-probes.js";
import { durationMs, GroupUsageError, optional, required, runGroup, type GroupIo, type Subcommand } from "./group.js";

/**
 * `portcullis config check`: what `serve` checks before it listens, without listening. Each check
 * calls the function serve itself calls (loadConfig, startPolicy, the audit chain and Kafka TLS
 * readers, the upstream authorizers, the JWT verifier), so the messages are serve's. What serve
 * only finds out later (a stdio command that does not exist, an audit directory it cannot write)
 * is checked here too. `--online` adds what needs the network (config-probes.ts).
 */

export type CheckStatus = "ok" | "warn" | "fail" | "skip";

export interface CheckResult {
  /** The dotted config field the check is about ("policy.bundle", "upstreams.files"). */
  field: string;
  status: CheckStatus;
  detail: string;
}

/** What the policy check needs of the live policy: serve's startPolicy, or a fake in unit tests. */
export interface StartedPolicy {
  status(): { policy: ReloaderStatus; shadow?: ReloaderStatus };
  stop(): void;
}
export type PolicyStarter = (config: GatewayConfig, opts: { log: Logger; now: () => number; sighup: boolean }) => Promise<StartedPolicy>;

export interface ConfigCheckOptions {
  online: boolean;
  /** Bound on each network check. */
  timeoutMs: number;
  env?: NodeJS.ProcessEnv;
  startPolicy?: PolicyStarter;
}

export interface ConfigCheckReport {
  file: string;
  results: CheckResult[];
  ok: boolean;
}

/**
 * Runs every check and reports each; throws the loader's ConfigError when the file itself does
 * not load (nothing else can be checked then).
 */
export async function checkConfigFile(file: string, opts: ConfigCheckOptions): Promise<ConfigCheckReport> {
  const config = loadConfig(file, opts.env);
  const upstreams = Object.keys(config.upstreams);
  const results: CheckResult[] = [{ field: "config", status: "ok", detail: `schema, \${VAR}s and defaults (${upstreams.length} upstream${upstreams.length === 1 ? "" : "s"}: ${upstreams.join(", ")})` }];
  results.push(...(await policyChecks(config, opts)));
  results.push(identityCheck(config));
  results.push(...auditChecks(config));
  results.push(...upstreamChecks(config, opts.env ?? process.env));
  if (opts.online) results.push(...(await onlineChecks(config, { timeoutMs: opts.timeoutMs })));
  return { file, results, ok: results.every((r) => r.status !== "fail") };
}

/** The failures as serve words a bad config: one ConfigError naming the file and each field. */
export function failuresAsConfigError(report: ConfigCheckReport): ConfigError | null {
  const failed = report.results.filter((r) => r.status === "fail");
  return failed.length === 0 ? null : new ConfigError(report.file, failed.map((r) => `${r.field}: ${r.detail}`));
}

async function policyChecks(config: GatewayConfig, opts: ConfigCheckOptions): Promise<CheckResult[]> {
  const p = config.policy;
  const isUrl = (s: string) => /^https?:\/\//.test(s);
  if (!opts.online && (isUrl(p.bundle) || (p.shadow !== undefined && isUrl(p.shadow.bundle)))) {
    return [{ field: "policy.bundle", status: "skip", detail: `${isUrl(p.bundle) ? p.bundle : p.shadow!.bundle} is a URL: fetched and verified with --online` }];
  }
  const logged: string[] = [];
  const log: Logger = (level, msg, fields) => {
    if (level === "error" || level === "warn") logged.push(`${msg}${fields?.error ? `: ${String(fields.error)}` : ""}`);
  };
  let runtime: StartedPolicy;
  try {
    // serve's own start: key read, bundle read or fetched, signature and digests verified, wasm compiled.
    runtime = await (opts.startPolicy ?? startPolicy)(config, { log, now: () => Date.now(), sighup: false });
  } catch (err) {
    return [{ field: policyField(err), status: "fail", detail: err instanceof BundleError ? `${err.code}: ${err.message}` : (err as Error).message }];
  }
  try {
    const s = runtime.status();
    const out: CheckResult[] = [{ field: "policy.bundle", status: "ok", detail: `${p.bundle}: signature verified with ${p.verificationKey}, revision "${s.policy.revision}", compiled` }];
    if (s.shadow !== undefined) {
      // serve starts with a shadow that does not load (it is retried); a check says so.
      out.push(
        s.shadow.state === "ok"
          ? { field: "policy.shadow.bundle", status: "ok", detail: `${p.shadow!.bundle}: revision "${s.shadow.revision}"` }
          : { field: "policy.shadow.bundle", status: "warn", detail: `${p.shadow!.bundle}: does not load (serve starts and retries it): ${s.shadow.lastError?.message ?? logged.join("; ")}` },
      );
    }
    return out;
  } finally {
    runtime.stop();
  }
}

/** Which key a policy failure is about: the loader's codes say it for bundles; key reads name their field. */
function policyField(err: unknown): string {
  if (err instanceof BundleError) return err.code === "bundle_key_invalid" ? "policy.verificationKey" : "policy.bundle";
  return /cannot read (policy\.[\w.]+)/.exec((err as Error).message)?.[1] ?? "policy.bundle";
}

/** The verifier serve builds (URL and algorithm rules); its keys are fetched with --online. */
function identityCheck(config: GatewayConfig): CheckResult {
  try {
    verifierFor(config);
    return { field: "auth", status: "ok", detail: `issuer ${config.auth.issuer}, JWKS ${config.auth.jwksUri}` };
  } catch (err) {
    const message = (err as Error).message;
    const field = /^(auth\.\w+) /.exec(message)?.[1] ?? "auth";
    return { field, status: "fail", detail: withoutField(field, message) };
  }
}

function auditChecks(config: GatewayConfig): CheckResult[] {
  const a = config.audit;
  const out: CheckResult[] = [];
  if (a.file) {
    const problem = writableFile(a.file);
    out.push(problem ? { field: "audit.file", status: "fail", detail: problem } : { field: "audit.file", status: "ok", detail: `${a.file} (writable)` });
    const free = freeBytes(a.file);
    if (!problem && a.fileMinFreeBytes > 0 && free !== null && free < a.fileMinFreeBytes) {
      out.push({ field: "audit.fileMinFreeBytes", status: "warn", detail: `${free} bytes free where ${a.file} is, below ${a.fileMinFreeBytes}: serve refuses requests (audit_unavailable) until there is room` });
    }
  }
  if (a.signing) {
    try {
      auditChainFromConfig(config, "config-check");
      out.push({ field: "audit.signing.privateKey", status: "ok", detail: `${a.signing.privateKey} (Ed25519)` });
    } catch (err) {
      out.push({ field: "audit.signing.privateKey", status: "fail", detail: withoutField("audit.signing.privateKey", (err as Error).message) });
    }
  }
  const k = a.kafka;
  if (k) {
    try {
      kafkaSecurityOptions({ ssl: k.ssl, sasl: k.sasl });
      out.push({ field: "audit.kafka", status: "ok", detail: `brokers ${k.brokers.join(",")}, topic ${k.topic}${k.ssl ? ", TLS files read" : ""} (reached with --online)` });
    } catch (err) {
      const m = /^(audit\.kafka\.ssl\.\w+): (.*)$/s.exec((err as Error).message);
      out.push({ field: m?.[1] ?? "audit.kafka.ssl", status: "fail", detail: m?.[2] ?? (err as Error).message });
    }
    if (a.outbox) {
      const problem = writableDir(a.outbox.dir);
      out.push(problem ? { field: "audit.outbox.dir", status: "fail", detail: problem } : { field: "audit.outbox.dir", status: "ok", detail: `${a.outbox.dir} (writable)` });
    }
    if (k.deadLetterFile) {
      const problem = writableFile(k.deadLetterFile);
      if (problem) out.push({ field: "audit.kafka.deadLetterFile", status: "fail", detail: problem });
    }
  }
  return out;
}

function upstreamChecks(config: GatewayConfig, env: NodeJS.ProcessEnv): CheckResult[] {
  return Object.entries(config.upstreams).map(([name, u]): CheckResult => {
    const field = `upstreams.${name}`;
    if (isStdioUpstream(u)) {
      const problem = stdioProblem(u, env);
      return problem ? { field: `${field}.${problem.field}`, status: "fail", detail: problem.detail } : { field, status: "ok", detail: `stdio: ${u.command} ${u.args.join(" ")} (in ${u.cwd ?? process.cwd()})` };
    }
    try {
      // serve's own build of the upstream's credentials: reads and parses the identity assertion key.
      upstreamAuthorizer(name, u, { clock: systemClock, ids: randomIds });
      return { field, status: "ok", detail: `http: ${u.url}${u.auth ? ` (auth ${u.auth.type})` : ""}${u.identityAssertion ? " (identity assertion key read)" : ""}` };
    } catch (err) {
      const m = /^(upstreams\.[^:]+): (.*)$/s.exec((err as Error).message);
      return { field: m?.[1] ?? `${field}.identityAssertion.privateKey`, status: "fail", detail: m?.[2] ?? (err as Error).message };
    }
  });
}

/**
 * The checks the spawn would fail: `cwd` is a directory, and the command is an executable file,
 * looked up the way the child process looks it up: a name with a slash against `cwd`, a bare name
 * in the PATH of the child's environment (the SDK's minimal environment plus `env`).
 */
function stdioProblem(u: StdioUpstreamConfig, env: NodeJS.ProcessEnv): { field: string; detail: string } | null {
  const cwd = u.cwd ?? process.cwd();
  if (u.cwd !== undefined && !isDirectory(u.cwd)) return { field: "cwd", detail: `${u.cwd} is not a directory` };
  if (u.command.includes("/")) {
    const path = isAbsolute(u.command) ? u.command : resolve(cwd, u.command);
    return executable(path) ? null : { field: "command", detail: `${path} ${existsSync(path) ? "is not an executable file" : "does not exist"}` };
  }
  // The child's environment is the SDK's minimal one (PATH copied from this process) plus `env`.
  const childPath = u.env.PATH ?? env.PATH ?? "";
  const dirs = childPath.split(delimiter).filter((d) => d.length > 0);
  if (dirs.some((d) => executable(resolve(cwd, d, u.command)))) return null;
  return { field: "command", detail: `"${u.command}" is not an executable in the upstream's PATH (${childPath || "empty"})` };
}

function executable(path: string): boolean {
  try {
    if (!statSync(path).isFile()) return false;
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/** Null when serve could append to `file` (creating it and its directories if needed), else why not. */
function writableFile(file: string): string | null {
  if (existsSync(file)) {
    if (!statSync(file).isFile()) return `${file} is not a file`;
    try {
      accessSync(file, constants.W_OK);
      return null;
    } catch {
      return `${file} is not writable`;
    }
  }
  return writableDir(dirname(file));
}

/** Null when `dir` exists and is writable, or can be created (its nearest existing parent is a writable directory). */
function writableDir(dir: string): string | null {
  let at = dir;
  while (!existsSync(at)) at = dirname(at);
  if (!isDirectory(at)) return `${at} is not a directory`;
  try {
    accessSync(at, constants.W_OK | constants.X_OK);
    return null;
  } catch {
    return at === dir ? `${dir} is not writable` : `${dir} does not exist and ${at} is not writable`;
  }
}

function freeBytes(file: string): number | null {
  let at = dirname(file);
  while (!existsSync(at)) at = dirname(at);
  try {
    const s = statfsSync(at);
    return s.bavail * s.bsize;
  } catch {
    return null;
  }
}

/** Serve's messages start with the field when they know it; the report names it once. */
function withoutField(field: string, message: string): string {
  if (message.startsWith(`${field}: `)) return message.slice(field.length + 2);
  return message.startsWith(`${field} `) ? message.slice(field.length + 1) : message;
}

/** One line per check, then the verdict. */
export function formatReport(report: ConfigCheckReport, online: boolean): string {
  const width = Math.max(...report.results.map((r) => r.field.length));
  const lines = [`portcullis config check ${report.file}${online ? " --online" : ""}`];
  for (const r of report.results) lines.push(`  ${r.status.toUpperCase().padEnd(4)}  ${r.field.padEnd(width)}  ${r.detail}`);
  const count = (s: CheckStatus) => report.results.filter((r) => r.status === s).length;
  const tail = [count("warn") ? `${count("warn")} warning${count("warn") === 1 ? "" : "s"}` : "", count("skip") ? `${count("skip")} skipped` : ""].filter((s) => s).join(", ");
  lines.push(
    report.ok
      ? `ok: ${count("ok")} checks passed${tail ? ` (${tail})` : ""}${online ? "" : "; --online also fetches the JWKS and reaches the HTTP upstreams and Kafka"}`
      : `FAILED: ${count("fail")} of ${report.results.length} checks${tail ? ` (${tail})` : ""}`,
  );
  return `${lines.join("\n")}\n`;
}

const SUBCOMMANDS: Record<string, Subcommand> = {
  check: {
    summary: "check a config and every file it names as serve would, without serving (exit 0, or 2 naming file and field)",
    usage:
      "portcullis config check --config FILE [--online [--timeout 5s]]\n" +
      "  --online also fetches the issuer's JWKS, sends HEAD to each HTTP upstream, connects to Kafka and looks for the topic",
    options: { config: { type: "string", short: "c" }, online: { type: "boolean" }, timeout: { type: "string" } },
    async run(values, io) {
      const file = required(values, "config");
      const online = values.online === true;
      const timeout = optional(values, "timeout");
      if (timeout !== undefined && !online) throw new GroupUsageError("--timeout bounds the --online checks: give --online too");
      return configCheck(file, { online, timeoutMs: timeout === undefined ? 5000 : durationMs(timeout, "--timeout") }, io);
    },
  },
};

/** The command: the report on stdout; on failure serve's config-error text on stderr and exit 2. */
export async function configCheck(file: string, opts: ConfigCheckOptions, io: GroupIo): Promise<number> {
  let report: ConfigCheckReport;
  try {
    report = await checkConfigFile(file, opts);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    io.err.write(`portcullis: config error: ${err.message}\n`);
    return 2;
  }
  io.out.write(formatReport(report, opts.online));
  const failure = failuresAsConfigError(report);
  if (failure === null) return 0;
  io.err.write(`portcullis: config error: ${failure.message}\n`);
  return 2;
}

export function runConfigCommand(argv: string[], io: GroupIo): Promise<number> {
  return runGroup("config", SUBCOMMANDS, argv, io);
}
