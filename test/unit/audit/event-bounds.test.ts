/**
 * finish() is total and every event is bounded by construction (docs/audit.md "Size limits"):
 * hostile cases one by one. The property test (event-bounds.property.test.ts) covers their mixes.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { AuditChain, AuditRecord, sensitiveKeyMatcher, type AuditContext, type AuditEvent } from "../../../gateway/audit/index.js";
import { chainHash } from "../../../gateway/audit/chain.js";
import { jsonLine } from "../../../gateway/audit/jsonl.js";
import { canonicalJsonOfValue } from "../../../gateway/policy/index.js";
import { auditSchemaErrors } from "../../support/audit-schema.js";
import { allowOutcome, ManualClock, policyInput, sequentialIds } from "./helpers.js";

const KiB = 1024;
const MiB = 1024 * KiB;

function context(over: Partial<AuditContext> = {}): AuditContext {
  return { instanceId: "gw-1", version: "0.1.0", clock: new ManualClock(), ids: sequentialIds("dec"), resultCapBytes: 4096, maskKeys: sensitiveKeyMatcher(), ...over };
}

const lineBytes = (e: unknown): number => Buffer.byteLength(jsonLine(e)) + 1;

/** Seals like AuditLog.record, checks the size and that the hash survives a JSONL round trip. */
function sealChecked(ev: AuditEvent, maxEventBytes: number): AuditEvent {
  const s = new AuditChain({ epoch: "epoch-1" }).seal(ev);
  assert.ok(lineBytes(s) <= maxEventBytes, `event is ${lineBytes(s)} bytes, over ${maxEventBytes}`);
  const back = JSON.parse(jsonLine(s)) as AuditEvent & Record<string, unknown>;
  assert.equal(chainHash(back), s.chain?.hash, "the chain hash verifies on the line as read back");
  return s;
}

function nested(depth: number, leaf: unknown): unknown {
  let v = leaf;
  for (let i = 0; i < depth; i++) v = i % 2 ? [v] : { a: v };
  return v;
}

function depthOf(v: unknown): number {
  let d = 0;
  for (;;) {
    if (Array.isArray(v)) v = v[0];
    else if (typeof v === "object" && v !== null && "a" in v) v = (v as { a: unknown }).a;
    else return d;
    d++;
  }
}

