import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import { AuditChain, type AuditEvent } from "../../../gateway/audit/index.js";
import { verifyRecords, type StoredRecord } from "../../../gateway/audit/readers.js";
import { chainHash, GENESIS_HASH } from "../../../gateway/audit/chain.js";
import type { ChainProblemKind } from "../../../gateway/audit/verify.js";
import { sampleEvent, sequentialIds } from "./helpers.js";

const keys = generateKeyPairSync("ed25519");
const otherKeys = generateKeyPairSync("ed25519");

/** `n` sealed events of one instance, as JSONL records (checkpoint every 4th when signing). */
function stream(n: number, opts: { sign?: boolean; epoch?: string; every?: number } = {}): StoredRecord[] {
  const chain = new AuditChain({ epoch: opts.epoch ?? "epoch-1", ...(opts.sign === false ? {} : { signingKey: keys.privateKey }), checkpointEvery: opts.every ?? 4 });
  const ids = sequentialIds(opts.epoch ?? "ev");
  return Array.from({ length: n }, (_, i) => ({ where: `line ${i + 1}`, lane: "f", text: JSON.stringify(chain.seal(sampleEvent(ids))) }));
}

const parse = (r: StoredRecord): AuditEvent => JSON.parse(r.text) as AuditEvent;
const withText = (r: StoredRecord, e: unknown): StoredRecord => ({ ...r, text: JSON.stringify(e) });

/** Re-chains records from `from` on with correct hashes (an attacker without the signing key). */
function rechain(records: StoredRecord[], from: number): StoredRecord[] {
  const out = [...records];
  let prev = from === 0 ? GENESIS_HASH : parse(out[from - 1]!).chain!.hash;
  for (let i = from; i < out.length; i++) {
    const e = parse(out[i]!);
    const chain = { ...e.chain!, prev };
    const hash = chainHash({ ...e, chain } as unknown as Record<string, unknown>);
    const next = { ...e, chain: { ...chain, hash } };
    out[i] = withText(out[i]!, next);
    prev = hash;
  }
  return out;
}

function editOutcome(r: StoredRecord): StoredRecord {
  return withText(r, { ...parse(r), outcome: "denied" });
}

describe("audit hash chain", () => {
  it("numbers events 1, 2, 3 and links each to the previous hash", () => {
    const chain = new AuditChain({ epoch: "e" });
    const a = chain.seal(sampleEvent());
    const b = chain.seal(sampleEvent());
    assert.deepEqual([a.chain?.seq, b.chain?.seq], [1, 2]);
    assert.equal(a.chain?.prev, GENESIS_HASH);
    assert.equal(b.chain?.prev, a.chain?.hash);
    assert.equal(chainHash(JSON.parse(JSON.stringify(b)) as Record<string, unknown>), b.chain?.hash, "hash recomputes from the JSON line");
    assert.equal(a.chain?.signature, undefined, "no signature without a key");
    assert.deepEqual(chain.head(), { epoch: "e", seq: 2, hash: b.chain?.hash });
  });

  it("signs exactly every checkpointEvery-th event, with the key id", () => {
    const chain = new AuditChain({ epoch: "e", signingKey: keys.privateKey, checkpointEvery: 3, keyId: "k1" });
    const signed = Array.from({ length: 7 }, () => chain.seal(sampleEvent())).map((e) => e.chain?.signature !== undefined);
    assert.deepEqual(signed, [false, false, true, false, false, true, false]);
  });

  it("refuses a signing key that is not Ed25519", () => {
    const rsa = generateKeyPairSync("rsa", { modulusLength: 1024 });
    assert.throws(() => new AuditChain({ epoch: "e", signingKey: rsa.privateKey }), /Ed25519/);
  });
});

