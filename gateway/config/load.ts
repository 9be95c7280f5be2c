import { readFileSync } from "node:fs";
import { dirname, isAbsolute, resolve } from "node:path";
import { LineCounter, parseDocument } from "yaml";
import { z } from "zod";
import { configSchema, isStdioUpstream, type GatewayConfig } from "./schema.js";
import { resolveOutbox } from "./outbox-schema.js";
import { resolveIntegrityPaths } from "../integrity/config.js";

/** A configuration problem, always naming the file and the dotted field. CLI exits 2 on it. */
export class ConfigError extends Error {
  readonly code = "config_invalid";
  constructor(
    readonly file: string,
    readonly problems: string[],
  ) {
    super(`${file}: ${problems.length === 1 ? problems[0] : `\n  ${problems.join("\n  ")}`}`);
    this.name = "ConfigError";
  }
}

/** Reads, expands `${VAR}`, validates, fills defaults, resolves paths, and freezes. */
export function loadConfig(file: string, env: NodeJS.ProcessEnv = process.env): GatewayConfig {
  return parseConfig(readYaml(file), file, env);
}

const auditSectionSchema = z.object({ audit: configSchema.shape.audit });

/**
 * Only the `audit` section, for the offline tools (`portcullis audit … --config`): its `${VAR}`s,
 * its schema and defaults, its paths. The rest of the file is not validated, so a SIEM host needs
 * none of the gateway's other secrets in its environment.
 */
export function loadAuditConfig(file: string, env: NodeJS.ProcessEnv = process.env): GatewayConfig["audit"] {
  return loadConfigSections(file, auditSectionSchema, (s, abs) => resolveAuditPaths(s.audit, abs), env).audit;
}

/**
 * Only some top-level sections of a config file, for commands that need no more (`audit`,
 * `tools`, `approvals`): `schema` is an object of those sections (its keys name them), with their
 * defaults and any rule across them. Only their `${VAR}`s are expanded and only they are
 * validated, with the same messages as the whole file; `resolvePaths` then makes their paths
 * absolute (relative = next to the config file), and the result is frozen.
 */
export function loadConfigSections<S extends z.ZodRawShape, T extends Record<string, unknown>>(
  file: string,
  schema: z.ZodType<T> & { shape: S },
  resolvePaths: (sections: T, abs: (p: string) => string) => void,
  env: NodeJS.ProcessEnv = process.env,
): T {
  const raw = readYaml(file);
  const top = raw !== null && typeof raw === "object" && !Array.isArray(raw) ? (raw as Record<string, unknown>) : {};
  const problems: string[] = [];
  const expanded: Record<string, unknown> = {};
  for (const name of Object.keys(schema.shape)) expanded[name] = expandEnv(top[name], [name], env, problems);
  if (problems.length > 0) throw new ConfigError(file, problems);
  const result = schema.safeParse(expanded);
  if (!result.success) throw new ConfigError(file, formatIssues(result.error, expanded));
  resolvePaths(result.data, pathResolver(file));
  return deepFreeze(result.data);
}

function readYaml(file: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new ConfigError(file, [`cannot read config: ${(err as NodeJS.ErrnoException).code ?? String(err)}`]);
  }
  const lines = new LineCounter();
  const doc = parseDocument(text, { prettyErrors: false, lineCounter: lines });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      file,
      doc.errors.map((e) => `YAML syntax error at line ${lines.linePos(e.pos[0]).line}: ${e.message.split("\n")[0]}`),
    );
  }
  return doc.toJS() as unknown;
}

/** Validates an already-parsed document (used by loadConfig and by tests). */
export function parseConfig(raw: unknown, file: string, env: NodeJS.ProcessEnv = process.env): GatewayConfig {
  const problems: string[] = [];
  const expanded = expandEnv(raw, [], env, problems);
  if (problems.length > 0) throw new ConfigError(file, problems);

  const result = configSchema.safeParse(expanded);
  if (!result.success) throw new ConfigError(file, formatIssues(result.error, expanded));

  const config = result.data;
  const abs = pathResolver(file);
  config.policy.bundle = abs(config.policy.bundle);
  config.policy.verificationKey = abs(config.policy.verificationKey);
  if (config.policy.shadow) {
    config.policy.shadow.bundle = abs(config.policy.shadow.bundle);
    if (config.policy.shadow.verificationKey) config.policy.shadow.verificationKey = abs(config.policy.shadow.verificationKey);
  }
  resolveAuditPaths(config.audit, abs);
  resolveIntegrityPaths(config.integrity, abs);
  for (const u of Object.values(config.upstreams)) {
    if (isStdioUpstream(u)) {
      // A stdio upstream starts in its cwd, the config file's folder by default, so a relative
      // path in `command` or `args` means the same thing as everywhere else in the file. Args are
      // passed as written: only the process knows which of them are paths.
      u.cwd = abs(u.cwd ?? ".");
    } else if (u.identityAssertion) {
      u.identityAssertion.privateKey = abs(u.identityAssertion.privateKey);
    }
  }
  return deepFreeze(config);
}

