/** The gateway could not obtain its own credentials for an upstream (token endpoint down, refused, garbage). */
export class UpstreamAuthError extends Error {
  readonly code = "upstream_auth_failed";
  constructor(message: string) {
    super(message);
    this.name = "UpstreamAuthError";
  }
}
