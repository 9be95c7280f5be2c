// The tool-integrity stage's public face (DESIGN.md contract 7): other stages import only from here.
export type {
  ApprovalBinding,
  ApprovalEvent,
  ApprovalRequest,
  ApprovalState,
  ApprovalStore,
  ApprovalTransition,
  DefinitionField,
  DriftRecord,
  FieldChange,
  PinnedBy,
  PinStore,
  ToolDefinition,
  ToolPin,
} from "./types.js";
export { INTEGRITY_ERROR_CODES, IntegrityError, isIntegrityError, type IntegrityErrorCode } from "./errors.js";
export { CHANGE_VALUE_MAX_CHARS, diffDefinitions, pinOf, toolDefinitionOf } from "./definition.js";
export { catalogProblems, foldName, type CatalogProblem } from "./names.js";
export { approvalBinding, argumentsDigest, DECIDED_RETENTION_MS, MAX_APPROVAL_TTL_SECONDS } from "./binding.js";
export { INTEGRITY_DEFAULTS, INTEGRITY_REDIS_RULE, integrityConfigSchema, integritySectionSchema, resolveIntegrityPaths, type IntegrityConfig } from "./config.js";
export { loadIntegrityCliConfig, type IntegrityCliConfig } from "./cli-config.js";
export { createIntegrityStores, type IntegrityStoreDeps, type IntegrityStores } from "./stores.js";
export { IntegrityFile, type IntegrityFileOptions } from "./file-doc.js";
export { LocalPinStore } from "./local-pins.js";
export { LocalApprovalStore } from "./local-approvals.js";
export { RedisPinStore } from "./redis-pins.js";
export { RedisApprovalStore } from "./redis-approvals.js";
