import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { summarizeToolResult } from "../../../gateway/audit/result-summary.js";

const sha256 = (s: string) => createHash("sha256").update(s, "utf8").digest("hex");

describe("tool result summary", () => {
  it("keeps a small result whole with its size and hash", () => {
    const result = { content: [{ type: "text", text: "hello" }], isError: false };
    const json = JSON.stringify(result);
    assert.deepEqual(summarizeToolResult(result, 1024), {
      is_error: false,
      bytes: Buffer.byteLength(json),
      sha256: sha256(json),
      content: json,
      truncated: false,
    });
  });

  it("cuts on a UTF-8 boundary and hashes the full serialization", () => {
    const result = { content: [{ type: "text", text: "€€€€€€€€" }] }; // € is 3 bytes
    const json = JSON.stringify(result);
    const prefix = json.indexOf("€");
    // Every cap that falls inside a € must drop that € whole, never emit half of it.
    for (const cap of [prefix + 1, prefix + 2, prefix + 3, prefix + 4, prefix + 5]) {
      const s = summarizeToolResult(result, cap);
      assert.equal(s.truncated, true);
      assert.ok(Buffer.byteLength(s.content) <= cap, `cap ${cap}`);
      assert.ok(!s.content.includes("\uFFFD"), `no replacement character at cap ${cap}`);
      assert.ok(json.startsWith(s.content));
      assert.equal(Buffer.byteLength(s.content), prefix + 3 * Math.floor((cap - prefix) / 3));
      assert.equal(s.bytes, Buffer.byteLength(json));
      assert.equal(s.sha256, sha256(json));
    }
  });

  it("cuts a 4-byte character whole", () => {
    const result = "😀😀"; // 4 bytes each; serialized with quotes
    const s = summarizeToolResult(result, 4);
    assert.equal(s.content, '"');
    assert.equal(summarizeToolResult(result, 5).content, '"😀');
  });

  it("reports isError from the result", () => {
    assert.equal(summarizeToolResult({ isError: true, content: [] }, 10).is_error, true);
    assert.equal(summarizeToolResult({ isError: "yes" }, 10).is_error, false);
    assert.equal(summarizeToolResult(null, 10).is_error, false);
  });

  it("summarizes an absent result as null and a circular one without throwing", () => {
    assert.equal(summarizeToolResult(undefined, 10).content, "null");
    const circular: Record<string, unknown> = {};
    circular.self = circular;
    const s = summarizeToolResult(circular, 1000);
    assert.match(s.content, /unserializable/);
  });

  it("treats a zero cap as an empty excerpt", () => {
    const s = summarizeToolResult({ a: 1 }, 0);
    assert.equal(s.content, "");
    assert.equal(s.truncated, true);
  });
});
