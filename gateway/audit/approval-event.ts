import { rfc3339Nano } from "../shared/clock.js";
import { capString, NORMAL_CAPS } from "./bounds.js";
import type { AuditContext } from "./record.js";
import type { AuditEvent, AuditOutcome } from "./types.js";

/** `mcp.method` of the events an approval's own steps leave (docs/approvals.md). */
export const APPROVAL_METHOD = "portcullis/approval";

/** One step of an approval outside any request: an approver decided, or it expired. */
export interface ApprovalStep {
  event: "approved" | "denied" | "expired";
  approvalId: string;
  /** The agent whose call waits. */
  agent: { sub: string };
  server: string;
  tool: string;
  /** Who approved or denied (absent for expiry). */
  actor?: string;
  note?: string;
  reason: string;
}

/**
 * The audit event of an approval step: approved and denied name the approver, expired nobody.
 * The requesting call's own events carry `approval_required` and the use (`approval.state: used`).
 */
export function approvalStepEvent(ctx: AuditContext, step: ApprovalStep, activeRevision: string): AuditEvent {
  const outcome: AuditOutcome = step.event === "approved" ? "allowed" : "denied";
  const who = step.actor ? ` by ${step.actor}` : "";
  return {
    decision_id: ctx.ids(),
    timestamp: rfc3339Nano(ctx.clock.now()),
    path: "mcp/authz/decision",
    labels: { id: ctx.instanceId, version: ctx.version },
    bundles: activeRevision === "" ? {} : { [ctx.bundleName ?? "mcp-authz"]: { revision: capString(activeRevision, NORMAL_CAPS.name) } },
    input: null,
    result: null,
    erased: [],
    masked: [],
    outcome,
    error: {
      code: `approval_${step.event}`,
      message: capString(`approval ${step.approvalId} ${step.event}${who}: ${step.reason}${step.note ? ` (${step.note})` : ""}`, NORMAL_CAPS.message),
    },
    agent: { sub: capString(step.agent.sub, NORMAL_CAPS.name), client_id: null },
    mcp: { server: capString(step.server, NORMAL_CAPS.name), method: APPROVAL_METHOD, tool: capString(step.tool, NORMAL_CAPS.name) },
    approval: { id: capString(step.approvalId, 128), state: step.event },
    requested_by: step.actor ? capString(step.actor, NORMAL_CAPS.name) : null,
    latency_ms: { decision: 0, upstream: null, total: 0 },
  };
}
