import { z } from "zod";
import { toDecision } from "./decision.js";
import type { PolicyEngine, PolicyInput } from "./types.js";

/**
 * Replay: re-evaluates recorded decisions (audit events, contract 4) against a candidate engine
 * and reports what would change. The input is the event's `input` exactly as recorded, so masked
 * arguments are evaluated as their redacted value; the report counts those events so an author
 * can tell a real change from a masking artefact.
 */

/** The slice of an audit event replay needs; everything else is ignored. */
const ReplayEventSchema = z.object({
  decision_id: z.string(),
  input: z.unknown(),
  result: z.unknown().optional(),
  masked: z.array(z.string()).optional(),
  bundles: z.record(z.string(), z.object({ revision: z.string() })).optional(),
  agent: z.object({ sub: z.string().nullable() }).partial().optional(),
  mcp: z.object({ server: z.string(), method: z.string(), tool: z.string().nullable().optional(), resource: z.string().nullable().optional(), prompt: z.string().nullable().optional() }).optional(),
});

const InputSchema = z.object({ agent: z.object({}).passthrough(), request: z.object({ method: z.string(), server: z.string() }).passthrough() }).passthrough();

export type Verdict = "allow" | "deny";

export interface ReplayChange {
  decision_id: string;
  agent: string;
  tool: string;
  from: Verdict;
  to: Verdict;
  /** The candidate's reasons (audited reasons, never shown to agents). */
  reasons: string[];
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
  replayed: number;
  skipped: { not_a_decision: number; duplicate: number; unparseable: number };
  /** Replayed events whose input had masked fields (evaluated as recorded). */
  with_masked_fields: number;
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
    skipped: { not_a_decision: 0, duplicate: 0, unparseable: 0 },
    with_masked_fields: 0,
    totals: tally(),
    by_tool: {},
    by_agent: {},
    changes: [],
  };
  const seen = new Set<string>();
  const revisions = new Set<string>();
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
    const input = InputSchema.safeParse(event.input);
    if (!input.success || event.result === undefined) {
      report.skipped.not_a_decision++; // unauthenticated requests, bundle refusals
      continue;
    }
    report.replayed++;
    if ((event.masked ?? []).length > 0) report.with_masked_fields++;
    for (const b of Object.values(event.bundles ?? {})) revisions.add(b.revision);

    const before: Verdict = toDecision(event.result).decision.allow ? "allow" : "deny";
    const outcome = candidate.decide(input.data as unknown as PolicyInput);
    const after: Verdict = outcome.decision.allow ? "allow" : "deny";
    const key = before === after ? "unchanged" : before === "allow" ? "allow_to_deny" : "deny_to_allow";
    const request = input.data.request as Record<string, unknown>;
    const tool = `${event.mcp?.server ?? String(request.server)}/${event.mcp?.tool ?? event.mcp?.resource ?? event.mcp?.prompt ?? strOr(request.tool, strOr(request.resource, strOr(request.prompt, String(request.method))))}`;
    const agent = event.agent?.sub ?? strOr((input.data.agent as Record<string, unknown>).sub, "(none)");
    report.totals[key]++;
    (report.by_tool[tool] ??= tally())[key]++;
    (report.by_agent[agent] ??= tally())[key]++;
    if (key !== "unchanged" && report.changes.length < maxChanges) {
      report.changes.push({ decision_id: event.decision_id, agent, tool, from: before, to: after, reasons: outcome.decision.reasons });
    }
  }
  report.recorded_revisions = [...revisions].sort();
  return report;
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
