import type { AuditOutcome } from "../audit/index.js";
import { entryTime } from "./entry.js";
import type { FeedStats } from "./feed.js";
import { OUTCOMES, type ConsoleEntry } from "./types.js";

/** How many rows each list of the summary carries at most (the page shows the top ones). */
export const SUMMARY_ROWS = 200;
export const RECENT_DENIALS = 100;

export type OutcomeCounts = Record<AuditOutcome, number>;

/** Who called what: one row per agent × server × method × tool (or resource/prompt). */
export interface CallRow {
  agent: string | null;
  server: string;
  method: string;
  tool: string | null;
  total: number;
  outcomes: OutcomeCounts;
}

export interface Denial {
  decision_id: string;
  timestamp: string;
  outcome: AuditOutcome;
  agent: string | null;
  server: string;
  method: string;
  tool: string | null;
  reasons: string[];
  error: { code: string; message: string } | null;
}

export interface Summary {
  window: {
    from: string;
    to: string;
    seconds: number;
    events: number;
    /**
     * False when the feed dropped entries of this window for lack of room: the counts are then
     * lower bounds (raise the feed's maxEvents).
     */
    complete: boolean;
  };
  outcomes: OutcomeCounts;
  calls: CallRow[];
  /** Every refusal (any outcome but allowed), newest first, with its reasons or error. */
  denials: Denial[];
  /** How often each reason (or error code, for refusals without reasons) was given. */
  denial_reasons: Array<{ reason: string; count: number }>;
  per_agent: Array<{ agent: string | null; total: number; refused: number }>;
  per_tool: Array<{ server: string; tool: string; total: number; refused: number }>;
}

/** The summary of the entries whose timestamp falls in [now - windowMs, now]. */
export function summarize(entries: readonly ConsoleEntry[], now: number, windowMs: number, feed: FeedStats): Summary {
  const from = now - windowMs;
  const inWindow = entries.filter((e) => {
    const t = entryTime(e);
    return t >= from && t <= now;
  });

  const outcomes = zeroCounts();
  const calls = new Map<string, CallRow>();
  const agents = new Map<string, { agent: string | null; total: number; refused: number }>();
  const tools = new Map<string, { server: string; tool: string; total: number; refused: number }>();
  const reasons = new Map<string, number>();
  const denials: Denial[] = [];

  for (const e of inWindow) {
    outcomes[e.outcome]++;
    const refused = e.outcome === "allowed" ? 0 : 1;
    const name = e.tool ?? e.target;

    const callKey = JSON.stringify([e.agent, e.server, e.method, name]);
    let call = calls.get(callKey);
    if (!call) calls.set(callKey, (call = { agent: e.agent, server: e.server, method: e.method, tool: name, total: 0, outcomes: zeroCounts() }));
    call.total++;
    call.outcomes[e.outcome]++;

    const agentKey = JSON.stringify(e.agent);
    let agent = agents.get(agentKey);
    if (!agent) agents.set(agentKey, (agent = { agent: e.agent, total: 0, refused: 0 }));
    agent.total++;
    agent.refused += refused;

    if (e.tool !== null) {
      const toolKey = JSON.stringify([e.server, e.tool]);
      let tool = tools.get(toolKey);
      if (!tool) tools.set(toolKey, (tool = { server: e.server, tool: e.tool, total: 0, refused: 0 }));
      tool.total++;
      tool.refused += refused;
    }

    if (refused) {
      denials.push({
        decision_id: e.decision_id,
        timestamp: e.timestamp,
        outcome: e.outcome,
        agent: e.agent,
        server: e.server,
        method: e.method,
        tool: name,
        reasons: e.reasons,
        error: e.error,
      });
      const given = e.reasons.length > 0 ? e.reasons : [e.error?.code ?? e.outcome];
      for (const r of given) reasons.set(r, (reasons.get(r) ?? 0) + 1);
    }
  }

  const byTotal = <T extends { total: number }>(a: T, b: T) => b.total - a.total;
  const oldestKept = entries.length > 0 ? entryTime(entries[0] as ConsoleEntry) : now;
  return {
    window: {
      from: new Date(from).toISOString(),
      to: new Date(now).toISOString(),
      seconds: Math.round(windowMs / 1000),
      events: inWindow.length,
      complete: feed.lastEvictedAt === null || feed.lastEvictedAt < from || oldestKept < from,
    },
    outcomes,
    calls: [...calls.values()].sort(byTotal).slice(0, SUMMARY_ROWS),
    denials: denials.reverse().slice(0, RECENT_DENIALS),
    denial_reasons: [...reasons]
      .map(([reason, count]) => ({ reason, count }))
      .sort((a, b) => b.count - a.count || a.reason.localeCompare(b.reason))
      .slice(0, SUMMARY_ROWS),
    per_agent: [...agents.values()].sort(byTotal).slice(0, SUMMARY_ROWS),
    per_tool: [...tools.values()].sort(byTotal).slice(0, SUMMARY_ROWS),
  };
}

function zeroCounts(): OutcomeCounts {
  return Object.fromEntries(OUTCOMES.map((o) => [o, 0])) as OutcomeCounts;
}
