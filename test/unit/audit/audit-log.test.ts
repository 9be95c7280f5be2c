import assert from "node:assert/strict";
import { AuditLog, type AuditEvent, type AuditLogger, type AuditSink } from "../../../gateway/audit/index.js";
import { AuditWriteError } from "../../../gateway/audit/audit-log.js";
import { jsonLine, type EncodedEvent } from "../../../gateway/audit/jsonl.js";
import { sampleEvent } from "./helpers.js";

class MemorySink implements AuditSink {
  events: AuditEvent[] = [];
  started = 0;
  closed = false;
  constructor(
    readonly name: string,
    private readonly failWith: Error | null = null,
    private readonly remaining = 0,
  ) {}
  write(event: AuditEvent): Promise<void> {
    if (this.failWith) return Promise.reject(this.failWith);
    this.events.push(event);
    return Promise.resolve();
  }
  close(): Promise<{ remaining: number }> {
    this.closed = true;
    return Promise.resolve({ remaining: this.remaining });
  }
}

class StartableSink extends MemorySink {
  start(): Promise<void> {
    this.started++;
    return Promise.resolve();
  }
}

function collectingLogger(): { logger: AuditLogger; entries: Array<{ level: string; msg: string }> } {
  const entries: Array<{ level: string; msg: string }> = [];
  return { entries, logger: (level, msg) => entries.push({ level, msg }) };
}

describe("AuditLog", () => {
  it("writes every event to every sink and counts per sink", async () => {
    const a = new MemorySink("a");
    const b = new MemorySink("b");
    const log = new AuditLog([a, b]);
    const ev = sampleEvent();
    await log.record(ev);
    await log.record(sampleEvent());
    // Sinks get the event as recorded plus its chain position (assigned by record, in order).
    const { chain, ...rest } = a.events[0]!;
    assert.deepEqual(rest, ev);
    assert.deepEqual([chain?.seq, a.events[1]?.chain?.seq], [1, 2]);
    assert.equal(b.events[1]?.chain?.prev, chain?.hash);
    assert.equal(b.events.length, 2);
    assert.deepEqual(log.stats(), { a: { written: 2, failed: 0 }, b: { written: 2, failed: 0 } });
  });

  it("hands every sink the one encoding of the sealed event: JSON.stringify for Kafka, the escaped line for files", async () => {
    const seen: Array<{ event: AuditEvent; encoded: EncodedEvent | undefined }> = [];
    const capture = (name: string): AuditSink => ({ name, write: async (event, encoded) => void seen.push({ event, encoded }), close: async () => undefined });
    const log = new AuditLog([capture("a"), capture("b")], { logger: () => undefined });
    const event = { ...sampleEvent(), error: { code: "x", message: "line\u2028break" } };
    await log.record(event);
    const [a, b] = seen;
    assert.ok(a?.encoded && a.encoded === b?.encoded, "one encoding shared by both sinks");
    assert.equal(a.encoded.json, JSON.stringify(a.event));
    assert.equal(a.encoded.line, jsonLine(a.event));
    assert.notEqual(a.encoded.line, a.encoded.json);
    assert.deepEqual(JSON.parse(a.encoded.line), JSON.parse(a.encoded.json));
  });

  it("rejects with the failed sink named, logs it, and still writes to the healthy sink", async () => {
    const good = new MemorySink("good");
    const bad = new MemorySink("bad", new Error("disk full"));
    const { logger, entries } = collectingLogger();
    const log = new AuditLog([bad, good], { logger });
    const ev = sampleEvent();
    await assert.rejects(log.record(ev), (err: unknown) => {
      assert.ok(err instanceof AuditWriteError);
      assert.equal(err.code, "audit_write_failed");
      assert.deepEqual(err.failures.map((f) => f.sink), ["bad"]);
      assert.match(err.message, new RegExp(`${ev.decision_id}.*bad \\(disk full\\)`));
      return true;
    });
    assert.equal(good.events.length, 1);
    assert.deepEqual(log.stats().bad, { written: 0, failed: 1 });
    assert.equal(entries.filter((e) => e.level === "error").length, 1);
  });

  it("starts only the sinks that need starting", async () => {
    const plain = new MemorySink("plain");
    const startable = new StartableSink("kafka");
    await new AuditLog([plain, startable]).start();
    assert.equal(startable.started, 1);
  });

  it("closes every sink and reports what they could not deliver", async () => {
    const a = new MemorySink("a", null, 0);
    const b = new MemorySink("b", null, 3);
    const report = await new AuditLog([a, b]).close();
    assert.ok(a.closed && b.closed);
    assert.deepEqual(report, { remaining: 3, bySink: { b: 3 } });
  });
});
