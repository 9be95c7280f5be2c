import { createHash } from "node:crypto";
import { FEDERATED_NAME_MAX, FEDERATED_SHORT_ROOM, type FederationConfig } from "../config/index.js";
import { Refusal } from "./errors.js";
import { isObject, type JsonRpcMessage, type JsonRpcNotification, type JsonRpcRequest, type JsonRpcResponse } from "./jsonrpc.js";
import type { ListenOptions, RequestOptions, UpstreamConnection, UpstreamState } from "./upstream.js";

/**
 * Federation (contract 5, docs/federation.md): one endpoint serving several upstreams. Their
 * tools, prompts and resource templates are named `NAME<separator>item`, so the name alone says
 * which upstream a call goes to; the config refuses an upstream NAME holding the separator, so
 * two upstreams' namespaces never meet.
 */

/** An endpoint that serves several upstreams: `/mcp` (id `*`) or a virtual server `/mcp/v/NAME` (id `v/NAME`). */
export interface FederatedEndpoint {
  /** The endpoint's id where a server name would stand (sessions, audit `mcp.server`); never an upstream name. */
  readonly id: string;
  /** The path agents use. */
  readonly path: string;
  /** Its upstreams, in config order (the order of merged lists). */
  readonly members: readonly string[];
}

export const FEDERATED_ROOT = "*";
const VIRTUAL_PREFIX = "v/";

/** The endpoints a federation config defines: the root, then each virtual server. */
export function federatedEndpoints(f: FederationConfig | undefined, upstreams: readonly string[]): Map<string, FederatedEndpoint> {
  const out = new Map<string, FederatedEndpoint>();
  if (!f) return out;
  out.set(FEDERATED_ROOT, { id: FEDERATED_ROOT, path: "/mcp", members: f.upstreams ?? upstreams });
  for (const [name, members] of Object.entries(f.virtualServers)) out.set(VIRTUAL_PREFIX + name, { id: VIRTUAL_PREFIX + name, path: `/mcp/v/${name}`, members });
  return out;
}

/** The path agents use for an endpoint id: `/mcp/NAME`, `/mcp` (federated root) or `/mcp/v/NAME`. */
export function endpointPath(id: string): string {
  if (id === FEDERATED_ROOT) return "/mcp";
  return id.startsWith(VIRTUAL_PREFIX) ? `/mcp/v/${id.slice(VIRTUAL_PREFIX.length)}` : `/mcp/${id}`;
}

/**
 * The name an agent sees for `item` of upstream `server`: `server<sep>item`, or when that is over
 * 64 characters, a head of the item's name and `-` plus 8 hex of its SHA-256 (stable: the same on
 * every replica and every run). Shortened names that still meet another are refused when listed.
 */
export function federatedName(server: string, sep: string, item: string): string {
  const full = `${server}${sep}${item}`;
  if (full.length <= FEDERATED_NAME_MAX) return full;
  const room = FEDERATED_NAME_MAX - server.length - sep.length - 9;
  const hash = createHash("sha256").update(item).digest("hex").slice(0, 8);
  return `${server}${sep}${item.slice(0, Math.max(room, FEDERATED_SHORT_ROOM - 9))}-${hash}`;
}

/** The member a federated name names and the rest after the separator; null when it names none. */
export function splitFederatedName(name: string, sep: string, members: readonly string[]): { member: string; rest: string } | null {
  const at = name.indexOf(sep);
  if (at <= 0) return null;
  const member = name.slice(0, at);
  if (!members.includes(member)) return null;
  return { member, rest: name.slice(at + sep.length) };
}

/**
 * A merged list's cursor: where each member's listing stands. Base64url JSON `{member: cursor}`;
 * members not in it are done. Opaque to the agent; checked here because it comes back from it.
 */
export function encodeFederatedCursor(pending: Record<string, string>): string | undefined {
  if (Object.keys(pending).length === 0) return undefined;
  return Buffer.from(JSON.stringify(pending)).toString("base64url");
}

export function decodeFederatedCursor(cursor: unknown, members: readonly string[]): Record<string, string> {
  if (typeof cursor !== "string" || cursor.length > 16 * 1024) throw new Refusal("invalid_params", "cursor is not one this endpoint gave");
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8"));
  } catch {
    throw new Refusal("invalid_params", "cursor is not one this endpoint gave");
  }
  if (!isObject(value) || Array.isArray(value)) throw new Refusal("invalid_params", "cursor is not one this endpoint gave");
  const out: Record<string, string> = {};
  for (const [m, c] of Object.entries(value)) {
    if (!members.includes(m) || typeof c !== "string") throw new Refusal("invalid_params", "cursor is not one this endpoint gave");
    out[m] = c;
  }
  if (Object.keys(out).length === 0) throw new Refusal("invalid_params", "cursor is not one this endpoint gave");
  return out;
}

