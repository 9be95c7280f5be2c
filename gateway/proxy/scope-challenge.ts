import { wwwAuthenticate, type AgentIdentity } from "../auth/index.js";
import type { AuditRecord, AuditOutcome } from "../audit/index.js";
import type { DecisionOutcome } from "../policy/index.js";
import { rpcError, RpcCode, type JsonRpcResponse } from "./jsonrpc.js";
import type { Responder } from "./responder.js";

/**
 * The MCP scope challenge (authorization spec, "insufficient scope"): a deny whose decision names
 * `required_scopes` the token does not carry is answered HTTP 403 with
 * `WWW-Authenticate: Bearer error="insufficient_scope", scope="…"`, so the client can ask its
 * authorization server for more and retry. Only for the calls (tools/call, resources/read,
 * prompts/get): list items the token cannot use are simply not listed. Returns null when the deny
 * is not about scopes, and the ordinary in-band denial applies.
 */
export function scopeChallenge(
  decided: DecisionOutcome,
  identity: AgentIdentity,
  responder: Responder,
  record: AuditRecord,
  request: { id: string | number },
  resourceMetadataUrl: string,
): { outcome: AuditOutcome; answer: JsonRpcResponse } | null {
  const required = decided.decision.required_scopes;
  if (decided.decision.allow || required === undefined) return null;
  const held = new Set(identity.scopes);
  const missing = required.filter((s) => !held.has(s));
  if (missing.length === 0) return null;
  // 2025-11-25: the challenge lists the scopes already held plus the new ones, so a client that
  // re-authorizes with exactly this list does not lose what it had.
  const scope = [...new Set([...identity.scopes, ...required])];
  responder.header(
    "www-authenticate",
    wwwAuthenticate({ resourceMetadataUrl, error: "insufficient_scope", errorDescription: `This request needs scope ${missing.join(" ")}`, scope }),
  );
  responder.status(403);
  record.fail("insufficient_scope", `token lacks ${missing.join(" ")}`);
  return { outcome: "denied", answer: rpcError(request.id, RpcCode.InvalidRequest, "Forbidden: insufficient scope", { required_scopes: missing }) };
}
