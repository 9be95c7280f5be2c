// The composition root's front door: the only folder that knows every stage (DESIGN.md).
export { GATEWAY_VERSION, startGateway, type GatewayOverrides, type RunningGateway } from "./gateway.js";
export { startPolicy, type PolicyRuntime } from "./policy.js";
export { auditChainFromConfig } from "./audit.js";
