import { z } from "zod";
import type { TruncationMarker } from "../audit/index.js";
import { toDecision } from "./decision.js";
import type { PolicyEngine, PolicyInput } from "./types.js";

/**
 * Replay: re-evaluates recorded decisions (audit events, contract 4) against a candidate engine
 * and reports what would change. The input is the event's `input` exactly as recorded, so masked
 * arguments are evaluated as their redacted value; the report counts those events so an author
 * can tell a real change from a masking artefact.
 *
 * A list request is one event whose `list` names the items the agent was shown and those policy
 * hid; each item was one decision, so each is replayed as one (see `listItemInput`).
 */

/**
 * A part of a recorded event that the writer replaced by its size marker (docs/audit.md "Size
 * limits"). Only the shape survives storage; the writer names every cut pointer in `truncated`.
 */
function isTruncationMarker(v: unknown): v is TruncationMarker {
  if (typeof v !== "object" || v === null || Array.isArray(v)) return false;
  const keys = Object.keys(v);
  return keys.length === 1 && keys[0] === "portcullis.truncated";
}

const NameListSchema = z.union([z.array(z.string()), z.custom<TruncationMarker>(isTruncationMarker)]);

/** The slice of an audit event replay needs; everything else is ignored. */
const ReplayEventSchema = z.object({
  decision_id: z.string(),
  input: z.unknown(),
  result: z.unknown().optional(),
  masked: z.array(z.string()).optional(),
  truncated: z.array(z.string()).optional(),
  bundles: z.record(z.string(), z.object({ revision: z.string() })).optional(),
  agent: z.object({ sub: z.string().nullable() }).partial().optional(),
  mcp: z.object({ server: z.string(), method: z.string(), tool: z.string().nullable().optional(), resource: z.string().nullable().optional(), prompt: z.string().nullable().optional() }).optional(),
  list: z.object({ visible: NameListSchema, hidden: NameListSchema }).optional(),
});
type ReplayEvent = z.infer<typeof ReplayEventSchema>;

const InputSchema = z.object({ agent: z.object({}).passthrough(), request: z.object({ method: z.string(), server: z.string() }).passthrough() }).passthrough();
type RecordedInput = z.infer<typeof InputSchema>;

/**
 * How the gateway decided each item of a list (gateway/proxy/methods.ts LIST_METHODS, whose
 * `itemMethod` this mirrors; test/unit/policy/replay.test.ts holds the two together): the
 * request field that names the item, and the method the policy saw (templates are decided as
 * resources).
 */
export const LIST_ITEM_FIELDS: Readonly<Record<string, { field: "tool" | "resource" | "prompt"; method: string }>> = {
  "tools/list": { field: "tool", method: "tools/list" },
  "resources/list": { field: "resource", method: "resources/list" },
  "resources/templates/list": { field: "resource", method: "resources/list" },
  "prompts/list": { field: "prompt", method: "prompts/list" },
};

export type Verdict = "allow" | "deny";

export interface ReplayChange {
  decision_id: string;
  agent: string;
  /** `server/tool` (or resource URI, prompt, or the method for requests without an item). */
  tool: string;
  from: Verdict;
  to: Verdict;
  /** The candidate's reasons (audited reasons, never shown to agents). */
  reasons: string[];
  /** For an item of a list event: the list method (`decision_id` is the list's). */
  listed_by?: string;
  /** A tools/list item: evaluated with `input.tool` null, so the change may be an artefact. */
  without_tool_definition?: true;
}

export interface Tally {
  unchanged: number;
  allow_to_deny: number;
  deny_to_allow: number;
}

