import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { canonicalJson, canonicalJsonOfValue } from "../../../gateway/policy/index.js";

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ""), "hex");
const digest = (alg: string, text: string): string => createHash(alg).update(text, "utf8").digest("hex");

describe("canonicalJson (OPA structured-document hashing)", () => {
  it("matches OPA's MD5 test vector for a .manifest", () => {
    const canonical = canonicalJson(Buffer.from('{"revision": "quickbrownfaux"}\n'));
    assert.equal(canonical, '{"revision":"quickbrownfaux"}');
    assert.equal(digest("md5", canonical), "a005c38a509dc2d5a7407b9494efb2ad");
  });

  it("matches the SHA-256 that `opa sign` (Go) computed for a tricky data.json", () => {
    // BOM; number lexemes; escaped U+2028, \b, \f, \u001f, DEL; a lone and a paired surrogate
    // escape; a raw invalid byte (0xE9) and a truncated sequence (E2 82); keys é, U+E000, emoji.
    const bytes = hex(`efbbbf7b2262223a205b312e35302c203165332c202d302c2031323334353637383930313233343536373839
      303132335d2c2022615c7532303238223a2022785c75303030385c665c75303031663c3e265c7530303766205c75643830
      30205c75643833645c756465303020e9222c2022ee8080223a20312c2022f09f9880223a20322c2022c3a9223a20332c20
      227a223a207b2279223a206e756c6c2c202278223a20747275657d2c2022626164e28261223a2066616c73657d`);
    const canonical = canonicalJson(bytes);
    assert.equal(
      canonical,
      '{"a\\u2028":"x\\b\\f\\u001f<>&\u007f \uFFFD 😀 \uFFFD","b":[1.50,1e3,-0,12345678901234567890123],' +
        '"bad\uFFFD\uFFFDa":false,"z":{"x":true,"y":null},"é":3,"\uE000":1,"😀":2}',
    );
    assert.equal(digest("sha256", canonical), "c6a44742a98edca4a82936d84793fc554d53519333b6f4e13d289fd9b6b7d84d");
  });

  const cases: Array<{ note: string; input: string; want: string }> = [
    { note: "whitespace removed", input: ' { "a" : [ 1 , 2 ] }\r\n\t', want: '{"a":[1,2]}' },
    { note: "keys sorted recursively", input: '{"b":{"d":1,"c":2},"a":[{"z":0,"y":0}]}', want: '{"a":[{"y":0,"z":0}],"b":{"c":2,"d":1}}' },
    { note: "duplicate keys: last wins", input: '{"a":1,"a":2}', want: '{"a":2}' },
    { note: "number lexemes kept", input: "[1.0,-0.0,1E+2,1e-7,0]", want: "[1.0,-0.0,1E+2,1e-7,0]" },
    { note: "escaped slash decoded", input: '"a\\/b"', want: '"a/b"' },
    { note: "html characters literal", input: '"<a href=\\"x\\">&</a>"', want: '"<a href=\\"x\\">&</a>"' },
    { note: "uppercase \\u escape normalised", input: '"\\u001F\\u00E9"', want: '"\\u001fé"' },
    { note: "lone low surrogate escape", input: '"\\udc00x"', want: '"\uFFFDx"' },
    { note: "high surrogate before a non-surrogate escape", input: '"\\ud800\\u0041"', want: '"\uFFFDA"' },
    { note: "U+2029 escaped", input: '"\u2029"', want: '"\\u2029"' },
    { note: "top-level scalars", input: " null ", want: "null" },
    { note: "empty containers", input: '{"a":{},"b":[]}', want: '{"a":{},"b":[]}' },
  ];
  for (const c of cases) {
    it(`re-encodes like Go: ${c.note}`, () => {
      assert.equal(canonicalJson(Buffer.from(c.input, "utf8")), c.want);
    });
  }

  const invalid: Array<{ note: string; input: string }> = [
    { note: "empty", input: "" },
    { note: "trailing value", input: "{} {}" },
    { note: "trailing comma", input: "[1,]" },
    { note: "leading zero", input: "01" },
    { note: "bare fraction", input: "1." },
    { note: "raw control character", input: '"a\u0001"' },
    { note: "single quotes", input: "{'a':1}" },
    { note: "bad escape", input: '"\\x"' },
    { note: "short \\u", input: '"\\u12"' },
    { note: "unterminated", input: '{"a":' },
    { note: "NaN", input: "NaN" },
    { note: "YAML", input: "a: 1" },
  ];
  for (const c of invalid) {
    it(`rejects what Go's decoder rejects: ${c.note}`, () => {
      assert.throws(() => canonicalJson(Buffer.from(c.input, "utf8")), { name: "JsonSyntaxError" });
    });
  }

  it("rejects absurd nesting instead of overflowing the stack", () => {
    assert.throws(() => canonicalJson(Buffer.from("[".repeat(5000) + "]".repeat(5000))), { name: "JsonSyntaxError" });
  });
});

