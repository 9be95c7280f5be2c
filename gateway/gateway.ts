import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { hostname } from "node:os";
import { AuditLog, JsonlFileSink, KafkaSink, type AuditSink } from "./audit/index.js";
import { JwtVerifier, protectedResourceMetadata, resourceMetadataPath, type TokenVerifier } from "./auth/index.js";
import { isStdioUpstream, type GatewayConfig } from "./config/index.js";
import { loadBundle, WasmPolicyEngine, type PolicyEngine } from "./policy/index.js";
import { createHttpServer, HttpUpstreamPool, McpEndpoint, StdioUpstreamConnection, type UpstreamConnection } from "./proxy/index.js";
import { randomIds, systemClock, type Clock, type IdSource } from "./shared/clock.js";
import { createLogger, type Logger } from "./shared/log.js";

export const GATEWAY_VERSION: string = (
  JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string }
).version;

export interface RunningGateway {
  /** Base URL the gateway listens on, e.g. http://127.0.0.1:8080 */
  url: string;
  endpoint: McpEndpoint;
  policy: PolicyEngine;
  audit: AuditLog;
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
  const clock = overrides.clock ?? systemClock;
  const log = overrides.log ?? createLogger();

  const bundle = loadBundle(config.policy.bundle, {
    verificationKeyPem: readVerificationKey(config.policy.verificationKey),
    ...(config.policy.signingAlgorithm ? { algorithm: config.policy.signingAlgorithm } : {}),
    keyId: config.policy.keyId,
    ...(config.policy.scope !== undefined ? { scope: config.policy.scope } : {}),
  });
  const policy = await WasmPolicyEngine.create(await bundle);
  log("info", "policy bundle loaded", { bundle: config.policy.bundle, revision: policy.revision });

  let verifier = overrides.verifier;
  if (!verifier) {
    const jwt = new JwtVerifier({
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
  }

  const sinks: AuditSink[] = [...(overrides.sinks ?? [])];
  if (config.audit.file) sinks.push(new JsonlFileSink(config.audit.file, { fsync: config.audit.fsync }));
  if (config.audit.kafka) {
    const k = config.audit.kafka;
    sinks.push(
      new KafkaSink({
        brokers: [...k.brokers],
        topic: k.topic,
        clientId: k.clientId,
        createTopic: k.createTopic ? { ...k.createTopic } : false,
        logger: (level, msg, fields) => log(level === "debug" ? "debug" : level, msg, fields),
      }),
    );
  }
  const audit = new AuditLog(sinks, { logger: (level, msg, fields) => log(level, msg, fields) });
  await audit.start();

  const pools = new Map<string, HttpUpstreamPool>();
  for (const [name, u] of Object.entries(config.upstreams)) {
    if (!isStdioUpstream(u)) pools.set(name, new HttpUpstreamPool(new URL(u.url), u.headers));
  }
  const connectUpstream = (server: string): UpstreamConnection => {
    const u = config.upstreams[server];
    if (!u) throw new Error(`unknown upstream ${server}`);
    if (isStdioUpstream(u)) {
      log("info", "spawning stdio upstream", { server, command: u.command, args: u.args });
      return new StdioUpstreamConnection(u, (msg) => log("debug", msg, { server }));
    }
    return pools.get(server)!.connect();
  };

  let publicUrl = config.publicUrl ?? "";
  const endpoint = new McpEndpoint({
    config,
    verifier,
    policy: () => policy,
    audit,
    auditContext: {
      instanceId: config.audit.instanceId ?? `${hostname()}-${randomUUID().slice(0, 8)}`,
      version: GATEWAY_VERSION,
      clock,
      ids: overrides.ids ?? randomIds,
      resultCapBytes: config.audit.resultCapBytes,
      bundleName: "mcp-authz",
    },
    clock,
    log,
    connectUpstream,
    resourceMetadataUrl: (server) => `${publicUrl}${resourceMetadataPath(`/mcp/${server}`)}`,
  });
  endpoint.sessions.startSweeping();

  const server = createHttpServer(endpoint, {
    servers: Object.keys(config.upstreams),
    resourceMetadata: (server) =>
      protectedResourceMetadata({
        resource: server === null ? publicUrl : `${publicUrl}/mcp/${server}`,
        authorizationServers: [config.auth.issuer],
        scopesSupported: [...config.auth.scopesSupported],
        resourceName: server === null ? "portcullis MCP gateway" : `portcullis: ${server}`,
      }),
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(config.listen.port, config.listen.host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  server.keepAliveTimeout = 65_000;
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : config.listen.port;
  const url = `http://${config.listen.host}:${port}`;
  if (!config.publicUrl) publicUrl = url;
  log("info", "gateway listening", { url, upstreams: Object.keys(config.upstreams) });

  return {
    url,
    endpoint,
    policy,
    audit,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await endpoint.close();
      await Promise.all([...pools.values()].map((p) => p.close()));
      await audit.close();
    },
  };
}

function readVerificationKey(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch (err) {
    throw new Error(`${path}: cannot read policy.verificationKey (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
  }
}
