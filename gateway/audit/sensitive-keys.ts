import { escapePointerSegment } from "../shared/json-pointer.js";

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
  // SSH and other private key material, by file or field name: `~/.ssh/id_rsa`, `id_ed25519`,
  // `ssh_key`, `privkey.pem`.
  "idrsa",
  "iddsa",
  "idecdsa",
  "ided25519",
  "sshkey",
  "privkey",
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

interface Visit {
  value: unknown;
  /** This value's key (or index) and its parent's visit: the pointer is built only on a match. */
  segment: string;
  parent: Visit | null;
}

function pointerOf(v: Visit, base: string): string {
  const segments: string[] = [];
  for (let at: Visit | null = v; at !== null; at = at.parent) segments.push(escapePointerSegment(at.segment));
  return `${base}/${segments.reverse().join("/")}`;
}

/**
 * RFC 6901 pointers (mask.ts syntax: `~0` for `~`, `~1` for `/`) to every value under
 * `arguments` whose key matches, in document order. A matching key's whole value is masked, so
 * nothing below it is visited. The walk is iterative, so no depth stops it; `AuditRecord` calls
 * it on arguments already cut at the nesting cap (bounds.ts MAX_NESTING).
 */
export function sensitiveArgumentPointers(args: unknown, matches: KeyMatcher | null, base = "/input/request/arguments"): string[] {
  if (matches === null || typeof args !== "object" || args === null) return [];
  const out: string[] = [];
  const stack: Visit[] = [];
  const pushChildren = (node: unknown, parent: Visit | null): void => {
    if (typeof node !== "object" || node === null) return;
    // Pushed in reverse so that they are visited in order.
    if (Array.isArray(node)) {
      for (let i = node.length - 1; i >= 0; i--) stack.push({ value: node[i], segment: String(i), parent });
      return;
    }
    const keys = Object.keys(node);
    for (let i = keys.length - 1; i >= 0; i--) {
      const k = keys[i] as string;
      stack.push({ value: (node as Record<string, unknown>)[k], segment: k, parent });
    }
  };
  pushChildren(args, null);
  while (stack.length > 0) {
    const v = stack.pop() as Visit;
    // Array indices are never keys: only an object member's name is matched.
    const isKey = v.parent === null ? !Array.isArray(args) : !Array.isArray(v.parent.value);
    if (isKey && matches(v.segment)) out.push(pointerOf(v, base));
    else pushChildren(v.value, v);
  }
  return out;
}
