import type { Attributes } from "@opentelemetry/api";
import {
  ATTR_CLIENT_ADDRESS,
  ATTR_CLIENT_PORT,
  ATTR_ERROR_TYPE,
  ATTR_HTTP_RESPONSE_STATUS_CODE,
  ATTR_NETWORK_PROTOCOL_NAME,
  ATTR_NETWORK_TRANSPORT,
  ATTR_SERVER_ADDRESS,
  ATTR_SERVER_PORT,
} from "@opentelemetry/semantic-conventions";

/**
 * Span names and attributes, from the OpenTelemetry MCP semantic conventions (status: development;
 * the gen-ai conventions' docs/gen-ai/mcp.md). The stable names come from the package; the
 * development ones are copied here, as the package advises for its incubating entry point (which
 * may change them in a minor release); test/unit/telemetry/attributes.test.ts checks each copy
 * against the pinned package.
 */
export const MCP = {
  METHOD_NAME: "mcp.method.name",
  SESSION_ID: "mcp.session.id",
  PROTOCOL_VERSION: "mcp.protocol.version",
  RESOURCE_URI: "mcp.resource.uri",
  TOOL_NAME: "gen_ai.tool.name",
  PROMPT_NAME: "gen_ai.prompt.name",
  OPERATION_NAME: "gen_ai.operation.name",
  JSONRPC_REQUEST_ID: "jsonrpc.request.id",
  RPC_RESPONSE_STATUS_CODE: "rpc.response.status_code",
} as const;

/** The gateway's own attributes: what the conventions have no name for. */
export const PORTCULLIS = {
  /** The upstream's NAME (`/mcp/NAME`, `request.server` in the policy input). */
  SERVER: "portcullis.server",
  STAGE: "portcullis.stage",
  /** Contract 4's audit outcome. */
  OUTCOME: "portcullis.outcome",
  /** The gateway's stable error code (docs/errors.md). */
  ERROR_CODE: "portcullis.error.code",
} as const;

export {
  ATTR_CLIENT_ADDRESS,
  ATTR_CLIENT_PORT,
  ATTR_ERROR_TYPE,
  ATTR_HTTP_RESPONSE_STATUS_CODE,
  ATTR_NETWORK_PROTOCOL_NAME,
  ATTR_NETWORK_TRANSPORT,
  ATTR_SERVER_ADDRESS,
  ATTR_SERVER_PORT,
};

/** `gen_ai.operation.name` of a tool call; the conventions say to set it for tools/call only. */
export const EXECUTE_TOOL = "execute_tool";
/** `error.type` when a CallToolResult has `isError: true` (the conventions' value). */
export const TOOL_ERROR = "tool_error";
/** Name of a request span whose body never yielded a method (refused at the edge). */
export const UNPARSED_REQUEST_SPAN = "mcp";

/** What the edge learned from the JSON-RPC body. */
export interface McpRequestFacts {
  readonly method: string;
  readonly requestId?: string | number | null;
  readonly tool?: string | null;
  readonly prompt?: string | null;
  readonly resourceUri?: string | null;
  readonly sessionId?: string | null;
  readonly protocolVersion?: string | null;
}

/** How a request or an upstream call ended; every field optional but what is known. */
export interface SpanResult {
  /** The gateway's error code (docs/errors.md), e.g. "upstream_failed". */
  readonly errorCode?: string;
  /** The JSON-RPC error code of the answer, when the answer is a JSON-RPC error. */
  readonly rpcErrorCode?: number;
  /** The answer is a CallToolResult with `isError: true` (a tool's own error, or a denial answered in band). */
  readonly toolError?: boolean;
  /** The error's message: the span status description. */
  readonly message?: string;
}

/** `{mcp.method.name} {target}`, target the tool or prompt name when there is one (never a resource URI: unbounded). */
export function spanName(facts: Pick<McpRequestFacts, "method" | "tool" | "prompt"> | null): string {
  if (!facts) return UNPARSED_REQUEST_SPAN;
  const target = facts.tool ?? facts.prompt;
  return target ? `${facts.method} ${target}` : facts.method;
}

/** The MCP attributes shared by the request span (SERVER) and the upstream span (CLIENT). */
export function mcpAttributes(facts: McpRequestFacts): Attributes {
  const a: Attributes = { [MCP.METHOD_NAME]: facts.method };
  // The conventions: no jsonrpc.request.id for a null or absent id (a notification).
  if (facts.requestId !== undefined && facts.requestId !== null) a[MCP.JSONRPC_REQUEST_ID] = String(facts.requestId);
  if (facts.tool) a[MCP.TOOL_NAME] = facts.tool;
  if (facts.method === "tools/call") a[MCP.OPERATION_NAME] = EXECUTE_TOOL;
  if (facts.prompt) a[MCP.PROMPT_NAME] = facts.prompt;
  if (facts.resourceUri) a[MCP.RESOURCE_URI] = facts.resourceUri;
  if (facts.sessionId) a[MCP.SESSION_ID] = facts.sessionId;
  if (facts.protocolVersion) a[MCP.PROTOCOL_VERSION] = facts.protocolVersion;
  return a;
}

/**
 * `error.type`, one rule for every span: the JSON-RPC error code when the answer is one (the
 * conventions), `tool_error` for an `isError` tool result, else the gateway's error code, else the
 * HTTP status of a failed exchange; undefined when nothing failed.
 */
export function errorTypeOf(result: SpanResult, httpStatus?: number): string | undefined {
  if (result.rpcErrorCode !== undefined) return String(result.rpcErrorCode);
  if (result.toolError) return TOOL_ERROR;
  if (result.errorCode) return result.errorCode;
  if (httpStatus !== undefined && httpStatus >= 400) return String(httpStatus);
  return undefined;
}

/** The attributes that record how a span ended (the status is set beside them, from `error.type`). */
export function resultAttributes(result: SpanResult, httpStatus?: number): Attributes {
  const a: Attributes = {};
  if (httpStatus !== undefined) a[ATTR_HTTP_RESPONSE_STATUS_CODE] = httpStatus;
  if (result.rpcErrorCode !== undefined) a[MCP.RPC_RESPONSE_STATUS_CODE] = String(result.rpcErrorCode);
  if (result.errorCode) a[PORTCULLIS.ERROR_CODE] = result.errorCode;
  const errorType = errorTypeOf(result, httpStatus);
  if (errorType !== undefined) a[ATTR_ERROR_TYPE] = errorType;
  return a;
}

/** Where an upstream call goes: an HTTP MCP server (by URL) or a stdio child process. */
export type UpstreamTarget = { readonly transport: "http"; readonly url: string } | { readonly transport: "stdio" };

/** `server.address`/`server.port` and `network.transport` of the upstream call (tcp for HTTP, pipe for stdio). */
export function upstreamAttributes(target: UpstreamTarget): Attributes {
  if (target.transport === "stdio") return { [ATTR_NETWORK_TRANSPORT]: "pipe" };
  const a: Attributes = { [ATTR_NETWORK_TRANSPORT]: "tcp", [ATTR_NETWORK_PROTOCOL_NAME]: "http" };
  let url: URL;
  try {
    url = new URL(target.url);
  } catch {
    return a;
  }
  // Only the host and port: a URL's path or query may carry a credential.
  a[ATTR_SERVER_ADDRESS] = url.hostname.replace(/^\[(.*)\]$/, "$1");
  a[ATTR_SERVER_PORT] = url.port ? Number(url.port) : url.protocol === "https:" ? 443 : 80;
  return a;
}
