import assert from "node:assert/strict";
import { Kafka, logLevel } from "kafkajs";
import { McpError } from "@modelcontextprotocol/sdk/types.js";
import type { AuditEvent } from "../../gateway/audit/index.js";
import { consumeAll, kafkaBrokers, uniqueTopic, type ConsumedMessage } from "../support/kafka.js";
import { startStack, type Stack } from "../support/stack.js";
import { assertAuditEvents } from "../support/audit-schema.js";

/**
 * The whole path to Kafka: real gateway, real opa bundle, demo upstream, SDK clients, and the
 * local broker (KAFKA_BROKERS, default 127.0.0.1:9092; `make kafka-up`). Skipped only with
 * PORTCULLIS_SKIP_KAFKA=1; an unreachable broker fails the suite.
 */
const skip = process.env.PORTCULLIS_SKIP_KAFKA === "1";

const INIT = { jsonrpc: "2.0", id: 1, method: "initialize", params: { protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: "raw", version: "1" } } };

describe("audit events reach Kafka end to end (gateway + real broker)", function () {
  this.timeout(90_000);
  const brokers = kafkaBrokers();
  const topic = uniqueTopic("it.audit");
  const kafka = new Kafka({ clientId: "portcullis-it-e2e", brokers, connectionTimeout: 3000, retry: { retries: 1 }, logLevel: logLevel.NOTHING });
  let stack: Stack | null = null;
  let fileEvents: AuditEvent[] = [];
  let messages: ConsumedMessage[] = [];
  let topicSize = -1;
  const byId = new Map<string, { message: ConsumedMessage; value: AuditEvent }>();

  before(async function () {
    if (skip) {
      console.log("    audit-kafka-e2e: skipped because PORTCULLIS_SKIP_KAFKA=1 (no broker started)");
      this.skip();
    }
    const probe = kafka.admin();
    try {
      await probe.connect();
      await probe.listTopics();
    } catch (err) {
      throw new Error(
        `Kafka broker at ${brokers.join(",")} is unreachable (${String(err)}). ` +
          "Start one with `make kafka-up` (or set KAFKA_BROKERS), or set PORTCULLIS_SKIP_KAFKA=1 to skip.",
      );
    } finally {
      await probe.disconnect().catch(() => undefined);
    }

    stack = await startStack({ kafka: { brokers, topic } });
    const alice = (await stack.connect("demo", stack.token("alice", ["analyst"]))).client;
    const bob = (await stack.connect("demo", stack.token("bob", ["admin"]))).client;

    const listed = await alice.listTools();
    assert.ok(!listed.tools.some((t) => t.name === "delete_record"), "analyst sees delete_record");
    const echo = await alice.callTool({ name: "echo", arguments: { text: "to kafka", password: "hunter2" } });
    assert.equal(echo.isError, undefined);
    const denied = await alice.callTool({ name: "read_file", arguments: { path: "/etc/passwd" } });
    assert.equal(denied.isError, true);
    await assert.rejects(alice.callTool({ name: "delete_record", arguments: { id: "1" } }), McpError);
    const deleted = await bob.callTool({ name: "delete_record", arguments: { id: "7" } });
    assert.equal(deleted.isError, undefined);

    const expired = await fetch(stack.url("demo"), {
      method: "POST",
      headers: { "content-type": "application/json", accept: "application/json, text/event-stream", authorization: `Bearer ${stack.idp.mintDefective("expired")}` },
      body: JSON.stringify(INIT),
    });
    assert.equal(expired.status, 401);
    await expired.body?.cancel();

    // Closing the gateway drains the Kafka sink; the JSONL file is then complete too.
    const s = stack;
    stack = null;
    await s.close();
    fileEvents = s.auditEvents();
    messages = await consumeAll(brokers, topic, { expected: fileEvents.length, timeoutMs: 30_000 });
    // Everything on the topic was consumed: its end offset equals what we read (nothing extra).
    const admin = kafka.admin();
    await admin.connect();
    try {
      const offsets = await admin.fetchTopicOffsets(topic);
      topicSize = offsets.reduce((n, p) => n + Number(p.high) - Number(p.low), 0);
    } finally {
      await admin.disconnect();
    }
    for (const message of messages) {
      assert.ok(message.value, `message at offset ${message.offset} has no value`);
      const value = JSON.parse(message.value) as AuditEvent;
      byId.set(value.decision_id, { message, value });
    }
  });

  after(async () => {
    await stack?.close();
  });

  const names = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
  const fileEvent = (pred: (e: AuditEvent) => boolean, what: string): AuditEvent => {
    const e = fileEvents.find(pred);
    assert.ok(e, `no ${what} event in the audit file`);
    return e;
  };

  it("puts exactly the audit file's decisions on the topic", () => {
    // initialize, 4 calls, a tools/list per agent, the expired token, plumbing (notifications, stream).
    assert.ok(fileEvents.length >= 9, `only ${fileEvents.length} events in the audit file`);
    const fileIds = fileEvents.map((e) => e.decision_id);
    assert.equal(new Set(fileIds).size, fileIds.length, "the audit file repeats a decision_id");
    assert.equal(topicSize, messages.length, "the topic holds messages the consumer did not get");
    assert.deepEqual([...byId.keys()].sort(), [...fileIds].sort());
    for (const e of fileEvents) assert.deepEqual(byId.get(e.decision_id)?.value, e, `Kafka and file disagree on ${e.decision_id}`);
    assertAuditEvents([...byId.values()].map((m) => m.value));
  });

  it("carries the allowed, denied, hidden-tool and expired-token decisions", () => {
    const calls = (sub: string, tool: string) => (e: AuditEvent) => e.agent.sub === sub && e.mcp.method === "tools/call" && e.mcp.tool === tool;
    const allowed = fileEvent(calls("alice", "echo"), "alice echo");
    assert.equal(allowed.outcome, "allowed");
    assert.equal(fileEvent(calls("alice", "read_file"), "alice read_file").outcome, "denied");
    assert.equal(fileEvent(calls("alice", "delete_record"), "alice delete_record").outcome, "denied");
    assert.equal(fileEvent(calls("bob", "delete_record"), "bob delete_record").outcome, "allowed");
    // A list is one event naming what the agent saw and what policy hid.
    const hiddenItem = fileEvent((e) => e.agent.sub === "alice" && e.mcp.method === "tools/list" && names(e.list?.hidden).includes("delete_record"), "tools/list hiding delete_record");
    assert.equal(hiddenItem.outcome, "allowed");
    assert.ok(!names(hiddenItem.list?.visible).includes("delete_record"));
    const expired = fileEvent((e) => e.outcome === "unauthenticated", "unauthenticated");
    assert.equal(expired.error?.code, "token_expired");
    for (const e of [allowed, hiddenItem, expired]) assert.ok(byId.has(e.decision_id), `${e.outcome} event missing from Kafka`);
    const onKafka = byId.get(allowed.decision_id)!.value;
    assert.equal((onKafka.input as { request: { arguments: Record<string, unknown> } }).request.arguments.password, "**REDACTED**");
  });

  it("keys every message by the agent's sub (anonymous when unauthenticated) with a decision-id header", () => {
    assert.ok(messages.length > 0);
    const keys = new Set<string | null>();
    for (const { message, value } of byId.values()) {
      assert.equal(message.key, value.agent.sub ?? "anonymous", `key of ${value.decision_id}`);
      assert.equal(message.headers["decision-id"], value.decision_id);
      keys.add(message.key);
    }
    assert.deepEqual([...keys].sort(), ["alice", "anonymous", "bob"]);
    for (const m of messages) {
      const value = JSON.parse(m.value!) as AuditEvent;
      assert.equal(m.headers["decision-id"], value.decision_id);
    }
  });

  it("sends contract-4 events", () => {
    for (const { value: e } of byId.values()) {
      const where = `${e.decision_id} (${e.outcome} ${e.mcp.method})`;
      assert.match(e.decision_id, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/, where);
      assert.match(e.timestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/, where);
      assert.equal(e.path, "mcp/authz/decision", where);
      assert.equal(typeof e.labels.id, "string", where);
      assert.ok(e.labels.id.length > 0, where);
      assert.equal(typeof e.labels.version, "string", where);
      assert.equal(typeof e.bundles, "object", where);
      for (const field of ["input", "result"] as const) assert.ok(field in e, `${where}: no ${field}`);
      assert.ok(Array.isArray(e.erased), where);
      assert.ok(Array.isArray(e.masked), where);
      assert.ok(["allowed", "denied", "rate_limited", "unauthenticated", "invalid", "error"].includes(e.outcome), where);
      assert.ok("sub" in e.agent && "client_id" in e.agent, where);
      assert.equal(e.mcp.server, "demo", where);
      assert.equal(typeof e.mcp.method, "string", where);
      assert.ok("tool" in e.mcp, where);
      assert.equal(typeof e.latency_ms.decision, "number", where);
      assert.equal(typeof e.latency_ms.total, "number", where);
      assert.ok("upstream" in e.latency_ms, where);
      if (e.outcome === "unauthenticated") {
        assert.equal(e.input, null, where);
        assert.equal(e.result, null, where);
        assert.equal(e.agent.sub, null, where);
        assert.equal(e.error?.code, "token_expired", where);
      } else if (e.mcp.method.startsWith("portcullis/")) {
        // Transport operations (GET stream, DELETE): on record, not policy decisions.
        assert.equal(e.input, null, where);
        assert.equal(typeof e.agent.sub, "string", where);
      } else {
        // The policy ran: the event names the bundle revision that decided.
        assert.equal(e.bundles["mcp-authz"]?.revision, "test-rev-1", where);
        assert.notEqual(e.input, null, where);
        // A list's items were decided one by one; its event carries `list`, not one result.
        if (e.list === undefined) assert.notEqual(e.result, null, where);
        assert.equal(typeof e.agent.sub, "string", where);
      }
    }
  });
});
