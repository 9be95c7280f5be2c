/**
 * Mask pointers are RFC 6901 (`~1` is `/`, `~0` is `~`, `%xx` is literal), sensitive keys with
 * `/`, `~` or `%` are masked, and a pointer that matches nothing is reported.
 */
import assert from "node:assert/strict";
import { AuditRecord, sensitiveKeyMatcher, type AuditContext } from "../../../gateway/audit/index.js";
import { applyMasks, REDACTED } from "../../../gateway/audit/mask.js";
import { sensitiveArgumentPointers } from "../../../gateway/audit/sensitive-keys.js";
import { allowOutcome, ManualClock, policyInput, sequentialIds } from "./helpers.js";

describe("mask pointers: RFC 6901 escaping", () => {
  const doc = () => ({ "a/b": 1, "m~n": 2, "~1": 3, "a%2Fb": 4, "%": 5, "": 6 });
  const cases: Array<{ note: string; pointer: string; key: keyof ReturnType<typeof doc> | null }> = [
    { note: "~1 is a slash", pointer: "/input/a~1b", key: "a/b" },
    { note: "~0 is a tilde", pointer: "/input/m~0n", key: "m~n" },
    { note: "~01 is the key ~1 (decoded ~1 first, then ~0)", pointer: "/input/~01", key: "~1" },
    { note: "%2F is taken literally, never URL-decoded", pointer: "/input/a%2Fb", key: "a%2Fb" },
    { note: "a lone % is a plain character", pointer: "/input/%", key: "%" },
    { note: "an empty segment is the empty key", pointer: "/input/", key: "" },
    { note: "an invalid escape is literal and matches no decoded key", pointer: "/input/m~2n", key: null },
  ];
  for (const c of cases) {
    it(c.note, () => {
      const out = applyMasks({ input: doc(), result: null }, [c.pointer]);
      const got = out.input as Record<string, unknown>;
      const redacted = Object.keys(got).filter((k) => got[k] === REDACTED);
      assert.deepEqual(redacted, c.key === null ? [] : [c.key]);
    });
  }
});

describe("sensitive keys with /, ~ or % in their name", () => {
  it("emits escaped pointers that applyMasks resolves", () => {
    const args = { "~/.ssh/id_rsa": "-----BEGIN OPENSSH PRIVATE KEY-----", "x%2Ftoken": "t", nested: { "a~b/secret": "s" } };
    const pointers = sensitiveArgumentPointers(args, sensitiveKeyMatcher());
    assert.deepEqual(pointers, ["/input/request/arguments/~0~1.ssh~1id_rsa", "/input/request/arguments/x%2Ftoken", "/input/request/arguments/nested/a~0b~1secret"]);
    const out = applyMasks({ input: { request: { arguments: args } }, result: null }, pointers);
    assert.deepEqual(out.masked, [...pointers].sort());
    assert.equal(JSON.stringify(out.input).includes("BEGIN"), false);
  });

  const defaults = ["~/.ssh/id_rsa", "id_ed25519", "id_ecdsa", "id_dsa", "ssh_key", "sshPrivateKey", "privkey.pem", "private_key"];
  for (const key of defaults) {
    it(`the default matcher counts ${key} as a credential`, () => assert.equal(sensitiveKeyMatcher()?.(key), true));
  }

  it("masks a private key through an AuditRecord", () => {
    const rec = new AuditRecord(
      { instanceId: "gw", version: "0", clock: new ManualClock(), ids: sequentialIds(), resultCapBytes: 64, maskKeys: sensitiveKeyMatcher() },
      { server: "files", method: "tools/call" },
    );
    rec.decision(policyInput({ files: { "~/.ssh/id_rsa": "-----BEGIN OPENSSH PRIVATE KEY-----\nb3Blbn..." } }), allowOutcome());
    const ev = rec.finish("allowed");
    assert.deepEqual(ev.masked, ["/input/request/arguments/files/~0~1.ssh~1id_rsa"]);
    assert.equal(JSON.stringify(ev).includes("BEGIN OPENSSH"), false);
  });

  it("finds a credential key at any depth, without recursion", () => {
    let args: unknown = { api_key: "k" };
    for (let i = 0; i < 20_000; i++) args = { n: args };
    const pointers = sensitiveArgumentPointers(args, sensitiveKeyMatcher());
    assert.equal(pointers.length, 1);
    assert.ok(pointers[0]?.endsWith("/n/api_key"));
    assert.equal(pointers[0]?.split("/").length, 4 + 20_000 + 1);
  });
});

describe("mask pointers that match nothing are logged", () => {
  function setup(over: Partial<AuditContext> = {}) {
    const clock = new ManualClock();
    const logs: Array<{ level: string; msg: string; fields: Record<string, unknown> | undefined }> = [];
    const ctx: AuditContext = {
      instanceId: "gw", version: "0", clock, ids: sequentialIds("d"), resultCapBytes: 64,
      log: (level, msg, fields) => void logs.push({ level, msg, fields }),
      ...over,
    };
    const decide = (mask: string[]) => {
      const rec = new AuditRecord(ctx, { server: "files", method: "tools/call" });
      rec.decision(policyInput({ path: "/x", password: "p" }), allowOutcome({ decision: { allow: true, reasons: [], mask } }));
      return rec.finish("allowed");
    };
    return { clock, logs, decide };
  }

  it("warns once per distinct pointer per minute, naming the pointer and the decision", () => {
    const { clock, logs, decide } = setup();
    decide(["/input/request/arguments/passwrod"]);
    decide(["/input/request/arguments/passwrod"]);
    assert.deepEqual(logs, [{ level: "warn", msg: "mask pointer matched nothing", fields: { pointer: "/input/request/arguments/passwrod", decision_id: "d-1" } }]);
    decide(["/input/request/arguments/other"]);
    assert.equal(logs.length, 2);
    clock.advanceMs(60_000);
    decide(["/input/request/arguments/passwrod"]);
    assert.equal(logs.length, 3);
    assert.equal(logs[2]?.fields?.decision_id, "d-4");
  });

  it("warns about audit.mask.paths too, and about the old %2F syntax that no longer matches", () => {
    const { logs, decide } = setup({ alwaysMask: ["/input/agent/claims/phone"] });
    decide(["/input/request/arguments/pass%77ord"]);
    assert.deepEqual(logs.map((l) => l.fields?.pointer).sort(), ["/input/agent/claims/phone", "/input/request/arguments/pass%77ord"]);
  });

  it("does not warn about a pointer that matched", () => {
    const { logs, decide } = setup({ alwaysMask: ["/input/agent/claims/email"] });
    decide(["/input/request/arguments/password"]);
    assert.deepEqual(logs, []);
  });

  it("holds back a flood of distinct pointers and says how many", () => {
    const { clock, logs, decide } = setup();
    decide(Array.from({ length: 150 }, (_, i) => `/input/nope${i}`));
    assert.equal(logs.length, 100);
    clock.advanceMs(60_000);
    decide(["/input/later"]);
    assert.equal(logs[100]?.fields?.suppressed, 50);
  });
});
