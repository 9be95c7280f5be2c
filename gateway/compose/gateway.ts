import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { hostname } from "node:os";
import { approvalStepEvent, AuditLog, JsonlFileSink, KafkaSink, kafkaReadiness, type AuditContext, type AuditSink } from "../audit/index.js";
import { JwtVerifier, protectedResourceMetadata, resourceMetadataPath, type TokenVerifier } from "../auth/index.js";
import { isStdioUpstream, type GatewayConfig } from "../config/index.js";
import type { PolicyEngine } from "../policy/index.js";
import { startPolicy, type PolicyRuntime } from "./policy.js";
import { createHttpServer, HttpUpstreamPool, LocalSessionLedger, McpEndpoint, originPolicy, RedisSessionLedger, SessionSealer, StdioUpstreamConnection, type ConnectUpstream, type SessionLedger, type ToolPinning } from "../proxy/index.js";
import { SharedRedis } from "../shared/redis.js";
import { randomIds, systemClock, type Clock, type IdSource } from "../shared/clock.js";
import { endpointPath, federatedEndpoints, guardUpstreams, InFlight } from "../proxy/index.js";
import { createRateLimiter } from "../ratelimit/index.js";
import { upstreamAuthorizer } from "../upstream-auth/index.js";
import { Lifecycle } from "../shared/lifecycle.js";
import { createLogger, type Logger } from "../shared/log.js";
import { auditChainFromConfig, auditKafkaSecurity, auditMaskFromConfig, ocsfKafkaSink } from "./audit.js";
import { kafkaBacklog } from "./outbox.js";
import { readiness, type ReadinessCheck } from "./readiness.js";
import { GatewayMetrics } from "../metrics/index.js";
import { startTracing } from "../telemetry/index.js";
import { createIntegrityStores } from "../integrity/index.js";
import { auditApprovalSteps, callApprovals, consoleIntegrity, toolPinning } from "./integrity.js";
import { ConsoleFeed, consoleRouter, roleAuthorizer } from "../console/index.js";

export const GATEWAY_VERSION: string = (
  JSON.parse(readFileSync(new URL("../../../package.json", import.meta.url), "utf8")) as { version: string }
).version;

export interface RunningGateway {
  /** Base URL the gateway listens on, e.g. http://127.0.0.1:8080 */
  url: string;
  endpoint: McpEndpoint;
  policy: PolicyEngine;
  /** The bundle reloaders behind `policy` (status, reload now). */
  bundles: PolicyRuntime;
  audit: AuditLog;
  /** Each long-lived part's own status, by name (policy, identity, audit, upstreams, limits, sessions, http). */
  status(): Record<string, Record<string, unknown>>;
  /** Stops every part in reverse start order (graceful: in-flight calls finish and are audited). */
  close(): Promise<void>;
}

export interface GatewayOverrides {
  clock?: Clock;
  ids?: IdSource;
  log?: Logger;
  verifier?: TokenVerifier;
  /** Extra sinks (tests); the configured ones are always added. */
  sinks?: AuditSink[];
}

/**
 * The composition root: the only place that knows every stage. It loads and verifies the bundle
 * before listening, so a gateway never serves without a good policy.
 */
export async function startGateway(config: GatewayConfig, overrides: GatewayOverrides = {}): Promise<RunningGateway> {
  const log = overrides.log ?? createLogger(config.logging.level);
  const parts = new Lifecycle(log);
  try {
    return await start(config, overrides, log, parts);
  } catch (err) {
    // Whatever started before the failure is stopped again: no reload timer, socket or sink left.
    await parts.stop();
    throw err;
  }
}

/**
 * Starts the parts in dependency order, each added to `parts` as soon as it runs, so that
 * stopping goes in the reverse order: HTTP, sessions, limits, upstream pools, audit, identity,
 * policy. The audit log stops after everything that can still produce an event.
 */
