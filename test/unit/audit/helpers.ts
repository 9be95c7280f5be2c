import type { Clock, IdSource } from "../../../gateway/shared/clock.js";
import type { DecisionOutcome, PolicyInput } from "../../../gateway/policy/index.js";

/** A clock the test moves by hand. */
export class ManualClock implements Clock {
  constructor(
    public ms = Date.UTC(2026, 10, 24, 10, 0, 0, 123),
    public ns = 1_000_000_000n,
  ) {}
  now(): number {
    return this.ms;
  }
  monotonicNs(): bigint {
    return this.ns;
  }
  advanceMs(ms: number): void {
    this.ms += ms;
    this.ns += BigInt(Math.round(ms * 1e6));
  }
}

export function sequentialIds(prefix = "id"): IdSource {
  let n = 0;
  return () => `${prefix}-${++n}`;
}

export function policyInput(args: Record<string, unknown> = { path: "/data/q3.csv" }): PolicyInput {
  return {
    agent: {
      sub: "alice",
      iss: "https://idp.example.com/",
      client_id: "cli-1",
      scopes: ["mcp:tools"],
      roles: ["analyst"],
      claims: { sub: "alice", email: "alice@example.com" },
    },
    request: {
      method: "tools/call",
      server: "files",
      tool: "read_file",
      arguments: args,
      resource: null,
      prompt: null,
      session_id: "sess-1",
      protocol_version: "2025-11-25",
      source_ip: "127.0.0.1",
      time: "2026-11-24T10:00:00.123Z",
    },
    tool: null,
  };
}

export function allowOutcome(over: Partial<DecisionOutcome> = {}): DecisionOutcome {
  return {
    decision: { allow: true, reasons: [] },
    raw: { allow: true, reasons: [] },
    revision: "rev-42",
    elapsedMs: 0.02,
    ...over,
  };
}

import { AuditRecord } from "../../../gateway/audit/index.js";
import type { AuditEvent, AuditLogger } from "../../../gateway/audit/index.js";

/** A complete allowed event, as the pipeline would emit it. */
export function sampleEvent(ids: () => string = sequentialIds("ev"), sub = "alice"): AuditEvent {
  const clock = new ManualClock();
  const rec = new AuditRecord(
    { instanceId: "gw-test", version: "0.0.0", clock, ids, resultCapBytes: 256 },
    { server: "files", method: "tools/call", requestId: 1, requestedBy: "127.0.0.1" },
  );
  rec.agent({ sub, client_id: null });
  rec.decision(policyInput(), allowOutcome());
  rec.upstreamStarted();
  clock.advanceMs(1);
  rec.upstreamFinished();
  rec.toolResult({ content: [{ type: "text", text: "ok" }] });
  return rec.finish("allowed");
}

/** Resolves once `cond()` holds, polling every 2 ms; throws after `timeoutMs`. */
export async function until(cond: () => boolean, timeoutMs = 2000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 2));
  }
}

export interface LogEntry {
  level: string;
  msg: string;
  fields: Record<string, unknown>;
}

/** A logger that keeps every line for assertions. */
export function recorder(): { entries: LogEntry[]; logger: AuditLogger } {
  const entries: LogEntry[] = [];
  return { entries, logger: (level, msg, fields) => entries.push({ level, msg, fields: fields ?? {} }) };
}
