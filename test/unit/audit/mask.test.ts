import assert from "node:assert/strict";
import { applyMasks, REDACTED } from "../../../gateway/audit/mask.js";

describe("audit masking", () => {
  const input = () => ({
    agent: { sub: "alice", claims: { "a/b": "x", email: "alice@example.com" } },
    request: { arguments: { password: "hunter2", list: [{ token: "t0" }, { token: "t1" }], keep: 1 } },
  });

  it("redacts a nested field and records its pointer", () => {
    const out = applyMasks({ input: input(), result: null }, ["/input/request/arguments/password"]);
    assert.equal((out.input as ReturnType<typeof input>).request.arguments.password, REDACTED);
    assert.deepEqual(out.masked, ["/input/request/arguments/password"]);
  });

  it("redacts array elements by index and fields inside them", () => {
    const out = applyMasks({ input: input(), result: null }, [
      "/input/request/arguments/list/1/token",
      "/input/request/arguments/list/0",
    ]);
    const args = (out.input as ReturnType<typeof input>).request.arguments;
    assert.deepEqual(args.list, [REDACTED, { token: REDACTED }]);
  });

  it("decodes RFC 6901 escapes: ~1 is a slash", () => {
    const out = applyMasks({ input: input(), result: null }, ["/input/agent/claims/a~1b"]);
    assert.equal((out.input as ReturnType<typeof input>).agent.claims["a/b"], REDACTED);
    assert.deepEqual(out.masked, ["/input/agent/claims/a~1b"]);
  });

  const ignored = [
    { note: "missing field", pointer: "/input/request/arguments/nope" },
    { note: "missing parent", pointer: "/input/nope/deeper" },
    { note: "index out of bounds", pointer: "/input/request/arguments/list/2" },
    { note: "non-canonical index", pointer: "/input/request/arguments/list/01" },
    { note: "path through a scalar", pointer: "/input/request/arguments/keep/x" },
    { note: "root other than /input or /result", pointer: "/nd_builtin_cache/x" },
    { note: "not a pointer", pointer: "input/request" },
  ];
  for (const c of ignored) {
    it(`ignores a pointer that does not apply (${c.note}) and copies nothing`, () => {
      const original = input();
      const out = applyMasks({ input: original, result: null }, [c.pointer]);
      assert.equal(out.input, original, "same reference: no copy was made");
      assert.deepEqual(out.masked, []);
    });
  }

  it("never mutates the caller's objects", () => {
    const original = input();
    const result = { allow: true, secret: "s" };
    const snapshot = structuredClone({ original, result });
    const out = applyMasks({ input: original, result }, ["/input/request/arguments/password", "/result/secret"]);
    assert.deepEqual({ original, result }, snapshot);
    assert.notEqual(out.input, original);
    assert.equal((out.result as { secret: string }).secret, REDACTED);
  });

  it("returns the caller's objects untouched when the mask list is empty", () => {
    const original = input();
    const result = { allow: true };
    const out = applyMasks({ input: original, result }, []);
    assert.equal(out.input, original);
    assert.equal(out.result, result);
    assert.deepEqual(out.masked, []);
  });

  it("copies only the root a mask touches", () => {
    const original = input();
    const result = { allow: true };
    const out = applyMasks({ input: original, result }, ["/input/request/arguments/password"]);
    assert.equal(out.result, result);
  });

  it("sorts and dedupes the masked pointers", () => {
    const out = applyMasks({ input: input(), result: { r: 1 } }, [
      "/result/r",
      "/input/request/arguments/password",
      "/result/r",
    ]);
    assert.deepEqual(out.masked, ["/input/request/arguments/password", "/result/r"]);
  });

  it("masks a whole root", () => {
    const out = applyMasks({ input: input(), result: { r: 1 } }, ["/input"]);
    assert.equal(out.input, REDACTED);
    assert.deepEqual(out.masked, ["/input"]);
  });

  it("keeps an own __proto__ key as data when copying", () => {
    const original = JSON.parse('{"request":{"arguments":{"__proto__":{"x":1},"password":"p"}}}') as object;
    const out = applyMasks({ input: original, result: null }, ["/input/request/arguments/password"]);
    assert.equal(
      JSON.stringify(out.input),
      '{"request":{"arguments":{"__proto__":{"x":1},"password":"**REDACTED**"}}}',
    );
  });
});
