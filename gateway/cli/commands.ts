import { parseArgs, type ParseArgsConfig } from "node:util";
import { ensureDevKeys, mintToken, parseDuration } from "../auth/index.js";
import { ConfigError, loadConfig } from "../config/index.js";
import { GATEWAY_VERSION, startGateway } from "../compose/index.js";
import { createLogger } from "../shared/log.js";
import { runDev, DEV_DEFAULTS } from "./dev.js";
import { runBundleCommand } from "./bundle.js";
import { runPolicyCommand } from "./policy.js";
import { runAuditCommand } from "./audit.js";
import { runConfigCommand } from "./config-check.js";
import { runApprovalsCommand, runToolsCommand } from "./integrity.js";

export interface Io {
  out: NodeJS.WritableStream;
  err: NodeJS.WritableStream;
}

/** Exit codes: 0 ok, 1 runtime failure, 2 usage or configuration error. */
export class UsageError extends Error {}

interface Command {
  summary: string;
  usage: string;
  options: NonNullable<ParseArgsConfig["options"]>;
  run(values: Record<string, string | boolean | undefined>, io: Io): Promise<number>;
}

const COMMANDS: Record<string, Command> = {
  serve: {
    summary: "run the gateway from a config file",
    usage: "portcullis serve --config FILE",
    options: { config: { type: "string", short: "c" } },
    async run(values, io) {
      const file = values.config;
      if (typeof file !== "string") throw new UsageError("serve needs --config FILE");
      const config = loadConfig(file);
      const log = createLogger({ level: config.logging.level });
      const gateway = await startGateway(config, { log });
      // Listening for SIGTERM before saying so: a supervisor may stop it the moment it reads the line.
      const stopped = waitForSignal();
      // One JSON line like every other, written whatever the level: supervisors and tests wait for it.
      const endpoints = Object.keys(config.upstreams).map((n) => `${gateway.url}/mcp/${n}`);
      log.announce(`portcullis ${GATEWAY_VERSION} serving ${endpoints.join(", ")}`, { version: GATEWAY_VERSION, endpoints, logLevel: log.level });
      await stopped;
      await gateway.close();
      return 0;
    },
  },
  token: {
    summary: "mint a development token (development issuer only)",
    usage:
      "portcullis token --sub NAME [--roles a,b] [--scopes x,y] [--ttl 1h] [--client-id ID]\n" +
      `                 [--issuer URL (default ${DEV_DEFAULTS.issuer})] [--audience URL (default ${DEV_DEFAULTS.audience})]\n` +
      `                 [--key-dir DIR (default ${DEV_DEFAULTS.keyDir})]`,
    options: {
      sub: { type: "string" },
      roles: { type: "string" },
      scopes: { type: "string" },
      ttl: { type: "string" },
      "client-id": { type: "string" },
      issuer: { type: "string" },
      audience: { type: "string" },
      "key-dir": { type: "string" },
    },
    async run(values, io) {
      if (typeof values.sub !== "string" || values.sub.length === 0) throw new UsageError("token needs --sub NAME");
      let ttlSeconds: number;
      try {
        ttlSeconds = parseDuration(typeof values.ttl === "string" ? values.ttl : "1h");
      } catch (err) {
        throw new UsageError(`--ttl: ${(err as Error).message}`);
      }
      const keys = await ensureDevKeys(str(values["key-dir"]) ?? DEV_DEFAULTS.keyDir);
      const token = mintToken({
        privateKeyPem: keys.privateKeyPem,
        kid: keys.kid,
        issuer: str(values.issuer) ?? DEV_DEFAULTS.issuer,
        audience: str(values.audience) ?? DEV_DEFAULTS.audience,
        sub: values.sub,
        roles: list(values.roles) ?? ["analyst"],
        scopes: list(values.scopes) ?? [...DEV_DEFAULTS.scopes],
        clientId: str(values["client-id"]) ?? "portcullis-cli",
        ttlSeconds,
      });
      io.out.write(`${token}\n`);
      return 0;
    },
  },
  dev: {
    summary: "development stack: dev issuer, demo upstream and the gateway on 127.0.0.1:8080 (make run)",
    usage: "portcullis dev [--port 8080] [--bundle FILE] [--verification-key FILE]",
    options: {
      port: { type: "string" },
      bundle: { type: "string" },
      "verification-key": { type: "string" },
    },
    async run(values, io) {
      return runDev(
        {
          port: values.port === undefined ? DEV_DEFAULTS.port : Number(values.port),
          bundle: str(values.bundle) ?? DEV_DEFAULTS.bundle,
          verificationKey: str(values["verification-key"]) ?? DEV_DEFAULTS.verificationKey,
        },
        io,
        waitForSignal,
      );
    },
  },
  version: {
    summary: "print the version",
    usage: "portcullis version",
    options: {},
    async run(_values, io) {
      io.out.write(`portcullis ${GATEWAY_VERSION}\n`);
      return 0;
    },
  },
};

