import type { KeyObject } from "node:crypto";
import { chainHash, GENESIS_HASH, verifyCheckpoint } from "./chain.js";

/** One stored record, in the order it was read (file order; per partition, offset order). */
export interface StoredRecord {
  /** Human location: "line 12", "partition 0 offset 41". */
  where: string;
  /** Records are only expected in chain order within one lane (a file, or one partition). */
  lane?: string;
  text: string;
}

export type ChainProblemKind =
  | "unparseable" // not JSON, or no chain field
  | "edited" // content does not match its own chain.hash, or a later record's prev
  | "conflict" // two different records claim the same position
  | "gap" // positions missing: deleted records
  | "reordered" // a record appears after a later position of its chain
  | "bad_signature" // a checkpoint whose signature does not verify (forged)
  | "missing_checkpoint" // --checkpoint-every N and a multiple of N is unsigned
  | "not_covered"; // with a key: records no valid checkpoint signature vouches for (coverage rules below)

export interface ChainProblem {
  kind: ChainProblemKind;
  /** Index in read order: problems are reported sorted by it, so the first one is the first bad record. */
  index: number;
  where: string;
  decision_id: string | null;
  chain: string | null;
  seq: number | null;
  message: string;
  /** not_covered: the positions of the chain that no valid signature covers. */
  range?: { from: number; to: number };
}

export interface ChainSummary {
  /** `labels.id` + epoch. */
  chain: string;
  records: number;
  firstSeq: number;
  lastSeq: number;
  checkpointsVerified: number;
  /** Highest seq covered by a verified signature (0: none); later records are only hash-linked. */
  signedUpTo: number;
}

export interface VerifyReport {
  ok: boolean;
  records: number;
  /** Identical re-deliveries (at-least-once): not a problem. */
  duplicates: number;
  chains: ChainSummary[];
  problems: ChainProblem[];
  /**
   * Reported, not failed (`ok` stays true): with a key, the unsigned end of an epoch that is
   * shorter than the checkpoint interval (`not_covered`). `strict` moves them to `problems`.
   */
  warnings: ChainProblem[];
  /** Signed checkpoints seen but not verified because no public key was given. */
  unverifiedCheckpoints: number;
}

export interface VerifyOptions {
  publicKey?: KeyObject;
  /** When set, every seq that is a multiple of it must carry a (valid) signature. */
  checkpointEvery?: number;
  /** With a key: an unsigned epoch end shorter than the interval is a problem, not a warning. */
  strict?: boolean;
}

interface Parsed {
  index: number;
  where: string;
  lane: string;
  decisionId: string | null;
  chainKey: string;
  /** `labels.id`: the newest epoch is chosen per instance. */
  instance: string;
  /** `timestamp` as epoch ms (NaN when absent or unparseable). */
  timeMs: number;
  seq: number;
  prev: string;
  hash: string;
  signature: string | undefined;
  selfOk: boolean;
}

/**
 * Verifies hash chains (docs/audit.md "Integrity"): every record's hash matches its content,
 * positions run 1, 2, 3 … without gaps, each `prev` is the previous record's hash, records of one
 * chain appear in order within a lane, and (with a public key) every checkpoint signature holds
 * and every epoch is covered by one (`uncovered` below: an invented epoch fails).
 * Identical duplicates (at-least-once delivery) are counted, not flagged.
 */
