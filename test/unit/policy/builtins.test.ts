import assert from "node:assert/strict";
import { createHostBuiltins, DecisionTime, HOST_BUILTIN_NAMES } from "../../../gateway/policy/index.js";

const text = (v: unknown): unknown => (v instanceof ArrayBuffer ? new TextDecoder().decode(v) : v);

describe("host builtins (unit; parity with opa is in test/integration/host-builtins.test.ts)", () => {
  const time = new DecisionTime(() => 1_000);
  const builtins = createHostBuiltins(time);

  it("provides every name in HOST_BUILTIN_NAMES", () => {
    assert.deepEqual(Object.keys(builtins).sort(), [...HOST_BUILTIN_NAMES]);
  });

  const cases: Array<{ note: string; fn: string; args: unknown[]; want: unknown }> = [
    { note: "ns as exact JSON text", fn: "time.parse_rfc3339_ns", args: ["2026-11-24T10:00:00.123456789Z"], want: "1795514400123456789" },
    { note: "bad argument is undefined, not a throw", fn: "time.parse_rfc3339_ns", args: [null], want: undefined },
    { note: "unknown zone is undefined", fn: "time.clock", args: [[0, "Nowhere/Nope"]], want: undefined },
    { note: "invalid regex is undefined", fn: "regex.replace", args: ["a", "(", "b"], want: undefined },
    { note: "bytes beyond 2^53 stay exact", fn: "units.parse_bytes", args: ["7EiB"], want: "8070450532247928832" },
    { note: "negative duration", fn: "time.parse_duration_ns", args: ["-1.5h"], want: "-5400000000000" },
    { note: "add_date across a leap day", fn: "time.add_date", args: [1709164800000000000, 1, 0, 0], want: "1740787200000000000" },
  ];
  for (const c of cases) {
    it(`${c.fn}: ${c.note}`, () => {
      const fn = builtins[c.fn];
      assert.ok(fn);
      assert.deepEqual(text(fn(...c.args)), c.want);
    });
  }

  it("time.now_ns is the request's time, parsed once per decision", () => {
    time.begin({ request: { time: "1970-01-01T00:00:02Z" } });
    assert.equal(text(builtins["time.now_ns"]?.()), "2000000000");
    time.begin({ request: { time: 7 } });
    assert.equal(text(builtins["time.now_ns"]?.()), "1000000000", "fallback: the injected wall clock");
  });
});
