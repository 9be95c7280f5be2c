import assert from "node:assert/strict";
import {
  decideResultWith,
  ShadowingEngine,
  toResultDecision,
  type DecisionOutcome,
  type PolicyEngine,
  type PolicyInput,
  type ResultDecisionOutcome,
} from "../../../gateway/policy/index.js";

const SECRET = "AKIAIOSFODNN7EXAMPLE";

describe("toResultDecision", () => {
  const valid: Array<{ note: string; raw: unknown; want: unknown }> = [
    { note: "minimal allow", raw: { allow: true }, want: { allow: true, reasons: [], redact: [] } },
    {
      note: "pointer strings and objects, with and without match and kind",
      raw: {
        allow: true,
        reasons: ["aws_access_key_id at /content/0/text"],
        redact: ["/structuredContent/aws_key", { pointer: "/content/0/text", match: SECRET, kind: "aws_access_key_id" }, { pointer: "/content/1/text" }],
      },
      want: {
        allow: true,
        reasons: ["aws_access_key_id at /content/0/text"],
        redact: [{ pointer: "/structuredContent/aws_key" }, { pointer: "/content/0/text", match: SECRET, kind: "aws_access_key_id" }, { pointer: "/content/1/text" }],
      },
    },
    { note: "escaped segments and an empty key", raw: { allow: true, redact: ["/a~1b/c~0d", "/"] }, want: { allow: true, reasons: [], redact: [{ pointer: "/a~1b/c~0d" }, { pointer: "/" }] } },
    { note: "a block with its message", raw: { allow: false, message: "withheld", reasons: ["private_key at /content/0/text"] }, want: { allow: false, reasons: ["private_key at /content/0/text"], message: "withheld", redact: [] } },
  ];
  for (const c of valid) {
    it(`accepts ${c.note}`, () => {
      const out = toResultDecision(c.raw);
      assert.equal(out.error, undefined);
      assert.deepEqual(out.decision, c.want);
    });
  }

  it("blocks an undefined result decision as policy_undefined (the entrypoint exists but gave no answer)", () => {
    const out = toResultDecision(undefined);
    assert.deepEqual([out.decision.allow, out.decision.redact, out.error?.code], [false, [], "policy_undefined"]);
    assert.match(out.error?.message ?? "", /mcp\/authz\/result is undefined/);
  });

  const malformed: Array<{ note: string; raw: unknown; pattern: RegExp }> = [
    { note: "null", raw: null, pattern: /must be an object, got null/ },
    { note: "an array", raw: [{ allow: true }], pattern: /got an array/ },
    { note: "allow missing", raw: { redact: [] }, pattern: /allow must be a boolean, got undefined/ },
    { note: 'allow "true"', raw: { allow: "true" }, pattern: /allow must be a boolean, got a string of 4 characters/ },
    { note: "a misspelt redact", raw: { allow: true, redacts: ["/content/0/text"] }, pattern: /unknown field "redacts"/ },
    { note: "a decision-only field", raw: { allow: true, mask: ["/result/x"] }, pattern: /unknown field "mask"/ },
    { note: "reasons not strings", raw: { allow: true, reasons: [1] }, pattern: /reasons must be an array of strings/ },
    { note: "message not a string", raw: { allow: false, message: ["x"] }, pattern: /message must be a string/ },
    { note: "redact not an array", raw: { allow: true, redact: "/content/0/text" }, pattern: /redact must be an array, got a string/ },
    { note: "a pointer without the leading slash", raw: { allow: true, redact: ["content/0/text"] }, pattern: /redact\[0\] \(a string of 14 characters, not starting with "\/"\) is not a JSON pointer/ },
    { note: "the whole result", raw: { allow: true, redact: [""] }, pattern: /redact\[0\] \(an empty string, not starting with "\/"\) is not a JSON pointer/ },
    { note: "a bad ~ escape", raw: { allow: true, redact: ["/a/~2"] }, pattern: /redact\[0\] "\/a\/~2" is not a JSON pointer/ },
    { note: "a trailing ~", raw: { allow: true, redact: ["/ok", "/a~"] }, pattern: /redact\[1\]/ },
    { note: "an entry that is a number", raw: { allow: true, redact: [0] }, pattern: /redact\[0\] must be a JSON pointer or an object/ },
    { note: "an object without pointer", raw: { allow: true, redact: [{ match: "x" }] }, pattern: /redact\[0\]\.pointer must be a string, got undefined/ },
    { note: "an object with a bad pointer", raw: { allow: true, redact: [{ pointer: "x" }] }, pattern: /redact\[0\]\.pointer \(a string of 1 character, not starting with "\/"\) is not a JSON pointer/ },
    { note: "an unknown redaction field", raw: { allow: true, redact: [{ pointer: "/a", replace_with: "*" }] }, pattern: /redact\[0\] has unknown field "replace_with"/ },
    { note: "an empty match", raw: { allow: true, redact: [{ pointer: "/a", match: "" }] }, pattern: /\.match must be a non-empty string, got an empty string/ },
    { note: "a match that is not a string", raw: { allow: true, redact: [{ pointer: "/a", match: 42 }] }, pattern: /\.match must be a non-empty string, got a number/ },
    { note: "a kind with spaces", raw: { allow: true, redact: [{ pointer: "/a", kind: "aws key" }] }, pattern: /\.kind must be a short name/ },
    { note: "a kind too long", raw: { allow: true, redact: [{ pointer: "/a", kind: "k".repeat(65) }] }, pattern: /\.kind must be a short name/ },
  ];
  for (const c of malformed) {
    it(`blocks a malformed result decision as policy_malformed: ${c.note}`, () => {
      const out = toResultDecision(c.raw);
      assert.equal(out.decision.allow, false);
      assert.deepEqual(out.decision.redact, []);
      assert.equal(out.error?.code, "policy_malformed");
      assert.match(out.error?.message ?? "", c.pattern);
      assert.equal(out.decision.message, undefined, "no unchecked text reaches the agent");
    });
  }

  it("names the shape of a bad value, never its text (it may be the secret the policy found)", () => {
    const cases: unknown[] = [
      { allow: SECRET },
      { allow: true, redact: [{ pointer: "/a", match: [SECRET] }] },
      { allow: true, redact: [{ pointer: "/a", kind: SECRET + " " }] },
      { allow: true, redact: [SECRET] },
      SECRET,
    ];
    for (const raw of cases) {
      const out = toResultDecision(raw);
      assert.equal(out.error?.code, "policy_malformed");
      assert.ok(!JSON.stringify(out).includes(SECRET), JSON.stringify(out));
    }
  });
});

