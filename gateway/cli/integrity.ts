import {
  createIntegrityStores,
  IntegrityError,
  loadIntegrityCliConfig,
  type ApprovalRequest,
  type ApprovalState,
  type DriftRecord,
  type FieldChange,
  type IntegrityStores,
  type ToolPin,
} from "../integrity/index.js";
import { systemClock } from "../shared/clock.js";
import { redactUrl, SharedRedis } from "../shared/redis.js";
import { GroupUsageError, optional, required, runGroup, type GroupIo, type Subcommand, type Values } from "./group.js";

/**
 * `portcullis tools list|approve|revoke` and `portcullis approvals list|approve|deny`: the
 * operator's side of tool pinning and approvals (docs/tool-pinning.md, docs/approvals.md). They
 * read the `integrity` section and `rateLimits.redis` of the gateway's config and nothing else.
 * Exit codes: 0 done, 1 refused by the store (nothing to approve, not pending, self-approval,
 * store unreachable), 2 usage or config error.
 */

const configOption = { config: { type: "string", short: "c" } } as const;
const APPROVAL_STATES: readonly ApprovalState[] = ["pending", "approved", "denied", "used", "expired"];

const TOOLS: Record<string, Subcommand> = {
  list: {
    summary: "each pinned tool: digest, who pinned it and when, pinned or drifted (with the changed fields)",
    usage: "portcullis tools list --config FILE [--server NAME] [--json]",
    options: { ...configOption, server: { type: "string" }, json: { type: "boolean" } },
    run: (values, io) =>
      withStores(values, async (stores, where) => {
        const server = optional(values, "server");
        const pins = await stores.pins.list(server);
        const drifts = await stores.pins.drifts(server);
        const rows = toolRows(pins, drifts);
        if (values.json === true) io.out.write(`${JSON.stringify(rows)}\n`);
        else io.out.write(rows.length === 0 ? `no pinned tools${server ? ` of ${server}` : ""} in ${where}\n` : formatTools(rows));
        return 0;
      }),
  },
  approve: {
    summary: "pin the drifted definition the gateway saw (tools list shows it), so the tool is served again",
    usage:
      "portcullis tools approve --config FILE --server NAME --tool TOOL [--as OPERATOR (default $USER)] [--digest sha256:HEX]\n" +
      "  --digest: approve only if the drifted definition on record has this digest (or digest prefix), the one you reviewed",
    options: { ...configOption, server: { type: "string" }, tool: { type: "string" }, as: { type: "string" }, digest: { type: "string" } },
    run: (values, io) => {
      const server = required(values, "server");
      const tool = required(values, "tool");
      const operator = optional(values, "as") ?? process.env.USER ?? process.env.LOGNAME;
      if (operator === undefined || operator.trim().length === 0) throw new GroupUsageError("--as OPERATOR is required ($USER is not set)");
      const expected = optional(values, "digest");
      return withStores(values, async (stores) => {
        const drift = await stores.pins.getDrift(server, tool);
        if (!drift) {
          const pin = await stores.pins.get(server, tool);
          throw new IntegrityError(
            "no_drift_seen",
            pin
              ? `${server}/${tool} is pinned at ${pin.digest} and no drifted definition has been seen: nothing to approve`
              : `${server}/${tool} is not pinned and no drifted definition has been seen: nothing to approve (tools list shows pinned tools)`,
          );
        }
        if (expected !== undefined && !drift.digest.startsWith(expected)) {
          throw new IntegrityError("drift_changed", `${server}/${tool}: the drifted definition on record is ${drift.digest}, not ${expected}; review it with tools list`);
        }
        const pin = await stores.pins.approve(server, tool, drift.definition, operator);
        io.out.write(`${printable(`approved ${server}/${tool}: pinned ${pin.digest} (was ${drift.pinnedDigest}), ${pin.pinnedBy}`)}\n`);
        return 0;
      });
    },
  },
  revoke: {
    summary: "drop a tool's pin (and drift): the next definition the gateway sees is pinned afresh",
    usage: "portcullis tools revoke --config FILE --server NAME --tool TOOL",
    options: { ...configOption, server: { type: "string" }, tool: { type: "string" } },
    run: (values, io) => {
      const server = required(values, "server");
      const tool = required(values, "tool");
      return withStores(values, async (stores, where) => {
        const pin = await stores.pins.get(server, tool);
        if (!(await stores.pins.revoke(server, tool))) throw new IntegrityError("not_pinned", `${server}/${tool} has no pin in ${where}: nothing to revoke`);
        io.out.write(`${printable(`revoked ${server}/${tool}${pin ? ` (was ${pin.digest}, ${pin.pinnedBy})` : ""}: the next definition seen is pinned as first seen`)}\n`);
        return 0;
      });
    },
  },
};

