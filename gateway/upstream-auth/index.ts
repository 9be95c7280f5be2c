// The upstream credentials stage's front door: the gateway's own credentials for each upstream.
export { UpstreamAuthorizer, type ForwardContext } from "./authorizer.js";
export { ClientCredentialsSource, type ClientCredentialsOptions } from "./client-credentials.js";
export { IdentityAsserter, type AssertedAgent, type IdentityAssertionClaims, type IdentityAssertionOptions } from "./identity-assertion.js";
export { UpstreamAuthError } from "./errors.js";
export { upstreamAuthorizer } from "./from-config.js";