describe("verifyRecords", () => {
  const cases: Array<{ note: string; records: () => StoredRecord[]; key?: boolean; every?: number; first: { kind: ChainProblemKind; where: string } | null }> = [
    { note: "a clean signed stream verifies", records: () => stream(10), key: true, first: null },
    { note: "a clean unsigned stream verifies without a key", records: () => stream(5, { sign: false }), first: null },
    {
      note: "an edited record (hash left as it was) is named",
      records: () => stream(8).map((r, i) => (i === 4 ? editOutcome(r) : r)),
      first: { kind: "edited", where: "line 5" },
    },
    {
      note: "an edited record with its own hash recomputed breaks its successor's link",
      records: () => {
        const s = stream(8);
        s[4] = editOutcome(s[4]!);
        const fixed = rechain(s, 4);
        return [...fixed.slice(0, 5), ...s.slice(5)];
      },
      first: { kind: "edited", where: "line 5" },
    },
    {
      note: "a rewritten tail (every hash recomputed) is caught by the next checkpoint signature",
      records: () => {
        const s = stream(8);
        s[4] = editOutcome(s[4]!);
        return rechain(s, 4);
      },
      key: true,
      first: { kind: "bad_signature", where: "line 8" },
    },
    {
      note: "a deleted record leaves a gap named at the record after it",
      records: () => stream(8).filter((_, i) => i !== 2),
      first: { kind: "gap", where: "line 4" },
    },
    {
      note: "two swapped records are reported as reordered",
      records: () => {
        const s = stream(8);
        return [...s.slice(0, 3), s[4]!, s[3]!, ...s.slice(5)];
      },
      first: { kind: "reordered", where: "line 4" },
    },
    {
      note: "a forged checkpoint (signed with another key) is named",
      records: () => {
        const s = stream(8);
        const e = parse(s[3]!);
        const forged = new AuditChain({ epoch: "x", signingKey: otherKeys.privateKey, checkpointEvery: 1 }).seal(e);
        s[3] = withText(s[3]!, { ...e, chain: { ...e.chain, signature: forged.chain?.signature } });
        return s;
      },
      key: true,
      first: { kind: "bad_signature", where: "line 4" },
    },
    {
      note: "a stripped checkpoint signature is missing when the interval is given",
      records: () => {
        const s = stream(8);
        const e = parse(s[3]!);
        const { signature: _s, ...chain } = e.chain!;
        s[3] = withText(s[3]!, { ...e, chain });
        return s;
      },
      key: true,
      every: 4,
      first: { kind: "missing_checkpoint", where: "line 4" },
    },
    {
      note: "an identical re-delivery is a duplicate, not a problem",
      records: () => {
        const s = stream(6);
        return [...s, s[4]!, s[5]!];
      },
      key: true,
      first: null,
    },
    {
      note: "two instances interleaved each verify",
      records: () => {
        const a = stream(4, { epoch: "A" });
        const b = stream(4, { epoch: "B" });
        return a.flatMap((r, i) => [r, b[i]!]);
      },
      key: true,
      first: null,
    },
    {
      note: "a line that is not JSON is named",
      records: () => {
        const s = stream(3);
        s[1] = { ...s[1]!, text: "{not json" };
        return s;
      },
      first: { kind: "unparseable", where: "line 2" },
    },
    {
      note: "a stream whose first records were deleted starts with a gap",
      records: () => stream(6).slice(2),
      first: { kind: "gap", where: "line 3" },
    },
  ];
  for (const c of cases) {
    it(c.note, () => {
      const report = verifyRecords(c.records(), { ...(c.key ? { publicKey: keys.publicKey } : {}), ...(c.every ? { checkpointEvery: c.every } : {}) });
      if (c.first === null) {
        assert.deepEqual(report.problems, []);
        assert.equal(report.ok, true);
      } else {
        assert.equal(report.ok, false);
        assert.deepEqual({ kind: report.problems[0]?.kind, where: report.problems[0]?.where }, c.first, JSON.stringify(report.problems));
      }
    });
  }

  it("reports checkpoints verified and what no signature covers yet", () => {
    const report = verifyRecords(stream(10), { publicKey: keys.publicKey });
    assert.equal(report.chains.length, 1);
    assert.deepEqual({ ...report.chains[0], chain: undefined }, { chain: undefined, records: 10, firstSeq: 1, lastSeq: 10, checkpointsVerified: 2, signedUpTo: 8 });
    assert.equal(verifyRecords(stream(10)).unverifiedCheckpoints, 2);
  });
});
