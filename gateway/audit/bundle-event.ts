import { rfc3339Nano } from "../shared/clock.js";
import { capString, NORMAL_CAPS } from "./bounds.js";
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
    bundles: refusal.activeRevision === "" ? {} : { [ctx.bundleName ?? "mcp-authz"]: { revision: capString(refusal.activeRevision, NORMAL_CAPS.name) } },
    input: null,
    result: null,
    erased: [],
    masked: [],
    outcome: "error",
    // Capped like a request's strings (docs/audit.md "Size limits"): a loader error can quote a lot.
    error: { code: capString(refusal.code, NORMAL_CAPS.name), message: capString(`${refusal.role} bundle refused: ${refusal.message}`, NORMAL_CAPS.message) },
    agent: { sub: null, client_id: null },
    mcp: { server: "", method: BUNDLE_REFUSED_METHOD, tool: null, resource: capString(refusal.source, NORMAL_CAPS.name) },
    requested_by: null,
    latency_ms: { decision: 0, upstream: null, total: 0 },
  };
}
