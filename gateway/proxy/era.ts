import { Refusal } from "./errors.js";
import { isObject, type ParsedMessage } from "./jsonrpc.js";

/**
 * The two eras of MCP on one endpoint (DESIGN.md contract 5). The 2025 era (2024-11-05 …
 * 2025-11-25) opens a session with `initialize`; 2026-07-28 is stateless: every request carries
 * its own `_meta` envelope and mirrors method and name in headers. The era is chosen per request,
 * from the body first (a proxy that strips a header must not change the era), with the headers
 * cross-checked against it. Decisions are made on the body only: the headers are compared with
 * it and refused when they disagree, never read as facts.
 */
export const LEGACY_PROTOCOL_VERSIONS = ["2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"] as const;
export const MODERN_PROTOCOL_VERSIONS = ["2026-07-28"] as const;
/** Newest first: what `data.supported` of -32022 lists. */
export const SUPPORTED_VERSIONS: readonly string[] = [...MODERN_PROTOCOL_VERSIONS, ...LEGACY_PROTOCOL_VERSIONS];
/** The legacy version the gateway speaks to a 2025 upstream on behalf of a 2026 client. */
export const LEGACY_UPSTREAM_VERSION = "2025-11-25";
export const MODERN_VERSION = "2026-07-28";

export const META = {
  protocolVersion: "io.modelcontextprotocol/protocolVersion",
  clientCapabilities: "io.modelcontextprotocol/clientCapabilities",
  clientInfo: "io.modelcontextprotocol/clientInfo",
  logLevel: "io.modelcontextprotocol/logLevel",
  serverInfo: "io.modelcontextprotocol/serverInfo",
} as const;
/** The envelope keys a 2025 upstream must not see: they would make a dual-era server read the request as 2026. */
const ENVELOPE_KEYS: readonly string[] = [META.protocolVersion, META.clientCapabilities, META.clientInfo, META.logLevel];

/** A revision string sorts by date: everything from 2026-07-28 on is the stateless era. */
export const isModernVersion = (v: string) => v >= MODERN_VERSION;

/** The 2026 per-request envelope, validated. */
export interface Envelope {
  protocolVersion: string;
  clientCapabilities: Record<string, unknown>;
  clientInfo: Record<string, unknown> | null;
  logLevel: string | null;
}

export type Era = { era: "legacy" } | { era: "modern"; envelope: Envelope };

/** The request headers the era check reads (lower-case names; Node already folds them). */
export interface EraHeaders {
  protocolVersion: string | undefined;
  method: string | undefined;
  name: string | undefined;
}

/** 2025 methods that 2026-07-28 removed: a 2026 request naming one is 404 -32601. */
const REMOVED_IN_2026: ReadonlySet<string> = new Set(["initialize", "ping", "logging/setLevel", "resources/subscribe", "resources/unsubscribe"]);

/** Which body field `Mcp-Name` mirrors, per method (checked on the way in, rebuilt on the way to a 2026 upstream). */
const NAME_SOURCE: Readonly<Record<string, "name" | "uri" | "taskId">> = {
  "tools/call": "name",
  "prompts/get": "name",
  "resources/read": "uri",
  "tasks/get": "taskId",
  "tasks/update": "taskId",
  "tasks/cancel": "taskId",
};

/**
 * The era of one POSTed message, or the refusal: unsupported version → -32022; a 2026 request
 * without a usable envelope → 400/-32602; a header missing or disagreeing with the body → 400/-32020.
 */
