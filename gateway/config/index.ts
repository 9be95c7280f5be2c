export { loadAuditConfig, loadConfig, loadConfigSections, parseConfig, ConfigError } from "./load.js";
export {
  configSchema,
  isStdioUpstream,
  ALLOWED_JWT_ALGORITHMS,
  FEDERATED_NAME_MAX,
  FEDERATED_SHORT_ROOM,
  type FederationConfig,
  type GatewayConfig,
  type UpstreamConfig,
  type HttpUpstreamConfig,
  type StdioUpstreamConfig,
} from "./schema.js";
export { OUTBOX_DEFAULTS, type AuditOutboxConfig } from "./outbox-schema.js";
