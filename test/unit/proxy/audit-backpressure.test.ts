import assert from "node:assert/strict";
import { AuditBackpressureError } from "../../../gateway/audit/index.js";
import { ERRORS } from "../../../gateway/proxy/index.js";
import { allow } from "../../fakes/policy.js";
import { ECHO, Harness, READ_FILE } from "./pipeline-harness.js";

/**
 * The back-pressure gate of the decision points (audit.onFull, gateway/audit/outbox.ts): a full
 * audit outbox refuses a request before it is decided or forwarded, and block mode holds it.
 */
describe("proxy pipeline: audit back-pressure", () => {
  let h: Harness;
  let session: string;
  let gate: () => Promise<void> = () => Promise.resolve();

  beforeEach(async () => {
    h = await Harness.start({ script: { toolPages: [[READ_FILE, ECHO]], methods: { "tools/call": { result: { content: [] } } } }, decide: () => allow() });
    h.audit.admit = () => gate();
    session = await h.initialize();
  });
  afterEach(async () => {
    gate = () => Promise.resolve();
    await h?.close();
  });

  const cases = [
    { note: "tools/call", method: "tools/call", params: { name: "echo", arguments: { text: "x" } } },
    { note: "resources/read", method: "resources/read", params: { uri: "file:///data/x" } },
    { note: "tools/list", method: "tools/list", params: {} },
  ];
  for (const c of cases) {
    it(`refuses a ${c.note} with audit_backpressure when the outbox is full, before deciding or forwarding it`, async () => {
      gate = () => Promise.reject(new AuditBackpressureError("test: full"));
      const reply = await h.rpc(session, c.method, c.params);
      assert.equal(reply.status, 200);
      assert.deepEqual(reply.json?.error, { code: ERRORS.audit_backpressure.rpc, message: ERRORS.audit_backpressure.message });
      assert.deepEqual(h.upstream.requests(c.method).filter((r) => typeof r.id === "number"), [], "not forwarded");
      // Not decided, but on record: the refusal itself is one event with no decision in it.
      const event = h.audit.only();
      assert.deepEqual([event.outcome, event.error?.code, event.result], ["error", "audit_backpressure", null]);
      assert.equal(h.engine.inputsFor(c.method).length, 0, "not decided");
    });
  }

  it("answers audit_unavailable when the gate fails for another reason (a broken outbox)", async () => {
    gate = () => Promise.reject(new Error("EIO"));
    const reply = await h.rpc(session, "tools/call", { name: "echo", arguments: {} });
    assert.deepEqual(reply.json?.error, { code: ERRORS.audit_unavailable.rpc, message: ERRORS.audit_unavailable.message });
  });

  it("holds a call while the gate waits (onFull block) and serves it once there is room", async () => {
    let open!: () => void;
    gate = () => new Promise<void>((r) => (open = r));
    const pending = h.rpc(session, "tools/call", { name: "echo", arguments: { text: "later" } });
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(h.upstream.requests("tools/call").length, 0, "not forwarded while blocked");
    open();
    const reply = await pending;
    assert.equal(reply.json?.error, undefined);
    assert.equal(h.upstream.requests("tools/call").length, 1);
    assert.equal(h.audit.events.length, 1);
  });
});
