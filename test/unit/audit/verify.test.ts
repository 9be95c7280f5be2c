import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import { AuditChain, type AuditEvent } from "../../../gateway/audit/index.js";
import { verifyRecords, type StoredRecord } from "../../../gateway/audit/readers.js";
import type { VerifyOptions } from "../../../gateway/audit/verify.js";
import { rfc3339Nano } from "../../../gateway/shared/clock.js";
import { sampleEvent, sequentialIds } from "./helpers.js";

/**
 * Signature coverage (finding: `audit verify` accepted a fabricated epoch). With a key, every
 * epoch must be vouched for by a valid checkpoint; only an epoch's unsigned end shorter than the
 * interval is a warning (every process stops at some seq), and --strict fails that too.
 */
const keys = generateKeyPairSync("ed25519");
const T0 = Date.UTC(2026, 10, 24, 10, 0, 0);

interface EpochSpec {
  epoch: string;
  records: number;
  /** Signed with the gateway's key (default); false: an attacker's invented records. */
  sign?: boolean;
  instance?: string;
  /** Timestamp of the first record, ms; later records +1 ms each. */
  startMs?: number;
  every?: number;
}

function epoch(spec: EpochSpec): AuditEvent[] {
  const chain = new AuditChain({ epoch: spec.epoch, ...(spec.sign === false ? {} : { signingKey: keys.privateKey }), checkpointEvery: spec.every ?? 4 });
  const ids = sequentialIds(spec.epoch);
  return Array.from({ length: spec.records }, (_, i) => {
    const e = sampleEvent(ids);
    return chain.seal({ ...e, timestamp: rfc3339Nano((spec.startMs ?? T0) + i), labels: { ...e.labels, id: spec.instance ?? e.labels.id } });
  });
}

const asRecords = (events: readonly AuditEvent[]): StoredRecord[] => events.map((e, i) => ({ where: `line ${i + 1}`, lane: "f", text: JSON.stringify(e) }));

function verify(events: readonly AuditEvent[], opts: Omit<VerifyOptions, "publicKey"> & { key?: boolean } = {}) {
  const { key = true, ...rest } = opts;
  return verifyRecords(asRecords(events), { ...(key ? { publicKey: keys.publicKey } : {}), ...rest });
}

const stripSignature = (e: AuditEvent): AuditEvent => {
  const { signature: _s, key_id: _k, ...chain } = e.chain!;
  return { ...e, chain };
};