export function classifyEra(parsed: ParsedMessage, headers: EraHeaders): Era {
  const headerVersion = ows(headers.protocolVersion);
  if (parsed.kind === "response") {
    if (headerVersion !== undefined) checkKnownVersion(headerVersion);
    return { era: "legacy" };
  }
  const message = parsed.message;
  const params = message.params;
  const meta = isObject(params?._meta) ? params._meta : undefined;
  const claimed = meta !== undefined && META.protocolVersion in meta;
  const claimedVersion = claimed && typeof meta[META.protocolVersion] === "string" ? (meta[META.protocolVersion] as string) : undefined;

  // initialize is the 2025 handshake unless it carries a modern envelope (then it is simply a method 2026 lacks).
  if (message.method === "initialize" && !(claimedVersion !== undefined && isModernVersion(claimedVersion))) {
    if (headerVersion !== undefined && isModernVersion(headerVersion)) {
      throw mismatch(headerVersion, "an initialize request (the 2025 handshake) was sent with a 2026 MCP-Protocol-Version header");
    }
    if (headerVersion !== undefined) checkKnownVersion(headerVersion);
    return { era: "legacy" };
  }
  if (claimed) {
    if (claimedVersion === undefined) throw new Refusal("invalid_envelope", `${META.protocolVersion} must be a string`, { envelope: { key: META.protocolVersion, problem: "expected a string" } });
    if (!isModernVersion(claimedVersion)) {
      // A 2025 version in a 2026 envelope: a 2025 request with an odd _meta key; 2025 rules apply.
      if (headerVersion !== undefined && headerVersion !== claimedVersion) throw mismatch(headerVersion, `the body names protocol version ${claimedVersion} but MCP-Protocol-Version names ${headerVersion}`);
      checkKnownVersion(claimedVersion);
      return { era: "legacy" };
    }
    if (headerVersion !== undefined && headerVersion !== claimedVersion) throw mismatch(headerVersion, `the body names protocol version ${claimedVersion} but MCP-Protocol-Version names ${headerVersion}`);
    checkKnownVersion(claimedVersion, MODERN_PROTOCOL_VERSIONS);
    if (parsed.kind === "request" && REMOVED_IN_2026.has(message.method)) throw new Refusal("method_not_found", `${message.method} is not part of protocol revision ${claimedVersion}`);
    const envelope = validEnvelope(meta!, parsed.kind === "notification");
    if (parsed.kind === "request") checkStandardHeaders(message.method, params, headers, headerVersion);
    else if (headers.method !== undefined && ows(headers.method) !== message.method) throw mismatch(ows(headers.method)!, `the body names method ${message.method} but Mcp-Method names ${ows(headers.method)}`);
    return { era: "modern", envelope };
  }
  if (headerVersion !== undefined && isModernVersion(headerVersion)) {
    checkKnownVersion(headerVersion);
    if (parsed.kind === "notification") return { era: "modern", envelope: { protocolVersion: headerVersion, clientCapabilities: {}, clientInfo: null, logLevel: null } };
    const missing = meta === undefined ? ["_meta"] : [META.protocolVersion, ...(META.clientCapabilities in meta ? [] : [META.clientCapabilities])];
    throw new Refusal("invalid_envelope", `MCP-Protocol-Version names ${headerVersion} but the request lacks ${missing.join(", ")}`, { envelope: { missing } });
  }
  if (headerVersion !== undefined) checkKnownVersion(headerVersion);
  return { era: "legacy" };
}

function validEnvelope(meta: Record<string, unknown>, notification: boolean): Envelope {
  const caps = meta[META.clientCapabilities];
  if (caps === undefined && !notification) throw new Refusal("invalid_envelope", `${META.clientCapabilities} is missing`, { envelope: { key: META.clientCapabilities, problem: "missing" } });
  if (caps !== undefined && !isObject(caps)) throw new Refusal("invalid_envelope", `${META.clientCapabilities} must be an object`, { envelope: { key: META.clientCapabilities, problem: "expected an object" } });
  const info = meta[META.clientInfo];
  if (info !== undefined && !(isObject(info) && typeof info.name === "string" && typeof info.version === "string")) {
    throw new Refusal("invalid_envelope", `${META.clientInfo} must be {name, version}`, { envelope: { key: META.clientInfo, problem: "expected {name, version}" } });
  }
  const level = meta[META.logLevel];
  if (level !== undefined && typeof level !== "string") throw new Refusal("invalid_envelope", `${META.logLevel} must be a string`, { envelope: { key: META.logLevel, problem: "expected a string" } });
  return {
    protocolVersion: meta[META.protocolVersion] as string,
    clientCapabilities: (caps as Record<string, unknown> | undefined) ?? {},
    clientInfo: (info as Record<string, unknown> | undefined) ?? null,
    logLevel: (level as string | undefined) ?? null,
  };
}

