/**
 * Tamper evidence end to end: a gateway with signed checkpoints writes its audit stream to a
 * JSONL file and the real broker; `portcullis audit verify` (the built CLI) passes the clean
 * stream and names the first bad record of edited, deleted, reordered and forged copies, in a
 * file and on a topic. Also `audit tail` filters and OCSF, and schema validity of every event.
 */
import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { Kafka, logLevel } from "kafkajs";
import type { AuditEvent } from "../../gateway/audit/index.js";
import { assertAuditEvents, auditSchemaErrors } from "../support/audit-schema.js";
import { runPortcullis, showRun, type CliRun } from "../support/cli.js";
import { runCli } from "../../gateway/cli/commands.js";
import { consumeAll, createTopic, kafkaBrokers, uniqueTopic } from "../support/kafka.js";
import { startStack, type Stack } from "../support/stack.js";

const EVERY = 4;

async function runInProcess(args: string[]): Promise<CliRun> {
  const out = new PassThrough();
  const err = new PassThrough();
  let stdout = "";
  let stderr = "";
  out.on("data", (c: Buffer) => (stdout += c.toString()));
  err.on("data", (c: Buffer) => (stderr += c.toString()));
  const code = await runCli(args, { out, err });
  return { code, stdout, stderr };
}

describe("audit verify and tail against a real gateway, file and broker", function () {
  this.timeout(120_000);
  const brokers = kafkaBrokers();
  const topic = uniqueTopic("audit-verify");
  const ocsfTopic = uniqueTopic("audit-verify-ocsf");
  const work = mkdtempSync(join(tmpdir(), "pc-verify-"));
  const pubKey = join(work, "audit.pub.pem");
  let stack: Stack | null = null;
  let lines: string[] = [];
  let events: AuditEvent[] = [];

  before(async () => {
    const keys = generateKeyPairSync("ed25519");
    writeFileSync(join(work, "audit.pem"), keys.privateKey.export({ type: "pkcs8", format: "pem" }));
    writeFileSync(pubKey, keys.publicKey.export({ type: "spki", format: "pem" }));
    stack = await startStack({
      kafka: { brokers, topic },
      audit: {
        signing: { privateKey: join(work, "audit.pem"), checkpointEvery: EVERY },
        kafka: { brokers, topic, createTopic: { partitions: 1, replicationFactor: 1 }, ocsfTopic },
      },
    });
    const { client } = await stack.connect("demo", stack.token("alice", ["analyst"]));
    await client.listTools();
    for (let i = 0; i < 6; i++) await client.callTool({ name: "echo", arguments: { text: `call ${i}`, api_key: "sk-live-secret" } });
    await client.callTool({ name: "read_file", arguments: { path: "/etc/shadow" } });
    const anon = await fetch(stack.url("demo"), { method: "POST", headers: { "content-type": "application/json", accept: "application/json, text/event-stream" }, body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "initialize", params: { protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: "anon", version: "1" } } }) });
    assert.equal(anon.status, 401);
    await anon.body?.cancel();
    const s = stack;
    stack = null;
    await s.close(); // drains the Kafka sink
    lines = readFileSync(s.auditFile, "utf8").split("\n").filter((l) => l.length > 0);
    events = lines.map((l) => JSON.parse(l) as AuditEvent);
  });

  after(async () => {
    await stack?.close();
  });

  // The clean-stream checks spawn the built CLI (black box); the tamper cases run the same
  // command in process, which keeps the suite fast.
  const verify = (...args: string[]) => runPortcullis(["audit", "verify", "--public-key", pubKey, ...args]);
  const verifyInProcess = (...args: string[]) => runInProcess(["audit", "verify", "--public-key", pubKey, ...args]);
  const fileWith = (name: string, ls: string[]): string => {
    const f = join(work, name);
    writeFileSync(f, `${ls.join("\n")}\n`);
    return f;
  };
  const edit = (line: string): string => JSON.stringify({ ...(JSON.parse(line) as AuditEvent), outcome: "allowed", result: { allow: true } });

  it("produces events that match the published JSON Schema, chained in write order", () => {
    assert.ok(events.length >= 12, `only ${events.length} events`);
    assertAuditEvents(events);
    assert.deepEqual(events.map((e) => e.chain?.seq), events.map((_, i) => i + 1));
    assert.equal(events.filter((e) => e.chain?.signature !== undefined).length, Math.floor(events.length / EVERY));
  });

  it("masks api_key-like arguments and names the active bundle on unauthenticated events", () => {
    const echo = events.find((e) => e.mcp.tool === "echo" && e.mcp.method === "tools/call")!;
    assert.ok(echo.masked.includes("/input/request/arguments/api_key"), echo.masked.join(","));
    assert.equal(lines.some((l) => l.includes("sk-live-secret")), false, "the secret reached the audit file");
    const anon = events.find((e) => e.outcome === "unauthenticated")!;
    assert.deepEqual(anon.bundles, { "mcp-authz": { revision: "test-rev-1" } });
  });

  it("verifies the clean file and the clean topic (exit 0)", async () => {
    const file = await verify("--file", fileWith("clean.jsonl", lines), "--checkpoint-every", String(EVERY));
    assert.equal(file.code, 0, showRun(file));
    assert.match(file.stdout, new RegExp(`^OK: ${lines.length} records, 1 chain`));
    const onTopic = await verify("--brokers", brokers.join(","), "--topic", topic, "--checkpoint-every", String(EVERY));
    assert.equal(onTopic.code, 0, showRun(onTopic));
    assert.match(onTopic.stdout, new RegExp(`^OK: ${lines.length} records`));
  });

  const forged = (line: string): string => {
    const e = JSON.parse(line) as AuditEvent;
    // 64 bytes that are no Ed25519 signature of this record's hash under the configured key.
    return JSON.stringify({ ...e, chain: { ...e.chain, signature: Buffer.alloc(64, 7).toString("base64") } });
  };
  const tampered: Array<{ note: string; make: (ls: string[]) => string[]; kind: string; at: number }> = [
    { note: "an edited record", make: (ls) => ls.map((l, i) => (i === 6 ? edit(l) : l)), kind: "edited", at: 7 },
    { note: "a deleted record", make: (ls) => ls.filter((_, i) => i !== 5), kind: "gap", at: 6 },
    { note: "a reordered record", make: (ls) => [...ls.slice(0, 2), ls[3]!, ls[2]!, ...ls.slice(4)], kind: "reordered", at: 4 },
    { note: "a forged checkpoint", make: (ls) => ls.map((l, i) => (i === EVERY - 1 ? forged(l) : l)), kind: "bad_signature", at: EVERY },
  ];

  for (const t of tampered) {
    it(`names the first bad record of ${t.note} in a file (exit 1)`, async () => {
      const f = fileWith(`${t.kind}.jsonl`, t.make(lines));
      const r = await verifyInProcess("--file", f);
      assert.equal(r.code, 1, showRun(r));
      assert.match(r.stdout, new RegExp(`first bad record: ${f.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}:${t.at} .*: ${t.kind}:`), showRun(r));
    });
  }

  it("names the first bad record of edited, deleted, reordered and forged streams on a topic", async () => {
    const kafka = new Kafka({ clientId: "pc-verify-test", brokers, logLevel: logLevel.NOTHING });
    const producer = kafka.producer();
    await producer.connect();
    try {
      for (const t of tampered) {
        const name = uniqueTopic(`audit-verify-${t.kind}`);
        await createTopic(brokers, name);
        await producer.send({ topic: name, messages: t.make(lines).map((value) => ({ key: "k", value })) });
        const r = await verifyInProcess("--brokers", brokers.join(","), "--topic", name);
        assert.equal(r.code, 1, `${t.note}: ${showRun(r)}`);
        assert.match(r.stdout, new RegExp(`first bad record: partition 0 offset ${t.at - 1} .*: ${t.kind}:`), `${t.note}: ${showRun(r)}`);
      }
    } finally {
      await producer.disconnect();
    }
  });

  it("tails the file with agent, tool and outcome filters, as text and as OCSF", async () => {
    const f = fileWith("tail.jsonl", lines);
    const denied = await runInProcess(["audit", "tail", "--file", f, "--agent", "alice", "--outcome", "denied", "--format", "text"]);
    assert.equal(denied.code, 0, showRun(denied));
    const deniedLines = denied.stdout.trim().split("\n");
    assert.ok(deniedLines.length >= 1 && deniedLines.every((l) => / denied +alice /.test(l)), denied.stdout);
    assert.ok(deniedLines.some((l) => l.includes("read_file")), denied.stdout);
    const ocsf = await runInProcess(["audit", "tail", "--file", f, "--tool", "echo", "--format", "ocsf"]);
    const rendered = ocsf.stdout.trim().split("\n").map((l) => JSON.parse(l) as { class_uid: number; resources: Array<{ name: string }> });
    assert.equal(rendered.length, events.filter((e) => e.mcp.tool === "echo").length);
    assert.ok(rendered.every((o) => o.class_uid === 6003 && o.resources[0]?.name === "echo"));
  });

  it("publishes the OCSF rendering of every event to audit.kafka.ocsfTopic", async () => {
    const got = await consumeAll(brokers, ocsfTopic, { expected: events.length, timeoutMs: 20_000 });
    assert.equal(got.length, events.length);
    const rendered = got.map((m) => JSON.parse(m.value ?? "null") as { class_uid: number; metadata: { uid: string } });
    assert.ok(rendered.every((o) => o.class_uid === 6003));
    assert.deepEqual(rendered.map((o) => o.metadata.uid).sort(), events.map((e) => e.decision_id).sort());
  });

  it("tails the topic once with a filter, every line a valid event", async () => {
    const r = await runPortcullis(["audit", "tail", "--brokers", brokers.join(","), "--topic", topic, "--once", "--outcome", "unauthenticated"]);
    assert.equal(r.code, 0, showRun(r));
    const got = r.stdout.trim().split("\n").map((l) => JSON.parse(l) as AuditEvent);
    assert.equal(got.length, 1);
    assert.deepEqual(auditSchemaErrors(got[0]), []);
    assert.equal(got[0]?.outcome, "unauthenticated");
  });
});
