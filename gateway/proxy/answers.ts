import { Refusal } from "./errors.js";
import { rpcError, rpcResult, type JsonRpcId, type JsonRpcResponse } from "./jsonrpc.js";
import { RATE_LIMIT_META_KEY } from "./limits.js";

/** What the pipeline sends back: built here from the catalogue, sent in one place (`finish`). */
export type Answer =
  | { kind: "rpc"; status: number; message: JsonRpcResponse; headers?: Record<string, string> }
  /** 202 for notifications and responses, 200 for DELETE. */
  | { kind: "empty"; status: number; headers?: Record<string, string> }
  /** The OAuth-shaped 401/503 of the identity stage. */
  | { kind: "raw"; status: number; headers: Record<string, string>; body: string }
  /** The server→client stream was opened (GET). */
  | { kind: "stream" }
  /** The upstream paused a primed stream: it ends without an answer, which comes on the client's resumed GET. */
  | { kind: "paused" };

const DECISION_META_KEY = "dev.portcullis/decision";
/** `_meta` key of the approval a held call waits on: `{approval_id, expires_at}`. */
export const APPROVAL_META_KEY = "dev.portcullis/approval";
/** Refusals of a `tools/call` that the model should read as a tool result (it can adapt or wait). */
const TOOL_RESULT_CODES = new Set(["denied", "tool_drifted", "tool_name_collision", "approval_required", "rate_limited", "ratelimit_unavailable", "upstream_busy"]);

export interface AnswerContext {
  id: JsonRpcId | null;
  isToolCall: boolean;
  /** Notifications and responses have no id to answer: refusals are HTTP errors. */
  isNotification: boolean;
  /** Set when a decision was made: named in the answer so the agent can cite it. */
  decisionId: string | null;
}

export function resultAnswer(message: JsonRpcResponse, headers?: Record<string, string>): Answer {
  return headers ? { kind: "rpc", status: 200, message, headers } : { kind: "rpc", status: 200, message };
}

export function refusalAnswer(refusal: Refusal, ctx: AnswerContext): Answer {
  const entry = refusal.entry;
  const headers = refusal.headers;
  if (ctx.isToolCall && TOOL_RESULT_CODES.has(refusal.code)) {
    const outcome = entry.outcome;
    const meta: Record<string, unknown> = { [DECISION_META_KEY]: { decision_id: ctx.decisionId, outcome } };
    if (refusal.code === "approval_required") meta[APPROVAL_META_KEY] = refusal.data;
    else if (refusal.code !== "denied" && refusal.code !== "tool_drifted" && refusal.code !== "tool_name_collision") meta[RATE_LIMIT_META_KEY] = refusal.data;
    const message = rpcResult(ctx.id, { content: [{ type: "text", text: refusal.message }], isError: true, _meta: meta });
    return headers ? { kind: "rpc", status: 200, message, headers } : { kind: "rpc", status: 200, message };
  }
  let data: Record<string, unknown> | undefined = refusal.data;
  if (ctx.decisionId !== null && entry.outcome === "rate_limited") data = { ...data, decision_id: ctx.decisionId };
  const message = rpcError(ctx.isNotification ? null : ctx.id, entry.rpc, refusal.message, data);
  // A notification cannot be answered in band: its refusal is an HTTP error.
  const status = ctx.isNotification && entry.inBand ? (entry.outcome === "denied" ? 403 : 400) : entry.status;
  return headers ? { kind: "rpc", status, message, headers } : { kind: "rpc", status, message };
}
