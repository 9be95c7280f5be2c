/**
 * What every bench run stands up, all on 127.0.0.1: the bench's policy bundle (the shipped policy,
 * rate limits raised, signed like `make bundle`), the development issuer, the upstream
 * server-everything, the bare hop and `portcullis serve` processes.
 */
import { execFileSync } from "node:child_process";
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ensureDevKeys, mintToken, startDevIssuer } from "../../gateway/auth/index.js";
import { everythingEntry, freePort, repoRoot } from "../../test/support/stack.js";
import { onCleanup, startProcess, type Running } from "./processes.js";

export { freePort, repoRoot };

export const toolsDir = process.env.TOOLS_DIR ?? join(repoRoot, ".tools");
export const opaPath = process.env.OPA ?? join(toolsDir, "bin/opa");

/** A scratch directory for this run, deleted when the run ends (BENCH_KEEP=1 keeps it). */
export function workDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  onCleanup(async () => {
    if (process.env.BENCH_KEEP) process.stderr.write(`(kept ${dir})\n`);
    else rmSync(dir, { recursive: true, force: true });
  });
  return dir;
}

export interface BenchBundle {
  bundle: string;
  verificationKey: string;
  /** The policy folder it was built from (for an OPA sidecar, or to build it again). */
  policyDir: string;
}

interface PolicyData {
  portcullis: {
    rate_limits: { classes: Record<string, { limit: number }> };
    roles: Record<string, Record<string, { tools?: string[]; resources?: string[]; prompts?: string[] }>>;
  };
}

/**
 * The shipped policy (every rule as it is) with two bench-only changes: rate-limit classes raised,
 * since a bench makes thousands of calls as one agent and must measure served calls, not refusals;
 * and the `analyst` role may use every tool of the servers in `extraServers` (the list-size upstreams).
 * Built and signed by scripts/build-bundle.sh, as `make bundle` does.
 */
export function buildBenchBundle(work: string, extraServers: readonly string[] = []): BenchBundle {
  if (!existsSync(opaPath)) throw new Error(`${opaPath} not found: run 'make tools-opa' (or make bundle)`);
  const policyDir = join(work, "policies");
  cpSync(join(repoRoot, "policies"), policyDir, { recursive: true });
  const dataFile = join(policyDir, "data.json");
  const data = JSON.parse(readFileSync(dataFile, "utf8")) as PolicyData;
  for (const c of Object.values(data.portcullis.rate_limits.classes)) c.limit = 1_000_000_000;
  const analyst = data.portcullis.roles["analyst"];
  if (!analyst) throw new Error("the shipped policy has no analyst role: the bench's token would be refused");
  for (const server of extraServers) analyst[server] = { tools: ["*"] };
  writeFileSync(dataFile, JSON.stringify(data));
  const bundle = join(work, "bench-bundle.tar.gz");
  execFileSync("bash", [join(repoRoot, "scripts/build-bundle.sh")], { env: { ...process.env, OPA: opaPath, TOOLS_DIR: toolsDir, POLICIES: policyDir, OUT: bundle, FORCE: "1" }, stdio: ["ignore", "ignore", "inherit"] });
  return { bundle, verificationKey: join(toolsDir, "dev/bundle-signing.pub.pem"), policyDir };
}

export interface Issuer {
  issuer: string;
  jwksUri: string;
  /** A bearer token for `audience` (the gateway's /mcp URL): role analyst, scope mcp:tools. */
  token(audience: string, sub?: string): string;
}

export async function startIssuer(work: string): Promise<Issuer> {
  const keyDir = join(work, "issuer");
  const keys = await ensureDevKeys(keyDir);
  const issuer = await startDevIssuer({ host: "127.0.0.1", port: 0, keyDir });
  onCleanup(() => issuer.close());
  return {
    issuer: issuer.issuer,
    jwksUri: issuer.jwksUri,
    token: (audience, sub = "bench") => mintToken({ privateKeyPem: keys.privateKeyPem, kid: keys.kid, issuer: issuer.issuer, audience, sub, roles: ["analyst"], scopes: ["mcp:tools"], ttlSeconds: 6 * 3600 }),
  };
}

