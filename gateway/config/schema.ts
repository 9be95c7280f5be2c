import { z } from "zod";

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

const policySchema = z
  .object({
    bundle: z.string().min(1),
    verificationKey: z.string().min(1),
    signingAlgorithm: z
      .enum(["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"])
      .optional(),
    keyId: z.string().min(1).default("default"),
    scope: z.string().optional(),
  })
  .strict();

const httpUpstreamSchema = z
  .object({
    url: z.string().url(),
    headers: z.record(z.string(), z.string()).default({}),
    timeoutMs: z.number().int().positive().default(60_000),
  })
  .strict();

const stdioUpstreamSchema = z
  .object({
    command: z.string().min(1),
    args: z.array(z.string()).default([]),
    env: z.record(z.string(), z.string()).default({}),
    cwd: z.string().optional(),
    timeoutMs: z.number().int().positive().default(60_000),
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
      })
      .strict()
      .optional(),
    resultCapBytes: z.number().int().min(0).default(4096),
    instanceId: z.string().min(1).optional(),
  })
  .strict();

const sessionsSchema = z
  .object({
    idleTimeoutSeconds: z.number().int().positive().default(1800),
    maxSessions: z.number().int().positive().default(1000),
  })
  .strict();

const edgeSchema = z
  .object({
    maxBodyBytes: z.number().int().positive().default(4 * 1024 * 1024),
    allowedOrigins: z.array(z.string().min(1)).default([]),
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
    audit: auditSchema.default({ file: "var/audit.jsonl", fsync: false, resultCapBytes: 4096 }),
    sessions: sessionsSchema.default({ idleTimeoutSeconds: 1800, maxSessions: 1000 }),
    edge: edgeSchema.default({ maxBodyBytes: 4 * 1024 * 1024, allowedOrigins: [] }),
  })
  .strict();

export type GatewayConfig = z.infer<typeof configSchema>;
export type UpstreamConfig = z.infer<typeof upstreamSchema>;
export type HttpUpstreamConfig = z.infer<typeof httpUpstreamSchema>;
export type StdioUpstreamConfig = z.infer<typeof stdioUpstreamSchema>;

export function isStdioUpstream(u: UpstreamConfig): u is StdioUpstreamConfig {
  return "command" in u;
}
