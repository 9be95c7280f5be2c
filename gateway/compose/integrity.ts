import type { Clock } from "../shared/clock.js";
import type { Logger } from "../shared/log.js";
import { catalogProblems, pinOf, toolDefinitionOf, type FieldChange, type PinStore } from "../integrity/index.js";
import type { ToolDefinition, ToolPinning, ToolVerdict } from "../proxy/index.js";

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
export function toolPinning(pins: PinStore, clock: Pick<Clock, "now">, log: Logger): ToolPinning {
  const verdict = async (server: string, tool: ToolDefinition, pinned: ReadonlyMap<string, { digest: string }> | null): Promise<ToolVerdict> => {
    const seen = pinOf(server, tool, "first_seen", clock.now());
    const pin = pinned ? (pinned.get(tool.name) ?? null) : await pins.get(server, tool.name);
    const inForce = pin ?? (await pins.pinFirstSeen(seen));
    if (inForce.digest === seen.digest) {
      if (pin === null) log("info", "tool pinned on first sight", { server, tool: tool.name, digest: seen.digest });
      return { state: "pinned", digest: seen.digest };
    }
    const drift = await pins.noteDrift(server, tool.name, toolDefinitionOf(tool));
    return { state: "drifted", digest: seen.digest, pinnedDigest: inForce.digest, changes: describeChanges(drift?.changes ?? []) };
  };
  return {
    async listing(server, tools) {
      const refused = new Map<string, string>();
      for (const p of catalogProblems(tools)) {
        const why = p.kind === "duplicate_name" ? `the upstream lists two tools named "${p.names[0]}"` : `names that collide once normalised: ${p.names.join(", ")}`;
        for (const n of p.names) refused.set(n, why);
      }
      const pinned = new Map((await pins.list(server)).map((p) => [p.tool, p]));
      const verdicts = new Map<string, ToolVerdict>();
      for (const t of tools) {
        if (refused.has(t.name) || verdicts.has(t.name)) continue;
        verdicts.set(t.name, await verdict(server, t, pinned));
      }
      return { verdicts, refused };
    },
    tool: (server, tool) => verdict(server, tool, null),
  };
}
