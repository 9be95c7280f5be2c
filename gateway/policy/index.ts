// The policy stage's public face: other stages import only from here.
export type {
  Decision,
  DecisionErrorCode,
  DecisionMethod,
  DecisionOutcome,
  PolicyAgent,
  PolicyEngine,
  PolicyInput,
  PolicyListItem,
  PolicyRequest,
  PolicyTool,
  RateLimitSpec,
  ResultDecision,
  ResultDecisionOutcome,
  ResultRedaction,
} from "./types.js";
export { BUNDLE_ERROR_CODES, BundleError, type BundleErrorCode } from "./errors.js";
export {
  DECISION_ENTRYPOINT,
  RESULT_ENTRYPOINT,
  loadBundle,
  parseBundle,
  resolveSigningAlgorithm,
  type BundleManifest,
  type LoadBundleOptions,
  type LoadedBundle,
} from "./bundle.js";
export { SIGNING_ALGORITHMS, isSigningAlgorithm, type SigningAlgorithm } from "./keys.js";
export {
  fileDigest,
  verifyBundleSignature,
  type VerificationConfig,
  type VerificationKey,
  type VerifiedSignature,
} from "./signature.js";
export { readTarGz, type TarLimits } from "./tar.js";
export { canonicalJson, canonicalJsonOfValue } from "./canonical-json.js";
export { MAX_APPROVAL_TTL_SECONDS, toDecision, type ConvertedDecision } from "./decision.js";
// Policy over results (issue 11, part 4): mcp/authz/result, its converter and the redaction of a result.
export { decideResultWith, noResultPolicy, toResultDecision, type ConvertedResultDecision } from "./result-decision.js";
export { applyRedactions, RESULT_REDACTED, type AppliedRedaction, type RedactionOutcome, type UnresolvedRedaction } from "./redact.js";
export { WasmPolicyEngine, type EvaluationPath, type WasmMemoryLimits, type WasmPolicyEngineOptions } from "./engine.js";
export { buildPolicyInput, listedToolDigest, toolDigest, type McpToolDefinition, type PolicyIdentity } from "./input.js";
// Lists decided in one pass (issue 13): the items, their inputs, and the call for any engine.
export { decideItemsWith, itemInput, listItem } from "./list.js";
export { createHostBuiltins, DecisionTime, HOST_BUILTIN_NAMES, type HostBuiltin } from "./builtins.js";
export { admittedBuiltins, SDK_BUILTINS, WASM_NATIVE_BUILTINS } from "./capabilities.js";
// Bundle lifecycle (issue 3): signing, hot reload, shadow evaluation, replay.
export { signBundleFiles, type SignOptions } from "./signer.js";
export { writeTarGz } from "./tar-write.js";
export { BundleReloader, type BundleReloaderOptions, type ReloaderStatus, type ReloadRefusal, type ReloadResult, type ReloadTrigger } from "./reloader.js";
export { compareRevisions, REVISION_HISTORY_LIMIT, RevisionHistory, rollbackReason, type RevisionKind } from "./revision.js";
export { ShadowingEngine } from "./shadow.js";
export type { ShadowOutcome } from "./types.js";
export { replayDecisions, replayFails, type FailOn, type ReplayChange, type ReplayReport, type Tally, type Verdict } from "./replay.js";
export { NO_DATA_PINS, toolPinsOf, type ToolPinsFromData } from "./tool-pins.js";
