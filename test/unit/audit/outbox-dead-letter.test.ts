import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DeadLetterFile, deadLetterLine, encodeDeadLetterLine } from "../../../gateway/audit/outbox-dead-letter.js";
import { recordRefusal } from "../../../gateway/audit/kafka-refusal.js";
import { parseConfig } from "../../../gateway/config/index.js";

const refusal = recordRefusal({ type: "MESSAGE_TOO_LARGE", code: 10, message: "too large" })!;
const at = new Date(Date.UTC(2026, 10, 24, 12));

describe("dead-letter file (audit.kafka.deadLetterFile)", () => {
  let dir = "";
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "pc-dlq-file-"));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it("escapes U+2028 and U+2029 so a line never splits, and the line parses back to the same event", () => {
    const event = { decision_id: "d-1", input: { note: "a\u2028b\u2029c" } };
    const text = encodeDeadLetterLine(deadLetterLine({ decisionId: "d-1", key: "alice", value: JSON.stringify(event) }, "mcp.audit", refusal, at));
    assert.equal(/[\u2028\u2029]/.test(text), false, "no raw line or paragraph separator");
    assert.equal(text.split(/\r?\n|\u2028|\u2029/).filter((l) => l.length > 0).length, 1);
    assert.ok(text.endsWith("}\n"));
    assert.deepEqual((JSON.parse(text) as { event: unknown }).event, event);
  });

  it("keeps a value that is not JSON verbatim", () => {
    const line = deadLetterLine({ decisionId: "d-2", key: "k", value: "<not json>" }, "t", refusal, at);
    assert.equal(line.value, "<not json>");
    assert.equal("event" in line, false);
  });

  it("creates the directory and appends one line per event, serialized, owner and group only (0640)", async () => {
    const path = join(dir, "nested", "dead-letter.jsonl");
    const f = new DeadLetterFile(path);
    await Promise.all(
      Array.from({ length: 20 }, (_, i) => f.append(deadLetterLine({ decisionId: `d-${i}`, key: "k", value: JSON.stringify({ n: i, pad: "x".repeat(i * 1000) }) }, "t", refusal, at))),
    );
    const lines = readFileSync(path, "utf8").split("\n").filter((l) => l.length > 0).map((l) => JSON.parse(l) as { decision_id: string });
    assert.deepEqual(lines.map((l) => l.decision_id), Array.from({ length: 20 }, (_, i) => `d-${i}`));
    assert.equal(statSync(path).mode & 0o777 & ~0o640, 0);
  });

  it("rejects when the file cannot be written (the sender then keeps the event)", async () => {
    const f = new DeadLetterFile(join(dir, "missing-parent-is-a-file", "x.jsonl"));
    await new DeadLetterFile(join(dir, "missing-parent-is-a-file")).append(deadLetterLine({ decisionId: "d", key: "k", value: "{}" }, "t", refusal, at));
    await assert.rejects(f.append(deadLetterLine({ decisionId: "d", key: "k", value: "{}" }, "t", refusal, at)));
  });
});

describe("config: audit.kafka.deadLetterFile", () => {
  const base = {
    auth: { issuer: "https://idp.example.com/", audience: "https://gw.example.com/mcp", jwksUri: "https://idp.example.com/jwks.json" },
    policy: { bundle: "b.tar.gz", verificationKey: "k.pem" },
    upstreams: { files: { url: "http://127.0.0.1:7001/mcp" } },
  };
  const kafka = { brokers: ["127.0.0.1:9092"], topic: "mcp.audit" };
  const cases: Array<{ note: string; audit: Record<string, unknown>; want: string | undefined }> = [
    { note: "defaults to dead-letter.jsonl in the outbox directory", audit: { kafka, outbox: { dir: "spool" } }, want: "/etc/portcullis/spool/dead-letter.jsonl" },
    { note: "defaults into the default outbox directory", audit: { kafka }, want: "/etc/portcullis/var/outbox/dead-letter.jsonl" },
    { note: "with the outbox off, still in the default outbox directory", audit: { kafka, outbox: false }, want: "/etc/portcullis/var/outbox/dead-letter.jsonl" },
    { note: "a relative path is resolved from the config file", audit: { kafka: { ...kafka, deadLetterFile: "dlq/refused.jsonl" } }, want: "/etc/portcullis/dlq/refused.jsonl" },
    { note: "an absolute path is kept", audit: { kafka: { ...kafka, deadLetterFile: "/var/lib/pc/dlq.jsonl" } }, want: "/var/lib/pc/dlq.jsonl" },
  ];
  for (const c of cases) {
    it(c.note, () => {
      const config = parseConfig({ ...base, audit: c.audit }, "/etc/portcullis/gateway.yaml", {});
      assert.equal(config.audit.kafka?.deadLetterFile, c.want);
    });
  }

  it("refuses an empty path with the field named", () => {
    assert.throws(() => parseConfig({ ...base, audit: { kafka: { ...kafka, deadLetterFile: "" } } }, "/etc/portcullis/gateway.yaml", {}), /audit\.kafka\.deadLetterFile/);
  });
});