export function verifyRecords(records: Iterable<StoredRecord>, opts: VerifyOptions = {}): VerifyReport {
  const problems: ChainProblem[] = [];
  const chains = new Map<string, Map<number, Parsed>>();
  const laneLast = new Map<string, { seq: number; where: string }>();
  let count = 0;
  let duplicates = 0;
  let unverifiedCheckpoints = 0;
  const problem = (p: Omit<ChainProblem, "decision_id" | "chain" | "seq">, r?: Parsed): void => {
    problems.push({ ...p, decision_id: r?.decisionId ?? null, chain: r?.chainKey ?? null, seq: r?.seq ?? null });
  };

  let index = -1;
  for (const rec of records) {
    index++;
    count++;
    const r = parse(rec, index);
    if (typeof r === "string") {
      problem({ kind: "unparseable", index, where: rec.where, message: r });
      continue;
    }
    if (!r.selfOk) problem({ kind: "edited", index, where: r.where, message: `content does not match its chain.hash (seq ${r.seq})` }, r);

    let byseq = chains.get(r.chainKey);
    if (!byseq) chains.set(r.chainKey, (byseq = new Map()));
    const seen = byseq.get(r.seq);
    if (seen) {
      if (seen.hash === r.hash && seen.selfOk === r.selfOk) {
        duplicates++;
        continue;
      }
      problem({ kind: "conflict", index, where: r.where, message: `seq ${r.seq} already read at ${seen.where} with different content` }, r);
      continue;
    }
    byseq.set(r.seq, r);

    const laneKey = `${r.lane}\u0000${r.chainKey}`;
    const last = laneLast.get(laneKey);
    if (last && r.seq < last.seq) {
      problem({ kind: "reordered", index, where: r.where, message: `seq ${r.seq} comes after seq ${last.seq} (${last.where})` }, r);
    } else {
      laneLast.set(laneKey, { seq: r.seq, where: r.where });
    }
  }

  const summaries: ChainSummary[] = [];
  const coverage: ChainCoverage[] = [];
  for (const [chainKey, byseq] of chains) {
    const ordered = [...byseq.values()].sort((a, b) => a.seq - b.seq);
    const first = ordered[0] as Parsed;
    let expected = 1;
    let prevRec: Parsed | null = null;
    let checkpointsVerified = 0;
    let signedUpTo = 0;
    let firstVerified = 0;
    for (const r of ordered) {
      if (r.seq !== expected) {
        const missing = r.seq - 1 === expected ? `seq ${expected}` : `seq ${expected}..${r.seq - 1}`;
        problem({ kind: "gap", index: r.index, where: r.where, message: `${missing} missing before this record (deleted)` }, r);
      } else if (prevRec === null ? r.prev !== GENESIS_HASH : r.prev !== prevRec.hash) {
        // This record is self-consistent, so the one before it was replaced (or this one forged).
        const target = prevRec ?? r;
        problem(
          {
            kind: "edited",
            index: target.index,
            where: target.where,
            message: prevRec
              ? `seq ${prevRec.seq} is not the record seq ${r.seq} (${r.where}) was chained to: edited or replaced`
              : `seq 1 does not start from the genesis hash`,
          },
          target,
        );
      }
      if (r.signature !== undefined) {
        if (!opts.publicKey) {
          unverifiedCheckpoints++;
        } else if (r.selfOk && verifyCheckpoint(r.hash, r.signature, opts.publicKey)) {
          checkpointsVerified++;
          signedUpTo = r.seq;
          if (firstVerified === 0) firstVerified = r.seq;
        } else {
          problem({ kind: "bad_signature", index: r.index, where: r.where, message: `checkpoint signature of seq ${r.seq} does not verify (forged)` }, r);
        }
      } else if (opts.checkpointEvery && r.seq % opts.checkpointEvery === 0) {
        problem({ kind: "missing_checkpoint", index: r.index, where: r.where, message: `seq ${r.seq} should be a signed checkpoint` }, r);
      }
      expected = r.seq + 1;
      prevRec = r;
    }
    summaries.push({
      chain: chainKey,
      records: ordered.length,
      firstSeq: first.seq,
      lastSeq: (prevRec as Parsed).seq,
      checkpointsVerified,
      signedUpTo,
    });
    coverage.push({ chainKey, ordered, signedUpTo, firstVerified });
  }

  const warnings: ChainProblem[] = [];
  if (opts.publicKey) {
    for (const gap of uncovered(coverage, opts.checkpointEvery)) {
      const p: ChainProblem = {
        kind: "not_covered",
        index: gap.at.index,
        where: gap.at.where,
        decision_id: gap.at.decisionId,
        chain: gap.at.chainKey,
        seq: gap.at.seq,
        message: gap.message,
        range: gap.range,
      };
      if (gap.fatal || opts.strict) problems.push(p);
      else warnings.push(p);
    }
  }

  // The same record can be reported twice (an edited one is both self-inconsistent and breaks its
  // successor's prev): keep one per (index, kind).
  const unique = new Map(problems.map((p) => [`${p.index}\u0000${p.kind}`, p]));
  const sorted = [...unique.values()].sort((a, b) => a.index - b.index || a.kind.localeCompare(b.kind));
  summaries.sort((a, b) => a.chain.localeCompare(b.chain));
  warnings.sort((a, b) => a.index - b.index);
  return { ok: sorted.length === 0, records: count, duplicates, chains: summaries, problems: sorted, warnings, unverifiedCheckpoints };
}

interface ChainCoverage {
  chainKey: string;
  /** The chain's records by seq. */
  ordered: Parsed[];
  /** Highest seq under a valid signature (0: none). */
  signedUpTo: number;
  /** Seq of the first valid checkpoint (0: none): the chain's interval, checkpoints fall on its multiples. */
  firstVerified: number;
}

interface CoverageGap {
  /** Where it is reported: the first record of an unsigned epoch, or where a checkpoint was due. */
  at: Parsed;
  range: { from: number; to: number };
  /** A failure; otherwise a warning (unless strict). */
  fatal: boolean;
  message: string;
}

