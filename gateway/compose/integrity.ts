import type { Clock } from "../shared/clock.js";
import type { Logger } from "../shared/log.js";
import type { ApprovalStep } from "../audit/index.js";
import type { ConsoleIntegrity } from "../console/index.js";
import { approvalBinding, catalogProblems, isIntegrityError, pinOf, toolDefinitionOf, type ApprovalStore, type FieldChange, type PinStore, type ToolPin } from "../integrity/index.js";
import type { CallApprovals, CallBinding, ToolDefinition, ToolPinning, ToolVerdict } from "../proxy/index.js";
import { listedToolDigest, NO_DATA_PINS, type ToolPinsFromData } from "../policy/index.js";

/** How long a call reuses the verdict on the same definition object. */
const VERDICT_REUSE_MS = 1000;

/** One line per change, for the audit event: what drifted, not just two hashes. */
export function describeChanges(changes: readonly FieldChange[]): string {
  return changes.map((c) => `${c.field}${c.path ? ` ${c.path}` : ""} ${c.change}${c.before !== undefined || c.after !== undefined ? `: ${c.before ?? "∅"} → ${c.after ?? "∅"}` : ""}`).join("; ");
}

/**
 * The pinning stage's verdicts (DESIGN.md contract 7) over the pin store: a tool seen for the
 * first time is pinned; one whose definition differs from its pin is drifted until an operator
 * approves the new definition (`portcullis tools approve`). Names that collide (twice the same,
 * or equal once Unicode-normalised and case-folded) are refused outright.
 */
export function toolPinning(pins: PinStore, clock: Pick<Clock, "now">, log: Logger, dataPins: () => ToolPinsFromData = () => NO_DATA_PINS): ToolPinning {
  /** The verdict on a definition of digest `digest` given the pin in force; a differing one is noted as a drift. */
  const against = async (server: string, tool: ToolDefinition, digest: string, inForce: { digest: string }, firstSight: boolean): Promise<ToolVerdict> => {
    if (inForce.digest === digest) {
      if (firstSight) log("info", "tool pinned on first sight", { server, tool: tool.name, digest });
      return { state: "pinned", digest };
    }
    const drift = await pins.noteDrift(server, tool.name, toolDefinitionOf(tool));
    return { state: "drifted", digest, pinnedDigest: inForce.digest, changes: describeChanges(drift?.changes ?? []) };
  };
  /**
   * The verdict when it needs no new pin: a digest named in policy data (pinnedBy policy_data,
   * changed with a signed bundle only) or a stored pin. `undefined`: never seen, pin it.
   */
  const known = async (server: string, tool: ToolDefinition, digest: string, stored: { digest: string } | null): Promise<ToolVerdict | undefined> => {
    const named = dataPins().get(server)?.get(tool.name);
    if (named !== undefined) {
      if (named === digest) return { state: "pinned", digest };
      // The fields that changed can be told when the store holds the definition of that digest.
      const drift = stored?.digest === named ? await pins.noteDrift(server, tool.name, toolDefinitionOf(tool)) : null;
      const changes = drift ? describeChanges(drift.changes) : "the definition is not the one whose digest policy data pins (data.portcullis.tool_pins)";
      return { state: "drifted", digest, pinnedDigest: named, changes };
    }
    return stored === null ? undefined : against(server, tool, digest, stored, false);
  };
  const verdict = async (server: string, tool: ToolDefinition): Promise<ToolVerdict> => {
    const digest = listedToolDigest(tool);
    return (await known(server, tool, digest, await pins.get(server, tool.name))) ?? against(server, tool, digest, await pins.pinFirstSeen(pinOf(server, tool, "first_seen", clock.now())), true);
  };
  const recent = new WeakMap<ToolDefinition, { server: string; at: number; verdict: ToolVerdict }>();
  return {
    async listing(server, tools) {
      const refused = new Map<string, string>();
      for (const p of catalogProblems(tools)) {
        const why = p.kind === "duplicate_name" ? `the upstream lists two tools named "${p.names[0]}"` : `names that collide once normalised: ${p.names.join(", ")}`;
        for (const n of p.names) refused.set(n, why);
      }
      const pinned = new Map((await pins.list(server)).map((p) => [p.tool, p]));
      const verdicts = new Map<string, ToolVerdict>();
      const unseen: ToolPin[] = [];
      const unseenTools: ToolDefinition[] = [];
      const judged = new Set<string>();
      const now = clock.now();
      for (const t of tools) {
        if (refused.has(t.name) || judged.has(t.name)) continue;
        judged.add(t.name);
        const v = await known(server, t, listedToolDigest(t), pinned.get(t.name) ?? null);
        if (v !== undefined) verdicts.set(t.name, v);
        else {
          // Only a tool that needs a pin has its definition copied into one.
          unseen.push(pinOf(server, t, "first_seen", now));
          unseenTools.push(t);
        }
      }
      // Every tool seen for the first time is pinned in one store write.
      const inForce = await pins.pinAllFirstSeen(unseen);
      for (const [i, pin] of unseen.entries()) verdicts.set(pin.tool, await against(server, unseenTools[i]!, pin.digest, inForce[i]!, true));
      return { verdicts, refused };
    },
    tool: async (server, tool) => {
      // Every call names a tool: a verdict on this very definition object (the session's catalog
      // entry, replaced when the upstream lists something new) is reused for a second, about as
      // long as a local store takes to show an operator's change.
      const cached = recent.get(tool);
      const now = clock.now();
      if (cached && cached.server === server && now - cached.at < VERDICT_REUSE_MS) return cached.verdict;
      const v = await verdict(server, tool);
      recent.set(tool, { server, at: now, verdict: v });
      return v;
    },
  };
}

