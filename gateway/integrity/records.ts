import { z } from "zod";
import { IntegrityError } from "./errors.js";
import type { ApprovalRequest, ApprovalTransition, DriftRecord, PinnedBy, ToolDefinition, ToolPin } from "./types.js";

/**
 * What the stores read back (the JSON file, Redis values) is parsed here, once, so a hand-edited
 * or foreign value is a clear `store_corrupt` instead of a wrong answer.
 */

// Only the name is typed: the digest covers the other fields whatever an upstream put in them.
const definitionSchema = z
  .object({ name: z.string() })
  .catchall(z.unknown())
  .transform((d): ToolDefinition => {
    const out: Record<string, unknown> = { name: d.name };
    for (const k of ["title", "description", "inputSchema", "outputSchema", "annotations"]) if (d[k] !== undefined) out[k] = d[k];
    return out as unknown as ToolDefinition;
  });

const digest = z.string().regex(/^sha256:[0-9a-f]{64}$/);
const pinnedBy = z.string().regex(/^(first_seen|policy_data|operator:.+)$/).transform((s) => s as PinnedBy);

export const toolPinSchema = z.object({
  server: z.string(),
  tool: z.string(),
  digest,
  definition: definitionSchema,
  pinnedAt: z.string(),
  pinnedBy,
});

const fieldChangeSchema = z.object({
  field: z.enum(["title", "description", "inputSchema", "outputSchema", "annotations"]),
  change: z.enum(["added", "removed", "changed"]),
  path: z.string().optional(),
  before: z.string().optional(),
  after: z.string().optional(),
});

export const driftRecordSchema = z.object({
  server: z.string(),
  tool: z.string(),
  digest,
  definition: definitionSchema,
  pinnedDigest: digest,
  changes: z.array(fieldChangeSchema),
  seenAt: z.string(),
});

export const APPROVAL_STATES = ["pending", "approved", "denied", "used", "expired"] as const;

export const approvalRequestSchema = z.object({
  id: z.string(),
  agent: z.object({ iss: z.string(), sub: z.string() }),
  server: z.string(),
  tool: z.string(),
  argumentsDigest: digest,
  reason: z.string(),
  ttlSeconds: z.number().int().positive(),
  createdAt: z.string(),
  expiresAt: z.string(),
  state: z.enum(APPROVAL_STATES),
  approver: z.string().optional(),
  decidedAt: z.string().optional(),
  note: z.string().optional(),
  usedAt: z.string().optional(),
});

export const approvalTransitionSchema = z.object({
  id: z.string(),
  event: z.enum(["approval_required", "approved", "denied", "used", "expired"]),
  approvalId: z.string(),
  at: z.string(),
  actor: z.string().optional(),
  note: z.string().optional(),
  request: approvalRequestSchema,
  audited: z.boolean(),
});

/** Parses one stored value; `where` names it in the error (a file, a Redis key). */
export function parseStored<T extends z.ZodType>(schema: T, value: unknown, where: string): z.output<T> {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const first = r.error.issues[0];
  const at = first && first.path.length > 0 ? ` at ${first.path.join(".")}` : "";
  throw new IntegrityError("store_corrupt", `${where}: not a tool-integrity record${at}: ${first?.message ?? "invalid"}`);
}

export function parseJson(text: string, where: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new IntegrityError("store_corrupt", `${where}: not JSON (${(err as Error).message})`);
  }
}

// Typed readers: the compiler checks that each schema yields the public type.
export const readPin = (v: unknown, where: string): ToolPin => parseStored(toolPinSchema, v, where);
export const readDrift = (v: unknown, where: string): DriftRecord => parseStored(driftRecordSchema, v, where);
export const readRequest = (v: unknown, where: string): ApprovalRequest => parseStored(approvalRequestSchema, v, where);
export const readTransition = (v: unknown, where: string): ApprovalTransition => parseStored(approvalTransitionSchema, v, where);
