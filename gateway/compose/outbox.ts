import { Outbox, type AuditBacklog, type AuditLogger } from "../audit/index.js";
import { OUTBOX_DEFAULTS, type GatewayConfig } from "../config/index.js";

/**
 * The Kafka sink's backlog from `audit.outbox` (gateway/audit/outbox.ts): the durable outbox
 * unless it is turned off (`outbox: false`), in which case the sink keeps its in-memory queue.
 * A config that did not go through the loader (tests building one in code) gets the defaults
 * with the directory relative to the working directory.
 */
export async function kafkaBacklog(config: GatewayConfig, logger: AuditLogger): Promise<{ backlog?: AuditBacklog }> {
  const o = config.audit.outbox;
  if (o === false) {
    logger("warn", "audit: audit.outbox is false: Kafka events wait in memory and are lost if the gateway crashes");
    return {};
  }
  const c = { ...OUTBOX_DEFAULTS, ...(o ?? {}) };
  const backlog = await Outbox.open({
    dir: c.dir,
    segmentBytes: c.segmentBytes,
    maxBytes: c.maxBytes,
    maxAgeSeconds: c.maxAgeSeconds,
    onFull: config.audit.onFull ?? "reject",
    logger,
  });
  logger("info", "audit: durable outbox open", { dir: c.dir, onFull: config.audit.onFull ?? "reject", ...backlog.stats() });
  return { backlog };
}
