import { canonicalJsonOfValue, toolDigest, type McpToolDefinition } from "../policy/index.js";
import { IntegrityError } from "./errors.js";
import type { DefinitionField, DriftRecord, FieldChange, PinnedBy, ToolDefinition, ToolPin } from "./types.js";

/** The fields a digest covers, in the order changes are reported. */
const FIELDS: readonly DefinitionField[] = ["title", "description", "inputSchema", "outputSchema", "annotations"];

/** How much of a value a change shows (audit events and `tools list` stay small). */
export const CHANGE_VALUE_MAX_CHARS = 200;

/**
 * The digested fields of a listed tool, copied as JSON (so the stored definition is the listed
 * one, whatever else the listing carried: icons, _meta). Its digest is the listing's `tool.digest`.
 */
export function toolDefinitionOf(tool: McpToolDefinition): ToolDefinition {
  const def: ToolDefinition = { name: tool.name };
  for (const field of FIELDS) {
    const value = tool[field];
    if (value !== undefined) (def as unknown as Record<string, unknown>)[field] = JSON.parse(JSON.stringify(value)) as unknown;
  }
  return def;
}

/** A pin of `tool`'s current definition. */
export function pinOf(server: string, tool: McpToolDefinition, pinnedBy: PinnedBy, nowMs: number): ToolPin {
  const definition = toolDefinitionOf(tool);
  return { server, tool: tool.name, digest: toolDigest(definition), definition, pinnedAt: new Date(nowMs).toISOString(), pinnedBy };
}

/** Refuses a pin whose digest is not its definition's (a caller mixing up two listings). */
export function checkPin(pin: ToolPin): void {
  if (pin.definition.name !== pin.tool) throw new IntegrityError("invalid_argument", `pin of ${pin.server}/${pin.tool}: the definition is of "${pin.definition.name}"`);
  const digest = toolDigest(pin.definition);
  if (digest !== pin.digest) throw new IntegrityError("invalid_argument", `pin of ${pin.server}/${pin.tool}: digest ${pin.digest} is not its definition's (${digest})`);
}

/**
 * What changed between two definitions of one tool, field by field: added, removed, or changed,
 * with the JSON pointer of the first differing leaf inside schemas and annotations. Equal
 * definitions give []. A title or description is shown as written, anything else (a leaf inside a
 * schema included) as JSON, cut to 200 characters.
 */
export function diffDefinitions(before: ToolDefinition, after: ToolDefinition): FieldChange[] {
  const changes: FieldChange[] = [];
  for (const field of FIELDS) {
    const a = before[field];
    const b = after[field];
    if (a === undefined && b === undefined) continue;
    if (a === undefined) {
      changes.push({ field, change: "added", after: shown(b) });
    } else if (b === undefined) {
      changes.push({ field, change: "removed", before: shown(a) });
    } else if (canonicalJsonOfValue(a) !== canonicalJsonOfValue(b)) {
      const leaf = firstDifference(a, b, "");
      changes.push({
        field,
        change: "changed",
        ...(leaf.path !== "" && { path: leaf.path }),
        ...(leaf.before !== undefined && { before: shown(leaf.before, leaf.path !== "") }),
        ...(leaf.after !== undefined && { after: shown(leaf.after, leaf.path !== "") }),
      });
    }
  }
  return changes;
}

interface Leaf {
  path: string;
  before: unknown;
  after: unknown;
}

/** The first place (keys in sorted order, then array indexes) where two unequal values differ. */
function firstDifference(a: unknown, b: unknown, path: string): Leaf {
  if (isRecord(a) && isRecord(b)) {
    const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
    for (const k of keys) {
      if (!sameJson(a[k], b[k])) return firstDifference(a[k], b[k], `${path}/${escapePointer(k)}`);
    }
  } else if (Array.isArray(a) && Array.isArray(b)) {
    for (let i = 0; i < Math.max(a.length, b.length); i++) {
      if (!sameJson(a[i], b[i])) return firstDifference(a[i], b[i], `${path}/${i}`);
    }
  }
  return { path, before: a, after: b };
}

function sameJson(a: unknown, b: unknown): boolean {
  if (a === undefined || b === undefined) return a === b;
  return canonicalJsonOfValue(a) === canonicalJsonOfValue(b);
}

/** A field's value (a title or description as written) or, inside an object, a leaf's JSON. */
function shown(value: unknown, asJson = false): string {
  const text = typeof value === "string" && !asJson ? value : canonicalJsonOfValue(value);
  if (text.length <= CHANGE_VALUE_MAX_CHARS) return text;
  // Counted and cut in code points, so a surrogate pair is never split.
  const points = Array.from(text.slice(0, 2 * CHANGE_VALUE_MAX_CHARS));
  if (points.length <= CHANGE_VALUE_MAX_CHARS && text.length <= 2 * CHANGE_VALUE_MAX_CHARS) return text;
  return `${points.slice(0, CHANGE_VALUE_MAX_CHARS - 1).join("")}…`;
}

const escapePointer = (key: string): string => key.replace(/~/g, "~0").replace(/\//g, "~1");

function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

/** The drift record of `definition` (digest `digest`) against the tool's pin, seen now. */
export function driftOf(pin: ToolPin, digest: string, definition: ToolDefinition, nowMs: number): DriftRecord {
  return { server: pin.server, tool: pin.tool, digest, definition, pinnedDigest: pin.digest, changes: diffDefinitions(pin.definition, definition), seenAt: new Date(nowMs).toISOString() };
}
