import { z } from "zod";
import { telemetryConfigSchema } from "../telemetry/config.js";
import {
  AUDIT_BOUNDS_DEFAULTS,
  auditFileMinFreeBytesSchema,
  auditMaskSchema,
  auditMaxEventBytesSchema,
  auditRefusalsSchema,
  auditSigningSchema,
  kafkaSaslSchema,
  kafkaSslSchema,
  saslNeedsTls,
} from "./audit-schema.js";
import { parseCidr } from "../shared/ip.js";
import { INTEGRITY_REDIS_RULE, integritySectionSchema } from "../integrity/config.js";
import { LOG_LEVELS } from "../shared/log.js";
import { auditDeadLetterFileSchema, auditOnFullSchema, auditOutboxSchema } from "./outbox-schema.js";

/**
 * Contract 2 (../../shared/DESIGN.md, docs/configuration.md). Every object is strict: an unknown
 * key is an error, so a typo never silently disables a control.
 */

const upstreamName = /^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$/;

const listenSchema = z
  .object({
    host: z.string().min(1).default("127.0.0.1"),
    port: z.number().int().min(0).max(65535).default(8080),
  })
  .strict();

/** Algorithms an MCP resource server may accept from an IdP's JWKS. `none` and HS* never. */
export const ALLOWED_JWT_ALGORITHMS = [
  "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512",
] as const;

const authSchema = z
  .object({
    issuer: z.string().min(1),
    audience: z.string().min(1),
    jwksUri: z.string().url(),
    algorithms: z.array(z.enum(ALLOWED_JWT_ALGORITHMS)).min(1).default(["RS256", "ES256"]),
    rolesClaim: z.string().min(1).default("roles"),
    clockToleranceSeconds: z.number().int().min(0).max(300).default(30),
    scopesSupported: z.array(z.string().min(1)).default(["mcp:tools", "mcp:resources", "mcp:prompts"]),
  })
  .strict();

// Hot reload and shadow mode (issue 3; gateway/policy/reloader.ts, shadow.ts).
const policyReloadSchema = z
  .object({
    /** How often the bundle file is stat'ed or the bundle URL polled; 0 = only on SIGHUP. */
    intervalSeconds: z.number().min(0).max(86_400).default(5),
    /** Cap on the poll delay after failures (it doubles from intervalSeconds). */
    maxBackoffSeconds: z.number().min(1).max(86_400).default(300),
  })
  .strict()
  .default({ intervalSeconds: 5, maxBackoffSeconds: 300 });

const policyShadowSchema = z
  .object({
    /** Candidate bundle (file or http(s) URL), evaluated beside the live one and audited, never enforced. */
    bundle: z.string().min(1),
    /** Defaults to policy.verificationKey (with its algorithm, key id and scope). */
    verificationKey: z.string().min(1).optional(),
  })
  .strict();

const policySchema = z
  .object({
    bundle: z.string().min(1),
    verificationKey: z.string().min(1),
    signingAlgorithm: z
      .enum(["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"])
      .optional(),
    keyId: z.string().min(1).default("default"),
    scope: z.string().optional(),
    reload: policyReloadSchema,
    shadow: policyShadowSchema.optional(),
    /** Accept a hot-reloaded bundle whose revision goes back (gateway/policy/revision.ts); refused as bundle_rollback otherwise. */
    allowRollback: z.boolean().default(false),
  })
  .strict();

// Upstream credentials and identity assertion (gateway/upstream-auth/).
const upstreamAuthSchema = z.discriminatedUnion("type", [
  z.object({ type: z.literal("bearer"), token: z.string().min(1) }).strict(),
  z
    .object({
      type: z.literal("client_credentials"),
      tokenUrl: z.string().url(),
      clientId: z.string().min(1),
      clientSecret: z.string().min(1),
      scope: z.string().min(1).optional(),
      audience: z.string().min(1).optional(),
      /** client_secret_basic (RFC 6749 §2.3.1, the default) or client_secret_post. */
      clientAuth: z.enum(["basic", "post"]).default("basic"),
      /** A cached token is replaced this long before it expires. */
      refreshSkewSeconds: z.number().int().min(0).max(3600).default(30),
    })
    .strict(),
]);

const identityAssertionSchema = z
  .object({
    /** PEM file of the gateway's signing key (RSA or EC P-256/384/521). */
    privateKey: z.string().min(1),
    keyId: z.string().min(1).optional(),
    ttlSeconds: z.number().int().min(1).max(3600).default(60),
    header: z.string().regex(/^[A-Za-z0-9-]+$/, "must be an HTTP header name").default("X-Portcullis-Identity"),
    /** `iss` of the assertion; default "portcullis". */
    issuer: z.string().min(1).default("portcullis"),
    /** `aud` of the assertion; default the upstream's URL. */
    audience: z.string().min(1).optional(),
  })
  .strict();