describe("AuditRecord.finish: bounded events", () => {
  it("cuts arguments nested 10,000 deep at 64 levels below input, with a depth marker", () => {
    const rec = new AuditRecord(context(), { server: "files", method: "tools/call" });
    rec.decision(policyInput({ deep: nested(10_000, "bottom") }), allowOutcome());
    const ev = rec.finish("allowed");
    assert.doesNotThrow(() => canonicalJsonOfValue(ev));
    const args = (ev.input as { request: { arguments: { deep: unknown } } }).request.arguments;
    // input → request → arguments → deep: 3 levels, so 61 containers of the chain are kept.
    assert.equal(depthOf(args.deep), 61);
    assert.match(JSON.stringify(args), /\{"portcullis\.truncated":\{"depth":64\}\}/);
    assert.deepEqual(ev.truncated, ["/input/request/arguments"]);
    sealChecked(ev, 512 * KiB);
    assert.deepEqual(auditSchemaErrors(JSON.parse(JSON.stringify(new AuditChain({ epoch: "e" }).seal(ev)))), []);
  });

  it("cuts a policy result nested deeply the same way", () => {
    const rec = new AuditRecord(context());
    rec.decision(policyInput(), allowOutcome({ raw: { allow: true, debug: nested(5000, 1) } }));
    const ev = rec.finish("allowed");
    assert.deepEqual(ev.truncated, ["/result"]);
    sealChecked(ev, 512 * KiB);
  });

  it("masks a credential key nested 40 deep (below the old 32-level walk) and never writes one cut off below 64", () => {
    const rec = new AuditRecord(context());
    rec.decision(policyInput({ at40: nested(40, { password: "hunter2" }), at100: nested(100, { password: "swordfish" }) }), allowOutcome());
    const line = jsonLine(rec.finish("allowed"));
    assert.equal(line.includes("hunter2"), false);
    assert.equal(line.includes("swordfish"), false);
    assert.match(line, /\*\*REDACTED\*\*/);
  });

  it("caps strings from the request outside input, with the number of characters cut, and lists them", () => {
    const huge = "m".repeat(2 * MiB);
    const rec = new AuditRecord(context(), { server: huge, method: huge, requestId: huge, sessionId: huge, requestedBy: huge });
    rec.fail("upstream_error", huge);
    const ev = rec.finish("error");
    assert.equal(ev.mcp.method, `${"m".repeat(256)}…[+${2 * MiB - 256} chars]`);
    assert.equal(ev.error?.message, `${"m".repeat(1024)}…[+${2 * MiB - 1024} chars]`);
    assert.deepEqual(ev.truncated, ["/error/message", "/mcp/method", "/mcp/request_id", "/mcp/server", "/mcp/session_id", "/requested_by"]);
    sealChecked(ev, 512 * KiB);
  });

  it("never splits a surrogate pair when capping, and keeps lone surrogates encodable", () => {
    const rec = new AuditRecord(context(), { method: `${"a".repeat(255)}😀tail`, server: "\ud800 lone \udc00" });
    rec.decision(policyInput({ text: "x\udfffy", "\ud83d": 1 }), allowOutcome());
    const ev = rec.finish("allowed");
    assert.equal(ev.mcp.method, `${"a".repeat(255)}…[+6 chars]`);
    sealChecked(ev, 512 * KiB);
  });

  it("replaces over-budget arguments by their size and the sha256 of their masked JSON, and drops the masks inside", () => {
    const args = { password: "hunter2", blob: "b".repeat(600 * KiB) };
    const rec = new AuditRecord(context());
    rec.decision(policyInput(args), allowOutcome());
    const ev = rec.finish("allowed");
    const maskedJson = JSON.stringify({ password: "**REDACTED**", blob: args.blob });
    const marker = (ev.input as { request: { arguments: unknown } }).request.arguments;
    assert.deepEqual(marker, {
      "portcullis.truncated": { bytes: Buffer.byteLength(maskedJson), sha256: createHash("sha256").update(maskedJson).digest("hex") },
    });
    assert.deepEqual(ev.masked, []);
    assert.deepEqual(ev.truncated, ["/input/request/arguments"]);
    assert.equal(JSON.stringify(ev).includes("hunter2"), false);
    sealChecked(ev, 512 * KiB);
  });

  it("replaces over-budget arguments that merely look like a marker", () => {
    const fake = { "portcullis.truncated": "x".repeat(600 * KiB) };
    const rec = new AuditRecord(context());
    rec.decision(policyInput(fake), allowOutcome());
    const ev = rec.finish("allowed");
    assert.deepEqual(ev.truncated, ["/input/request/arguments"]);
    const marker = (ev.input as { request: { arguments: { "portcullis.truncated": { bytes: number } } } }).request.arguments;
    assert.equal(marker["portcullis.truncated"].bytes, JSON.stringify(fake).length);
    sealChecked(ev, 512 * KiB);
  });

  it("does not touch the pipeline's own input object when it replaces arguments", () => {
    const input = policyInput({ blob: "b".repeat(600 * KiB) });
    const rec = new AuditRecord(context({ maskKeys: null }));
    rec.decision(input, allowOutcome());
    rec.finish("allowed");
    assert.equal((input.request.arguments as { blob: string }).blob.length, 600 * KiB);
  });

  it("then replaces the result, then shrinks the tool result excerpt", () => {
    const max = 64 * KiB;
    const rec = new AuditRecord(context({ maxEventBytes: max, resultCapBytes: 1 * MiB }));
    rec.decision(policyInput({ a: "a".repeat(40 * KiB) }), allowOutcome({ raw: { allow: true, note: "n".repeat(40 * KiB) } }));
    rec.toolResult({ content: [{ type: "text", text: "t".repeat(2 * MiB) }] });
    const ev = rec.finish("allowed");
    assert.deepEqual(ev.truncated, ["/input/request/arguments", "/result", "/tool_result/content"]);
    assert.equal(ev.tool_result?.truncated, true);
    assert.equal(ev.tool_result?.bytes, Buffer.byteLength(JSON.stringify({ content: [{ type: "text", text: "t".repeat(2 * MiB) }] })));
    assert.ok((ev.tool_result?.content.length ?? 0) > 40 * KiB, "the excerpt keeps what fits");
    sealChecked(ev, max);
  });

  it("summarizes a tool result of 200 MB and stays within the budget", function () {
    this.timeout(30_000);
    const rec = new AuditRecord(context({ resultCapBytes: 8 * MiB }));
    rec.toolResult({ content: [{ type: "text", text: "x".repeat(200 * MiB) }] });
    const ev = rec.finish("allowed");
    assert.ok((ev.tool_result?.bytes ?? 0) > 200 * MiB);
    assert.deepEqual(ev.truncated, ["/tool_result/content"]);
    sealChecked(ev, 512 * KiB);
  });

  it("replaces list names that do not fit", () => {
    const names = Array.from({ length: 20_000 }, (_, i) => `tool_${i}_${"n".repeat(40)}`);
    const rec = new AuditRecord(context(), { method: "tools/list" });
    rec.list(names.slice(0, 10), names);
    const ev = rec.finish("allowed");
    assert.deepEqual(ev.truncated, ["/list/hidden"]);
    assert.ok(Array.isArray(ev.list?.visible));
    assert.deepEqual(auditSchemaErrors(JSON.parse(JSON.stringify(new AuditChain({ epoch: "e" }).seal(ev)))), []);
    sealChecked(ev, 512 * KiB);
  });

  it("at the 16 KiB minimum, tightens the caps when every string is hostile", function () {
    this.timeout(20_000); // about 30 MiB of strings that escape to 6 bytes each
    const max = 16 * KiB;
    const nasty = "\u0000".repeat(2 * MiB); // 6 bytes per character once escaped
    const rec = new AuditRecord(context({ maxEventBytes: max, instanceId: nasty, bundleRevision: () => nasty }), {
      server: nasty, method: nasty, requestId: nasty, sessionId: nasty, requestedBy: nasty,
    });
    rec.agent({ sub: nasty, client_id: nasty });
    rec.decision(
      { ...policyInput({ a: nasty }), request: { ...policyInput().request, tool: nasty, resource: nasty, prompt: nasty, arguments: { a: nasty } } },
      allowOutcome({ raw: nasty, revision: nasty, error: { code: "policy_eval_error", message: nasty }, shadow: { revision: nasty, allow: false, differs: true, error: nasty } }),
    );
    rec.list([nasty], [nasty]);
    const ev = rec.finish("error");
    assert.notEqual(ev.error?.code, "audit_event_unbounded", "the tight caps suffice: no skeleton");
    assert.ok(ev.mcp.method.length < 64);
    sealChecked(ev, max);
  });

  it("returns a skeleton event instead of throwing when a context callback throws", () => {
    const rec = new AuditRecord(context({ bundleRevision: () => { throw new Error("registry gone"); } }), { server: "files", method: "tools/call" });
    rec.fail("auth_missing_token", "no token");
    const ev = rec.finish("unauthenticated");
    assert.equal(ev.error?.code, "audit_event_unbounded");
    assert.match(ev.error?.message ?? "", /registry gone/);
    assert.deepEqual(ev.truncated, [""]);
    assert.equal(ev.mcp.server, "files");
    sealChecked(ev, 512 * KiB);
  });

  it("encodes nothing on the hot path: a small event is never stringified by finish", () => {
    const rec = new AuditRecord(context({ alwaysMask: ["/input/agent/claims/email"] }), { server: "files", method: "tools/call", requestId: 1 });
    rec.decision(policyInput({ path: "/data/x", password: "p" }), allowOutcome());
    rec.toolResult({ content: [{ type: "text", text: "ok" }] });
    const original = JSON.stringify;
    let calls = 0;
    JSON.stringify = ((...a: Parameters<typeof JSON.stringify>) => {
      calls++;
      return original(...a);
    }) as typeof JSON.stringify;
    try {
      rec.finish("allowed");
    } finally {
      JSON.stringify = original;
    }
    assert.equal(calls, 0);
  });

  it("clamps a maxEventBytes below the minimum to 16 KiB", () => {
    const rec = new AuditRecord(context({ maxEventBytes: 100 }));
    rec.decision(policyInput({ blob: "b".repeat(20 * KiB) }), allowOutcome());
    const ev = rec.finish("allowed");
    assert.deepEqual(ev.truncated, ["/input/request/arguments"]);
    sealChecked(ev, 16 * KiB);
  });

  it("turns values canonical JSON cannot encode into plain JSON, so the chain seals", () => {
    const cyclic: Record<string, unknown> = { name: "loop" };
    cyclic.self = cyclic;
    const args = { when: new Date(Date.UTC(2026, 0, 1)), big: 12n, fn: () => 1, sym: Symbol("s"), nan: Number.NaN, list: [undefined, () => 1], cyclic };
    const rec = new AuditRecord(context());
    rec.decision(policyInput(args as unknown as Record<string, unknown>), allowOutcome());
    const ev = sealChecked(rec.finish("allowed"), 512 * KiB);
    const got = (ev.input as { request: { arguments: Record<string, unknown> } }).request.arguments;
    assert.equal(got.when, "2026-01-01T00:00:00.000Z");
    assert.equal(got.big, "12");
    assert.equal("fn" in got, false);
    assert.equal(got.nan, null);
    assert.deepEqual(got.list, [null, null]);
  });
});
