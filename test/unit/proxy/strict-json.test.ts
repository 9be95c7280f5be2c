import assert from "node:assert/strict";
import fc from "fast-check";
import { Refusal } from "../../../gateway/proxy/errors.js";
import { foldName, parseStrictJson } from "../../../gateway/proxy/strict-json.js";

const parse = (text: string, maxDepth = 64) => parseStrictJson(text, { maxDepth });
const refusedWith = (code: string) => (err: unknown) => err instanceof Refusal && err.code === code;

describe("strict JSON at the edge (issue 8, findings 1 and 3)", () => {
  it("returns what JSON.parse returns for unambiguous JSON", () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 6 }), (v) => {
        const text = JSON.stringify(v);
        let ambiguous = false;
        try {
          assert.deepEqual(parse(text, 100), JSON.parse(text));
        } catch (err) {
          // fc.jsonValue can produce keys that differ only in case: those must be the refusals.
          ambiguous = err instanceof Refusal && err.code === "ambiguous_json";
          if (!ambiguous) throw err;
        }
      }),
      { numRuns: 2000 },
    );
  });
  it("refuses duplicate names, escaped or not, at any depth", () => {
    assert.throws(() => parse('{"a":{"b":[{"c":1,"c":2}]}}'), refusedWith("ambiguous_json"));
    assert.throws(() => parse('{"path":1,"\\u0070ath":2}'), refusedWith("ambiguous_json"));
  });
  it("refuses names that collide after case folding, Unicode included", () => {
    for (const [a, b] of [["path", "PATH"], ["key", "\\u212aey"], ["s", "\\u017f"], ["ﬁle", "file"]]) {
      assert.throws(() => parse(`{"${a}":1,"${b}":2}`), refusedWith("ambiguous_json"), `${a} / ${b}`);
    }
  });
  it("keeps names apart that are only equal as values, not as members", () => {
    assert.deepEqual(parse('{"a":"A","A2":["a","A"]}'), { a: "A", A2: ["a", "A"] });
    assert.deepEqual(parse('[{"a":1},{"A":2}]'), [{ a: 1 }, { A: 2 }], "siblings in different objects do not collide");
  });
  it("refuses nesting deeper than the bound (1,001 levels: the canonical JSON of the hash chain gave up there)", () => {
    assert.throws(() => parse(`${"[".repeat(1001)}${"]".repeat(1001)}`), refusedWith("json_too_deep"));
    assert.throws(() => parse(`${'{"a":'.repeat(65)}1${"}".repeat(65)}`), refusedWith("json_too_deep"));
    parse(`${"[".repeat(64)}${"]".repeat(64)}`);
  });
  it("refuses numbers that are not finite and strings with unpaired surrogates", () => {
    assert.throws(() => parse('{"n":1e400}'), refusedWith("invalid_json_value"));
    assert.throws(() => parse('{"n":-1e400}'), refusedWith("invalid_json_value"));
    assert.throws(() => parse('{"s":"\\ud800"}'), refusedWith("invalid_json_value"));
    assert.throws(() => parse('{"\\udc00":1}'), refusedWith("invalid_json_value"));
    assert.deepEqual(parse('{"s":"\\ud83d\\ude00","n":1e300}'), { s: "😀", n: 1e300 });
  });
  it("handles quotes and backslashes inside strings", () => {
    assert.deepEqual(parse('{"a":"x\\"y\\\\","b":"\\\\"}'), { a: 'x"y\\', b: "\\" });
    assert.throws(() => parse('{"a\\\\":1,"A\\\\":2}'), refusedWith("ambiguous_json"));
  });
  it("is not JSON: parse_error", () => {
    assert.throws(() => parse("{"), refusedWith("parse_error"));
  });
  it("folds like Go's EqualFold at least", () => {
    assert.equal(foldName("\u212Aey"), foldName("KEY"));
    assert.equal(foldName("\u017Fecret"), foldName("SECRET"));
  });
});
