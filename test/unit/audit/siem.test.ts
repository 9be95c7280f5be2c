import assert from "node:assert/strict";
import { AuditChain, AuditRecord, toOcsf, type AuditEvent } from "../../../gateway/audit/index.js";
import { auditSchemaErrors } from "../../support/audit-schema.js";
import { ManualClock, sampleEvent, sequentialIds } from "./helpers.js";

function unauthenticated(): AuditEvent {
  const rec = new AuditRecord(
    { instanceId: "gw-test", version: "0.0.0", clock: new ManualClock(), ids: sequentialIds("u"), resultCapBytes: 16, bundleRevision: () => "rev-9" },
    { server: "files", method: "tools/call", requestId: null, requestedBy: "10.0.0.7" },
  );
  rec.fail("token_expired", "jwt expired");
  return rec.finish("unauthenticated");
}

const sealed = (e: AuditEvent): AuditEvent => JSON.parse(JSON.stringify(new AuditChain({ epoch: "e" }).seal(e))) as AuditEvent;

describe("audit event JSON Schema (docs/audit-event.schema.json)", () => {
  const valid: Array<{ note: string; event: () => AuditEvent }> = [
    { note: "an allowed tools/call with a tool result", event: () => sealed(sampleEvent()) },
    { note: "an unauthenticated request (null input, result and sub)", event: () => sealed(unauthenticated()) },
  ];
  for (const c of valid) it(`accepts ${c.note}`, () => assert.deepEqual(auditSchemaErrors(c.event()), []));

  const invalid: Array<{ note: string; change: (e: Record<string, unknown>) => void; path: string }> = [
    { note: "an event without its chain position", change: (e) => delete e.chain, path: "/" },
    { note: "an unknown outcome", change: (e) => (e.outcome = "maybe"), path: "/outcome" },
    { note: "a field the contract does not have", change: (e) => (e.extra = 1), path: "/" },
    { note: "a timestamp without nanoseconds", change: (e) => (e.timestamp = "2026-11-24T10:00:00Z"), path: "/timestamp" },
    { note: "a tool result digest that is not sha256 hex", change: (e) => ((e.tool_result as Record<string, unknown>).sha256 = "abc"), path: "/tool_result/sha256" },
  ];
  for (const c of invalid) {
    it(`rejects ${c.note}`, () => {
      const e = sealed(sampleEvent()) as unknown as Record<string, unknown>;
      c.change(e);
      const errors = auditSchemaErrors(e);
      assert.ok(errors.some((x) => x.startsWith(`${c.path} `)), errors.join("\n"));
    });
  }
});

describe("unauthenticated events", () => {
  it("carry the active bundle revision although no decision ran", () => {
    assert.deepEqual(unauthenticated().bundles, { "mcp-authz": { revision: "rev-9" } });
  });
});

describe("OCSF rendering (API Activity 6003)", () => {
  const cases: Array<{ note: string; event: () => AuditEvent; expect: Record<string, unknown> }> = [
    {
      note: "an allowed tool call is an allowed Other activity with the tool as resource",
      event: () => sealed(sampleEvent()),
      expect: { class_uid: 6003, category_uid: 6, activity_id: 99, type_uid: 600399, status_id: 1, action_id: 1, disposition_id: 1, resource: "read_file", user: "alice", operation: "tools/call" },
    },
    {
      note: "an unauthenticated call is a blocked failure with the error in status_detail",
      event: () => unauthenticated(),
      expect: { class_uid: 6003, category_uid: 6, activity_id: 99, type_uid: 600399, status_id: 2, action_id: 2, disposition_id: 2, resource: null, user: null, operation: "tools/call" },
    },
  ];
  for (const c of cases) {
    it(c.note, () => {
      const e = c.event();
      const o = toOcsf(e);
      assert.deepEqual(
        {
          class_uid: o.class_uid, category_uid: o.category_uid, activity_id: o.activity_id, type_uid: o.type_uid, status_id: o.status_id,
          action_id: o.action_id, disposition_id: o.disposition_id, resource: o.resources[0]?.name ?? null, user: o.actor.user.uid, operation: o.api.operation,
        },
        c.expect,
      );
      assert.equal(o.metadata.uid, e.decision_id);
      assert.equal(o.time, Date.parse(e.timestamp));
      assert.equal(o.unmapped.portcullis.outcome, e.outcome);
    });
  }

  it("maps listing and reading methods to the Read activity", () => {
    const e = sampleEvent();
    assert.equal(toOcsf({ ...e, mcp: { ...e.mcp, method: "tools/list" } }).type_uid, 600302);
    assert.equal(toOcsf({ ...e, mcp: { ...e.mcp, method: "resources/read" } }).activity_id, 2);
  });
});