export interface Upstream {
  url: string;
  process: Running;
}

/** @modelcontextprotocol/server-everything over Streamable HTTP, as its own process. */
export async function startEverything(): Promise<Upstream> {
  const port = await freePort();
  const server = await startProcess(process.execPath, [everythingEntry, "streamableHttp"], { env: { PORT: String(port) }, ready: "listening" });
  return { url: `http://127.0.0.1:${port}/mcp`, process: server };
}

export interface Hop {
  url: string;
  process: Running;
}

/** bench/raw-hop.ts in front of `upstreamUrl`: parse, forward, stream back; nothing else. */
export async function startRawHop(upstreamUrl: string): Promise<Hop> {
  const port = await freePort();
  const p = await startProcess(process.execPath, [join(repoRoot, "dist/bench/raw-hop.js"), String(port), upstreamUrl], { ready: "serving" });
  return { url: `http://127.0.0.1:${port}/mcp`, process: p };
}

export interface Gateway {
  process: Running;
  /** The gateway's URL for upstream `server`. */
  url(server: string): string;
  token: string;
  auditFile: string;
  configFile: string;
}

export interface GatewayOptions {
  work: string;
  name: string;
  bundle: BenchBundle;
  issuer: Issuer;
  upstreams: Record<string, { url: string }>;
  /** Extra keys of the `audit` section (the Kafka sink and its outbox). */
  audit?: Record<string, unknown>;
}

/**
 * `portcullis serve` as its own process (so its CPU time is its own), every stage on: JWT,
 * the wasm policy, rate limits, hash-chained JSONL audit. BENCH_GATEWAY_NODE_ARGS (e.g.
 * --cpu-prof) is passed to its node.
 */
export async function startGateway(opts: GatewayOptions): Promise<Gateway> {
  const port = await freePort();
  const audience = `http://127.0.0.1:${port}/mcp`;
  const auditFile = join(opts.work, `${opts.name}-audit.jsonl`);
  const configFile = join(opts.work, `${opts.name}.yaml`);
  writeFileSync(configFile, JSON.stringify({
    listen: { host: "127.0.0.1", port },
    auth: { issuer: opts.issuer.issuer, audience, jwksUri: opts.issuer.jwksUri, algorithms: ["RS256"] },
    policy: { bundle: opts.bundle.bundle, verificationKey: opts.bundle.verificationKey },
    upstreams: opts.upstreams,
    audit: { file: auditFile, ...opts.audit },
  }, null, 2));
  const nodeArgs = (process.env.BENCH_GATEWAY_NODE_ARGS ?? "").split(" ").filter(Boolean);
  const p = await startProcess(process.execPath, [...nodeArgs, join(repoRoot, "dist/gateway/cli/main.js"), "serve", "--config", configFile], { env: { PORTCULLIS_LOG_LEVEL: "warn" }, ready: "serving", cwd: opts.work });
  return { process: p, url: (server) => `http://127.0.0.1:${port}/mcp/${server}`, token: opts.issuer.token(audience), auditFile, configFile };
}

/** Audit events in a gateway's JSONL file (every line one event); only lines containing `mentioning` are parsed. */
export function readAudit(file: string, mentioning = ""): Array<{ mcp?: { method?: string; server?: string }; list?: { visible: unknown; hidden: unknown } }> {
  if (!existsSync(file)) return [];
  return readFileSync(file, "utf8")
    .split("\n")
    .filter((l) => l.length > 0 && l.includes(mentioning))
    .map((l) => JSON.parse(l) as { mcp?: { method?: string; server?: string }; list?: { visible: unknown; hidden: unknown } });
}
