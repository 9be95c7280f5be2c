import { hash } from "node:crypto";
import { canonicalJsonOfValue } from "./canonical-json.js";
import type { PolicyAgent, PolicyInput, PolicyRequest, PolicyTool } from "./types.js";

/** The identity fields policy sees: what gateway/auth produces, structurally (extra fields are dropped). */
export type PolicyIdentity = PolicyAgent;

/** An MCP tool definition as an upstream lists it; schema fields are untrusted and checked here. */
export interface McpToolDefinition {
  name: string;
  title?: string;
  description?: string;
  inputSchema?: unknown;
  outputSchema?: unknown;
  annotations?: unknown;
}

// Definitions are parsed once per upstream tools/list and reused for every call and listed item,
// so the derived policy view (and its sha256) is computed once per definition object.
// NOTE: callers must treat tool definitions as immutable once listed.
const toolCache = new WeakMap<McpToolDefinition, PolicyTool>();
// Likewise one identity serves a whole request, including every item of a list.
const agentCache = new WeakMap<PolicyIdentity, PolicyAgent>();

/**
 * buildPolicyInput assembles contract 3's input. Every field is set (null, not absent) so that
 * policies see one shape, and only the contract's fields are copied so nothing else leaks in.
 */
export function buildPolicyInput(
  identity: PolicyIdentity,
  req: PolicyRequest,
  tool: McpToolDefinition | null,
): PolicyInput {
  const request: PolicyRequest = {
    method: req.method,
    server: req.server,
    tool: req.tool ?? null,
    arguments: req.arguments ?? null,
    resource: req.resource ?? null,
    prompt: req.prompt ?? null,
    session_id: req.session_id ?? null,
    protocol_version: req.protocol_version ?? null,
    source_ip: req.source_ip ?? null,
    time: req.time,
  };
  return { agent: policyAgent(identity), request, tool: tool === null ? null : policyTool(tool) };
}

/**
 * policyAgent is the policy's view of an identity, cached per identity object and frozen (the
 * engine caches the JSON of frozen views). NOTE: identities must not change once built.
 */
export function policyAgent(identity: PolicyIdentity): PolicyAgent {
  let view = agentCache.get(identity);
  if (view === undefined) {
    view = Object.freeze({
      sub: identity.sub,
      iss: identity.iss,
      client_id: identity.client_id ?? null,
      scopes: identity.scopes,
      roles: identity.roles,
      claims: identity.claims,
    });
    agentCache.set(identity, view);
  }
  return view;
}

/**
 * policyTool is the policy's view of a tool definition, cached per definition object, and shared
 * by definitions with the same content (the memo below): a listing parsed afresh gets the views of
 * the last one, which the wasm engine has already parsed and pinned.
 */
export function policyTool(tool: McpToolDefinition): PolicyTool {
  let view = toolCache.get(tool);
  if (view === undefined) {
    const known = definitionOf(tool);
    view = known.view ??= Object.freeze({
      name: tool.name,
      description: typeof tool.description === "string" ? tool.description : null,
      input_schema: isRecord(tool.inputSchema) ? tool.inputSchema : {},
      annotations: isRecord(tool.annotations) ? tool.annotations : {},
      digest: known.digest,
    });
    toolCache.set(tool, view);
  }
  return view;
}

/**
 * The toolDigest of a listed definition object, computed once per object: the digest in the
 * policy's tool view of it, so pinning and policy hash a listing's tools once between them.
 * Like the view, it assumes the object is not changed after it was listed (it is not: listings
 * are parsed per answer and kept as they are).
 */
export function listedToolDigest(tool: McpToolDefinition): string {
  return policyTool(tool).digest;
}

/**
 * toolDigest is "sha256:" + hex sha256 over the canonical JSON (sorted keys, OPA's escaping) of
 * the definition's name, title, description, inputSchema, outputSchema and annotations; absent
 * fields are omitted, so key order and unrelated fields (icons, _meta) do not change it.
 */
export function toolDigest(tool: McpToolDefinition): string {
  return definitionOf(tool).digest;
}

interface KnownDefinition {
  digest: string;
  /** The policy's view, built from the first definition object of this content. */
  view?: PolicyTool;
}

/**
 * What is known of a definition's content. Every listing is parsed afresh, so the same
 * definitions come back as new objects each time. Memo key: the digested fields' JSON.stringify
 * text (native, a third of canonical JSON's cost). Equal texts are equal JSON values with members
 * in the same order, so they have one canonical JSON, one digest and one view: the memo can only
 * ever answer what hashing (and building the view) would. Bounded in entries and in characters,
 * oldest out first: an upstream listing huge or ever-changing definitions costs the memo its hits,
 * never the gateway its memory.
 */
function definitionOf(tool: McpToolDefinition): KnownDefinition {
  const fields = {
    name: tool.name,
    title: tool.title,
    description: tool.description,
    inputSchema: tool.inputSchema,
    outputSchema: tool.outputSchema,
    annotations: tool.annotations,
  };
  const key = JSON.stringify(fields);
  const known = definitionMemo.get(key);
  if (known !== undefined) return known;
  const fresh: KnownDefinition = { digest: `sha256:${hash("sha256", canonicalJsonOfValue(fields))}` };
  if (key.length <= DIGEST_MEMO_KEY_MAX_CHARS) {
    while (definitionMemo.size > 0 && (definitionMemo.size >= DIGEST_MEMO_MAX || digestMemoChars + key.length > DIGEST_MEMO_MAX_CHARS)) {
      const oldest = definitionMemo.keys().next().value!;
      definitionMemo.delete(oldest);
      digestMemoChars -= oldest.length;
    }
    definitionMemo.set(key, fresh);
    digestMemoChars += key.length;
  }
  return fresh;
}

/** Definitions remembered: a few catalogues of 1,000 tools, at most 8 Mi characters of definitions. */
const DIGEST_MEMO_MAX = 4096;
const DIGEST_MEMO_MAX_CHARS = 8 * 1024 * 1024;
const DIGEST_MEMO_KEY_MAX_CHARS = 64 * 1024;
const definitionMemo = new Map<string, KnownDefinition>();
let digestMemoChars = 0;

/** The memo's size, for tests of its bounds. */
export function toolDigestMemoSize(): { entries: number; chars: number } {
  return { entries: definitionMemo.size, chars: digestMemoChars };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}