describe("verifyRecords: signature coverage of every epoch", () => {
  const genuine = epoch({ epoch: "real", records: 10, startMs: T0 });

  it("fails an invented epoch shorter than the interval appended to a signed stream, naming the epoch and its seqs", () => {
    const invented = epoch({ epoch: "invented", records: 3, sign: false, startMs: T0 - 60_000 });
    const report = verify([...genuine, ...invented], { checkpointEvery: 4 });
    assert.equal(report.ok, false);
    assert.equal(report.problems.length, 1, JSON.stringify(report.problems));
    const p = report.problems[0]!;
    assert.deepEqual({ kind: p.kind, chain: p.chain, where: p.where, seq: p.seq, range: p.range }, { kind: "not_covered", chain: "gw-test/invented", where: "line 11", seq: 1, range: { from: 1, to: 3 } });
    assert.match(p.message, /gw-test\/invented: seq 1\.\.3 not covered by a signature: the epoch ended without any valid checkpoint/);
    assert.deepEqual(report.warnings.map((w) => [w.chain, w.range]), [["gw-test/real", { from: 9, to: 10 }]]);
  });

  it("fails an invented epoch of any length when no interval is given", () => {
    const invented = epoch({ epoch: "invented", records: 12, sign: false, startMs: T0 + 60_000 });
    const report = verify([...genuine, ...invented]);
    assert.equal(report.ok, false);
    assert.deepEqual(report.problems.map((p) => [p.kind, p.chain, p.range]), [["not_covered", "gw-test/invented", { from: 1, to: 12 }]]);
    assert.match(report.problems[0]!.message, /no valid checkpoint signature \(give --checkpoint-every N/);
  });

  it("fails an unsigned epoch of N or more records even when it is the newest", () => {
    const invented = epoch({ epoch: "invented", records: 5, sign: false, startMs: T0 + 60_000 });
    const report = verify([...genuine, ...invented], { checkpointEvery: 4 });
    assert.equal(report.ok, false);
    const kinds = report.problems.map((p) => p.kind).sort();
    assert.deepEqual(kinds, ["missing_checkpoint", "not_covered"]);
    assert.match(report.problems.find((p) => p.kind === "not_covered")!.message, /5 records and no valid checkpoint signature, with one due every 4/);
  });

  it("fails N or more records after the last valid checkpoint, with the interval read from the epoch's first checkpoint", () => {
    // 14 signed records with the checkpoint at seq 12 stripped: 6 records after seq 8.
    const events = epoch({ epoch: "real", records: 14 }).map((e) => (e.chain?.seq === 12 ? stripSignature(e) : e));
    const report = verify(events);
    assert.equal(report.ok, false);
    assert.equal(report.problems.length, 1, JSON.stringify(report.problems));
    const p = report.problems[0]!;
    assert.deepEqual({ kind: p.kind, seq: p.seq, where: p.where, range: p.range }, { kind: "not_covered", seq: 12, where: "line 12", range: { from: 9, to: 14 } });
    assert.match(p.message, /6 records after the last valid checkpoint \(seq 8\), with one due every 4/);
  });

  it("reports the newest epoch's unsigned tail shorter than N as a warning, and fails it with strict", () => {
    const report = verify(genuine, { checkpointEvery: 4 });
    assert.equal(report.ok, true);
    assert.deepEqual(report.problems, []);
    assert.deepEqual(report.warnings.map((w) => [w.kind, w.where, w.range]), [["not_covered", "line 9", { from: 9, to: 10 }]]);
    const strict = verify(genuine, { checkpointEvery: 4, strict: true });
    assert.equal(strict.ok, false);
    assert.deepEqual(strict.problems.map((p) => [p.kind, p.range]), [["not_covered", { from: 9, to: 10 }]]);
    assert.deepEqual(strict.warnings, []);
  });

  it("accepts a newest epoch that has not reached its first checkpoint with a warning, only when the interval is given", () => {
    const young = epoch({ epoch: "young", records: 3 });
    const withInterval = verify(young, { checkpointEvery: 4 });
    assert.equal(withInterval.ok, true);
    assert.match(withInterval.warnings[0]!.message, /has not reached its first checkpoint \(seq 4\) yet/);
    assert.equal(verify(young).ok, false, "without --checkpoint-every the unsigned epoch cannot be bounded");
  });

  it("warns, not fails, on the unsigned end of an earlier epoch (every restart leaves one) and of each instance's newest", () => {
    const later = epoch({ epoch: "later", records: 8, startMs: T0 + 60_000 });
    const other = epoch({ epoch: "other", records: 2, instance: "gw-2", startMs: T0 + 120_000 });
    const report = verify([...genuine, ...later, ...other], { checkpointEvery: 4 });
    assert.equal(report.ok, true, JSON.stringify(report.problems));
    assert.deepEqual(report.warnings.map((w) => [w.chain, w.range]), [
      ["gw-test/real", { from: 9, to: 10 }],
      ["gw-2/other", { from: 1, to: 2 }],
    ]);
  });

  it("a fully signed stream has no warnings, and without a key coverage is not checked", () => {
    const exact = epoch({ epoch: "exact", records: 8 });
    assert.deepEqual(verify(exact, { checkpointEvery: 4 }).warnings, []);
    const invented = epoch({ epoch: "invented", records: 3, sign: false, startMs: T0 - 60_000 });
    const noKey = verify([...genuine, ...invented], { key: false });
    assert.equal(noKey.ok, true);
    assert.deepEqual(noKey.warnings, []);
  });
});