async function start(config: GatewayConfig, overrides: GatewayOverrides, log: Logger, parts: Lifecycle): Promise<RunningGateway> {
  const clock = overrides.clock ?? systemClock;

  // Verified and compiled before listening; then hot-reloaded (file watch, URL poll, SIGHUP) and,
  // with policy.shadow, shadowed by a candidate. `policy` reads the active engine on every decision.
  const policy = await startPolicy(config, { log, now: () => clock.now() });
  parts.add({ name: "policy", stop: async () => policy.stop(), status: () => ({ revision: policy.revision, ...policy.status() }) });

  // What /readyz asks (readiness.ts): each part adds the check of what it needs to serve.
  const ready: ReadinessCheck[] = [{ name: "bundle", run: () => (policy.revision ? null : "no policy bundle is loaded") }];
  let verifier = overrides.verifier;
  let jwt: JwtVerifier | null = null;
  if (!verifier) {
    jwt = new JwtVerifier({
      log,
      issuer: config.auth.issuer,
      audience: config.auth.audience,
      jwksUri: config.auth.jwksUri,
      algorithms: [...config.auth.algorithms],
      rolesClaim: config.auth.rolesClaim,
      clockToleranceSeconds: config.auth.clockToleranceSeconds,
      clock,
    });
    // Fetch the keys before serving; an IdP that is down now is retried on demand, not fatal.
    const jwks = await jwt.start();
    log(jwks.state === "fresh" ? "info" : "warn", "JWKS loaded", { jwksUri: config.auth.jwksUri, ...jwks });
    verifier = jwt;
    const identity = jwt;
    parts.add({ name: "identity", stop: async () => undefined, status: () => ({ ...identity.status() }) });
    ready.push({
      name: "issuer_keys",
      run: () => {
        const s = identity.status();
        if (s.keyCount > 0 && (s.state === "fresh" || s.state === "stale")) return null;
        return `the issuer's keys are ${s.state === "not_loaded" ? "not loaded" : s.state}${s.lastError ? ` (${s.lastError})` : ""}: ${config.auth.jwksUri}`;
      },
    });
  }

  // What every audit record of this instance shares; bundle refusals are recorded with it too.
  const auditContext: AuditContext = {
    instanceId: config.audit.instanceId ?? `${hostname()}-${randomUUID().slice(0, 8)}`,
    version: GATEWAY_VERSION,
    clock,
    ids: overrides.ids ?? randomIds,
    resultCapBytes: config.audit.resultCapBytes,
    bundleName: "mcp-authz",
    ...auditMaskFromConfig(config),
    bundleRevision: () => policy.revision,
    // Every event is bounded by construction (docs/audit.md "Size limits").
    maxEventBytes: config.audit.maxEventBytes,
    log,
  };

  const sinks: AuditSink[] = [...(overrides.sinks ?? [])];
  // The console reads the gateway's own audit stream: every event as written, in a bounded feed.
  const consoleFeed = config.console.enabled ? new ConsoleFeed({ now: () => clock.now() }) : null;
  if (consoleFeed) sinks.push({ name: "console", write: async (e) => consoleFeed.push(e), close: async () => undefined });
  if (config.audit.file) {
    // Admits a request only while its disk has room (audit.fileMinFreeBytes): no audit, no action.
    sinks.push(new JsonlFileSink(config.audit.file, { fsync: config.audit.fsync, minFreeBytes: config.audit.fileMinFreeBytes, logger: log, clock }));
  }
  let kafkaSink: KafkaSink | null = null;
  if (config.audit.kafka) {
    const k = config.audit.kafka;
    sinks.push(
      (kafkaSink = new KafkaSink({
        brokers: [...k.brokers],
        topic: k.topic,
        clientId: k.clientId,
        createTopic: k.createTopic ? { ...k.createTopic } : false,
        logger: log,
        security: auditKafkaSecurity(config),
        // An event Kafka refuses permanently goes here and the stream goes on (docs/siem.md).
        ...(k.deadLetterFile ? { deadLetterFile: k.deadLetterFile } : {}),
        maxEventBytes: config.audit.maxEventBytes,
        // Durable outbox (audit.outbox, on by default with Kafka): events survive a crash.
        ...(await kafkaBacklog(config, log)),
      })),
    );
    if (k.ocsfTopic) sinks.push(ocsfKafkaSink(config, k.ocsfTopic, log));
  }
  // The hash chain is assigned in AuditLog.record, the one point every event passes in write order.
  const chain = auditChainFromConfig(config, (overrides.ids ?? randomIds)());
  // Unauthenticated and invalid requests past audit.refusals.perSourcePerMinute are folded into counted summaries.
  const audit = new AuditLog(sinks, { logger: log, chain, refusals: { perSourcePerMinute: config.audit.refusals.perSourcePerMinute, context: auditContext } });
  await audit.start();
  // Last to stop: every call that finished before is on record before the sinks flush and close.
  parts.add({ name: "audit", stop: async () => void (await audit.close()), status: () => ({ sinks: audit.stats(), ...audit.sinkStats() }) });
  if (kafkaSink) {
    const sink = kafkaSink;
    // Broker reachable, topic present, outbox under its bounds, sender not stalled (docs/audit.md#readiness).
    ready.push({ name: "audit_kafka", run: () => kafkaReadiness(sink) });
  }
  ready.push({
    name: "audit",
    run: () =>
      audit.admit().then(
        () => null,
        (err: unknown) => `the audit path takes no events now: ${err instanceof Error ? err.message : String(err)}`,
      ),
  });

  const pools = new Map<string, HttpUpstreamPool>();
  for (const [name, u] of Object.entries(config.upstreams)) {
    // The gateway's own credentials per upstream (gateway/upstream-auth): never the agent's token.
    if (!isStdioUpstream(u)) pools.set(name, new HttpUpstreamPool(new URL(u.url), upstreamAuthorizer(name, u, { clock, ids: overrides.ids ?? randomIds }), u.maxResponseBytes, u.protocol));
  }
  const connectUpstream: ConnectUpstream = (server, clientEra, resumeFrom) => {
    const u = config.upstreams[server];
    if (!u) throw new Error(`unknown upstream ${server}`);
    if (isStdioUpstream(u)) {
      log("info", "spawning stdio upstream", { server, command: u.command, args: u.args });
      return new StdioUpstreamConnection(u, (msg) => log("debug", msg, { server }));
    }
    const pool = pools.get(server)!;
    // A sealed session names an HTTP upstream session; a stdio one only its initialize (a new process).
    return resumeFrom?.kind === "http" ? pool.resume(clientEra ?? "legacy", resumeFrom) : pool.connect(clientEra);
  };
  // Set by the HTTP part's drain: past its deadline the pools were cut, not closed gracefully.
  let cutCalls = 0;
  parts.add({
    name: "upstreams",
    stop: async () => {
      if (cutCalls === 0) await Promise.all([...pools.values()].map((p) => p.close()));
    },
    status: () => ({ http: [...pools.keys()] }),
  });

  // The limits stage (gateway/ratelimit/): local or Redis-shared buckets.
  const limits = await createRateLimiter(config.rateLimits, { clock, log });
  parts.add({ name: "limits", stop: () => limits.close(), status: () => ({ store: config.rateLimits.store }) });

  // Sessions any replica serves (DESIGN.md contract 5): sealed ids, one ledger of ends.
  const sessionsConfig = config.sessions;
  const sealer = sessionsConfig.sealKeys ? new SessionSealer(sessionsConfig.sealKeys.map((k) => ({ id: k.id, key: Buffer.from(k.key, "base64") }))) : undefined;
  if (!sealer) log("info", "sessions: no sessions.sealKeys, using a key of this process (sessions end with it; set sealKeys for several replicas)");
  const localLedger = new LocalSessionLedger(() => clock.now(), sessionsConfig.maxLifetimeSeconds * 1000);
  let ledger: SessionLedger = localLedger;
  if (sessionsConfig.store === "redis") {
    const r = config.rateLimits.redis!;
    const redis = await SharedRedis.start({ url: r.url, timeoutMs: r.timeoutMs, log, clock, user: "sessions", downMode: sessionsConfig.onRedisDown });
    ledger = new RedisSessionLedger(redis, sessionsConfig.redisKeyPrefix, sessionsConfig.onRedisDown, localLedger);
    parts.add({ name: "session-ledger", stop: () => redis.close(), status: () => ({ store: "redis", up: redis.up }) });
    // With onRedisDown: refuse, a replica whose Redis is down would refuse every session request.
    if (sessionsConfig.onRedisDown === "refuse") ready.push({ name: "session_store", run: () => (redis.up ? null : "the session store (Redis) is unreachable") });
  }

  // Tool integrity (gateway/integrity/, contract 7): pins and approvals in a local file or the rate
  // limits' Redis, shared by every replica.
  let integrityRedis: SharedRedis | undefined;
  if (config.integrity.store === "redis") {
    const r = config.rateLimits.redis!;
    const redis = await SharedRedis.start({ url: r.url, timeoutMs: r.timeoutMs, log, clock, user: "integrity", downMode: "refuse" });
    integrityRedis = redis;
    parts.add({ name: "integrity", stop: () => redis.close(), status: () => ({ store: "redis", up: redis.up }) });
  }
  const integrity = createIntegrityStores(config.integrity, { clock, ...(integrityRedis && { redis: integrityRedis }) });
  const pinning: ToolPinning | undefined = config.integrity.pinning.enabled ? toolPinning(integrity.pins, clock, log, () => policy.toolPins) : undefined;
  const approvals = callApprovals(integrity.approvals);
  const approvalSteps = auditApprovalSteps(integrity.approvals, (step) => audit.record(approvalStepEvent(auditContext, step, policy.revision)), log);
  parts.add({ name: "approvals", stop: () => approvalSteps.stop(), status: () => ({ store: integrity.location }) });

  // OpenTelemetry traces: a span per request and stage, continued from the agent, passed upstream.
  const tracing = startTracing(config.telemetry?.traces, { log, serviceVersion: GATEWAY_VERSION, serviceInstanceId: auditContext.instanceId });
  parts.add({ name: "tracing", stop: () => tracing.shutdown(), status: () => ({ enabled: tracing.enabled, ...(tracing.settings && { endpoint: tracing.settings.endpoint }) }) });

  // Prometheus metrics (gateway/metrics/, DESIGN.md contract 6): recorded from each answered
  // exchange, gauges read from the parts at scrape time.
  const metrics = new GatewayMetrics({
    upstreams: Object.keys(config.upstreams),
    clock,
    sources: {
      sessions: () => {
        const r = endpoint.sessions.reservations;
        return { http: r.total - r.stdio, stdio: r.stdio };
      },
      outbox: () => {
        if (!kafkaSink) return null;
        const k = kafkaSink.stats();
        return { unacked: k.queued, oldestUnackedAgeMs: k.outbox?.oldestAgeMs ?? null, sendLagMs: k.sendLagMs ?? null };
      },
      bundle: () => {
        const p = policy.status().policy;
        return { revision: policy.revision, confirmedAtMs: p.confirmedAtMs ?? null };
      },
      jwks: () => {
        if (!jwt) return null;
        const j = jwt.status();
        return { fetchedAtMs: j.fetchedAt, refreshFailures: j.refreshFailures };
      },
    },
    onSourceError: (source, err) => log("warn", "metrics source failed", { source, error: String(err) }),
  });

  let publicUrl = config.publicUrl ?? "";
  // Known once the server listens (port 0 picks one): the names and origins the gateway serves.
  let origins = originPolicy({ allowedOrigins: config.edge.allowedOrigins, allowedHosts: config.edge.allowedHosts, publicUrl: config.publicUrl });
  const endpoint = new McpEndpoint({
    config,
    verifier,
    policy: () => policy,
    audit,
    auditContext: policy.auditRefusalsTo(audit, auditContext),
    clock,
    log,
    connectUpstream: guardUpstreams(config.upstreams, connectUpstream),
    ...(sealer && { sealer }),
    ledger,
    tracing,
    ...(pinning && { pinning }),
    approvals,
    observe: (done) => {
      metrics.recordExchange(done);
      for (const [stage, ms] of Object.entries(done.stageMs)) metrics.recordStage(stage as "edge" | "identity" | "limits", ms);
      if (!config.logging.access) return;
      const e = done.event;
      // The access line: one per request, what an operator greps first (the audit event has the rest).
      log("info", "request", {
        method: e.mcp.method,
        server: e.mcp.server,
        ...(e.mcp.tool && { tool: e.mcp.tool }),
        outcome: e.outcome,
        status: done.status,
        duration_ms: e.latency_ms.total,
        decision_id: e.decision_id,
        ...(e.error && { error: e.error.code }),
        ...(!done.audited && { audited: false }),
      });
    },
    limits,
    resourceMetadataUrl: (server) => `${publicUrl}${resourceMetadataPath(endpointPath(server))}`,
    origins: () => origins,
  });
  endpoint.sessions.startSweeping();
  parts.add({ name: "sessions", stop: () => endpoint.close(), status: () => ({ open: endpoint.sessions.size, ...endpoint.sessions.reservations }) });

  const server = createHttpServer(endpoint, {
    servers: [...Object.keys(config.upstreams), ...federatedEndpoints(config.federation, Object.keys(config.upstreams)).keys()],
    resourceMetadata: (server) =>
      protectedResourceMetadata({
        resource: server === null ? publicUrl : `${publicUrl}${endpointPath(server)}`,
        authorizationServers: [config.auth.issuer],
        scopesSupported: [...config.auth.scopesSupported],
        resourceName: server === null ? "portcullis MCP gateway" : `portcullis: ${server in config.upstreams ? server : endpointPath(server)}`,
      }),
    timeouts: { headersTimeoutMs: config.edge.headersTimeoutMs, requestTimeoutMs: config.edge.requestTimeoutMs },
    allowedOrigins: config.edge.allowedOrigins,
    originAllowed: (origin) => origins.originAllowed(origin),
    readiness: () => readiness(ready),
    metrics: () => metrics.exposition(),
    ...(consoleFeed && {
      routers: [
        consoleRouter({
          feed: consoleFeed,
          authorize: roleAuthorizer(verifier, config.console.roles),
          bundle: () => ({ revision: policy.revision }),
          now: () => clock.now(),
          log,
          integrity: consoleIntegrity(integrity.pins, integrity.approvals),
        }),
      ],
    }),
    log,
  });
  const inFlight = new InFlight(server);
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(config.listen.port, config.listen.host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const closed = new Promise<void>((resolve) => server.once("close", () => resolve()));
  parts.add({
    name: "http",
    // Graceful: stop accepting, let in-flight calls finish (and be audited), then cut the rest.
    stop: async () => {
      cutCalls = await inFlight.drain(config.shutdown.drainTimeoutMs, log);
      // Past the deadline, upstream requests still running are aborted rather than awaited.
      if (cutCalls > 0) await Promise.all([...pools.values()].map((p) => Promise.all([p.pool.destroy(), p.streams.destroy()])));
      server.closeAllConnections();
      await closed;
    },
    status: () => ({ listening: server.listening, in_flight: inFlight.size }),
  });
  server.keepAliveTimeout = 65_000;
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : config.listen.port;
  const url = `http://${config.listen.host}:${port}`;
  if (!config.publicUrl) publicUrl = url;
  origins = originPolicy({ allowedOrigins: config.edge.allowedOrigins, allowedHosts: config.edge.allowedHosts, publicUrl: config.publicUrl, listen: { host: config.listen.host, port } });
  log("info", "gateway listening", { url, upstreams: Object.keys(config.upstreams) });

  return {
    url,
    endpoint,
    policy,
    bundles: policy,
    audit,
    status: () => parts.status(),
    close: () => parts.stop(),
  };
}
