/**
 * JSON-RPC 2.0 as MCP uses it: parsed once at the edge into a typed message, then passed inward.
 * Only the envelope is validated here; method params are checked where they are used.
 */
export type JsonRpcId = string | number;

export interface JsonRpcRequest {
  jsonrpc: "2.0";
  id: JsonRpcId;
  method: string;
  params?: Record<string, unknown>;
}
export interface JsonRpcNotification {
  jsonrpc: "2.0";
  method: string;
  params?: Record<string, unknown>;
}
export interface JsonRpcErrorObject {
  code: number;
  message: string;
  data?: unknown;
}
export interface JsonRpcResponse {
  jsonrpc: "2.0";
  id: JsonRpcId | null;
  result?: Record<string, unknown>;
  error?: JsonRpcErrorObject;
}
export type JsonRpcMessage = JsonRpcRequest | JsonRpcNotification | JsonRpcResponse;

/** Standard codes, and only the MCP spec's own from -32000..-32099 (never invented here). */
export const RpcCode = {
  ParseError: -32700,
  InvalidRequest: -32600,
  MethodNotFound: -32601,
  InvalidParams: -32602,
  InternalError: -32603,
  /** 2025 era "session not found" / resource not found codes the spec and SDKs use. */
  SessionNotFound: -32001,
  ResourceNotFound: -32002,
  /** 2026-07-28 `UnsupportedProtocolVersion` (with `data.supported`), also what SDK clients of both eras read. */
  UnsupportedProtocolVersion: -32022,
  /** 2026-07-28 `HeaderMismatch`: a required header is missing or disagrees with the body. */
  HeaderMismatch: -32020,
  /** 2026-07-28 `MissingRequiredClientCapability` (with `data.requiredCapabilities`). */
  MissingRequiredClientCapability: -32021,
} as const;

export type ParsedMessage =
  | { kind: "request"; message: JsonRpcRequest }
  | { kind: "notification"; message: JsonRpcNotification }
  | { kind: "response"; message: JsonRpcResponse };

export type ParseFailure = { ok: false; code: number; message: string };

const isId = (v: unknown): v is JsonRpcId =>
  typeof v === "string" || (typeof v === "number" && Number.isSafeInteger(v));
/** A JSON object (not null, not an array): the one check every part of the proxy uses. */
export const isObject = (v: unknown): v is Record<string, unknown> =>
  v !== null && typeof v === "object" && !Array.isArray(v);

/** Classifies one decoded JSON value as a JSON-RPC message, or says why it is not one. */
export function classify(value: unknown): { ok: true; parsed: ParsedMessage } | ParseFailure {
  if (Array.isArray(value)) {
    // Batches smuggle nested calls past per-message checks and were removed in 2025-06-18.
    return { ok: false, code: RpcCode.InvalidRequest, message: "JSON-RPC batches are not supported" };
  }
  if (!isObject(value) || value.jsonrpc !== "2.0") {
    return { ok: false, code: RpcCode.InvalidRequest, message: "not a JSON-RPC 2.0 message" };
  }
  if (value.params !== undefined && !isObject(value.params)) {
    return { ok: false, code: RpcCode.InvalidRequest, message: "params must be an object" };
  }
  if (typeof value.method === "string") {
    if (value.method.length === 0) return { ok: false, code: RpcCode.InvalidRequest, message: "empty method" };
    if ("id" in value) {
      if (!isId(value.id)) return { ok: false, code: RpcCode.InvalidRequest, message: "id must be a string or integer" };
      return { ok: true, parsed: { kind: "request", message: value as unknown as JsonRpcRequest } };
    }
    return { ok: true, parsed: { kind: "notification", message: value as unknown as JsonRpcNotification } };
  }
  if ("method" in value) return { ok: false, code: RpcCode.InvalidRequest, message: "method must be a string" };
  if (isId(value.id) && (isObject(value.result) || isObject(value.error))) {
    return { ok: true, parsed: { kind: "response", message: value as unknown as JsonRpcResponse } };
  }
  return { ok: false, code: RpcCode.InvalidRequest, message: "not a request, notification or response" };
}

export function rpcError(id: JsonRpcId | null, code: number, message: string, data?: unknown): JsonRpcResponse {
  const error: JsonRpcErrorObject = data === undefined ? { code, message } : { code, message, data };
  return { jsonrpc: "2.0", id, error };
}

export function rpcResult(id: JsonRpcId | null, result: Record<string, unknown>): JsonRpcResponse {
  return { jsonrpc: "2.0", id, result };
}

export function isResponse(m: JsonRpcMessage): m is JsonRpcResponse {
  return !("method" in m);
}

// The exact text each upstream message was parsed from. A message the gateway passes on unchanged
// (most tool results) is written back as those bytes instead of being serialized again.
// NOTE: messages are treated as immutable once parsed; build a new object to change one.
const rawText = new WeakMap<object, string>();

/** Parses one JSON-RPC message from upstream text, or null when it is not one. */
export function parseMessage(text: string): JsonRpcMessage | null {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return null;
  }
  const c = classify(value);
  if (!c.ok) return null;
  rawText.set(c.parsed.message, text);
  return c.parsed.message;
}

/** The wire form of a message: its original text when it came from upstream unchanged. */
export function serialize(message: JsonRpcMessage): string {
  return rawText.get(message) ?? JSON.stringify(message);
}