/** Commands with subcommands (issue 3); each parses its own arguments. */
const COMMAND_GROUPS: Record<string, { summary: string; run(argv: string[], io: Io): Promise<number> }> = {
  bundle: { summary: "build, sign and verify signed policy bundles (bundle build|sign|verify)", run: runBundleCommand },
  policy: { summary: "evaluate one input, replay recorded decisions against a candidate (policy eval|replay)", run: runPolicyCommand },
  audit: { summary: "verify the audit hash chain, tail events for a SIEM (audit verify|tail)", run: runAuditCommand },
  config: { summary: "check a config and every file it names, --online also what it reaches (config check)", run: runConfigCommand },
  tools: { summary: "pinned tool definitions: list them, approve a drifted one, revoke a pin (tools list|approve|revoke)", run: runToolsCommand },
  approvals: { summary: "calls held for a human: list them, approve or deny one (approvals list|approve|deny)", run: runApprovalsCommand },
};

function help(): string {
  const names = Object.keys(COMMANDS);
  const width = Math.max(...[...names, ...Object.keys(COMMAND_GROUPS)].map((n) => n.length));
  return [
    "portcullis: MCP security gateway",
    "",
    "Usage: portcullis <command> [options]   (every command takes --help; portcullis --version)",
    "",
    ...names.map((n) => `  ${n.padEnd(width)}  ${COMMANDS[n]!.summary}`),
    ...Object.entries(COMMAND_GROUPS).map(([n, g]) => `  ${n.padEnd(width)}  ${g.summary}`),
    "",
  ].join("\n");
}

export async function runCli(argv: string[], io: Io): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === "--help" || name === "-h" || name === "help") {
    io.out.write(help());
    return name === undefined ? 2 : 0;
  }
  if (name === "--version" || name === "-V") return COMMANDS.version!.run({}, io);
  const group = Object.hasOwn(COMMAND_GROUPS, name) ? COMMAND_GROUPS[name] : undefined;
  if (group) return group.run(rest, io);
  const command = COMMANDS[name];
  if (!command) {
    io.err.write(`portcullis: unknown command "${name}"\n\n${help()}`);
    return 2;
  }
  try {
    const { values } = parseArgs({ args: rest, options: { ...command.options, help: { type: "boolean", short: "h" } }, strict: true, allowPositionals: false });
    if (values.help) {
      io.out.write(`${command.summary}\n\nUsage: ${command.usage}\n`);
      return 0;
    }
    return await command.run(values as Record<string, string | boolean | undefined>, io);
  } catch (err) {
    if (err instanceof ConfigError) {
      io.err.write(`portcullis: config error: ${err.message}\n`);
      return 2;
    }
    if (err instanceof UsageError || (err as NodeJS.ErrnoException).code?.startsWith("ERR_PARSE_ARGS")) {
      io.err.write(`portcullis ${name}: ${(err as Error).message}\nUsage: ${command.usage}\n`);
      return 2;
    }
    io.err.write(`portcullis ${name}: ${(err as Error).message}\n`);
    return 1;
  }
}

function waitForSignal(): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      process.off("SIGINT", done);
      process.off("SIGTERM", done);
      resolve();
    };
    process.on("SIGINT", done);
    process.on("SIGTERM", done);
  });
}

const str = (v: string | boolean | undefined) => (typeof v === "string" && v.length > 0 ? v : undefined);
const list = (v: string | boolean | undefined) =>
  typeof v === "string" ? v.split(/[,\s]+/).filter((s) => s.length > 0) : undefined;
