import assert from "node:assert/strict";
import { buildPolicyInput, decideItemsWith, itemInput, listItem, type DecisionOutcome, type McpToolDefinition, type PolicyEngine, type PolicyRequest } from "../../../gateway/policy/index.js";
import { allow, deny, FakePolicyEngine } from "../../fakes/policy.js";
import { policyRequest } from "../../support/policy-input.js";

const identity = { sub: "alice", iss: "https://idp.example.com/", client_id: "cli", scopes: ["mcp:tools"], roles: ["analyst"], claims: { sub: "alice" } };
const listing: PolicyRequest = policyRequest("tools/list");
const echo: McpToolDefinition = { name: "echo", description: "Echoes", inputSchema: { type: "object" }, annotations: { readOnlyHint: true } };

describe("listed items (decideItems)", () => {
  it("listItem names the item with one field, the others null, and uses buildPolicyInput's tool view", () => {
    const item = listItem({ tool: "echo" }, echo);
    assert.deepEqual(item.fields, { tool: "echo", resource: null, prompt: null });
    assert.equal(item.tool, buildPolicyInput(identity, listing, echo).tool, "the same cached view object");
    assert.deepEqual(listItem({ resource: "demo://readme" }, null), { fields: { tool: null, resource: "demo://readme", prompt: null }, tool: null });
  });

  it("itemInput is the input filterList built per item with buildPolicyInput", () => {
    const base = buildPolicyInput(identity, listing, null);
    assert.deepEqual(itemInput(base, listItem({ tool: "echo" }, echo)), buildPolicyInput(identity, { ...listing, tool: "echo" }, echo));
    assert.deepEqual(itemInput(base, listItem({ prompt: "summarize" }, null)), buildPolicyInput(identity, { ...listing, prompt: "summarize" }, null));
    assert.equal(base.request.tool, null, "the base is not changed");
  });

  it("decideItemsWith falls back to one decide() per item, in order, for an engine without decideItems", () => {
    const engine = new FakePolicyEngine((input) => (input.request.tool === "delete_record" ? deny("no") : allow()));
    const base = buildPolicyInput(identity, listing, null);
    const names = ["echo", "delete_record", "add"];
    const outcomes = decideItemsWith(engine, base, names.map((name) => listItem({ tool: name }, { name })));
    assert.deepEqual(outcomes.map((o) => o.decision.allow), [true, false, true]);
    assert.deepEqual(engine.inputs.map((i) => i.request.tool), names);
    assert.deepEqual(engine.inputs.map((i) => i.tool?.name), names);
  });

  it("decideItemsWith uses the engine's own decideItems when it has one", () => {
    const batched: DecisionOutcome[] = [deny("batched")];
    const engine: PolicyEngine = {
      revision: "r",
      hasResultPolicy: false,
      decide: () => assert.fail("decide() is not asked"),
      decideResult: () => assert.fail("not asked"),
      decideItems: () => batched,
    };
    assert.equal(decideItemsWith(engine, buildPolicyInput(identity, listing, null), [listItem({ tool: "echo" }, null)]), batched);
  });
});