export interface ReplayReport {
  candidate_revision: string;
  /** Recorded revisions the replayed decisions were made by, sorted. */
  recorded_revisions: string[];
  records: number;
  /** Events replayed (a list event counts once here, once per item in `decisions`). */
  replayed: number;
  /** Decisions replayed: one per decision event plus one per listed item; what the tallies count. */
  decisions: number;
  /**
   * Records not replayed: `not_a_decision` (input null: unauthenticated or invalid requests,
   * bundle refusals, stream opens), `truncated` (`input` or `result` was cut for size, so the
   * input or the recorded verdict is unknown).
   */
  skipped: { not_a_decision: number; duplicate: number; unparseable: number; truncated: number };
  /** Replayed events whose input had masked fields (evaluated as recorded). */
  with_masked_fields: number;
  /** Replayed events whose arguments were cut for size (evaluated with the size marker in their place). */
  with_truncated_arguments: number;
  list_items: {
    /** Items of list events replayed (part of `decisions` and the tallies). */
    replayed: number;
    /** Of those, tools/list items: the event has no tool definition, so `input.tool` was null. */
    without_tool_definition: number;
    /** List events whose `list.visible` or `list.hidden` was cut for size: those items were not replayed. */
    incomplete_lists: number;
  };
  totals: Tally;
  by_tool: Record<string, Tally>;
  by_agent: Record<string, Tally>;
  /** The first `maxChanges` changes, in record order. */
  changes: ReplayChange[];
}

export type FailOn = "allow-to-deny" | "any";

/** replayDecisions replays `records` (parsed JSON values, one per audit event) against `candidate`. */
export function replayDecisions(records: Iterable<unknown>, candidate: PolicyEngine, opts: { maxChanges?: number } = {}): ReplayReport {
  const maxChanges = opts.maxChanges ?? 50;
  const report: ReplayReport = {
    candidate_revision: candidate.revision,
    recorded_revisions: [],
    records: 0,
    replayed: 0,
    decisions: 0,
    skipped: { not_a_decision: 0, duplicate: 0, unparseable: 0, truncated: 0 },
    with_masked_fields: 0,
    with_truncated_arguments: 0,
    list_items: { replayed: 0, without_tool_definition: 0, incomplete_lists: 0 },
    totals: tally(),
    by_tool: {},
    by_agent: {},
    changes: [],
  };
  const seen = new Set<string>();
  const revisions = new Set<string>();

  /** Evaluates one decision with the candidate and counts it against the recorded verdict. */
  const replayOne = (input: RecordedInput, before: Verdict, where: { decision_id: string; agent: string; tool: string; listed_by?: string }): void => {
    const outcome = candidate.decide(input as unknown as PolicyInput);
    const after: Verdict = outcome.decision.allow ? "allow" : "deny";
    const key = before === after ? "unchanged" : before === "allow" ? "allow_to_deny" : "deny_to_allow";
    report.decisions++;
    report.totals[key]++;
    (report.by_tool[where.tool] ??= tally())[key]++;
    (report.by_agent[where.agent] ??= tally())[key]++;
    if (key !== "unchanged" && report.changes.length < maxChanges) {
      const withoutDefinition = where.listed_by === "tools/list" ? { without_tool_definition: true as const } : {};
      report.changes.push({ ...where, from: before, to: after, reasons: outcome.decision.reasons, ...withoutDefinition });
    }
  };

  for (const record of records) {
    report.records++;
    const parsed = ReplayEventSchema.safeParse(record);
    if (!parsed.success) {
      report.skipped.unparseable++;
      continue;
    }
    const event = parsed.data;
    // Kafka delivery is at-least-once: consumers deduplicate on decision_id (contract 4).
    if (seen.has(event.decision_id)) {
      report.skipped.duplicate++;
      continue;
    }
    seen.add(event.decision_id);
    // A part replaced by its size marker (docs/audit.md "Size limits") cannot be evaluated: a
    // marker for `result` would otherwise read as a recorded deny.
    if (isTruncationMarker(event.input) || isTruncationMarker(event.result)) {
      report.skipped.truncated++;
      continue;
    }
    const input = InputSchema.safeParse(event.input);
    if (!input.success || event.result === undefined) {
      report.skipped.not_a_decision++; // unauthenticated and invalid requests, bundle refusals
      continue;
    }
    const request = input.data.request as Record<string, unknown>;
    const server = event.mcp?.server ?? String(request.server);
    const agent = event.agent?.sub ?? strOr((input.data.agent as Record<string, unknown>).sub, "(none)");
    const listing = LIST_ITEM_FIELDS[input.data.request.method];
    if (event.list === undefined && listing !== undefined && (request[listing.field] ?? null) === null) {
      // A list event without its `list` (a pipeline dropped the field): its items are unknown,
      // and its null `result` must not be replayed as a deny. Per-item events (the shape before
      // one event per list) name their item and replay as single decisions.
      report.skipped.unparseable++;
      continue;
    }
    if (event.list !== undefined && listing === undefined) {
      report.skipped.unparseable++; // `list` on a method that lists nothing
      continue;
    }

    report.replayed++;
    if ((event.masked ?? []).length > 0) report.with_masked_fields++;
    if ((event.truncated ?? []).includes("/input/request/arguments")) report.with_truncated_arguments++;
    for (const b of Object.values(event.bundles ?? {})) revisions.add(b.revision);

    if (event.list !== undefined && listing !== undefined) {
      const listedBy = input.data.request.method;
      const complete = eachListedItem(event.list, (item, before) => {
        report.list_items.replayed++;
        if (listedBy === "tools/list") report.list_items.without_tool_definition++;
        replayOne(listItemInput(input.data, item), before, { decision_id: event.decision_id, agent, tool: `${server}/${item}`, listed_by: listedBy });
      });
      if (!complete) report.list_items.incomplete_lists++;
      continue;
    }
    const before: Verdict = toDecision(event.result).decision.allow ? "allow" : "deny";
    const tool = `${server}/${event.mcp?.tool ?? event.mcp?.resource ?? event.mcp?.prompt ?? strOr(request.tool, strOr(request.resource, strOr(request.prompt, String(request.method))))}`;
    replayOne(input.data, before, { decision_id: event.decision_id, agent, tool });
  }
  report.recorded_revisions = [...revisions].sort();
  return report;
}

