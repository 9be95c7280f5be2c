import { rfc3339Nano } from "../shared/clock.js";
import type { AuditContext } from "./record.js";
import type { AuditEvent } from "./types.js";

/** `mcp.method` of the event a refused policy bundle leaves (docs/audit.md). */
export const BUNDLE_REFUSED_METHOD = "portcullis/bundle-reload";

export interface BundleRefusal {
  /** Where the candidate came from (file or URL). */
  source: string;
  /** The refusal's BundleError code (bundle_signature_invalid, …). */
  code: string;
  message: string;
  /** The revision that keeps serving. */
  activeRevision: string;
  /** "policy" for the live bundle, "shadow" for a shadow candidate. */
  role: "policy" | "shadow";
}

/**
 * The audit event of a refused bundle: a hot reload that did not happen is a security-relevant
 * fact (a tampered or mis-signed bundle reached the gateway), so it goes to the same stream as
 * decisions, in the same shape, with no input or result and outcome "error".
 */
export function bundleRefusedEvent(ctx: AuditContext, refusal: BundleRefusal): AuditEvent {
  return {
    decision_id: ctx.ids(),
    timestamp: rfc3339Nano(ctx.clock.now()),
    path: "mcp/authz/decision",
    labels: { id: ctx.instanceId, version: ctx.version },
    bundles: refusal.activeRevision === "" ? {} : { [ctx.bundleName ?? "mcp-authz"]: { revision: refusal.activeRevision } },
    input: null,
    result: null,
    erased: [],
    masked: [],
    outcome: "error",
    error: { code: refusal.code, message: `${refusal.role} bundle refused: ${refusal.message}` },
    agent: { sub: null, client_id: null },
    mcp: { server: "", method: BUNDLE_REFUSED_METHOD, tool: null, resource: refusal.source },
    requested_by: null,
    latency_ms: { decision: 0, upstream: null, total: 0 },
  };
}
