/**
 * A fake audit log for the proxy (AuditSinkLike): collects events, or rejects them to simulate a
 * failing log.
 *
 *   const audit = new FakeAudit();
 *   audit.failing = true;   // record() now rejects; the event lands in `refused`, not `events`
 *   audit.only();           // the one event written, or an assertion error naming how many there were
 */
import assert from "node:assert/strict";
import type { AuditEvent } from "../../gateway/audit/index.js";
import type { AuditSinkLike } from "../../gateway/proxy/index.js";

export class FakeAudit implements AuditSinkLike {
  readonly events: AuditEvent[] = [];
  readonly refused: AuditEvent[] = [];
  failing = false;
  /** Admission (AuditLog.admit); replace it to simulate a full disk or outbox. */
  admit: () => Promise<void> = async () => undefined;

  async record(event: AuditEvent): Promise<void> {
    if (this.failing) {
      this.refused.push(event);
      throw new Error("fake audit log: disk full");
    }
    this.events.push(event);
  }

  /** The single event written so far. */
  only(): AuditEvent {
    assert.equal(this.events.length, 1, `expected one audit event, got ${this.events.length}: ${JSON.stringify(this.events.map((e) => [e.outcome, e.mcp.method, e.mcp.tool]))}`);
    return this.events[0]!;
  }

  clear(): void {
    this.events.length = 0;
    this.refused.length = 0;
  }
}
