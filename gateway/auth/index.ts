// The identity stage's front door: other stages import from here only.
export { AuthError, type AgentIdentity, type AuthFailureCode, type TokenVerifier } from "./types.js";
export { JwtVerifier, SUPPORTED_ALGORITHMS, type JwtVerifierOptions } from "./jwt-verifier.js";
export type { JwksStatus } from "./jwks-cache.js";
export { extractBearer } from "./bearer.js";
export {
  authFailureResponse,
  protectedResourceMetadata,
  publicErrorDescription,
  resourceMetadataPath,
  resourceMetadataUrl,
  wwwAuthenticate,
  type AuthFailureResponse,
  type BearerErrorCode,
  type ChallengeOptions,
  type ProtectedResourceMetadata,
  type ProtectedResourceMetadataOptions,
} from "./challenge.js";
export {
  ensureDevKeys,
  jwkThumbprint,
  jwksDocument,
  mintToken,
  parseDuration,
  startDevIssuer,
  type DevIssuer,
  type DevIssuerOptions,
  type DevKeys,
  type JwksDocument,
  type MintTokenOptions,
} from "./dev-issuer.js";
