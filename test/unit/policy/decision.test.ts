import assert from "node:assert/strict";
import { toDecision } from "../../../gateway/policy/index.js";

const rateLimit = { key: "alice:demo:echo", limit: 60, window_seconds: 60 };

describe("toDecision", () => {
  const allowed: Array<{ note: string; raw: unknown; want: unknown }> = [
    { note: "minimal allow", raw: { allow: true }, want: { allow: true, reasons: [] } },
    {
      note: "every optional field",
      raw: { allow: true, reasons: ["role analyst grants tool echo"], message: "ok", rate_limit: rateLimit, mask: ["/input/request/arguments/password", "/result/x"] },
      want: { allow: true, reasons: ["role analyst grants tool echo"], message: "ok", rate_limit: rateLimit, mask: ["/input/request/arguments/password", "/result/x"] },
    },
    { note: "fractional window", raw: { allow: true, rate_limit: { ...rateLimit, window_seconds: 0.5 } }, want: { allow: true, reasons: [], rate_limit: { ...rateLimit, window_seconds: 0.5 } } },
  ];
  for (const c of allowed) {
    it(`allows a valid decision: ${c.note}`, () => {
      const out = toDecision(c.raw);
      assert.equal(out.error, undefined);
      assert.deepEqual(out.decision, c.want);
    });
  }

  it("keeps a well-formed deny's reasons and message", () => {
    const out = toDecision({ allow: false, reasons: ["path outside /data"], message: "read_file is limited to /data" });
    assert.equal(out.error, undefined);
    assert.deepEqual(out.decision, { allow: false, reasons: ["path outside /data"], message: "read_file is limited to /data" });
  });

  it("denies an undefined decision as policy_undefined", () => {
    const out = toDecision(undefined);
    assert.equal(out.decision.allow, false);
    assert.equal(out.error?.code, "policy_undefined");
    assert.match(out.decision.reasons[0] ?? "", /^policy_undefined: /);
  });

  const malformed: Array<{ note: string; raw: unknown; pattern: RegExp }> = [
    { note: "null", raw: null, pattern: /must be an object, got null/ },
    { note: "bare true", raw: true, pattern: /must be an object, got boolean true/ },
    { note: "array", raw: [{ allow: true }], pattern: /got an array/ },
    { note: "string", raw: "allow", pattern: /got the string "allow"/ },
    { note: 'allow: "true"', raw: { allow: "true" }, pattern: /allow must be a boolean, got the string "true"/ },
    { note: "allow: 1", raw: { allow: 1 }, pattern: /allow must be a boolean/ },
    { note: "allow missing", raw: { reasons: [] }, pattern: /allow must be a boolean, got undefined/ },
    { note: "unknown field", raw: { allow: true, rate_limits: rateLimit }, pattern: /unknown field "rate_limits"/ },
    { note: "reasons not an array", raw: { allow: true, reasons: "x" }, pattern: /reasons must be an array of strings/ },
    { note: "reasons with a number", raw: { allow: true, reasons: ["a", 1] }, pattern: /reasons/ },
    { note: "message not a string", raw: { allow: true, message: { text: "x" } }, pattern: /message must be a string/ },
    { note: "rate_limit not an object", raw: { allow: true, rate_limit: 60 }, pattern: /rate_limit must be an object/ },
    { note: "rate_limit without key", raw: { allow: true, rate_limit: { limit: 1, window_seconds: 1 } }, pattern: /key must be a non-empty string/ },
    { note: "rate_limit empty key", raw: { allow: true, rate_limit: { ...rateLimit, key: "" } }, pattern: /key must be a non-empty string/ },
    { note: "rate_limit zero limit", raw: { allow: true, rate_limit: { ...rateLimit, limit: 0 } }, pattern: /limit must be a positive integer/ },
    { note: "rate_limit fractional limit", raw: { allow: true, rate_limit: { ...rateLimit, limit: 1.5 } }, pattern: /limit must be a positive integer/ },
    { note: "rate_limit string limit", raw: { allow: true, rate_limit: { ...rateLimit, limit: "60" } }, pattern: /limit must be a positive integer/ },
    { note: "rate_limit negative window", raw: { allow: true, rate_limit: { ...rateLimit, window_seconds: -1 } }, pattern: /window_seconds must be a positive number/ },
    { note: "rate_limit extra field", raw: { allow: true, rate_limit: { ...rateLimit, burst: 5 } }, pattern: /unknown field "burst"/ },
    { note: "mask not an array", raw: { allow: true, mask: "/input/x" }, pattern: /mask must be an array of strings/ },
    { note: "mask outside input/result", raw: { allow: true, mask: ["/agent/sub"] }, pattern: /mask entry "\/agent\/sub" must be a JSON pointer/ },
    { note: "mask without leading slash", raw: { allow: true, mask: ["input/request"] }, pattern: /JSON pointer/ },
    { note: "mask of the whole input", raw: { allow: true, mask: ["/input"] }, pattern: /JSON pointer/ },
    { note: "require_approval not an object", raw: { allow: true, require_approval: "yes" }, pattern: /require_approval must be an object/ },
    { note: "require_approval with an unknown key", raw: { allow: true, require_approval: { reason: "r", ttl_seconds: 60, approver: "bob" } }, pattern: /require_approval must be an object/ },
    { note: "require_approval without a reason", raw: { allow: true, require_approval: { reason: "", ttl_seconds: 60 } }, pattern: /reason/ },
    { note: "require_approval ttl over a week", raw: { allow: true, require_approval: { reason: "r", ttl_seconds: 8 * 86_400 } }, pattern: /ttl_seconds/ },
    { note: "require_approval ttl not an integer", raw: { allow: true, require_approval: { reason: "r", ttl_seconds: 1.5 } }, pattern: /ttl_seconds/ },
  ];
  for (const c of malformed) {
    it(`denies a malformed decision as policy_malformed: ${c.note}`, () => {
      const out = toDecision(c.raw);
      assert.equal(out.decision.allow, false);
      assert.equal(out.decision.message, undefined, "no policy text reaches the agent from a malformed decision");
      assert.equal(out.error?.code, "policy_malformed");
      assert.match(out.error?.message ?? "", c.pattern);
    });
  }

  it("keeps a well-formed require_approval", () => {
    const out = toDecision({ allow: true, require_approval: { reason: "deletes data", ttl_seconds: 600 } });
    assert.deepEqual(out.decision, { allow: true, reasons: [], require_approval: { reason: "deletes data", ttl_seconds: 600 } });
    assert.equal(out.error, undefined);
  });

  it("denies a malformed deny too, dropping its message", () => {
    const out = toDecision({ allow: false, message: "ok", mask: [3] });
    assert.deepEqual(out.decision.allow, false);
    assert.equal(out.decision.message, undefined);
    assert.equal(out.error?.code, "policy_malformed");
  });
});