const httpUpstreamSchema = z
  .object({
    url: z.string().url(),
    headers: z.record(z.string(), z.string()).default({}),
    timeoutMs: z.number().int().positive().default(60_000),
    /** Calls in flight to this upstream across all sessions; more are shed with upstream_busy. */
    maxConcurrent: z.number().int().positive().default(256),
    /** Largest answer (JSON body or one SSE event) accepted from this upstream; larger is upstream_bad_response. */
    maxResponseBytes: z.number().int().min(1024).default(16 * 1024 * 1024),
    /** The era this upstream speaks: `auto` asks it once with server/discover (DESIGN.md contract 5). */
    protocol: z.enum(["auto", "2025-11-25", "2026-07-28"]).default("auto"),
    auth: upstreamAuthSchema.optional(),
    identityAssertion: identityAssertionSchema.optional(),
  })
  .strict();

const stdioUpstreamSchema = z
  .object({
    command: z.string().min(1),
    args: z.array(z.string()).default([]),
    env: z.record(z.string(), z.string()).default({}),
    cwd: z.string().optional(),
    timeoutMs: z.number().int().positive().default(60_000),
    /** Calls in flight to this upstream across all sessions; more are shed with upstream_busy. */
    maxConcurrent: z.number().int().positive().default(256),
  })
  .strict();

const upstreamSchema = z.union([httpUpstreamSchema, stdioUpstreamSchema]);

const auditSchema = z
  .object({
    file: z.string().min(1).optional(),
    fsync: z.boolean().default(false),
    kafka: z
      .object({
        brokers: z.array(z.string().min(1)).min(1),
        topic: z.string().min(1),
        clientId: z.string().min(1).default("portcullis"),
        createTopic: z
          .object({
            partitions: z.number().int().positive().default(1),
            replicationFactor: z.number().int().positive().default(1),
          })
          .strict()
          .optional(),
        ssl: kafkaSslSchema.optional(),
        sasl: kafkaSaslSchema.optional(),
        /** Also publish each event rendered as OCSF API Activity (6003) to this topic. */
        ocsfTopic: z.string().min(1).optional(),
        /** Events Kafka refuses permanently go here (outbox-schema.ts; default in the outbox directory). */
        deadLetterFile: auditDeadLetterFileSchema.optional(),
      })
      .strict()
      .refine(saslNeedsTls, { message: "sasl.mechanism plain sends the password in clear: set ssl too", path: ["sasl", "mechanism"] })
      .optional(),
    signing: auditSigningSchema.optional(),
    mask: auditMaskSchema.default({ paths: [], keys: [], defaultKeys: true }),
    resultCapBytes: z.number().int().min(0).default(4096),
    instanceId: z.string().min(1).optional(),
    // Bounded events and refusals (audit-schema.ts, docs/audit.md "Size limits", "Refusals").
    maxEventBytes: auditMaxEventBytesSchema,
    fileMinFreeBytes: auditFileMinFreeBytesSchema,
    refusals: auditRefusalsSchema,
    // Durable Kafka outbox and back-pressure (outbox-schema.ts, gateway/audit/outbox.ts).
    outbox: auditOutboxSchema.optional(),
    onFull: auditOnFullSchema,
  })
  .strict();

const sessionsSchema = z
  .object({
    idleTimeoutSeconds: z.number().int().positive().default(1800),
    /** Sessions of a stdio upstream (each holds a child process): a client that never ends one frees it sooner. */
    stdioIdleTimeoutSeconds: z.number().int().positive().default(300),
    maxSessions: z.number().int().positive().default(1000),
    /** Sessions one subject (iss + sub) may hold at once. */
    maxPerAgent: z.number().int().positive().default(64),
    /** Sessions whose upstream is a stdio process (each one is a child process of the gateway). */
    maxStdio: z.number().int().positive().default(32),
    /** No replica serves a session after this, whatever its activity (sealed into the id). */
    maxLifetimeSeconds: z.number().int().positive().default(86_400),
    /**
     * Keys that seal session ids (DESIGN.md contract 5): the first seals, all open. Without them a
     * gateway makes a key of its own at start, and its sessions end with the process.
     */
    sealKeys: z
      .array(
        z
          .object({
            id: z.string().regex(/^[A-Za-z0-9_-]{1,32}$/, "must be 1-32 letters, digits, '_' or '-'"),
            key: z.string().refine((k) => /^[A-Za-z0-9+/_-]+={0,2}$/.test(k) && Buffer.from(k, "base64").length === 32, "must be 32 random bytes, base64 (openssl rand -base64 32)"),
          })
          .strict(),
      )
      .min(1)
      .refine((keys) => new Set(keys.map((k) => k.id)).size === keys.length, "key ids must be unique")
      .optional(),
    /** Where replicas agree that a session ended: `local` (this process) or `redis` (rateLimits.redis). */
    store: z.enum(["local", "redis"]).default("local"),
    /** Prefix of the session keys in that Redis. */
    redisKeyPrefix: z.string().default("portcullis:s:"),
    /** While that Redis cannot be asked: `refuse` session requests (503) or trust what this replica knows. */
    onRedisDown: z.enum(["local", "refuse"]).default("refuse"),
  })
  .strict();

