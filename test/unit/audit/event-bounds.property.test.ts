/**
 * Property (fast-check): whatever hostile values the stages hand an AuditRecord, finish() never
 * throws, the chain seals it (canonical JSON), its JSONL line with the chain is at most
 * audit.maxEventBytes, and the chain hash still verifies on the line as read back.
 */
import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import fc from "fast-check";
import { AuditChain, AuditRecord, sensitiveKeyMatcher, type AuditEvent } from "../../../gateway/audit/index.js";
import { chainHash } from "../../../gateway/audit/chain.js";
import { jsonLine } from "../../../gateway/audit/jsonl.js";
import type { PolicyInput } from "../../../gateway/policy/index.js";
import { runs } from "../hostile/arbitraries.js";
import { allowOutcome, ManualClock, policyInput, sequentialIds } from "./helpers.js";

/** Any UTF-16 code units: lone surrogates, controls, U+2028/9, quotes, backslashes. */
const units = fc.array(fc.integer({ min: 0, max: 0xffff }), { maxLength: 40 }).map((a) => String.fromCharCode(...a));
/** Up to 1.5 M characters (over the largest budget tried once escaped), that escape to 6 bytes or not at all. */
const hugeString = fc
  .tuple(fc.constantFrom("x", "\u0000", "\u2028", "é", "😀", '"', "\ud800"), fc.integer({ min: 1, max: 1536 * 1024 }))
  .map(([c, n]) => c.repeat(Math.ceil(n / c.length)));
const hostileString = fc.oneof({ weight: 16, arbitrary: units }, { weight: 1, arbitrary: hugeString }, { weight: 1, arbitrary: fc.constantFrom("__proto__", "~/.ssh/id_rsa", "a/b~c%2F", "password") });

/** JSON-ish values with hostile strings and keys, sometimes wide, sometimes nested thousands deep. */
const shallow = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    hostileString,
    fc.double(),
    fc.boolean(),
    fc.constant(null),
    fc.array(tie("value"), { maxLength: 4 }),
    fc.dictionary(hostileString, tie("value"), { maxKeys: 4 }),
  ),
})).value;
const deep = fc.tuple(shallow, fc.integer({ min: 1, max: 10_000 }), fc.boolean()).map(([leaf, depth, arrays]) => {
  let v: unknown = leaf;
  for (let i = 0; i < depth; i++) v = arrays ? [v] : { k: v, password: "p" };
  return v;
});
const wide = fc.integer({ min: 1, max: 50_000 }).map((n) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`token_${i}`, i])));
const hostileValue = fc.oneof({ weight: 5, arbitrary: shallow }, { weight: 2, arbitrary: deep }, { weight: 1, arbitrary: wide });

const scenario = fc.record({
  maxEventBytes: fc.integer({ min: 16 * 1024, max: 1024 * 1024 }),
  resultCapBytes: fc.constantFrom(0, 64, 4096, 2 * 1024 * 1024),
  init: fc.record({ server: hostileString, method: hostileString, requestId: fc.oneof(hostileString, fc.integer(), fc.constant(null)), sessionId: fc.option(hostileString), requestedBy: fc.option(hostileString) }, { requiredKeys: [] }),
  agent: fc.option(fc.record({ sub: hostileString, client_id: fc.option(hostileString) })),
  decision: fc.option(
    fc.record({
      args: hostileValue,
      claims: fc.dictionary(hostileString, shallow, { maxKeys: 3 }),
      tool: fc.option(hostileString),
      raw: hostileValue,
      mask: fc.array(fc.oneof(hostileString, fc.constantFrom("/input/request/arguments/k", "/result/allow", "/input")), { maxLength: 3 }),
      revision: hostileString,
      error: fc.option(fc.record({ code: fc.constantFrom("policy_eval_error", "policy_malformed"), message: hostileString })),
    }),
  ),
  list: fc.option(fc.tuple(fc.array(hostileString, { maxLength: 5 }), fc.oneof(fc.array(hostileString, { maxLength: 5 }), fc.integer({ min: 0, max: 30_000 }).map((n) => Array.from({ length: n }, (_, i) => `hidden_${i}`))))),
  toolResult: fc.option(hostileValue),
  failures: fc.array(fc.tuple(hostileString, hostileString), { maxLength: 2 }),
  outcome: fc.constantFrom("allowed", "denied", "rate_limited", "unauthenticated", "invalid", "error" as const),
});

const signingKey = generateKeyPairSync("ed25519").privateKey;

describe("AuditRecord.finish under hostile values (fast-check)", function () {
  this.timeout(300_000);

  it(`never throws, seals, fits audit.maxEventBytes and verifies after a round trip (${runs(150)} runs)`, () => {
    fc.assert(
      fc.property(scenario, (s) => {
        const clock = new ManualClock();
        const rec = new AuditRecord(
          { instanceId: "gw", version: "0", clock, ids: sequentialIds("p"), resultCapBytes: s.resultCapBytes, maxEventBytes: s.maxEventBytes, maskKeys: sensitiveKeyMatcher(), alwaysMask: ["/input/agent/claims/email"], log: () => undefined },
          s.init as never,
        );
        if (s.agent) rec.agent({ sub: s.agent.sub, client_id: s.agent.client_id });
        if (s.decision) {
          const base = policyInput();
          const input = {
            ...base,
            agent: { ...base.agent, claims: s.decision.claims },
            request: { ...base.request, tool: s.decision.tool, arguments: s.decision.args as Record<string, unknown> },
          } as PolicyInput;
          rec.decision(input, allowOutcome({ raw: s.decision.raw, revision: s.decision.revision, decision: { allow: true, reasons: [], mask: s.decision.mask }, ...(s.decision.error ? { error: s.decision.error } : {}) }));
        }
        if (s.list) rec.list(s.list[0], s.list[1]);
        if (s.toolResult !== null) rec.toolResult(s.toolResult);
        for (const [code, message] of s.failures) rec.fail(code, message);

        let ev: AuditEvent | undefined;
        assert.doesNotThrow(() => (ev = rec.finish(s.outcome)));
        const chain = new AuditChain({ epoch: "9f1c2e4a-0000-4000-8000-000000000000", signingKey, checkpointEvery: 1, keyId: "\u0000".repeat(128) });
        let sealed: AuditEvent | undefined;
        assert.doesNotThrow(() => (sealed = chain.seal(ev as AuditEvent)));
        const line = jsonLine(sealed);
        const bytes = Buffer.byteLength(line) + 1;
        assert.ok(bytes <= s.maxEventBytes, `${bytes} bytes > maxEventBytes ${s.maxEventBytes} (truncated: ${JSON.stringify(sealed?.truncated)})`);
        assert.equal(line.includes("\n"), false);
        assert.equal(chainHash(JSON.parse(line) as Record<string, unknown>), sealed?.chain?.hash);
      }),
      { numRuns: runs(150) },
    );
  });
});
