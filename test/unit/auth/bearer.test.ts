import assert from "node:assert/strict";
import { AuthError, extractBearer, type AuthFailureCode } from "../../../gateway/auth/index.js";

describe("extractBearer", () => {
  const accepted: Array<{ note: string; header: string | string[]; token: string }> = [
    { note: "a plain Bearer header", header: "Bearer abc.def.ghi", token: "abc.def.ghi" },
    { note: "a lower-case scheme", header: "bearer abc", token: "abc" },
    { note: "an upper-case scheme", header: "BEARER abc", token: "abc" },
    { note: "surrounding whitespace and several spaces", header: "  Bearer   abc  ", token: "abc" },
    { note: "the full b64token alphabet with padding", header: "Bearer aZ09-._~+/==", token: "aZ09-._~+/==" },
    { note: "a single-element header array", header: ["Bearer abc"], token: "abc" },
  ];
  for (const c of accepted) {
    it(`returns the token from ${c.note}`, () => {
      assert.equal(extractBearer(c.header), c.token);
    });
  }

  const refused: Array<{ note: string; header: string | string[] | undefined; code: AuthFailureCode }> = [
    { note: "no header", header: undefined, code: "token_missing" },
    { note: "an empty header", header: "", code: "token_missing" },
    { note: "a whitespace-only header", header: "   ", code: "token_missing" },
    { note: "an empty header array", header: [], code: "token_missing" },
    { note: "the Basic scheme", header: "Basic dXNlcjpwYXNz", code: "token_missing" },
    { note: "a scheme that merely starts with Bearer", header: "Bearerabc", code: "token_missing" },
    { note: "Bearer without a token", header: "Bearer", code: "token_malformed" },
    { note: "Bearer followed by spaces only", header: "Bearer    ", code: "token_malformed" },
    { note: "two Authorization headers", header: ["Bearer a", "Bearer b"], code: "token_malformed" },
    { note: "two credentials in one header", header: "Bearer a, Bearer b", code: "token_malformed" },
    { note: "a token containing a space", header: "Bearer abc def", code: "token_malformed" },
    { note: "a token containing a newline", header: "Bearer abc\ndef", code: "token_malformed" },
    { note: "a token containing a quote", header: 'Bearer "abc"', code: "token_malformed" },
    { note: "padding in the middle", header: "Bearer ab=c", code: "token_malformed" },
    { note: "an oversized header", header: `Bearer ${"a".repeat(20_000)}`, code: "token_malformed" },
  ];
  for (const c of refused) {
    it(`refuses ${c.note} with ${c.code}`, () => {
      assert.throws(
        () => extractBearer(c.header),
        (err: unknown) => err instanceof AuthError && err.code === c.code,
      );
    });
  }
});