const edgeSchema = z
  .object({
    maxBodyBytes: z.number().int().positive().default(4 * 1024 * 1024),
    /** Deepest nesting of objects and arrays accepted in a request body. */
    maxJsonDepth: z.number().int().min(8).max(512).default(64),
    allowedOrigins: z.array(z.string().min(1)).default([]),
    /** Host header values served besides publicUrl's host and the listen address (DNS rebinding). */
    allowedHosts: z.array(z.string().min(1)).optional(),
    /** Proxies whose X-Forwarded-For entries are believed (gateway/proxy/client-ip.ts). */
    trustedProxies: z.array(z.string().refine((c) => parseCidr(c) !== null, "must be an IP address or CIDR block")).default([]),
    /** Slow clients (Node's server timeouts): all headers within this, else 408. */
    headersTimeoutMs: z.number().int().positive().default(10_000),
    /** The whole request (headers and body) within this, else 408. */
    requestTimeoutMs: z.number().int().positive().default(30_000),
  })
  .strict();

// Rate limits (gateway/ratelimit/, docs/rate-limits.md).
const windowLimitSchema = z
  .object({ limit: z.number().int().positive(), windowSeconds: z.number().positive() })
  .strict();

const rateLimitsSchema = z
  .object({
    store: z.enum(["local", "redis"]).default("local"),
    redis: z
      .object({
        url: z.string().regex(/^rediss?:\/\//, "must be a redis:// or rediss:// URL"),
        keyPrefix: z.string().default("portcullis:rl:"),
        timeoutMs: z.number().int().positive().default(250),
      })
      .strict()
      .optional(),
    onRedisDown: z.enum(["local", "refuse"]).default("local"),
    defaults: z
      .object({ perAgent: windowLimitSchema.optional(), perTool: windowLimitSchema.optional() })
      .strict()
      .default({}),
  })
  .strict()
  .refine((r) => r.store !== "redis" || r.redis !== undefined, { message: "store: redis needs redis.url", path: ["redis"] });

// The operator console (gateway/console/): served at /console to tokens holding one of `roles`.
const consoleSchema = z
  .object({
    enabled: z.boolean().default(true),
    roles: z.array(z.string().min(1)).min(1).default(["portcullis-operator"]),
  })
  .strict();

const loggingSchema = z
  .object({
    /** Lowest level written (gateway/shared/log.ts); PORTCULLIS_LOG_LEVEL overrides it. */
    level: z.enum(LOG_LEVELS).default("info"),
    /** One `request` line per request at info (method, server, tool, outcome, status, duration, decision id). */
    access: z.boolean().default(true),
  })
  .strict();

// Federation (contract 5, docs/federation.md): /mcp serves every upstream at once, /mcp/v/NAME a named subset.
/** Longest name an agent sees for a federated tool, prompt or template (clients' function-name limits). */
export const FEDERATED_NAME_MAX = 64;
/** Room a shortened federated name keeps after `NAME<separator>`: a head of the item's name and `-` plus 8 hex. */
export const FEDERATED_SHORT_ROOM = 12;
const federationSchema = z
  .object({
    /** Between the upstream's NAME and the item's name: `NAME<separator>item`. Tool-name characters only. */
    separator: z.string().regex(/^[A-Za-z0-9_.-]{1,8}$/, "must be 1-8 of letters, digits, '_', '.' or '-' (characters a tool name may hold)").default("__"),
    /** Which upstreams `/mcp` serves; absent: all of them. */
    upstreams: z.array(z.string().min(1)).min(1).optional(),
    /** Virtual servers: `/mcp/v/NAME` serves the listed upstreams only. */
    virtualServers: z.record(z.string().regex(upstreamName, "virtual server names are letters, digits, '_' and '-'"), z.array(z.string().min(1)).min(1)).default({}),
  })
  .strict();

const shutdownSchema = z
  .object({
    /** On SIGTERM, in-flight calls get this long to finish before connections are cut. */
    drainTimeoutMs: z.number().int().min(0).default(30_000),
  })
  .strict();

export const configSchema = z
  .object({
    listen: listenSchema.default({ host: "127.0.0.1", port: 8080 }),
    /** Base URL agents use to reach the gateway; names the protected resources in metadata. */
    publicUrl: z.string().url().optional(),
    auth: authSchema,
    policy: policySchema,
    upstreams: z
      .record(z.string().regex(upstreamName, "upstream names are letters, digits, '_' and '-'"), upstreamSchema)
      .refine((u) => Object.keys(u).length > 0, "at least one upstream is required"),
    audit: auditSchema.default({ file: "var/audit.jsonl", fsync: false, resultCapBytes: 4096, mask: { paths: [], keys: [], defaultKeys: true }, onFull: "reject", ...AUDIT_BOUNDS_DEFAULTS }),
    sessions: sessionsSchema.default({ idleTimeoutSeconds: 1800, stdioIdleTimeoutSeconds: 300, maxSessions: 1000, maxPerAgent: 64, maxStdio: 32, maxLifetimeSeconds: 86_400, store: "local", redisKeyPrefix: "portcullis:s:", onRedisDown: "refuse" }),
    edge: edgeSchema.default({ maxBodyBytes: 4 * 1024 * 1024, maxJsonDepth: 64, allowedOrigins: [], trustedProxies: [], headersTimeoutMs: 10_000, requestTimeoutMs: 30_000 }),
    rateLimits: rateLimitsSchema.default({ store: "local", onRedisDown: "local", defaults: {} }),
    shutdown: shutdownSchema.default({ drainTimeoutMs: 30_000 }),
    integrity: integritySectionSchema,
    logging: loggingSchema.default({ level: "info", access: true }),
    /** OpenTelemetry traces (gateway/telemetry/): off unless telemetry.traces is set. */
    telemetry: telemetryConfigSchema.optional(),
    console: consoleSchema.default({ enabled: true, roles: ["portcullis-operator"] }),
    federation: federationSchema.optional(),
  })
  .strict()
  .superRefine((c, ctx) => {
    // Checked at start so that no two upstreams' namespaces can ever collide: NAME ends at the first separator.
    const f = c.federation;
    if (!f) return;
    const names = Object.keys(c.upstreams);
    const check = (members: readonly string[], path: (string | number)[]) =>
      members.forEach((m, i) => {
        if (!(m in c.upstreams)) ctx.addIssue({ code: "custom", path: [...path, i], message: `no upstream named "${m}"` });
      });
    if (f.upstreams) check(f.upstreams, ["federation", "upstreams"]);
    for (const [v, members] of Object.entries(f.virtualServers)) check(members, ["federation", "virtualServers", v]);
    for (const n of names) {
      // Not just "holds the separator": `files_` with `__` makes `files___x`, whose first `__` ends NAME at `files`.
      if ((n + f.separator).indexOf(f.separator) !== n.length) ctx.addIssue({ code: "custom", path: ["upstreams", n], message: `the upstream name contains the federation separator "${f.separator}" or ends with the start of it: its federated names would be ambiguous (rename it or choose another federation.separator)` });
      if (n.length + f.separator.length + FEDERATED_SHORT_ROOM > FEDERATED_NAME_MAX) ctx.addIssue({ code: "custom", path: ["upstreams", n], message: `the upstream name is too long to federate: NAME plus "${f.separator}" must leave ${FEDERATED_SHORT_ROOM} of the ${FEDERATED_NAME_MAX} characters a federated name may have` });
    }
  })
  // The session ledger lives in the Redis of the rate limits: one connection setting, not two.
  .refine((c) => c.sessions.store !== "redis" || c.rateLimits.redis !== undefined, { message: "store: redis needs rateLimits.redis.url (the same Redis as the rate limits)", path: ["sessions", "store"] })
  .refine(INTEGRITY_REDIS_RULE.check, { message: INTEGRITY_REDIS_RULE.message, path: [...INTEGRITY_REDIS_RULE.path] });

export type GatewayConfig = z.infer<typeof configSchema>;
export type FederationConfig = z.infer<typeof federationSchema>;
export type UpstreamConfig = z.infer<typeof upstreamSchema>;
export type HttpUpstreamConfig = z.infer<typeof httpUpstreamSchema>;
export type StdioUpstreamConfig = z.infer<typeof stdioUpstreamSchema>;

export function isStdioUpstream(u: UpstreamConfig): u is StdioUpstreamConfig {
  return "command" in u;
}
