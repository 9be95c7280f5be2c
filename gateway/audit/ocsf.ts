import type { AuditEvent } from "./types.js";

/**
 * The event rendered as OCSF 1.3 "API Activity" (class_uid 6003, category 6 Application
 * Activity), so a SIEM that speaks OCSF ingests it without a mapping of its own (docs/siem.md).
 * MCP fields map to `api`/`actor`/`resources`; the allow/deny is the Security Control profile's
 * `action`/`disposition`; what OCSF has no attribute for (outcome, chain, bundle, latency
 * breakdown, result digest) stays under `unmapped.portcullis`, keyed as in the native event.
 */
export const OCSF_VERSION = "1.3.0";
export const OCSF_API_ACTIVITY = 6003;

const READ_METHODS = new Set(["tools/list", "resources/list", "resources/templates/list", "prompts/list", "resources/read", "prompts/get"]);

export interface OcsfApiActivity {
  class_uid: 6003;
  class_name: "API Activity";
  category_uid: 6;
  category_name: "Application Activity";
  activity_id: number;
  activity_name: string;
  type_uid: number;
  type_name: string;
  time: number;
  severity_id: number;
  severity: string;
  status_id: number;
  status: string;
  status_code: string;
  status_detail?: string;
  message: string;
  duration: number;
  action_id: number;
  action: string;
  disposition_id: number;
  disposition: string;
  actor: { user: { uid: string | null; name: string | null; type_id: number }; app_name?: string; session?: { uid: string } };
  api: {
    operation: string;
    service: { name: string };
    request: { uid: string; data?: unknown };
    response?: { code?: number; error?: string; error_message?: string };
  };
  src_endpoint: { ip?: string };
  cloud: { provider: string };
  resources: Array<{ name: string; type: string }>;
  metadata: {
    version: string;
    uid: string;
    original_time: string;
    product: { name: string; vendor_name: string; version: string };
    labels: string[];
    log_name: string;
  };
  unmapped: { portcullis: Record<string, unknown> };
}

export function toOcsf(e: AuditEvent): OcsfApiActivity {
  const read = READ_METHODS.has(e.mcp.method);
  // Read (2) for listing and fetching; an MCP tool call has no CRUD verb: Other (99).
  const activityId = read ? 2 : 99;
  const activityName = read ? "Read" : "Other";
  const allowed = e.outcome === "allowed";
  const denied = e.outcome === "denied" || e.outcome === "rate_limited" || e.outcome === "unauthenticated" || e.outcome === "invalid";
  const severity = e.outcome === "allowed" ? [1, "Informational"] : e.outcome === "error" ? [2, "Low"] : e.outcome === "unauthenticated" ? [3, "Medium"] : [2, "Low"];
  const target = e.mcp.tool ?? e.mcp.resource ?? e.mcp.prompt ?? null;
  const input = e.input as { request?: { arguments?: unknown } } | null;
  return {
    class_uid: 6003,
    class_name: "API Activity",
    category_uid: 6,
    category_name: "Application Activity",
    activity_id: activityId,
    activity_name: activityName,
    type_uid: OCSF_API_ACTIVITY * 100 + activityId,
    type_name: `API Activity: ${activityName}`,
    time: Date.parse(e.timestamp),
    severity_id: severity[0] as number,
    severity: severity[1] as string,
    status_id: allowed ? 1 : 2,
    status: allowed ? "Success" : "Failure",
    status_code: e.outcome,
    ...(e.error ? { status_detail: `${e.error.code}: ${e.error.message}` } : {}),
    message: `${e.agent.sub ?? "anonymous"} ${e.mcp.method}${target ? ` ${target}` : ""} on ${e.mcp.server}: ${e.outcome}`,
    duration: Math.round(e.latency_ms.total),
    // Security Control profile: 1 Allowed / 2 Denied; disposition 1 Allowed / 2 Blocked.
    action_id: denied ? 2 : 1,
    action: denied ? "Denied" : "Allowed",
    disposition_id: denied ? 2 : 1,
    disposition: denied ? "Blocked" : "Allowed",
    actor: {
      // type_id 3: System (an agent acting through a client, not an interactive user).
      user: { uid: e.agent.sub, name: e.agent.sub, type_id: 3 },
      ...(e.agent.client_id ? { app_name: e.agent.client_id } : {}),
      ...(e.mcp.session_id ? { session: { uid: e.mcp.session_id } } : {}),
    },
    api: {
      operation: e.mcp.method,
      service: { name: e.mcp.server },
      request: {
        uid: e.mcp.request_id === null || e.mcp.request_id === undefined ? e.decision_id : String(e.mcp.request_id),
        ...(input?.request?.arguments !== undefined ? { data: input.request.arguments } : {}),
      },
      ...(e.error ? { response: { error: e.error.code, error_message: e.error.message } } : {}),
    },
    src_endpoint: e.requested_by ? { ip: e.requested_by } : {},
    cloud: { provider: "self-hosted" },
    resources: target === null ? [] : [{ name: target, type: e.mcp.tool ? "mcp.tool" : e.mcp.resource ? "mcp.resource" : "mcp.prompt" }],
    metadata: {
      version: OCSF_VERSION,
      uid: e.decision_id,
      original_time: e.timestamp,
      product: { name: "portcullis", vendor_name: "portcullis", version: e.labels.version },
      labels: [`instance:${e.labels.id}`],
      log_name: "mcp/authz/decision",
    },
    unmapped: {
      portcullis: {
        outcome: e.outcome,
        bundles: e.bundles,
        masked: e.masked,
        latency_ms: e.latency_ms,
        ...(e.tool_result ? { tool_result: { is_error: e.tool_result.is_error, bytes: e.tool_result.bytes, sha256: e.tool_result.sha256 } } : {}),
        ...(e.chain ? { chain: e.chain } : {}),
      },
    },
  };
}
