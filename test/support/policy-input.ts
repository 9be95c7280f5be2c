/** Contract 3 inputs as the tests of the real bundle evaluate them. */
import { buildPolicyInput, type PolicyInput, type PolicyRequest } from "../../gateway/policy/index.js";

export const ALL_SCOPES = ["mcp:tools", "mcp:resources", "mcp:prompts"];

/** A contract 3 request as the gateway builds one: `method` on server demo, nothing named, fixed session and time. */
export function policyRequest(method: string, fields: Partial<PolicyRequest> = {}): PolicyRequest {
  return {
    method,
    server: "demo",
    tool: null,
    arguments: null,
    resource: null,
    prompt: null,
    session_id: "s1",
    protocol_version: "2025-11-25",
    source_ip: "127.0.0.1",
    time: "2026-11-24T10:00:00.000Z", // a Tuesday, inside the ops role's window
    ...fields,
  };
}

export function aliceInput(roles: string[], method: string, fields: Partial<PolicyRequest> = {}, scopes: string[] = ALL_SCOPES): PolicyInput {
  return buildPolicyInput({ sub: "alice", iss: "https://idp.example.com/", client_id: "cli", scopes, roles, claims: {} }, policyRequest(method, fields), null);
}
