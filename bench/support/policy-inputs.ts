/**
 * Realistic policy inputs shared by the decision benches (bench/evaluate.ts in process,
 * bench/peers.ts against an OPA sidecar): an agent with the analyst role, the read_file tool's
 * definition, and requests as the gateway builds them.
 */
import { buildPolicyInput, type McpToolDefinition, type PolicyInput, type PolicyRequest } from "../../gateway/policy/index.js";
import { policyRequest } from "../../test/support/policy-input.js";

export const identity = {
  sub: "alice@example.com",
  iss: "https://idp.example.com/",
  client_id: "claude-desktop",
  scopes: ["mcp:tools", "mcp:resources", "mcp:prompts"],
  roles: ["analyst"],
  claims: {
    sub: "alice@example.com",
    iss: "https://idp.example.com/",
    aud: ["https://gateway.example.com/mcp"],
    azp: "claude-desktop",
    scope: "mcp:tools mcp:resources mcp:prompts",
    roles: ["analyst"],
    iat: 1_795_000_000,
    exp: 1_795_003_600,
    jti: "b6f1c1e2-6d0e-4d53-9d6b-0d0c3f1f8a11",
    email: "alice@example.com",
  },
};

export const readFileTool: McpToolDefinition = {
  name: "read_file",
  title: "Read file",
  description: "Reads a UTF-8 text file under /data and returns its content.",
  inputSchema: {
    type: "object",
    properties: { path: { type: "string", description: "Absolute path under /data" }, max_bytes: { type: "integer" } },
    required: ["path"],
  },
  annotations: { readOnlyHint: true, destructiveHint: false, openWorldHint: false },
};

export function request(method: PolicyRequest["method"], fields: Partial<PolicyRequest>): PolicyRequest {
  return policyRequest(method, { session_id: "7d0f3c5e-53f1-4a4e-9b8e-2b1f6d9c0a77", ...fields });
}

/** The starter library's tools/call of read_file, allowed: the decision issue 13 measures. */
export function allowedReadFile(): PolicyInput {
  return buildPolicyInput(identity, request("tools/call", { tool: "read_file", arguments: { path: "/data/reports/2026/q3.csv", max_bytes: 65536 } }), readFileTool);
}
