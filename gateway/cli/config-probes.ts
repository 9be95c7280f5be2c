import { connect } from "node:net";
import { Kafka, logLevel } from "kafkajs";
import { kafkaSecurityOptions } from "../audit/index.js";
import { JwtVerifier } from "../auth/index.js";
import { isStdioUpstream, type GatewayConfig } from "../config/index.js";
import type { CheckResult } from "./config-check.js";

/**
 * `config check --online`: what serve needs from the network, each bounded by `timeoutMs`.
 * - the issuer's JWKS, fetched by serve's own verifier: it must give at least one usable key;
 * - each HTTP upstream: one `HEAD` request to its URL, without credentials. Any HTTP answer below
 *   500 (MCP endpoints answer HEAD with 404/405) shows the host, port, TLS and path reach a
 *   server; a refused connection, a timeout, a TLS failure or a 5xx is a failure. No MCP
 *   handshake: that would open a session upstream;
 * - Kafka: an admin connection to the brokers with the configured TLS/SASL, and the topic (and
 *   the OCSF topic) listed on the cluster, unless `audit.kafka.createTopic` lets serve create it;
 * - Redis (`rateLimits.store: redis`): a TCP connection to its host and port.
 */
export async function onlineChecks(config: GatewayConfig, opts: { timeoutMs: number }): Promise<CheckResult[]> {
  const checks: Array<Promise<CheckResult[]>> = [jwksCheck(config, opts.timeoutMs).then((r) => [r])];
  for (const [name, u] of Object.entries(config.upstreams)) {
    if (!isStdioUpstream(u)) checks.push(httpReach(`upstreams.${name}.url`, u.url, opts.timeoutMs).then((r) => [r]));
  }
  if (config.audit.kafka) checks.push(kafkaCheck(config, opts.timeoutMs));
  const redis = config.rateLimits.store === "redis" ? config.rateLimits.redis : undefined;
  if (redis) checks.push(tcpReach("rateLimits.redis.url", new URL(redis.url), 6379, opts.timeoutMs).then((r) => [r]));
  return (await Promise.all(checks)).flat();
}

/** The verifier exactly as serve builds it (URL and algorithm rules); `jwksTimeoutMs` only for the check. */
export function verifierFor(config: GatewayConfig, jwksTimeoutMs?: number): JwtVerifier {
  const a = config.auth;
  return new JwtVerifier({
    issuer: a.issuer,
    audience: a.audience,
    jwksUri: a.jwksUri,
    algorithms: [...a.algorithms],
    rolesClaim: a.rolesClaim,
    clockToleranceSeconds: a.clockToleranceSeconds,
    ...(jwksTimeoutMs !== undefined ? { jwksTimeoutMs } : {}),
  });
}

async function jwksCheck(config: GatewayConfig, timeoutMs: number): Promise<CheckResult> {
  const field = "auth.jwksUri";
  const status = await verifierFor(config, timeoutMs).start();
  if (status.keyCount > 0) return { field, status: "ok", detail: `${config.auth.jwksUri}: ${status.keyCount} usable key${status.keyCount === 1 ? "" : "s"}` };
  return { field, status: "fail", detail: `${config.auth.jwksUri}: ${status.lastError ?? "no usable key"} (serve starts, but every request gets 503 until the keys load)` };
}

async function httpReach(field: string, url: string, timeoutMs: number): Promise<CheckResult> {
  try {
    const res = await fetch(url, { method: "HEAD", redirect: "manual", signal: AbortSignal.timeout(timeoutMs) });
    await res.body?.cancel();
    return res.status < 500
      ? { field, status: "ok", detail: `${url}: reachable (HEAD answered ${res.status})` }
      : { field, status: "fail", detail: `${url}: answered HTTP ${res.status}` };
  } catch (err) {
    return { field, status: "fail", detail: `${url}: ${networkReason(err, timeoutMs)}` };
  }
}

function tcpReach(field: string, url: URL, defaultPort: number, timeoutMs: number): Promise<CheckResult> {
  const host = url.hostname.replace(/^\[|\]$/g, "");
  const port = url.port === "" ? defaultPort : Number(url.port);
  return new Promise((resolve) => {
    const socket = connect({ host, port, timeout: timeoutMs });
    const done = (r: CheckResult) => {
      socket.destroy();
      resolve(r);
    };
    socket.once("connect", () => done({ field, status: "ok", detail: `${host}:${port}: reachable (TCP)` }));
    socket.once("timeout", () => done({ field, status: "fail", detail: `${host}:${port}: no answer within ${timeoutMs} ms` }));
    socket.once("error", (err) => done({ field, status: "fail", detail: `${host}:${port}: ${networkReason(err, timeoutMs)}` }));
  });
}

async function kafkaCheck(config: GatewayConfig, timeoutMs: number): Promise<CheckResult[]> {
  const k = config.audit.kafka!;
  const field = "audit.kafka.brokers";
  const kafka = new Kafka({
    clientId: `${k.clientId}-config-check`,
    brokers: [...k.brokers],
    connectionTimeout: timeoutMs,
    requestTimeout: timeoutMs,
    // One attempt: the check reports what it found, it does not wait out an outage.
    retry: { retries: 0 },
    logLevel: logLevel.NOTHING,
    ...kafkaSecurityOptions({ ssl: k.ssl, sasl: k.sasl }),
  });
  const admin = kafka.admin();
  let topics: string[];
  try {
    topics = await withTimeout(
      (async () => {
        await admin.connect();
        return admin.listTopics();
      })(),
      timeoutMs,
    );
  } catch (err) {
    return [{ field, status: "fail", detail: `${k.brokers.join(",")}: cannot connect: ${networkReason(err, timeoutMs)}` }];
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
  const out: CheckResult[] = [{ field, status: "ok", detail: `${k.brokers.join(",")}: connected (${topics.length} topics)` }];
  const wanted: Array<[string, string]> = [["audit.kafka.topic", k.topic], ...(k.ocsfTopic ? [["audit.kafka.ocsfTopic", k.ocsfTopic] as [string, string]] : [])];
  for (const [f, topic] of wanted) {
    if (topics.includes(topic)) out.push({ field: f, status: "ok", detail: `topic ${topic} exists` });
    else if (k.createTopic) out.push({ field: f, status: "warn", detail: `topic ${topic} does not exist yet: serve creates it (audit.kafka.createTopic)` });
    else out.push({ field: f, status: "fail", detail: `topic ${topic} does not exist on the cluster: create it, or set audit.kafka.createTopic to let the gateway create it` });
  }
  return out;
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms)));
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

/** The cause a network error carries (fetch wraps it; kafkajs names the connection error). */
function networkReason(err: unknown, timeoutMs: number): string {
  const e = err as Error & { cause?: Error & { code?: string }; code?: string };
  if (e.name === "TimeoutError" || e.name === "AbortError") return `no answer within ${timeoutMs} ms`;
  const cause = e.cause;
  if (cause) return cause.code ? `${cause.code} (${cause.message})` : cause.message;
  return e.code && !e.message.includes(e.code) ? `${e.code} (${e.message})` : e.message;
}