/** Approvals over the approval store, for the pipeline (a call held for a human, contract 7). */
export function callApprovals(store: ApprovalStore): CallApprovals {
  const binding = (c: CallBinding) => approvalBinding({ iss: c.iss, sub: c.sub }, c.server, c.tool, c.arguments);
  return {
    consume: async (call) => {
      const used = await store.consume(binding(call));
      return used ? { id: used.id } : null;
    },
    request: async (call, reason, ttlSeconds) => {
      const r = await store.request(binding(call), reason, ttlSeconds);
      return { id: r.id, expiresAt: r.expiresAt, state: r.state };
    },
  };
}

/**
 * Audits the steps of approvals that happen outside requests (an approver's decision, expiry), on
 * an unref'd timer: each step is claimed from the store by exactly one replica. The requesting
 * call's own events already carry approval_required and the use.
 */
export function auditApprovalSteps(store: ApprovalStore, write: (step: ApprovalStep) => Promise<void>, log: Logger, intervalMs = 2000): { stop(): Promise<void> } {
  let running: Promise<void> | null = null;
  const tick = async () => {
    await store.expireDue();
    for (const t of await store.claimTransitions(100)) {
      if (t.event !== "approved" && t.event !== "denied" && t.event !== "expired") continue;
      const r = t.request;
      await write({ event: t.event, approvalId: t.approvalId, agent: { sub: r.agent.sub }, server: r.server, tool: r.tool, reason: r.reason, ...(t.actor && { actor: t.actor }), ...(t.note && { note: t.note }) });
    }
  };
  const timer = setInterval(() => {
    if (running) return;
    running = tick()
      .catch((err: unknown) => log("error", "approvals: auditing approval steps failed", { error: String(err) }))
      .finally(() => (running = null));
  }, intervalMs);
  timer.unref();
  return {
    async stop() {
      clearInterval(timer);
      await running;
      await tick().catch(() => undefined);
    },
  };
}

/** The console's drift and approval panels over the stores; an approver is the operator's `sub`. */
export function consoleIntegrity(pins: PinStore, approvals: ApprovalStore): ConsoleIntegrity {
  return {
    drifted: async () => (await pins.drifts()).map((d) => ({ server: d.server, tool: d.tool, pinned_digest: d.pinnedDigest, current_digest: d.digest, detected_at: d.seenAt })),
    approvals: async () =>
      (await approvals.list({ state: ["pending"] })).map((r) => ({ id: r.id, agent: r.agent.sub, server: r.server, tool: r.tool, reason: r.reason, requested_at: r.createdAt, expires_at: r.expiresAt })),
    approve: async (id, approver) => {
      try {
        await approvals.approve(id, approver);
        return true;
      } catch (err) {
        if (isIntegrityError(err)) return false;
        throw err;
      }
    },
  };
}