/**
 * The InitializeResult of a federated endpoint: what every member that joined offers (a capability
 * is there when one member has it), each member's instructions under its name.
 */
export function mergedInitResult(endpoint: FederatedEndpoint, protocolVersion: string, joined: ReadonlyMap<string, Record<string, unknown>>, version: string): Record<string, unknown> {
  const capabilities: Record<string, Record<string, unknown>> = {};
  const instructions: string[] = [];
  for (const [member, init] of joined) {
    const caps = isObject(init.capabilities) ? init.capabilities : {};
    for (const key of ["tools", "prompts", "resources", "logging", "completions", "tasks"]) {
      const c = caps[key];
      if (!isObject(c)) continue;
      const merged = (capabilities[key] ??= {});
      for (const [k, v] of Object.entries(c)) if (v === true || merged[k] === undefined) merged[k] = v;
    }
    if (typeof init.instructions === "string" && init.instructions.length > 0) instructions.push(`${member}: ${init.instructions}`);
  }
  return {
    protocolVersion,
    capabilities,
    serverInfo: { name: "portcullis", title: `portcullis federation ${endpoint.path}`, version },
    ...(instructions.length > 0 && { instructions: instructions.join("\n\n") }),
  };
}

/**
 * The upstream side of a federated session: one connection per member that joined. The pipeline
 * reaches each member through its own view of the session (memberOf), so every request to a
 * member is decided, forwarded and answered as on that member's own endpoint; this composite only
 * keeps them together for the session's lifetime, its sealed state and its server→client stream.
 */
export class FederatedUpstream implements UpstreamConnection {
  readonly era = "legacy" as const;

  /** `stdio` members resumed on this replica: their processes start with these parameters. */
  readonly pendingInits: Map<string, Record<string, unknown>>;
  /** Each member's InitializeResult, when it joined on this replica (empty when resumed). */
  readonly initResults = new Map<string, Record<string, unknown>>();

  constructor(readonly members: ReadonlyMap<string, UpstreamConnection>, pendingInits: Map<string, Record<string, unknown>> = new Map()) {
    this.pendingInits = pendingInits;
  }

  /** A federated session from its sealed state, each member resumed by `connect`. */
  static resume(state: Extract<UpstreamState, { kind: "federated" }>, connect: (member: string, state: UpstreamState) => UpstreamConnection): FederatedUpstream {
    const members = new Map<string, UpstreamConnection>();
    const pending = new Map<string, Record<string, unknown>>();
    for (const [m, s] of Object.entries(state.members)) {
      members.set(m, connect(m, s));
      if (s.kind === "stdio") pending.set(m, s.init);
    }
    return new FederatedUpstream(members, pending);
  }

  initialize(_request: JsonRpcRequest, _opts: RequestOptions): Promise<JsonRpcResponse> {
    return Promise.reject(new Error("a federated session initializes each member on its own"));
  }

  request(_request: JsonRpcRequest, _opts: RequestOptions): Promise<JsonRpcResponse> {
    return Promise.reject(new Error("a federated request goes to one member, through its view"));
  }

  send(_message: JsonRpcNotification | JsonRpcResponse): Promise<void> {
    return Promise.reject(new Error("a federated message goes to one member, through its view"));
  }

  listen(_onMessage: (m: JsonRpcMessage) => void, _signal: AbortSignal, _onEnd: () => void, _opts?: ListenOptions): Promise<"open" | "unsupported"> {
    return Promise.reject(new Error("a federated stream is opened per member, through its view"));
  }

  async close(): Promise<void> {
    await Promise.all([...this.members.values()].map((m) => m.close().catch(() => undefined)));
  }

  state(): UpstreamState {
    const members: Record<string, UpstreamState> = {};
    for (const [m, c] of this.members) members[m] = c.state();
    return { kind: "federated", members };
  }

  async detach(): Promise<void> {
    await Promise.all([...this.members.values()].map((m) => m.detach().catch(() => undefined)));
  }
}

/**
 * Whether `uri` is one `template` (RFC 6570) can expand to: `{x}` stands for one path segment,
 * `{+x}` and `{#x}` for anything, query and other operators for the rest of the URI.
 */
export function matchesUriTemplate(template: string, uri: string): boolean {
  let pattern = "^";
  let at = 0;
  for (const m of template.matchAll(/\{([^}]*)\}/g)) {
    pattern += escapeRegExp(template.slice(at, m.index));
    const op = m[1]!.charAt(0);
    pattern += op === "+" || op === "#" ? ".*" : op === "?" || op === "&" || op === "/" || op === ";" || op === "." ? ".*" : "[^/?#]+";
    at = m.index + m[0].length;
  }
  pattern += escapeRegExp(template.slice(at)) + "$";
  return new RegExp(pattern, "s").test(uri);
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
