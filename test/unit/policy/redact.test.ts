import assert from "node:assert/strict";
import { applyRedactions, RESULT_REDACTED, type ResultRedaction } from "../../../gateway/policy/index.js";

const KEY = "AKIAIOSFODNN7EXAMPLE";

/** A CallToolResult as an upstream returns it: parsed JSON, so never shared with the test's expectations. */
function toolResult(): Record<string, unknown> {
  return JSON.parse(
    JSON.stringify({
      content: [
        { type: "text", text: `Use ${KEY} for the bucket; again: ${KEY}.` },
        { type: "text", text: "nothing here" },
      ],
      structuredContent: { aws_key: KEY, port: 5432, nested: { list: ["a", { deep: "ghp_x" }] }, "a/b": { "c~d": "s" }, "": "empty key" },
      isError: false,
    }),
  ) as Record<string, unknown>;
}

describe("applyRedactions", () => {
  it("blanks only the secret inside a text, every occurrence, and reports bytes, never the text", () => {
    const original = toolResult();
    const before = JSON.stringify(original);
    const out = applyRedactions(original, [{ pointer: "/content/0/text", match: KEY, kind: "aws_access_key_id" }]);
    assert.equal((out.result.content as Array<{ text: string }>)[0]!.text, `Use ${RESULT_REDACTED} for the bucket; again: ${RESULT_REDACTED}.`);
    assert.deepEqual(out.redacted, [{ pointer: "/content/0/text", kind: "aws_access_key_id", bytes: 40, scope: "match", occurrences: 2 }]);
    assert.deepEqual(out.unresolved, []);
    assert.equal(JSON.stringify(original), before, "the caller's result is not mutated");
    assert.ok(!JSON.stringify(out.redacted).includes(KEY));
  });

  it("shares what it does not change and copies only the containers on the redacted path", () => {
    const original = toolResult();
    const out = applyRedactions(original, ["/structuredContent/nested/list/1/deep"]);
    const sc = out.result.structuredContent as Record<string, unknown>;
    const origSc = original.structuredContent as Record<string, unknown>;
    assert.notEqual(out.result, original);
    assert.notEqual(sc, origSc);
    assert.equal(out.result.content, original.content, "an untouched branch is the same object");
    assert.deepEqual(sc.nested, { list: ["a", { deep: RESULT_REDACTED }] });
    assert.deepEqual(origSc.nested, { list: ["a", { deep: "ghp_x" }] });
  });

  it("returns the caller's object itself when nothing resolves", () => {
    const original = toolResult();
    const out = applyRedactions(original, ["/nope", { pointer: "/content/9/text", kind: "jwt" }]);
    assert.equal(out.result, original);
    assert.deepEqual(out.redacted, []);
    assert.deepEqual(out.unresolved, [{ pointer: "/content/9/text", kind: "jwt" }, { pointer: "/nope" }]);
  });

  const pointers: Array<{ note: string; pointer: string; resolves: boolean; path?: (r: Record<string, unknown>) => unknown }> = [
    { note: "a string field", pointer: "/structuredContent/aws_key", resolves: true, path: (r) => (r.structuredContent as Record<string, unknown>).aws_key },
    { note: "~1 is a slash and ~0 a tilde", pointer: "/structuredContent/a~1b/c~0d", resolves: true, path: (r) => ((r.structuredContent as Record<string, Record<string, unknown>>)["a/b"]!)["c~d"] },
    { note: "the empty key", pointer: "/structuredContent/", resolves: true, path: (r) => (r.structuredContent as Record<string, unknown>)[""] },
    { note: "an array element", pointer: "/structuredContent/nested/list/0", resolves: true, path: (r) => ((r.structuredContent as { nested: { list: unknown[] } }).nested.list)[0] },
    { note: "an index out of range", pointer: "/content/2/text", resolves: false },
    { note: "a non-canonical index", pointer: "/content/01/text", resolves: false },
    { note: "the append index", pointer: "/content/-", resolves: false },
    { note: "a negative index", pointer: "/content/-1", resolves: false },
    { note: "a key under a string", pointer: "/content/0/text/length", resolves: false },
    { note: "a missing key", pointer: "/structuredContent/missing", resolves: false },
    { note: "an inherited key", pointer: "/structuredContent/toString", resolves: false },
    { note: "__proto__ of an ordinary object", pointer: "/__proto__/polluted", resolves: false },
    { note: "constructor.prototype", pointer: "/constructor/prototype/polluted", resolves: false },
    { note: "no leading slash", pointer: "content/0/text", resolves: false },
    { note: "a bad escape", pointer: "/structuredContent/a~2b", resolves: false },
    { note: "the whole result", pointer: "", resolves: false },
  ];
  for (const c of pointers) {
    it(`${c.resolves ? "redacts" : "reports as unresolved"} ${c.note} (${JSON.stringify(c.pointer)})`, () => {
      const original = toolResult();
      const out = applyRedactions(original, [c.pointer]);
      if (c.resolves) {
        assert.equal(c.path!(out.result), RESULT_REDACTED);
        assert.notEqual(c.path!(original), RESULT_REDACTED);
        assert.equal(out.redacted.length, 1);
        assert.deepEqual(out.unresolved, []);
      } else {
        assert.equal(out.result, original);
        assert.deepEqual(out.unresolved, [{ pointer: c.pointer }]);
      }
      assert.equal(({} as Record<string, unknown>).polluted, undefined, "Object.prototype is untouched");
    });
  }

  it("redacts an own __proto__ key (JSON.parse makes one) without touching any prototype", () => {
    const original = JSON.parse('{"content":[],"__proto__":{"x":"secret","y":"keep"}}') as Record<string, unknown>;
    const out = applyRedactions(original, ["/__proto__/x"]);
    const own = Object.getOwnPropertyDescriptor(out.result, "__proto__")?.value as Record<string, unknown>;
    assert.deepEqual(own, { x: RESULT_REDACTED, y: "keep" });
    assert.equal(Object.getPrototypeOf(out.result), Object.prototype);
    assert.equal(({} as Record<string, unknown>).x, undefined);
    assert.deepEqual(Object.getOwnPropertyDescriptor(original, "__proto__")?.value, { x: "secret", y: "keep" });
    const whole = applyRedactions(original, ["/__proto__"]);
    assert.equal(Object.getOwnPropertyDescriptor(whole.result, "__proto__")?.value, RESULT_REDACTED);
    assert.equal(Object.getPrototypeOf(whole.result), Object.prototype);
  });

  it("replaces a non-string value with the replacement string and counts its JSON bytes", () => {
    const out = applyRedactions(toolResult(), ["/structuredContent/port", { pointer: "/structuredContent/nested", match: "a", kind: "k" }]);
    const sc = out.result.structuredContent as Record<string, unknown>;
    assert.equal(sc.port, RESULT_REDACTED);
    assert.equal(sc.nested, RESULT_REDACTED, "a match inside a non-string replaces the value");
    assert.deepEqual(out.redacted, [
      { pointer: "/structuredContent/nested", kind: "k", bytes: JSON.stringify({ list: ["a", { deep: "ghp_x" }] }).length, scope: "value", occurrences: 1 },
      { pointer: "/structuredContent/port", bytes: 4, scope: "value", occurrences: 1 },
    ]);
  });

  it("replaces the whole string when a match does not occur in it (the policy saw a secret there)", () => {
    const out = applyRedactions(toolResult(), [{ pointer: "/content/1/text", match: "not in the text", kind: "jwt" }]);
    assert.equal((out.result.content as Array<{ text: string }>)[1]!.text, RESULT_REDACTED);
    assert.deepEqual(out.redacted, [{ pointer: "/content/1/text", kind: "jwt", bytes: 12, scope: "value", occurrences: 1 }]);
  });

  it("a whole-value entry at a pointer wins over matches at the same pointer", () => {
    const out = applyRedactions(toolResult(), [{ pointer: "/content/0/text", match: KEY }, { pointer: "/content/0/text", kind: "secret_field" }]);
    assert.equal((out.result.content as Array<{ text: string }>)[0]!.text, RESULT_REDACTED);
    assert.ok(out.redacted.every((r) => r.scope === "value"));
  });

  it("merges overlapping and touching matches found in the original text", () => {
    const result = { content: [{ type: "text", text: "api_key: sk_live_abcdef0123456789 end; abcXYZ" }] };
    const redactions: ResultRedaction[] = [
      { pointer: "/content/0/text", match: "sk_live_abcdef0123456789", kind: "stripe_secret_key" },
      { pointer: "/content/0/text", match: "live_abcdef0123456789 end", kind: "secret_assignment" },
      { pointer: "/content/0/text", match: "abc", kind: "a" },
      { pointer: "/content/0/text", match: "XYZ", kind: "b" },
    ];
    const out = applyRedactions(result, redactions, "#");
    assert.equal(out.result.content instanceof Array && (out.result.content[0] as { text: string }).text, "api_key: #; #");
    assert.deepEqual(
      out.redacted.map((r) => [r.kind, r.occurrences]),
      [["a", 2], ["b", 1], ["secret_assignment", 1], ["stripe_secret_key", 1]],
    );
  });

  it("counts UTF-8 bytes and keeps surrounding multi-byte text intact", () => {
    const out = applyRedactions({ content: [{ type: "text", text: "clé: pässwörd123 — fin" }] }, [{ pointer: "/content/0/text", match: "pässwörd123" }]);
    assert.equal((out.result.content as Array<{ text: string }>)[0]!.text, `clé: ${RESULT_REDACTED} — fin`);
    assert.equal(out.redacted[0]!.bytes, 13);
  });

  it("handles a child and its ancestor in one call, and duplicates once", () => {
    const out = applyRedactions(toolResult(), ["/structuredContent/nested/list/1/deep", "/structuredContent/nested", "/structuredContent/nested"]);
    assert.equal((out.result.structuredContent as Record<string, unknown>).nested, RESULT_REDACTED);
    assert.deepEqual(out.redacted.map((r) => r.pointer), ["/structuredContent/nested", "/structuredContent/nested/list/1/deep"]);
  });

  it("copies an array it writes into and shares the elements it does not touch", () => {
    const original = toolResult();
    const out = applyRedactions(original, ["/content/1/text"]);
    assert.notEqual(out.result.content, original.content);
    assert.equal((out.result.content as unknown[])[0], (original.content as unknown[])[0], "siblings are shared");
    assert.equal((original.content as Array<{ text: string }>)[1]!.text, "nothing here");
  });
});