const APPROVALS: Record<string, Subcommand> = {
  list: {
    summary: "approval requests, newest first: id, state, agent, tool, expiry, reason",
    usage: `portcullis approvals list --config FILE [--state ${APPROVAL_STATES.join("|")}[,…]] [--json]`,
    options: { ...configOption, state: { type: "string" }, json: { type: "boolean" } },
    run: (values, io) => {
      const states = stateFilter(optional(values, "state"));
      return withStores(values, async (stores, where) => {
        const list = await stores.approvals.list(states ? { state: states } : {});
        if (values.json === true) io.out.write(`${JSON.stringify(list)}\n`);
        else io.out.write(list.length === 0 ? `no approval requests${states ? ` ${states.join(" or ")}` : ""} in ${where}\n` : formatApprovals(list));
        return 0;
      });
    },
  },
  approve: {
    summary: "approve a pending request: the agent's identical call is then forwarded once, until the request expires",
    usage: "portcullis approvals approve ID --config FILE --as APPROVER   (an agent can never approve its own request)",
    argument: "ID",
    options: { ...configOption, as: { type: "string" } },
    run: (values, io, id) => {
      const approver = required(values, "as");
      return withStores(values, async (stores) => {
        const r = await stores.approvals.approve(id!, approver);
        io.out.write(`${printable(`approved ${r.id} by ${r.approver}: ${r.agent.sub}'s call of ${r.server}/${r.tool} (arguments ${r.argumentsDigest}) goes through once, until ${r.expiresAt}`)}\n`);
        return 0;
      });
    },
  },
  deny: {
    summary: "deny a pending request: the agent's call stays refused",
    usage: "portcullis approvals deny ID --config FILE --as APPROVER [--reason TEXT]",
    argument: "ID",
    options: { ...configOption, as: { type: "string" }, reason: { type: "string" } },
    run: (values, io, id) => {
      const approver = required(values, "as");
      const reason = optional(values, "reason");
      return withStores(values, async (stores) => {
        const r = await stores.approvals.deny(id!, approver, reason);
        io.out.write(`${printable(`denied ${r.id} by ${r.approver}: ${r.agent.sub}'s call of ${r.server}/${r.tool}${r.note ? ` (${r.note})` : ""}`)}\n`);
        return 0;
      });
    },
  },
};

export function runToolsCommand(argv: string[], io: GroupIo): Promise<number> {
  return runGroup("tools", TOOLS, argv, io);
}

export function runApprovalsCommand(argv: string[], io: GroupIo): Promise<number> {
  return runGroup("approvals", APPROVALS, argv, io);
}

/** Opens the configured stores (and their Redis, closed again after `run`). */
async function withStores(values: Values, run: (stores: IntegrityStores, where: string) => Promise<number>): Promise<number> {
  const cfg = loadIntegrityCliConfig(required(values, "config"));
  let redis: SharedRedis | undefined;
  if (cfg.redis) {
    // An operator waits a little longer than a request would, but not for ever.
    redis = await SharedRedis.start({ url: cfg.redis.url, timeoutMs: Math.max(cfg.redis.timeoutMs, 2000), log: () => undefined, clock: systemClock, user: "integrity", downMode: "refuse", connectWaitMs: 3000 });
    if (!redis.up) {
      await redis.close();
      throw new IntegrityError("store_unavailable", `cannot reach Redis at ${redactUrl(cfg.redis.url)} (rateLimits.redis.url in ${cfg.file}; integrity.store is redis)`);
    }
  }
  try {
    const stores = createIntegrityStores(cfg.integrity, { clock: systemClock, ...(redis && { redis }) });
    return await run(stores, stores.location);
  } finally {
    await redis?.close();
  }
}

function stateFilter(text: string | undefined): ApprovalState[] | undefined {
  if (text === undefined) return undefined;
  const states = text.split(/[,\s]+/).filter((s) => s.length > 0);
  for (const s of states) if (!(APPROVAL_STATES as readonly string[]).includes(s)) throw new GroupUsageError(`--state must be one of ${APPROVAL_STATES.join(", ")}, not "${s}"`);
  return states as ApprovalState[];
}

interface ToolRow {
  server: string;
  tool: string;
  state: "pinned" | "drifted";
  digest: string | null;
  pinnedBy: string | null;
  pinnedAt: string | null;
  drift: { digest: string; seenAt: string; changes: FieldChange[] } | null;
}

function toolRows(pins: ToolPin[], drifts: DriftRecord[]): ToolRow[] {
  const key = (s: string, t: string) => JSON.stringify([s, t]);
  const driftOf = new Map(drifts.map((d) => [key(d.server, d.tool), d]));
  const rows: ToolRow[] = pins.map((p) => {
    const d = driftOf.get(key(p.server, p.tool));
    driftOf.delete(key(p.server, p.tool));
    return { server: p.server, tool: p.tool, state: d ? "drifted" : "pinned", digest: p.digest, pinnedBy: p.pinnedBy, pinnedAt: p.pinnedAt, drift: d ? { digest: d.digest, seenAt: d.seenAt, changes: d.changes } : null };
  });
  // A drift whose pin was revoked meanwhile: shown, so nothing on record is hidden.
  for (const d of driftOf.values()) rows.push({ server: d.server, tool: d.tool, state: "drifted", digest: null, pinnedBy: null, pinnedAt: null, drift: { digest: d.digest, seenAt: d.seenAt, changes: d.changes } });
  return rows.sort((a, b) => (a.server === b.server ? cmp(a.tool, b.tool) : cmp(a.server, b.server)));
}

const cmp = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
const short = (digest: string | null): string => (digest === null ? "-" : digest.slice(0, "sha256:".length + 16));

function formatTools(rows: ToolRow[]): string {
  const lines = table(
    ["SERVER", "TOOL", "STATE", "DIGEST", "PINNED BY", "PINNED AT"],
    rows.map((r) => [r.server, r.tool, r.state, short(r.digest), r.pinnedBy ?? "-", r.pinnedAt ?? "-"]),
  );
  const out: string[] = [lines[0]!];
  rows.forEach((r, i) => {
    out.push(lines[i + 1]!);
    if (r.drift) out.push(printable(`  drifted since ${r.drift.seenAt} to ${r.drift.digest}: ${r.drift.changes.map(describeChange).join("; ") || "no field changed"}`));
  });
  return `${out.join("\n")}\n`;
}

function describeChange(c: FieldChange): string {
  const at = c.path ? ` at ${c.path}` : "";
  const values = c.change === "changed" ? ` (${c.before ?? "absent"} -> ${c.after ?? "absent"})` : "";
  return `${c.field} ${c.change}${at}${values}`;
}

function formatApprovals(list: ApprovalRequest[]): string {
  return `${table(
    ["ID", "STATE", "AGENT", "TOOL", "BY", "EXPIRES", "REASON"],
    list.map((r) => [r.id, r.state, r.agent.sub, `${r.server}/${r.tool}`, r.approver ?? "-", r.expiresAt, r.reason]),
  ).join("\n")}\n`;
}

/** Left-aligned columns; the last one is not padded. */
function table(head: string[], rows: string[][]): string[] {
  const all = [head, ...rows].map((r) => r.map(printable));
  const widths = head.map((_, i) => Math.max(...all.map((r) => r[i]!.length)));
  return all.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join("  ").trimEnd());
}

/** Names, reasons and schema text come from upstreams and agents: no control character reaches the terminal. */
function printable(text: string): string {
  return text.replace(/\p{Cc}/gu, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}
