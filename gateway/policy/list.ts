import { policyTool, type McpToolDefinition } from "./input.js";
import type { DecisionOutcome, PolicyEngine, PolicyInput, PolicyListItem, PolicyRequest } from "./types.js";

/**
 * A listed item for `decideItems`: the field that names it (`{tool: name}`, `{resource: uri}` or
 * `{prompt: name}`; the others are null) and the tool definition, or null for anything else.
 * The tool view is the one buildPolicyInput uses (cached per definition object).
 */
export function listItem(fields: Partial<Pick<PolicyRequest, "tool" | "resource" | "prompt">>, tool: McpToolDefinition | null): PolicyListItem {
  return {
    fields: { tool: fields.tool ?? null, resource: fields.resource ?? null, prompt: fields.prompt ?? null },
    tool: tool === null ? null : policyTool(tool),
  };
}

/**
 * The input a listed item is decided on: `base` (built for the listing, no item) with the item's
 * naming fields and tool view put in. This is what decideItems means, whatever the engine does.
 */
export function itemInput(base: PolicyInput, item: PolicyListItem): PolicyInput {
  return {
    agent: base.agent,
    request: { ...base.request, tool: item.fields.tool ?? null, resource: item.fields.resource ?? null, prompt: item.fields.prompt ?? null },
    tool: item.tool,
  };
}

/**
 * decideItemsWith decides a listing with any engine: in one pass where the engine can
 * (WasmPolicyEngine, ShadowingEngine), else one decide() per item. Never throws for a real
 * engine; outcomes are in item order.
 */
export function decideItemsWith(engine: PolicyEngine, base: PolicyInput, items: readonly PolicyListItem[]): DecisionOutcome[] {
  if (typeof engine.decideItems === "function") return engine.decideItems(base, items);
  return items.map((item) => engine.decide(itemInput(base, item)));
}