describe("decideResultWith (any PolicyEngine, fail closed)", () => {
  const input = { agent: {}, request: {}, tool: null } as unknown as PolicyInput;
  const decided: ResultDecisionOutcome = { decision: { allow: true, reasons: ["r"], redact: [{ pointer: "/a" }] }, revision: "r1", elapsedMs: 0.1 };
  const base = { revision: "r1", decide: (): DecisionOutcome => assert.fail("not called") };
  // Partial engines: what a wrapper written without the result members (plain JS) would be.
  const partial = (e: Record<string, unknown>) => e as unknown as PolicyEngine;
  const cases: Array<{ note: string; engine: PolicyEngine; allow: boolean; code?: string }> = [
    { note: "an engine without a result policy lets the result through", engine: partial({ ...base }), allow: true },
    { note: "hasResultPolicy false", engine: { ...base, hasResultPolicy: false, decideResult: () => assert.fail("not called") }, allow: true },
    { note: "a result policy the engine cannot evaluate blocks", engine: partial({ ...base, hasResultPolicy: true }), allow: false, code: "policy_eval_error" },
    { note: "an engine that throws blocks", engine: { ...base, hasResultPolicy: true, decideResult: () => { throw new Error("boom"); } }, allow: false, code: "policy_eval_error" },
    { note: "an engine's answer is returned as is", engine: { ...base, hasResultPolicy: true, decideResult: () => decided }, allow: true },
  ];
  for (const c of cases) {
    it(c.note, () => {
      const out = decideResultWith(c.engine, input, { content: [] });
      assert.equal(out.decision.allow, c.allow);
      assert.equal(out.error?.code, c.code);
      assert.equal(out.revision, "r1");
    });
  }

  it("ShadowingEngine decides results with the live engine only", () => {
    const live: PolicyEngine = { ...base, hasResultPolicy: true, decideResult: () => decided };
    const candidate: PolicyEngine = { ...base, revision: "cand", hasResultPolicy: true, decideResult: () => assert.fail("the candidate is not asked") };
    const shadowing = new ShadowingEngine(() => live, () => candidate);
    assert.equal(shadowing.hasResultPolicy, true);
    assert.deepEqual(shadowing.decideResult(input, {}), decided);
    assert.equal(new ShadowingEngine(() => partial({ ...base }), () => undefined).hasResultPolicy, false);
  });
});
