import assert from "node:assert/strict";
import { classify, RpcCode } from "../../../gateway/proxy/jsonrpc.js";

describe("JSON-RPC edge classification", () => {
  const refused: Array<{ note: string; value: unknown }> = [
    { note: "a batch array (would smuggle calls past per-message checks)", value: [{ jsonrpc: "2.0", id: 1, method: "tools/call" }] },
    { note: "wrong jsonrpc version", value: { jsonrpc: "1.0", id: 1, method: "ping" } },
    { note: "a bare string", value: "ping" },
    { note: "null", value: null },
    { note: "params as an array", value: { jsonrpc: "2.0", id: 1, method: "tools/call", params: [1] } },
    { note: "numeric method", value: { jsonrpc: "2.0", id: 1, method: 7 } },
    { note: "empty method", value: { jsonrpc: "2.0", id: 1, method: "" } },
    { note: "object id", value: { jsonrpc: "2.0", id: { x: 1 }, method: "ping" } },
    { note: "fractional id", value: { jsonrpc: "2.0", id: 1.5, method: "ping" } },
    { note: "response without result or error", value: { jsonrpc: "2.0", id: 1 } },
  ];
  for (const { note, value } of refused) {
    it(`refuses ${note} as Invalid Request`, () => {
      const c = classify(value);
      assert.equal(c.ok, false);
      if (!c.ok) assert.equal(c.code, RpcCode.InvalidRequest);
    });
  }

  it("classifies requests, notifications and responses", () => {
    const req = classify({ jsonrpc: "2.0", id: "a", method: "tools/call", params: { name: "echo" } });
    assert.ok(req.ok && req.parsed.kind === "request");
    const note = classify({ jsonrpc: "2.0", method: "notifications/initialized" });
    assert.ok(note.ok && note.parsed.kind === "notification");
    const res = classify({ jsonrpc: "2.0", id: 3, result: {} });
    assert.ok(res.ok && res.parsed.kind === "response");
    const err = classify({ jsonrpc: "2.0", id: 3, error: { code: -1, message: "x" } });
    assert.ok(err.ok && err.parsed.kind === "response");
  });
});
