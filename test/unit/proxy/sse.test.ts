import assert from "node:assert/strict";
import { SseParser, sseMessage, ssePriming, type SseEvent } from "../../../gateway/proxy/sse.js";

function parse(chunks: string[]): SseEvent[] {
  const events: SseEvent[] = [];
  const p = new SseParser((e) => events.push(e));
  for (const c of chunks) p.push(c);
  return events;
}

describe("SSE parser", () => {
  it("joins multi-line data and keeps the event id", () => {
    assert.deepEqual(parse(["id: 7\nevent: message\ndata: a\ndata: b\n\n"]), [{ event: "message", data: "a\nb", id: "7", ownId: true, retry: null }]);
  });
  it("handles CRLF split across chunks", () => {
    assert.deepEqual(parse(["data: {\"x\":1}\r", "\n\r\n"]), [{ event: "message", data: '{"x":1}', id: null, ownId: false, retry: null }]);
  });
  it("ignores comments; dispatches a priming event (an id or a retry, empty data) with its id and retry", () => {
    assert.deepEqual(parse([": keep-alive\n\nid: 1\nretry: 500\ndata:\n\n", "data: x\n\n", "data:\n\n"]), [
      { event: "message", data: "", id: "1", ownId: true, retry: 500 },
      // The id persists (WHATWG), but this event did not set it; an event with neither id nor data is not dispatched.
      { event: "message", data: "x", id: "1", ownId: false, retry: null },
    ]);
  });
  it("writes priming events with their id and retry, and never lets an id break its line", () => {
    assert.equal(ssePriming("e-1", 1000), "id: e-1\nretry: 1000\ndata:\n\n");
    assert.equal(sseMessage("{}", "a\r\nevent: x"), "id: aevent: x\nevent: message\ndata: {}\n\n");
    assert.deepEqual(parse([ssePriming("e-1", null)]), [{ event: "message", data: "", id: "e-1", ownId: true, retry: null }]);
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
    assert.deepEqual(parse([sseMessage(json)]), [{ event: "message", data: json, id: null, ownId: false, retry: null }]);
  });
});

describe("SSE parser against a hostile upstream (issue 8, finding 8)", () => {
  it("scans each character once: a line without end does not make every chunk rescan it", () => {
    const p = new SseParser(() => undefined);
    const chunk = "x".repeat(1000);
    p.push("data: ");
    for (let i = 0; i < 2000; i++) p.push(chunk);
    p.push("\n\n");
    // 2,000,008 characters in; the old parser examined about 2,000² / 2 · 1000 of them.
    assert.ok(p.charsScanned <= 2_000_010, `scanned ${p.charsScanned}`);
  });
  it("refuses an event larger than its bound instead of buffering without end", async () => {
    const { SseTooLargeError } = await import("../../../gateway/proxy/sse.js");
    const p = new SseParser(() => undefined, 10_000);
    p.push("data: ");
    assert.throws(() => {
      for (let i = 0; i < 100; i++) p.push("y".repeat(1000));
    }, SseTooLargeError);
    const q = new SseParser(() => undefined, 10_000);
    assert.throws(() => {
      for (let i = 0; i < 100; i++) q.push(`data: ${"z".repeat(500)}\n`);
    }, SseTooLargeError);
  });
  it("still delivers events under the bound", () => {
    const events: SseEvent[] = [];
    const p = new SseParser((e) => events.push(e), 10_000);
    for (let i = 0; i < 50; i++) p.push(`data: ${"a".repeat(500)}\n\n`);
    assert.equal(events.length, 50);
  });
});