/** MCP-Protocol-Version, Mcp-Method and Mcp-Name on a 2026 request: present and equal to the body. */
function checkStandardHeaders(method: string, params: Record<string, unknown> | undefined, headers: EraHeaders, headerVersion: string | undefined): void {
  if (headerVersion === undefined) throw mismatch("(missing)", "the body carries a 2026 envelope but the MCP-Protocol-Version header is absent");
  const methodHeader = ows(headers.method);
  if (methodHeader === undefined) throw mismatch("(missing)", `the body names method ${method} but the Mcp-Method header is absent`);
  if (methodHeader !== method) throw mismatch(methodHeader, `the body names method ${method} but Mcp-Method names ${methodHeader}`);
  const field = nameField(method);
  if (field === undefined) return;
  const body = params?.[field];
  const nameHeader = ows(headers.name);
  if (nameHeader === undefined) {
    if (typeof body === "string") throw mismatch("(missing)", `the body carries params.${field}="${clip(body)}" but the Mcp-Name header is absent`);
    return;
  }
  const decoded = decodeHeaderValue(nameHeader);
  if (decoded === undefined) throw mismatch(clip(nameHeader), "the Mcp-Name header carries an invalid =?base64?…?= value");
  if (typeof body === "string" && decoded !== body) throw mismatch(clip(nameHeader), `the body carries params.${field}="${clip(body)}" but Mcp-Name names "${clip(decoded)}"`);
}

/** The body field `Mcp-Name` mirrors for `method`, if it has one. */
export function nameField(method: string): "name" | "uri" | "taskId" | undefined {
  return Object.hasOwn(NAME_SOURCE, method) ? NAME_SOURCE[method] : undefined;
}

/** A tool argument mirrored into an `Mcp-Param-NAME` header (its schema says `x-mcp-header: NAME`). */
export interface ParamHeader {
  path: string[];
  header: string;
  type: string;
}

/** The `x-mcp-header` declarations of a tool's input schema, along `properties` chains only. */
export function paramHeadersOf(inputSchema: unknown): ParamHeader[] {
  const found: ParamHeader[] = [];
  const visit = (node: unknown, path: string[], depth: number): void => {
    if (!isObject(node) || depth > 32) return;
    const name = node["x-mcp-header"];
    if (path.length > 0 && typeof name === "string" && name.length > 0) found.push({ path, header: name, type: typeof node.type === "string" ? node.type : "string" });
    if (isObject(node.properties)) for (const [k, child] of Object.entries(node.properties)) visit(child, [...path, k], depth + 1);
  };
  visit(inputSchema, [], 0);
  return found;
}

/**
 * `Mcp-Param-*` of a 2026 `tools/call` against the body's arguments: each declared argument that
 * has a value must be mirrored, equal after decoding (numbers compared as numbers).
 */
export function checkParamHeaders(declared: readonly ParamHeader[], args: Record<string, unknown>, header: (name: string) => string | undefined): void {
  for (const d of declared) {
    const value = valueAt(args, d.path);
    const body = primitiveText(value);
    if (body === undefined) continue;
    const name = `Mcp-Param-${d.header}`;
    const raw = ows(header(name.toLowerCase()));
    if (raw === undefined) throw mismatch("(missing)", `the body carries ${d.path.join(".")}=${clip(JSON.stringify(value))} but the ${name} header is absent`);
    const decoded = decodeHeaderValue(raw);
    if (decoded === undefined) throw mismatch(clip(raw), `the ${name} header carries an invalid =?base64?…?= value`);
    const equal = typeof value === "number" && /^-?\d+(\.\d+)?$/.test(decoded) ? Number(decoded) === value : decoded === body;
    if (!equal) throw mismatch(clip(raw), `the ${name} header says "${clip(decoded)}" but the body carries ${d.path.join(".")}=${clip(JSON.stringify(value))}`);
  }
}

/** The `Mcp-Param-*` headers a 2026 upstream expects for these arguments (values encoded when not header-safe). */
export function paramHeaderValues(declared: readonly ParamHeader[], args: Record<string, unknown>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const d of declared) {
    const text = primitiveText(valueAt(args, d.path));
    if (text !== undefined) out[`mcp-param-${d.header.toLowerCase()}`] = encodeHeaderValue(text);
  }
  return out;
}

