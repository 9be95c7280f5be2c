/**
 * RFC 6901 JSON pointer pieces shared by the audit masks (audit/mask.ts) and the result
 * redactions (policy/redact.ts), so both read a pointer the same way.
 */

/**
 * RFC 6901 §4: `~1` to `/` first, then `~0` to `~` (the other order would turn `~01` into `/`).
 * A `~` followed by anything else is kept literally rather than dropping the pointer: a mask
 * that silently does nothing would leak the value it was meant to hide. Callers that must refuse
 * such pointers check `isJsonPointer` first.
 */
export function unescapePointerSegment(segment: string): string {
  return segment.includes("~") ? segment.replace(/~1/g, "/").replace(/~0/g, "~") : segment;
}

/** The inverse: `~` to `~0` first, then `/` to `~1`. */
export function escapePointerSegment(key: string): string {
  return key.replace(/~/g, "~0").replace(/\//g, "~1");
}

/** A non-empty RFC 6901 pointer: one or more `/segment`, every `~` escaping `0` or `1`. */
export function isJsonPointer(pointer: string): boolean {
  return /^(?:\/(?:[^~/]|~[01])*)+$/.test(pointer);
}

/** The unescaped segments of a pointer that starts with `/` (`/a/b~1c` → ["a", "b/c"]). */
export function pointerSegments(pointer: string): string[] {
  return pointer.slice(1).split("/").map(unescapePointerSegment);
}

/** An array index as OPA and RFC 6901 read it: canonical decimal, within bounds (no `-`). */
export function arrayIndex(arr: readonly unknown[], segment: string): number | null {
  if (!/^(0|[1-9][0-9]*)$/.test(segment)) return null;
  const i = Number(segment);
  return i < arr.length ? i : null;
}
