import { Refusal } from "./errors.js";
import type { JsonRpcId, JsonRpcNotification, JsonRpcRequest } from "./jsonrpc.js";

/**
 * What the gateway decides on and what it forwards, for every method. The forwarded params are
 * rebuilt here from the validated fields (plus `_meta`, protocol metadata the upstream reads), so
 * the upstream can only ever act on what the policy saw: members the gateway did not read are not
 * passed on for the methods that carry a decision point.
 */
export type RequestKind =
  /** tools/call: decided on the tool and its arguments, against the tool's definition. */
  | "tool_call"
  /** resources/read|subscribe|unsubscribe, prompts/get, completion/complete: decided on the item. */
  | "item"
  /** tasks/get|result|cancel: decided on the tool of the call that created the task. */
  | "task"
  /** tools/list, resources/list, resources/templates/list, prompts/list: each listed item is decided. */
  | "list"
  /** initialize: decided, then a new upstream session. */
  | "initialize"
  /** Every other request and every notification: decided on the method alone. */
  | "protocol";

export interface ShapedRequest {
  kind: RequestKind;
  method: string;
  tool: string | null;
  resource: string | null;
  prompt: string | null;
  arguments: Record<string, unknown> | null;
  /** For tasks/*: the task the request is about. */
  taskId: string | null;
  /** The params the upstream receives (undefined: none). */
  forwardParams: Record<string, unknown> | undefined;
  /** 2026-07-28 retry of a call that needed input: the client's answers and the state it was given. */
  retry: Retry | null;
}

export interface Retry {
  inputResponses: Record<string, unknown>;
  requestState: string | null;
}

export interface ListMethod {
  field: "tools" | "resources" | "prompts" | "resourceTemplates";
  /** The method the policy sees for each item (templates are decided as resources). */
  itemMethod: "tools/list" | "resources/list" | "prompts/list";
  /** The member of an item that names it. */
  nameOf: "name" | "uri" | "uriTemplate";
}

export const LIST_METHODS: Readonly<Record<string, ListMethod>> = {
  "tools/list": { field: "tools", itemMethod: "tools/list", nameOf: "name" },
  "resources/list": { field: "resources", itemMethod: "resources/list", nameOf: "uri" },
  "resources/templates/list": { field: "resourceTemplates", itemMethod: "resources/list", nameOf: "uriTemplate" },
  "prompts/list": { field: "prompts", itemMethod: "prompts/list", nameOf: "name" },
};

const TASK_METHODS = new Set(["tasks/get", "tasks/result", "tasks/cancel"]);

type Params = Record<string, unknown>;

