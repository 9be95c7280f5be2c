/**
 * What every answer to a hostile request must satisfy, shared by the in-process and HTTP fuzz
 * suites: the oracle for "no allow without a decision" and "no lost audit event".
 */
import assert from "node:assert/strict";
import type { AuditEvent } from "../../../gateway/audit/index.js";
import type { DecisionOutcome, PolicyInput } from "../../../gateway/policy/index.js";
import type { ToolDefinition } from "../../../gateway/proxy/index.js";
import type { JsonRpcMessage } from "../../../gateway/proxy/jsonrpc.js";
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

export interface Observed {
  /** The request body as sent. */
  text: string;
  status: number;
  body: string;
  /** Audit events written for this request only. */
  events: readonly AuditEvent[];
  /** What the upstream received for this request (the gateway's own catalog lookups excluded). */
  received: readonly JsonRpcMessage[];
  /** Policy inputs for this request only. */
  inputs: readonly PolicyInput[];
}

const LIST_METHODS = new Set(Object.keys(LISTED));

/**
 * The guarantees of docs/security.md for one request: exactly one event whatever happened; the
 * upstream receives at most one message, and only one equal to a request the policy allowed
 * (lists: forwarded, then decided per item on the answer); allowed on record if and only if it
 * was forwarded. Returns 1 when a decision was put on record.
 */
export function checkOutcome(o: Observed): number {
  const { events } = o;
  assert.equal(events.length, 1, `status ${o.status}: ${events.length} events (${events.map((e) => e.outcome).join(",")})`);
  const event = events[0]!;
  if (o.status === 401) assert.equal(event.outcome, "unauthenticated");
  assert.ok(o.received.length <= 1, `the upstream received ${o.received.length} messages for one request`);
  if (o.received.length === 0) {
    assert.notEqual(event.outcome, "allowed", "allowed on record but never forwarded");
    return event.result === null ? 0 : 1;
  }
  const sent = o.received[0] as { id?: unknown; method?: string; params?: Record<string, unknown>; result?: unknown };
  assert.equal(event.outcome, "allowed", `forwarded, but on record as ${event.outcome}`);
  const msg = JSON.parse(o.text) as { id?: unknown; method?: string; params?: Record<string, unknown> };
  if (sent.method === undefined) assert.fail("a response was forwarded although no server request was pending");
  assert.equal(sent.method, msg.method, "forwarded another method than the one decided");
  assert.deepEqual(sent.id, msg.id);
  if (LIST_METHODS.has(sent.method)) {
    // A list the upstream answered names what the agent saw; an upstream error carries no list.
    if (event.error === undefined) assert.ok(Array.isArray(event.list?.visible), "a list event names what the agent saw");
    return 1;
  }
  const input = o.inputs.find((i) => i.request.method === sent.method);
  assert.ok(input, `${sent.method} forwarded without asking the policy`);
  assert.equal(hostilePolicy(input).decision.allow, true, "forwarded although the policy denied");
  if (sent.method === "tools/call") {
    assert.equal(sent.params?.name, input.request.tool, "the upstream runs another tool than the one decided");
    assert.deepEqual(sent.params?.arguments, input.request.arguments, "the upstream gets other arguments than the ones decided");
    assert.deepEqual(Object.keys(sent.params ?? {}).filter((k) => !["name", "arguments", "_meta", "task"].includes(k)), [], "members nobody decided on were forwarded");
  }
  return 1;
}
