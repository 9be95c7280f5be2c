/**
 * What every answer to a hostile request must satisfy, shared by the in-process and HTTP fuzz
 * suites: the oracle for "no allow without a decision" and "no lost audit event".
 */
import assert from "node:assert/strict";
import type { AuditEvent } from "../../../gateway/audit/index.js";
import type { DecisionOutcome, PolicyInput } from "../../../gateway/policy/index.js";
import type { ToolDefinition } from "../../../gateway/proxy/index.js";
import { allow, deny, policyFailure } from "../../fakes/policy.js";
import type { UpstreamScript } from "../../fakes/upstream.js";

export const MAX_BODY = 2048;

const TOOLS: ToolDefinition[] = [
  { name: "read_file", description: "Reads a file", inputSchema: { type: "object" }, annotations: { readOnlyHint: true } },
  { name: "echo", description: "Echoes", inputSchema: { type: "object" } },
  { name: "delete_record", description: "Deletes", inputSchema: { type: "object" }, annotations: { destructiveHint: true } },
];
/** Items the scripted upstream lists per list method: one decision (and event) each. */
const LISTED: Record<string, number> = { "tools/list": 3, "resources/list": 2, "prompts/list": 2, "resources/templates/list": 1 };

export const upstreamScript: UpstreamScript = {
  toolPages: [TOOLS],
  methods: {
    "tools/call": (req) => ({ result: { content: [{ type: "text", text: `ran ${String(req.params?.name)}` }] } }),
    "resources/read": { result: { contents: [{ uri: "demo://x", text: "x" }] } },
    "prompts/get": { result: { messages: [] } },
    "resources/list": { result: { resources: [{ uri: "demo://a" }, { uri: "demo://b" }] } },
    "prompts/list": { result: { prompts: [{ name: "p1" }, { name: "p2" }] } },
    "resources/templates/list": { result: { resourceTemplates: [{ uriTemplate: "demo://{x}" }] } },
    ping: { result: {} },
  },
};

function hash(s: string): number {
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619);
  return h >>> 0;
}

/** A policy whose answer depends on the item in a way the oracle can recompute. */
export function hostilePolicy(input: PolicyInput): DecisionOutcome {
  const r = input.request;
  switch (hash(`${r.method}|${String(r.tool ?? r.resource ?? r.prompt)}`) % 5) {
    case 0:
    case 1:
      return allow();
    case 2:
      return deny("not for you");
    case 3:
      return policyFailure("policy_malformed");
    default:
      return allow({ mask: ["/input/request/arguments/secret"] });
  }
}

export const DECIDED_METHODS = ["tools/call", "resources/read", "prompts/get"];

export interface Observed {
  /** The request body as sent. */
  text: string;
  status: number;
  body: string;
  /** Audit events written for this request only. */
  events: readonly AuditEvent[];
  /** tools/call, resources/read and prompts/get the upstream received for this request. */
  forwarded: number;
  /** Policy inputs for this request only. */
  inputs: readonly PolicyInput[];
}

const isObj = (v: unknown) => v !== null && typeof v === "object" && !Array.isArray(v);

/** Checks one answer; returns how many decisions it put on record. */
export function checkOutcome(o: Observed): number {
  const { events } = o;
  // A refused token is on record, once; an edge or session refusal carries no decision.
  if (o.status === 401) {
    assert.equal(events.length, 1);
    assert.equal(events[0]!.outcome, "unauthenticated");
    assert.equal(o.forwarded, 0);
    return 0;
  }
  if (o.status !== 200) {
    assert.equal(events.length, 0, `status ${o.status} wrote ${events.length} events`);
    assert.equal(o.forwarded, 0);
    return 0;
  }
  const msg = JSON.parse(o.text) as { id?: unknown; method?: string; params?: Record<string, unknown> };
  const answer = JSON.parse(o.body) as { id: unknown; result?: Record<string, unknown>; error?: { code: number } };
  assert.deepEqual(answer.id, msg.id, "the answer names the request");
  const p = msg.params ?? {};
  const decided =
    (msg.method === "tools/call" && typeof p.name === "string" && p.name !== "" && (p.arguments === undefined || p.arguments === null || isObj(p.arguments))) ||
    (msg.method === "resources/read" && typeof p.uri === "string") ||
    (msg.method === "prompts/get" && typeof p.name === "string" && (p.arguments === undefined || p.arguments === null || isObj(p.arguments)));
  const listed = msg.method !== undefined && LISTED[msg.method] !== undefined && answer.result !== undefined ? LISTED[msg.method]! : 0;
  assert.equal(events.length, decided ? 1 : listed, `${msg.method}: ${events.length} events`);
  if (decided) assert.equal(events[0]!.mcp.method, msg.method);

  // No allow without a decision: a forwarded call was allowed by the policy, and is on record so.
  assert.ok(o.forwarded <= 1);
  if (o.forwarded === 1) {
    assert.equal(events[0]!.outcome, "allowed");
    const input = o.inputs.find((i) => i.request.method === msg.method);
    assert.ok(input, "forwarded without asking the policy");
    assert.equal(hostilePolicy(input).decision.allow, true, "forwarded although the policy denied");
  } else if (decided) {
    assert.notEqual(events[0]!.outcome, "allowed", "allowed on record but never forwarded");
  }
  return events.length;
}