/** A header value as sent: plain when it is visible ASCII without edge spaces, else `=?base64?…?=` of its UTF-8. */
export function encodeHeaderValue(value: string): string {
  const safe = /^[\x21-\x7e]([\x20-\x7e]*[\x21-\x7e])?$/.test(value) && !(value.startsWith("=?base64?") && value.endsWith("?="));
  return safe ? value : `=?base64?${Buffer.from(value, "utf8").toString("base64")}?=`;
}

/** Decodes `=?base64?…?=` (canonical base64 of UTF-8 only); other values are returned as they are. */
export function decodeHeaderValue(value: string): string | undefined {
  if (!(value.length >= 11 && value.slice(0, 9).toLowerCase() === "=?base64?" && value.endsWith("?="))) return value;
  const b64 = value.slice(9, -2);
  if (!/^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(b64)) return undefined;
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(Buffer.from(b64, "base64"));
  } catch {
    return undefined;
  }
}

/** `_meta` for a 2025 upstream: the 2026 envelope keys removed, everything else (progressToken, traceparent) kept. */
export function legacyMeta(meta: Record<string, unknown> | undefined): Record<string, unknown> | undefined {
  if (meta === undefined || !ENVELOPE_KEYS.some((k) => k in meta)) return meta;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(meta)) if (!ENVELOPE_KEYS.includes(k)) out[k] = v;
  return Object.keys(out).length > 0 ? out : undefined;
}

/** The client capabilities a server→client request needs (sampling, elicitation, roots), as a capabilities object. */
export function requiredCapabilities(method: string, params: Record<string, unknown> | undefined): Record<string, unknown> | undefined {
  switch (method) {
    case "sampling/createMessage":
      return params?.tools !== undefined || params?.toolChoice !== undefined ? { sampling: { tools: {} } } : { sampling: {} };
    case "elicitation/create":
      return params?.mode === "url" ? { elicitation: { url: {} } } : { elicitation: { form: {} } };
    case "roots/list":
      return { roots: {} };
    default:
      return undefined;
  }
}

/** What of `required` the declared capabilities lack (a bare `elicitation: {}` counts as form mode). */
export function missingCapabilities(required: Record<string, unknown>, declared: Record<string, unknown>): Record<string, unknown> | undefined {
  const missing: Record<string, unknown> = {};
  for (const [cap, need] of Object.entries(required)) {
    const have = declared[cap];
    if (!isObject(have)) {
      missing[cap] = need;
      continue;
    }
    const lacking: Record<string, unknown> = {};
    for (const [member, v] of Object.entries(isObject(need) ? need : {})) {
      const implied = cap === "elicitation" && member === "form" && have.form === undefined && have.url === undefined;
      if (have[member] === undefined && !implied) lacking[member] = v;
    }
    if (Object.keys(lacking).length > 0) missing[cap] = lacking;
  }
  return Object.keys(missing).length > 0 ? missing : undefined;
}

/**
 * A version this endpoint serves, or -32022. A request with a 2026 envelope is told the 2026
 * versions (what server/discover lists: a 2025 version cannot be used without initialize); any
 * other request, every version.
 */
function checkKnownVersion(version: string, supported: readonly string[] = SUPPORTED_VERSIONS): void {
  if (!supported.includes(version)) {
    throw new Refusal("unsupported_protocol_version", `${clip(version)} (supported: ${supported.join(", ")})`, { supported: [...supported], requested: clip(version) });
  }
}

function mismatch(header: string, body: string): Refusal {
  return new Refusal("header_mismatch", body, { mismatch: { header, body } });
}

function valueAt(root: unknown, path: readonly string[]): unknown {
  let node = root;
  for (const k of path) {
    if (!isObject(node)) return undefined;
    node = node[k];
  }
  return node;
}

function primitiveText(v: unknown): string | undefined {
  if (typeof v === "string") return v;
  if (typeof v === "boolean") return v ? "true" : "false";
  if (typeof v === "number" && Number.isFinite(v) && (!Number.isInteger(v) || Number.isSafeInteger(v))) return String(v);
  return undefined;
}

/** RFC 9110 optional whitespace around a field value is not part of it. */
function ows(v: string | undefined): string | undefined {
  return v === undefined ? undefined : v.replace(/^[ \t]+|[ \t]+$/g, "");
}

function clip(s: string): string {
  return s.length > 128 ? `${s.slice(0, 128)}…` : s;
}
