/**
 * A real end-to-end stack for integration tests, all on 127.0.0.1: a fake IdP (JWKS over HTTP),
 * a policy bundle built and signed by the real `opa`, the demo upstream, the third-party
 * server-everything (HTTP child process and stdio), and the gateway itself.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import type { IncomingHttpHeaders } from "node:http";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { startDemoUpstream } from "../../demo/upstream.js";
import type { AuditEvent } from "../../gateway/audit/index.js";
import { parseConfig } from "../../gateway/config/index.js";
import { startGateway, type RunningGateway } from "../../gateway/compose/index.js";
import { startFakeIdp, type FakeIdp } from "../fakes/jwks.js";
import { buildSignedBundle, generateKeyPair } from "./bundles.js";

export const repoRoot = fileURLToPath(new URL("../../../", import.meta.url));
export const everythingEntry = join(repoRoot, "node_modules/@modelcontextprotocol/server-everything/dist/index.js");

let bundlePromise: Promise<{ bundle: string; publicKeyPem: string; dir: string }> | null = null;

/** The default policy, built and signed (RS256) by the real opa once per test run. */
export function defaultBundle(): Promise<{ bundle: string; publicKeyPem: string; dir: string }> {
  bundlePromise ??= (async () => {
    const dir = mkdtempSync(join(tmpdir(), "pc-bundle-"));
    const keys = generateKeyPair("rsa");
    const bundle = join(dir, "mcp-authz.tar.gz");
    await buildSignedBundle({ policyDir: join(repoRoot, "policies"), outFile: bundle, privateKeyPem: keys.privateKeyPem, algorithm: "RS256", revision: "test-rev-1" });
    writeFileSync(join(dir, "pub.pem"), keys.publicKeyPem);
    return { bundle, publicKeyPem: keys.publicKeyPem, dir };
  })();
  return bundlePromise;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const a = s.address();
      s.close(() => resolve(typeof a === "object" && a ? a.port : 0));
    });
  });
}

/** Starts server-everything over Streamable HTTP as a child process. */
export async function startEverythingHttp(): Promise<{ url: string; child: ChildProcess; close(): Promise<void> }> {
  const port = await freePort();
  const child = spawn(process.execPath, [everythingEntry, "streamableHttp"], { env: { ...process.env, PORT: String(port) }, stdio: ["ignore", "pipe", "pipe"] });
  await new Promise<void>((resolve, reject) => {
    let seen = "";
    const onData = (c: Buffer) => {
      seen += c.toString();
      if (seen.includes("listening")) resolve();
    };
    child.stderr?.on("data", onData);
    child.stdout?.on("data", onData);
    child.once("exit", (code) => reject(new Error(`server-everything exited ${code}: ${seen}`)));
  });
  return {
    url: `http://127.0.0.1:${port}/mcp`,
    child,
    close: async () => {
      if (child.exitCode !== null) return;
      const exited = new Promise((r) => child.once("exit", r));
      child.kill("SIGTERM");
      await exited;
    },
  };
}

export interface Stack {
  gateway: RunningGateway;
  idp: FakeIdp;
  audience: string;
  auditFile: string;
  /** Headers of every request the demo upstream received. */
  upstreamHeaders: IncomingHttpHeaders[];
  url(server: string): string;
  token(sub: string, roles: string[], extra?: Record<string, unknown>): string;
  connect(server: string, token: string): Promise<{ client: Client; transport: StreamableHTTPClientTransport }>;
  auditEvents(): AuditEvent[];
  close(): Promise<void>;
}

export interface StackOptions {
  kafka?: { brokers: string[]; topic: string };
  everythingHttp?: boolean;
  everythingStdio?: boolean;
  /** Extra `audit` config keys (signing, mask, …) merged over the file/kafka ones. */
  audit?: Record<string, unknown>;
}

