/**
 * Why a bundle was refused. Stable codes: callers branch on `code`, never on message text.
 * Every code is documented in ./README.md (a unit test checks this).
 */
export const BUNDLE_ERROR_CODES = [
  "bundle_unreadable", // the bundle file could not be read
  "bundle_too_large", // over the size or entry-count limits
  "bundle_malformed", // not a gzip'd tar, bad manifest, bad JSON, unsupported layout
  "bundle_unsigned", // no .signatures.json
  "bundle_signature_invalid", // the JWT is malformed or its signature does not verify
  "bundle_key_invalid", // the configured verification key or algorithm is unusable
  "bundle_scope_mismatch", // the signed scope differs from the configured one
  "bundle_file_unsigned", // a bundle file is not listed in the signature
  "bundle_file_missing", // a file listed in the signature is not in the bundle
  "bundle_digest_mismatch", // a file's content does not match its signed digest
  "bundle_entrypoint_missing", // the manifest or module lacks mcp/authz/decision (or the module a declared mcp/authz/result)
  "bundle_rollback", // hot reload only: a validly signed bundle whose revision goes back (policy.allowRollback)
] as const;

export type BundleErrorCode = (typeof BUNDLE_ERROR_CODES)[number];

export interface BundleErrorLocation {
  /** The file inside the bundle, as stored (e.g. `/policy.wasm`). */
  file?: string;
  /** The bundle on disk or its URL. */
  bundle?: string;
}

/** BundleError is the only error the bundle loader throws; the message reads `bundle: file: reason`. */
export class BundleError extends Error {
  readonly code: BundleErrorCode;
  readonly reason: string;
  readonly file: string | undefined;
  readonly bundle: string | undefined;

  constructor(code: BundleErrorCode, reason: string, where: BundleErrorLocation = {}) {
    super([where.bundle, where.file, reason].filter((part) => part !== undefined).join(": "));
    this.name = "BundleError";
    this.code = code;
    this.reason = reason;
    this.file = where.file;
    this.bundle = where.bundle;
  }

  /** A copy of this error that also names the bundle it came from. */
  inBundle(bundle: string): BundleError {
    return new BundleError(this.code, this.reason, { file: this.file, bundle });
  }
}
