import assert from "node:assert/strict";
import { AuditRecord, sensitiveKeyMatcher } from "../../../gateway/audit/index.js";
import { REDACTED } from "../../../gateway/audit/mask.js";
import { sensitiveArgumentPointers } from "../../../gateway/audit/sensitive-keys.js";
import { allowOutcome, ManualClock, policyInput, sequentialIds } from "./helpers.js";

describe("always-masked argument keys", () => {
  const cases: Array<{ note: string; args: unknown; opts?: { keys?: string[]; defaultKeys?: boolean }; pointers: string[] }> = [
    { note: "password, token and api_key-like keys at the top level", args: { password: "p", githubToken: "t", "X-Api-Key": "k", path: "/d" }, pointers: ["/input/request/arguments/password", "/input/request/arguments/githubToken", "/input/request/arguments/X-Api-Key"] },
    { note: "keys nested in objects and arrays", args: { db: { conn: [{ client_secret: "s" }] } }, pointers: ["/input/request/arguments/db/conn/0/client_secret"] },
    { note: "a matching key's whole value, not its children", args: { credentials: { user: "u", pass: "p" } }, pointers: ["/input/request/arguments/credentials"] },
    { note: "a key with a slash, escaped as RFC 6901 wants", args: { "a/secret": 1 }, pointers: ["/input/request/arguments/a~1secret"] },
    { note: "nothing without sensitive keys", args: { path: "/data", count: 3 }, pointers: [] },
    { note: "configured keys on top of the defaults", args: { ssn: "1", password: "p" }, opts: { keys: ["ssn"] }, pointers: ["/input/request/arguments/ssn", "/input/request/arguments/password"] },
    { note: "defaults off: only configured keys", args: { ssn: "1", password: "p" }, opts: { keys: ["ssn"], defaultKeys: false }, pointers: ["/input/request/arguments/ssn"] },
    { note: "null arguments", args: null, pointers: [] },
  ];
  for (const c of cases) {
    it(c.note, () => assert.deepEqual(sensitiveArgumentPointers(c.args, sensitiveKeyMatcher(c.opts)), c.pointers));
  }

  it("masks them in the event and lists them in masked, leaving the caller's input untouched", () => {
    const input = policyInput({ path: "/data/x", auth: { api_key: "sk-live-123" }, password: "hunter2" });
    const rec = new AuditRecord(
      { instanceId: "gw", version: "0", clock: new ManualClock(), ids: sequentialIds(), resultCapBytes: 64, maskKeys: sensitiveKeyMatcher(), alwaysMask: ["/input/agent/claims/email"] },
      { server: "files", method: "tools/call" },
    );
    rec.decision(input, allowOutcome());
    const e = rec.finish("allowed");
    const ev = e.input as typeof input;
    assert.equal(ev.request.arguments?.password, REDACTED);
    assert.deepEqual(ev.request.arguments?.auth, { api_key: REDACTED });
    assert.equal(ev.agent.claims.email, REDACTED);
    assert.deepEqual(e.masked, ["/input/agent/claims/email", "/input/request/arguments/auth/api_key", "/input/request/arguments/password"]);
    assert.deepEqual(e.erased, []);
    assert.equal(input.request.arguments?.password, "hunter2");
    assert.equal(JSON.stringify(e).includes("sk-live-123"), false);
  });
});