export async function startStack(opts: StackOptions = {}): Promise<Stack> {
  const work = mkdtempSync(join(tmpdir(), "pc-stack-"));
  const auditFile = join(work, "audit.jsonl");
  const upstreamHeaders: IncomingHttpHeaders[] = [];
  const demo = await startDemoUpstream({ onRequest: (h) => upstreamHeaders.push(h) });
  const everything = opts.everythingHttp ? await startEverythingHttp() : null;
  const { config, idp, audience } = await gatewayConfig(work, {
    demo: { url: demo.url, headers: { Authorization: "Bearer upstream-secret-of-the-gateway" } },
    ...(everything ? { everything: { url: everything.url } } : {}),
    ...(opts.everythingStdio ? { stdio: { command: process.execPath, args: [everythingEntry, "stdio"] } } : {}),
  }, { file: auditFile, ...(opts.kafka ? { kafka: { brokers: opts.kafka.brokers, topic: opts.kafka.topic, createTopic: { partitions: 1, replicationFactor: 1 } } } : {}), ...(opts.audit ?? {}) });
  const quiet = () => undefined;
  const gateway = await startGateway(config, { log: process.env.PORTCULLIS_TEST_LOG ? undefined : quiet });
  const clients: Client[] = [];
  return {
    gateway,
    idp,
    audience,
    auditFile,
    upstreamHeaders,
    url: (server) => `${gateway.url}/mcp/${server}`,
    token: (sub, roles, extra = {}) => idp.mint({ sub, roles, scope: "mcp:tools mcp:resources mcp:prompts", client_id: `${sub}-agent`, ...extra }),
    async connect(server, token) {
      const transport = new StreamableHTTPClientTransport(new URL(`${gateway.url}/mcp/${server}`), {
        requestInit: { headers: { Authorization: `Bearer ${token}` } },
      });
      const client = new Client({ name: "it-client", version: "1.0.0" });
      await client.connect(transport);
      clients.push(client);
      return { client, transport };
    },
    auditEvents: () => readAuditFile(auditFile),
    async close() {
      await Promise.all(clients.map((c) => c.close().catch(() => undefined)));
      await gateway.close();
      await demo.close();
      await everything?.close();
      await idp.close();
    },
  };
}

/** The default bundle, a fake IdP on a free port, and these upstreams and audit sinks, parsed as `serve` would. */
async function gatewayConfig(work: string, upstreams: Record<string, Record<string, unknown>>, audit: Record<string, unknown>, extra: Record<string, unknown> = {}) {
  const { bundle, dir } = await defaultBundle();
  const port = await freePort();
  const audience = `http://127.0.0.1:${port}/mcp`;
  const idp = await startFakeIdp({ audience });
  const raw = {
    listen: { host: "127.0.0.1", port },
    auth: { issuer: idp.issuer, audience, jwksUri: idp.jwksUri, algorithms: ["RS256"] },
    policy: { bundle, verificationKey: join(dir, "pub.pem") },
    upstreams,
    audit,
    ...extra,
  };
  // On disk too, so the CLI (tools, approvals, audit) can be pointed at the running gateway's config.
  const file = join(work, "gateway.yaml");
  writeFileSync(file, JSON.stringify(raw, null, 2));
  const config = parseConfig(raw, file);
  return { config, idp, audience, file };
}

function readAuditFile(file: string): AuditEvent[] {
  return readFileSync(file, "utf8")
    .split("\n")
    .filter((l) => l.length > 0)
    .map((l) => JSON.parse(l) as AuditEvent);
}

/** A gateway with the default bundle and a fake IdP in front of the given upstreams (audit to a temp file). */
export async function startGatewayFor(upstreams: Record<string, Record<string, unknown>>, extra: Record<string, unknown> = {}): Promise<{ gateway: RunningGateway; configFile: string; url(server: string): string; token(sub: string, roles: string[]): string; auditEvents(): AuditEvent[]; close(): Promise<void> }> {
  const work = mkdtempSync(join(tmpdir(), "pc-gw-"));
  const auditFile = join(work, "audit.jsonl");
  const { config, idp, file } = await gatewayConfig(work, upstreams, { file: auditFile }, extra);
  const gateway = await startGateway(config, { log: process.env.PORTCULLIS_TEST_LOG ? undefined : () => undefined });
  return {
    gateway,
    configFile: file,
    url: (server) => `${gateway.url}/mcp/${server}`,
    token: (sub, roles) => idp.mint({ sub, roles, scope: "mcp:tools mcp:resources mcp:prompts", client_id: `${sub}-agent` }),
    auditEvents: () => readAuditFile(auditFile),
    async close() {
      await gateway.close();
      await idp.close();
    },
  };
}
