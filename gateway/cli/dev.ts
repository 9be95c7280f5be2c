import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { ensureDevKeys, mintToken, startDevIssuer } from "../auth/index.js";
import { parseConfig } from "../config/index.js";
import { startGateway } from "../compose/index.js";
import { createLogger } from "../shared/log.js";
import type { Io } from "./commands.js";

const repoRoot = fileURLToPath(new URL("../../../", import.meta.url));

export const DEV_DEFAULTS = {
  port: 8080,
  issuerPort: 8081,
  upstreamPort: 7001,
  issuer: "http://127.0.0.1:8081",
  audience: "http://127.0.0.1:8080/mcp",
  keyDir: ".tools/dev/issuer",
  bundle: "bundles/build/mcp-authz.tar.gz",
  verificationKey: ".tools/dev/bundle-signing.pub.pem",
  scopes: ["mcp:tools", "mcp:resources", "mcp:prompts"],
} as const;

/**
 * `make run`: a development issuer, the demo upstream (a child process) and the gateway, all on
 * 127.0.0.1, until Ctrl-C. Not a production mode: the issuer mints tokens for anyone at the CLI.
 */
export async function runDev(
  opts: { port: number; bundle: string; verificationKey: string },
  io: Io,
  waitForSignal: () => Promise<void>,
): Promise<number> {
  for (const [what, file] of [["bundle", opts.bundle], ["verification key", opts.verificationKey]] as const) {
    if (!existsSync(file)) {
      io.err.write(`portcullis dev: ${file}: ${what} not found (run \`make bundle\`, or \`make run\` which builds it)\n`);
      return 2;
    }
  }
  const keys = await ensureDevKeys(DEV_DEFAULTS.keyDir);
  const issuer = await startDevIssuer({ host: "127.0.0.1", port: DEV_DEFAULTS.issuerPort, keyDir: DEV_DEFAULTS.keyDir, issuer: DEV_DEFAULTS.issuer });
  const children: ChildProcess[] = [];
  let gateway: Awaited<ReturnType<typeof startGateway>> | null = null;
  const cleanup = async () => {
    await gateway?.close().catch(() => undefined);
    for (const c of children) c.kill("SIGTERM");
    await issuer.close();
  };
  try {
    const upstream = spawn(process.execPath, [fileURLToPath(new URL("../../demo/upstream.js", import.meta.url)), "--port", String(DEV_DEFAULTS.upstreamPort)], {
      stdio: ["ignore", "inherit", "pipe"],
    });
    children.push(upstream);
    await waitForLine(upstream, "listening", 10_000);

    const everything = `${repoRoot}node_modules/@modelcontextprotocol/server-everything/dist/index.js`;
    const audience = `http://127.0.0.1:${opts.port}/mcp`;
    const config = parseConfig(
      {
        listen: { host: "127.0.0.1", port: opts.port },
        auth: { issuer: issuer.issuer, audience, jwksUri: issuer.jwksUri, algorithms: ["RS256"] },
        policy: { bundle: opts.bundle, verificationKey: opts.verificationKey },
        upstreams: {
          demo: { url: `http://127.0.0.1:${DEV_DEFAULTS.upstreamPort}/mcp` },
          ...(existsSync(everything) ? { everything: { command: process.execPath, args: [everything, "stdio"] } } : {}),
        },
        audit: { file: "var/audit.jsonl" },
        // Its own pin file: the test suite's gateways run from the repository too, and a pin one of
        // them left for an upstream it called "demo" would show the demo's tools as drifted.
        integrity: { file: "var/dev/integrity.json" },
      },
      "(embedded dev config)",
    );
    // Quiet by default (PORTCULLIS_LOG_LEVEL overrides it) so the banner below stays readable; decisions are in the audit log.
    gateway = await startGateway(config, { log: createLogger("warn") });

    const token = (sub: string, roles: string[]) =>
      mintToken({ privateKeyPem: keys.privateKeyPem, kid: keys.kid, issuer: issuer.issuer, audience, sub, roles, scopes: [...DEV_DEFAULTS.scopes], clientId: "portcullis-dev", ttlSeconds: 8 * 3600 });
    const servers = Object.keys(config.upstreams);
    io.out.write(
      [
        "",
        "portcullis is running (development mode). Ctrl-C stops everything.",
        "",
        "MCP endpoints (Streamable HTTP):",
        ...servers.map((s) => `  ${gateway!.url}/mcp/${s}`),
        `Audit log: var/audit.jsonl    Dev issuer: ${issuer.issuer}`,
        "",
        "Development tokens (valid 8h):",
        `  alice, role analyst:  export TOKEN=${token("alice", ["analyst"])}`,
        `  root, role admin:     export ADMIN_TOKEN=${token("root", ["admin"])}`,
        "  more: npx portcullis token --sub bob --roles analyst --ttl 1h",
        "",
        "Connect a client:",
        `  SDK client demo:  node dist/demo/client.js --url ${gateway.url}/mcp/demo --token "$TOKEN"`,
        `  MCP Inspector:    npx @modelcontextprotocol/inspector  → Streamable HTTP, URL ${gateway.url}/mcp/demo,`,
        "                    header Authorization: Bearer <token>",
        "",
      ].join("\n"),
    );
    await Promise.race([waitForSignal(), new Promise<void>((resolve) => upstream.once("exit", () => resolve()))]);
    return 0;
  } catch (err) {
    io.err.write(`portcullis dev: ${(err as Error).message}\n`);
    return 1;
  } finally {
    await cleanup();
  }
}

function waitForLine(child: ChildProcess, needle: string, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    let seen = "";
    const timer = setTimeout(() => reject(new Error(`demo upstream did not start within ${timeoutMs} ms: ${seen}`)), timeoutMs);
    child.stderr?.on("data", (chunk: Buffer) => {
      process.stderr.write(chunk);
      seen += chunk.toString();
      if (seen.includes(needle)) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`demo upstream exited with code ${code}: ${seen.trim()}`));
    });
  });
}
