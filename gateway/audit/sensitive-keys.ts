/**
 * Always-masked argument keys (docs/audit.md "Masking"): a policy author cannot foresee every tool
 * that takes a credential, so keys that look like one are masked wherever they occur in
 * `input.request.arguments`, at any depth, on top of the decision's own `mask`.
 */

/**
 * Matched against the key lowercased with `-`, `_`, `.` and spaces removed, as a substring:
 * `db_password`, `githubToken`, `X-Api-Key`, `client_secret` all match. Over-masking (a
 * `max_tokens` argument) costs an investigator a value; under-masking leaks a credential into the
 * SIEM, so the list errs wide.
 */
export const DEFAULT_SENSITIVE_KEYS: readonly string[] = [
  "password",
  "passwd",
  "passphrase",
  "secret",
  "token",
  "apikey",
  "privatekey",
  "authorization",
  "credential",
  "cookie",
];

export type KeyMatcher = (key: string) => boolean;

const normalize = (key: string): string => key.toLowerCase().replace(/[-_.\s]/g, "");

/** A matcher for the default keys (unless disabled) plus configured ones (matched the same way). */
export function sensitiveKeyMatcher(opts: { keys?: readonly string[]; defaultKeys?: boolean } = {}): KeyMatcher | null {
  const needles = [...(opts.defaultKeys === false ? [] : DEFAULT_SENSITIVE_KEYS), ...(opts.keys ?? []).map(normalize)].filter(
    (n) => n.length > 0,
  );
  if (needles.length === 0) return null;
  return (key) => {
    const k = normalize(key);
    return needles.some((n) => k.includes(n));
  };
}

const MAX_DEPTH = 32;

/**
 * JSON pointers (mask syntax: segments escaped with `%25`/`%2F`) to every value under `arguments`
 * whose key matches. A matching key's whole value is masked, so nothing below it is visited.
 */
export function sensitiveArgumentPointers(args: unknown, matches: KeyMatcher | null, base = "/input/request/arguments"): string[] {
  if (matches === null || typeof args !== "object" || args === null) return [];
  const out: string[] = [];
  const walk = (node: unknown, path: string, depth: number): void => {
    if (depth > MAX_DEPTH || typeof node !== "object" || node === null) return;
    if (Array.isArray(node)) {
      node.forEach((v, i) => walk(v, `${path}/${i}`, depth + 1));
      return;
    }
    for (const [k, v] of Object.entries(node)) {
      const p = `${path}/${escapeSegment(k)}`;
      if (matches(k)) out.push(p);
      else walk(v, p, depth + 1);
    }
  };
  walk(args, base, 0);
  return out;
}

/** The inverse of mask.ts's decodeURIComponent for the two characters that matter. */
function escapeSegment(key: string): string {
  return key.replace(/%/g, "%25").replace(/\//g, "%2F");
}