/** Relative paths (not URLs) against the config file's folder. */
function pathResolver(file: string): (p: string) => string {
  const base = dirname(resolve(file));
  return (p) => (isAbsolute(p) || /^https?:\/\//.test(p) ? p : resolve(base, p));
}

/** Every path of the audit section: the file, the outbox and dead letters, the signing key, the Kafka TLS files. */
function resolveAuditPaths(audit: GatewayConfig["audit"], abs: (p: string) => string): void {
  if (audit.file) audit.file = abs(audit.file);
  resolveOutbox(audit, abs);
  if (audit.signing) audit.signing.privateKey = abs(audit.signing.privateKey);
  const ssl = audit.kafka?.ssl;
  if (ssl !== undefined && typeof ssl === "object") {
    if (ssl.ca !== undefined) ssl.ca = typeof ssl.ca === "string" ? abs(ssl.ca) : ssl.ca.map(abs);
    if (ssl.cert !== undefined) ssl.cert = abs(ssl.cert);
    if (ssl.key !== undefined) ssl.key = abs(ssl.key);
  }
}

function expandEnv(value: unknown, path: string[], env: NodeJS.ProcessEnv, problems: string[]): unknown {
  if (typeof value === "string") {
    return value.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_m, name: string) => {
      const v = env[name];
      if (v === undefined) {
        problems.push(`${dotted(path)}: environment variable ${name} is not set`);
        return "";
      }
      return v;
    });
  }
  if (Array.isArray(value)) return value.map((v, i) => expandEnv(v, [...path, String(i)], env, problems));
  if (value !== null && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = expandEnv(v, [...path, k], env, problems);
    return out;
  }
  return value;
}

function formatIssues(error: z.ZodError, doc: unknown): string[] {
  const lines: string[] = [];
  for (const issue of error.issues) {
    const where = dotted(issue.path.map(String));
    const value = getPath(doc, issue.path);
    const upstreamKind = issue.path.length === 2 && issue.path[0] === "upstreams" ? (value && typeof value === "object" && "command" in value ? "stdio" : "http") : null;
    if (issue.code === "unrecognized_keys" && upstreamKind) {
      // Zod picks the closest upstream shape itself: say which one the keys were unknown to.
      lines.push(`${where}: unknown key(s) ${issue.keys.join(", ")} for a ${upstreamKind} upstream`);
    } else if (issue.code === "unrecognized_keys") {
      lines.push(`${where || "(top level)"}: unknown key${issue.keys.length > 1 ? "s" : ""} ${issue.keys.map((k) => `"${k}"`).join(", ")}`);
    } else if (issue.code === "invalid_union") {
      // Upstreams are the only union: say which shape was expected instead of zod's generic text.
      const kind = value && typeof value === "object" && "command" in value ? "stdio" : "http";
      const branch = issue.errors[kind === "stdio" ? 1 : 0] ?? [];
      if (branch.length === 0) lines.push(`${where}: expected an http upstream {url, headers} or a stdio upstream {command, args, env}`);
      for (const sub of branch) {
        const subWhere = dotted([...issue.path.map(String), ...sub.path.map(String)]);
        lines.push(`${subWhere}: ${sub.code === "unrecognized_keys" ? `unknown key(s) ${sub.keys.join(", ")} for a ${kind} upstream` : sub.message}`);
      }
    } else if (issue.code === "invalid_type" && getPath(doc, issue.path) === undefined) {
      lines.push(`${where}: is required`);
    } else {
      lines.push(`${where || "(top level)"}: ${issue.message}`);
    }
  }
  return lines.sort();
}

function getPath(doc: unknown, path: readonly PropertyKey[]): unknown {
  let cur: unknown = doc;
  for (const key of path) {
    if (cur === null || typeof cur !== "object") return undefined;
    cur = (cur as Record<PropertyKey, unknown>)[key];
  }
  return cur;
}

const dotted = (path: string[]) => path.join(".");

function deepFreeze<T>(value: T): T {
  if (value && typeof value === "object") {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}