/**
 * Calls `each` for every name of a list event (shown: a recorded allow; hidden: a recorded deny).
 * False when a part was cut for size, so some items could not be replayed.
 */
function eachListedItem(list: NonNullable<ReplayEvent["list"]>, each: (item: string, before: Verdict) => void): boolean {
  let complete = true;
  for (const [names, before] of [[list.visible, "allow"], [list.hidden, "deny"]] as const) {
    if (isTruncationMarker(names)) complete = false;
    else for (const name of names) each(name, before);
  }
  return complete;
}

/**
 * The input one listed item was decided with, rebuilt from the list's recorded input: the item
 * method and field set, everything else as recorded. `tool` is null: the event does not carry
 * the tool definition the gateway evaluated a tools/list item against (resources and prompts
 * were evaluated without one anyway).
 */
function listItemInput(listInput: RecordedInput, item: string): RecordedInput {
  const listing = LIST_ITEM_FIELDS[listInput.request.method];
  if (listing === undefined) throw new Error(`listItemInput: ${listInput.request.method} is not a list method`);
  return { ...listInput, request: { ...listInput.request, method: listing.method, [listing.field]: item }, tool: null };
}

/** Whether the report fails a CI gate (`--fail-on`). */
export function replayFails(report: ReplayReport, failOn: FailOn | undefined): boolean {
  if (failOn === undefined) return false;
  if (failOn === "allow-to-deny") return report.totals.allow_to_deny > 0;
  return report.totals.allow_to_deny + report.totals.deny_to_allow > 0;
}

function tally(): Tally {
  return { unchanged: 0, allow_to_deny: 0, deny_to_allow: 0 };
}

function strOr(v: unknown, fallback: string): string {
  return typeof v === "string" && v.length > 0 ? v : fallback;
}