/** Shapes one request; throws Refusal("invalid_params") when the method's params are unusable. */
export function shapeRequest(message: JsonRpcRequest): ShapedRequest {
  const method = message.method;
  const params: Params = message.params ?? {};
  const meta = metaOf(params, method);
  const retry = retryOf(params, method);
  // Passed on as sent: a 2026 upstream reads them; the gateway consumes them for a 2025 one.
  const retried = retry ? { ...(params.inputResponses !== undefined && { inputResponses: retry.inputResponses }), ...(retry.requestState !== null && { requestState: retry.requestState }) } : {};
  const base = { method, tool: null, resource: null, prompt: null, arguments: null, taskId: null, retry };

  switch (method) {
    case "tools/call": {
      const name = nonEmptyString(params.name, method, "name");
      const args = params.arguments === undefined ? {} : object(params.arguments, method, "arguments");
      const task = params.task === undefined ? undefined : object(params.task, method, "task");
      return { ...base, kind: "tool_call", tool: name, arguments: args, forwardParams: { name, arguments: args, ...task && { task }, ...retried, ...meta } };
    }
    case "resources/read":
    case "resources/subscribe":
    case "resources/unsubscribe": {
      const uri = nonEmptyString(params.uri, method, "uri");
      return { ...base, kind: "item", resource: uri, forwardParams: { uri, ...retried, ...meta } };
    }
    case "prompts/get": {
      const name = nonEmptyString(params.name, method, "name");
      const args = params.arguments === undefined || params.arguments === null ? null : object(params.arguments, method, "arguments");
      return { ...base, kind: "item", prompt: name, arguments: args, forwardParams: { name, ...args && { arguments: args }, ...retried, ...meta } };
    }
    case "completion/complete": {
      const ref = object(params.ref, method, "ref");
      const argument = object(params.argument, method, "argument");
      const argName = nonEmptyString(argument.name, method, "argument.name");
      if (typeof argument.value !== "string") throw invalid(method, "argument.value (string)");
      const context = params.context === undefined ? undefined : object(params.context, method, "context");
      const forwardArgument = { name: argName, value: argument.value };
      if (ref.type === "ref/prompt") {
        const name = nonEmptyString(ref.name, method, "ref.name");
        return { ...base, kind: "item", prompt: name, forwardParams: { ref: { type: "ref/prompt", name }, argument: forwardArgument, ...context && { context }, ...meta } };
      }
      if (ref.type === "ref/resource") {
        const uri = nonEmptyString(ref.uri, method, "ref.uri");
        return { ...base, kind: "item", resource: uri, forwardParams: { ref: { type: "ref/resource", uri }, argument: forwardArgument, ...context && { context }, ...meta } };
      }
      throw invalid(method, 'ref.type ("ref/prompt" or "ref/resource")');
    }
    case "initialize":
      return { ...base, kind: "initialize", forwardParams: message.params };
    default:
      break;
  }
  if (TASK_METHODS.has(method)) {
    const taskId = nonEmptyString(params.taskId, method, "taskId");
    return { ...base, kind: "task", taskId, forwardParams: { taskId, ...meta } };
  }
  if (LIST_METHODS[method] !== undefined || method === "tasks/list") {
    const cursor = params.cursor === undefined ? undefined : nonEmptyString(params.cursor, method, "cursor");
    return { ...base, kind: method === "tasks/list" ? "protocol" : "list", forwardParams: { ...cursor !== undefined && { cursor }, ...meta } };
  }
  // ping, logging/setLevel and anything else: decided on the method; params pass as parsed (the
  // edge already refused ambiguous members anywhere in the body).
  return { ...base, kind: "protocol", forwardParams: message.params };
}

/**
 * Client notifications: named `notifications/…` (a notification called `tools/call` would run a
 * tool with nobody waiting for, or deciding on, its answer) and decided on the method.
 */
export function shapeNotification(message: JsonRpcNotification): ShapedRequest {
  if (!message.method.startsWith("notifications/")) {
    throw new Refusal("invalid_request", `a notification must be named notifications/…, not "${message.method.slice(0, 64)}"`);
  }
  return { kind: "protocol", method: message.method, tool: null, resource: null, prompt: null, arguments: null, taskId: null, forwardParams: message.params, retry: null };
}

/** The forwarded request: the decided method and rebuilt params, nothing else of the agent's. */
export function forwardedRequest(shaped: ShapedRequest, id: JsonRpcId): JsonRpcRequest {
  const params = shaped.forwardParams;
  return params === undefined ? { jsonrpc: "2.0", id, method: shaped.method } : { jsonrpc: "2.0", id, method: shaped.method, params };
}

export function forwardedNotification(shaped: ShapedRequest): JsonRpcNotification {
  const params = shaped.forwardParams;
  return params === undefined ? { jsonrpc: "2.0", method: shaped.method } : { jsonrpc: "2.0", method: shaped.method, params };
}

/** `inputResponses` (object) and `requestState` (string) of a 2026 retry; null when neither is there. */
function retryOf(params: Params, method: string): Retry | null {
  if (params.inputResponses === undefined && params.requestState === undefined) return null;
  const inputResponses = params.inputResponses === undefined ? {} : object(params.inputResponses, method, "inputResponses");
  if (params.requestState !== undefined && typeof params.requestState !== "string") throw invalid(method, "requestState (string)");
  return { inputResponses, requestState: (params.requestState as string | undefined) ?? null };
}

function metaOf(params: Params, method: string): { _meta?: Params } {
  if (params._meta === undefined) return {};
  return { _meta: object(params._meta, method, "_meta") };
}

function nonEmptyString(v: unknown, method: string, field: string): string {
  if (typeof v !== "string" || v.length === 0) throw invalid(method, `${field} (non-empty string)`);
  return v;
}

function object(v: unknown, method: string, field: string): Params {
  if (v === null || typeof v !== "object" || Array.isArray(v)) throw invalid(method, `${field} (object)`);
  return v as Params;
}

function invalid(method: string, needs: string): Refusal {
  return new Refusal("invalid_params", `${method} needs params.${needs}`);
}