/**
 * With a key, every epoch must be vouched for by signed checkpoints (a signature over one hash
 * commits to everything before it). What no valid signature covers:
 *
 * - an epoch with no valid checkpoint at all is a failure: nothing shows the gateway wrote it
 *   (an attacker can append a whole invented epoch). One exception: the newest epoch of an
 *   instance with `--checkpoint-every N` and fewer than N records has simply not reached its first
 *   checkpoint yet (a warning);
 * - N or more records after the last valid checkpoint are a failure: a checkpoint is due and
 *   missing. N is `--checkpoint-every`, else the epoch's first valid checkpoint (its seq is N);
 * - fewer than N records after the last valid checkpoint are a warning: every epoch ends so,
 *   since a process stops at any seq. Their content is only hash-linked (docs/audit.md).
 *
 * "Newest" is the epoch with the latest `timestamp` among an instance's epochs (read order breaks
 * ties): an invented epoch can claim it, which is why `--strict` fails warnings too.
 */
function uncovered(chains: readonly ChainCoverage[], checkpointEvery: number | undefined): CoverageGap[] {
  const newest = new Map<string, { chainKey: string; timeMs: number; index: number }>();
  for (const c of chains) {
    const last = c.ordered[c.ordered.length - 1] as Parsed;
    let timeMs = Number.NEGATIVE_INFINITY;
    let index = -1;
    for (const r of c.ordered) {
      if (!Number.isNaN(r.timeMs)) timeMs = Math.max(timeMs, r.timeMs);
      index = Math.max(index, r.index);
    }
    const best = newest.get(last.instance);
    if (!best || timeMs > best.timeMs || (timeMs === best.timeMs && index > best.index)) newest.set(last.instance, { chainKey: c.chainKey, timeMs, index });
  }
  const gaps: CoverageGap[] = [];
  for (const c of chains) {
    const last = c.ordered[c.ordered.length - 1] as Parsed;
    const first = c.ordered.find((r) => r.seq > c.signedUpTo);
    if (!first) continue;
    const isNewest = newest.get(last.instance)?.chainKey === c.chainKey;
    const range = first.seq === last.seq ? `seq ${first.seq}` : `seq ${first.seq}..${last.seq}`;
    const interval = checkpointEvery ?? (c.firstVerified > 0 ? c.firstVerified : undefined);
    const after = last.seq - c.signedUpTo;
    let fatal: boolean;
    let why: string;
    let at = first;
    if (c.signedUpTo === 0) {
      fatal = !(isNewest && interval !== undefined && last.seq < interval);
      why = fatal
        ? interval === undefined
          ? "the epoch has no valid checkpoint signature (give --checkpoint-every N to accept a newest epoch shorter than N)"
          : last.seq >= interval
            ? `the epoch has ${last.seq} records and no valid checkpoint signature, with one due every ${interval}`
            : "the epoch ended without any valid checkpoint signature: nothing shows the gateway wrote it (an invented epoch, or a gateway stopped before its first checkpoint)"
        : `the newest epoch has not reached its first checkpoint (seq ${interval}) yet`;
    } else if (interval !== undefined && after >= interval) {
      fatal = true;
      const due = c.signedUpTo + interval;
      at = c.ordered.find((r) => r.seq >= due) ?? last;
      why = `${after} records after the last valid checkpoint (seq ${c.signedUpTo}), with one due every ${interval}`;
    } else {
      fatal = false;
      why = `after the last valid checkpoint (seq ${c.signedUpTo}): the ${isNewest ? "newest epoch's" : "epoch's"} end, only hash-linked`;
    }
    gaps.push({ at, range: { from: first.seq, to: last.seq }, fatal, message: `${c.chainKey}: ${range} not covered by a signature: ${why}` });
  }
  return gaps;
}

function parse(rec: StoredRecord, index: number): Parsed | string {
  let value: unknown;
  try {
    value = JSON.parse(rec.text);
  } catch (err) {
    return `not JSON (${(err as Error).message})`;
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) return "not a JSON object";
  const ev = value as Record<string, unknown>;
  const chain = ev.chain as Record<string, unknown> | undefined;
  if (typeof chain !== "object" || chain === null) return "no chain field";
  const { epoch, seq, prev, hash, signature } = chain;
  if (typeof epoch !== "string" || !Number.isSafeInteger(seq) || (seq as number) < 1 || typeof prev !== "string" || typeof hash !== "string") {
    return "malformed chain field";
  }
  const labels = ev.labels as { id?: unknown } | undefined;
  const instance = typeof labels?.id === "string" ? labels.id : "?";
  return {
    index,
    where: rec.where,
    lane: rec.lane ?? "",
    decisionId: typeof ev.decision_id === "string" ? ev.decision_id : null,
    chainKey: `${instance}/${epoch}`,
    instance,
    timeMs: typeof ev.timestamp === "string" ? Date.parse(ev.timestamp) : Number.NaN,
    seq: seq as number,
    prev,
    hash,
    signature: typeof signature === "string" ? signature : undefined,
    selfOk: chainHash(ev) === hash,
  };
}
