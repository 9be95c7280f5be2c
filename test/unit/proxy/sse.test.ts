import assert from "node:assert/strict";
import { SseParser, sseMessage, type SseEvent } from "../../../gateway/proxy/sse.js";

function parse(chunks: string[]): SseEvent[] {
  const events: SseEvent[] = [];
  const p = new SseParser((e) => events.push(e));
  for (const c of chunks) p.push(c);
  return events;
}

describe("SSE parser", () => {
  it("joins multi-line data and keeps the event id", () => {
    assert.deepEqual(parse(["id: 7\nevent: message\ndata: a\ndata: b\n\n"]), [{ event: "message", data: "a\nb", id: "7" }]);
  });
  it("handles CRLF split across chunks", () => {
    assert.deepEqual(parse(["data: {\"x\":1}\r", "\n\r\n"]), [{ event: "message", data: '{"x":1}', id: null }]);
  });
  it("ignores comments and priming events with empty data", () => {
    assert.deepEqual(parse([": keep-alive\n\nid: 1\ndata:\n\n", "data: x\n\n"]).map((e) => e.data), ["x"]);
  });
  it("decodes UTF-8 split inside a multibyte character", () => {
    const bytes = Buffer.from("data: é\n\n");
    const events: SseEvent[] = [];
    const p = new SseParser((e) => events.push(e));
    p.push(bytes.subarray(0, 7));
    p.push(bytes.subarray(7));
    assert.equal(events[0]?.data, "é");
  });
  it("round-trips what the writer emits", () => {
    const json = JSON.stringify({ jsonrpc: "2.0", id: 1, result: { text: "a\nb" } });
    assert.deepEqual(parse([sseMessage(json)]), [{ event: "message", data: json, id: null }]);
  });
});
