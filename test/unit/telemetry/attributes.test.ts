import assert from "node:assert/strict";
import * as incubating from "@opentelemetry/semantic-conventions/incubating";
import { EXECUTE_TOOL, MCP } from "../../../gateway/telemetry/attributes.js";

/** The development attribute names copied into attributes.ts, against the pinned semantic-conventions package. */
describe("telemetry attribute names", () => {
  const copies: Array<[keyof typeof MCP, string]> = [
    ["METHOD_NAME", incubating.ATTR_MCP_METHOD_NAME],
    ["SESSION_ID", incubating.ATTR_MCP_SESSION_ID],
    ["PROTOCOL_VERSION", incubating.ATTR_MCP_PROTOCOL_VERSION],
    ["RESOURCE_URI", incubating.ATTR_MCP_RESOURCE_URI],
    ["TOOL_NAME", incubating.ATTR_GEN_AI_TOOL_NAME],
    ["PROMPT_NAME", incubating.ATTR_GEN_AI_PROMPT_NAME],
    ["OPERATION_NAME", incubating.ATTR_GEN_AI_OPERATION_NAME],
    ["JSONRPC_REQUEST_ID", incubating.ATTR_JSONRPC_REQUEST_ID],
    ["RPC_RESPONSE_STATUS_CODE", incubating.ATTR_RPC_RESPONSE_STATUS_CODE],
  ];
  for (const [ours, theirs] of copies) {
    it(`${ours} is the conventions' ${theirs}`, () => assert.equal(MCP[ours], theirs));
  }

  it("every copied name is checked", () => {
    assert.deepEqual(Object.keys(MCP).sort(), copies.map(([k]) => k).sort());
  });

  it("execute_tool is the conventions' value for a tool call", () => {
    assert.equal(EXECUTE_TOOL, incubating.GEN_AI_OPERATION_NAME_VALUE_EXECUTE_TOOL);
  });
});