describe("canonicalJsonOfValue", () => {
  it("sorts keys by UTF-8 bytes, not UTF-16 code units", () => {
    // UTF-16 puts the emoji (surrogates) before U+E000; UTF-8 puts it after.
    const value = { "\uE000": 1, "😀": 2, é: 3, z: 4, Z: 5 };
    assert.equal(canonicalJsonOfValue(value), '{"Z":5,"z":4,"é":3,"\uE000":1,"😀":2}');
  });

  it("omits undefined members and escapes like Go", () => {
    const value = { b: undefined, a: "line\u2028sep\u0000\u007f", c: [undefined, true, null, 1.5] };
    assert.equal(canonicalJsonOfValue(value), '{"a":"line\\u2028sep\\u0000\u007f","c":[null,true,null,1.5]}');
  });

  it("writes lone surrogates as U+FFFD, in keys and values", () => {
    assert.equal(canonicalJsonOfValue({ "k\uD800": "v\uDC00" }), '{"k\uFFFD":"v\uFFFD"}');
  });

  it("agrees with canonicalJson on an ordinary document", () => {
    const value = { tools: [{ name: "echo", inputSchema: { type: "object", required: ["text"] } }], n: 3 };
    assert.equal(canonicalJsonOfValue(value), canonicalJson(Buffer.from(JSON.stringify(value, null, 2))));
  });

  it("refuses values JSON cannot carry", () => {
    assert.throws(() => canonicalJsonOfValue({ a: 1n }), TypeError);
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    assert.throws(() => canonicalJsonOfValue(cyclic), TypeError);
  });
});

describe("canonicalJsonOfValue against canonicalJson (two independent encoders)", () => {
  it("gives the bytes canonicalJson gives for the same value's JSON text, for any JSON value", async () => {
    const fc = (await import("fast-check")).default;
    // Keys and strings from the awkward ranges: quotes, controls, U+2028/2029, surrogates, U+E000
    // and above, where UTF-16 and UTF-8 order part. Keys get no lone surrogate: two such keys can
    // become one U+FFFD key, which a parser keeps once and a JS object twice.
    const units = ["a", "Z", '"', "\\", "\u0000", "\u001f", "\u007f", "\u2028", "\u2029", "\uD83D\uDE00", "\uE000", "\uFFFF", "é"];
    const awkward = fc.string({ unit: fc.constantFrom(...units, "\uD800", "\uDC00", "\uD83D", "\uDE00"), maxLength: 6 });
    const key = fc.string({ unit: fc.constantFrom(...units), maxLength: 6 });
    const value = fc.letrec((tie) => ({
      node: fc.oneof({ depthSize: "small" }, fc.constant(null), fc.boolean(), fc.double({ noNaN: true, noDefaultInfinity: true }), fc.integer(), awkward, fc.array(tie("node"), { maxLength: 4 }), fc.dictionary(key, tie("node"), { maxKeys: 5 })),
    })).node;
    fc.assert(
      fc.property(value, (v) => {
        assert.equal(canonicalJsonOfValue(v), canonicalJson(Buffer.from(JSON.stringify(v), "utf8")));
      }),
      { numRuns: 2000 },
    );
  });
});
