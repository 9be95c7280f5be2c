/**
 * `portcullis audit verify` against a fabricated epoch (no broker needed): the command run in
 * process on JSONL files. A signed stream with an invented, unsigned epoch appended fails with
 * `not_covered` naming the epoch and its seq range; the newest epoch's short unsigned tail is a
 * warning (exit 0) unless --strict.
 */
import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AuditChain } from "../../gateway/audit/index.js";
import type { VerifyReport } from "../../gateway/audit/readers.js";
import { rfc3339Nano } from "../../gateway/shared/clock.js";
import { runPortcullisHere, showRun } from "../support/cli.js";
import { sampleEvent, sequentialIds } from "../unit/audit/helpers.js";

const EVERY = 4;
const T0 = Date.UTC(2026, 10, 24, 10, 0, 0);

describe("audit verify: an invented epoch is not covered by any signature", () => {
  const work = mkdtempSync(join(tmpdir(), "pc-verify-coverage-"));
  const keys = generateKeyPairSync("ed25519");
  const pub = join(work, "audit.pub.pem");
  writeFileSync(pub, keys.publicKey.export({ type: "spki", format: "pem" }));
  after(() => rmSync(work, { recursive: true, force: true }));

  /** `n` events of one epoch, signed every EVERY-th with the gateway's key unless `forged`. */
  const epoch = (name: string, n: number, startMs: number, forged = false): string[] => {
    const chain = new AuditChain({ epoch: name, ...(forged ? {} : { signingKey: keys.privateKey }), checkpointEvery: EVERY });
    const ids = sequentialIds(name);
    return Array.from({ length: n }, (_, i) => JSON.stringify(chain.seal({ ...sampleEvent(ids), timestamp: rfc3339Nano(startMs + i) })));
  };
  const file = (name: string, lines: string[]): string => {
    const f = join(work, name);
    writeFileSync(f, `${lines.join("\n")}\n`);
    return f;
  };
  const verify = (...args: string[]) => runPortcullisHere(["audit", "verify", "--public-key", pub, ...args]);
  const genuine = epoch("real", 10, T0);

  it("fails (exit 1) and names the invented epoch and its seqs", async () => {
    const f = file("invented.jsonl", [...genuine, ...epoch("invented", 3, T0 - 60_000, true)]);
    const r = await verify("--file", f, "--checkpoint-every", String(EVERY));
    assert.equal(r.code, 1, showRun(r));
    assert.match(r.stdout, /^FAIL: 1 problem in 13 records, 2 chains, 1 warning/);
    assert.match(r.stdout, new RegExp(`first bad record: ${f.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}:11 .*: not_covered: gw-test/invented: seq 1\\.\\.3 not covered by a signature`), showRun(r));
  });

  it("fails an invented epoch of any length without --checkpoint-every, and reports it in --json", async () => {
    const f = file("invented-long.jsonl", [...genuine, ...epoch("invented", 9, T0 + 60_000, true)]);
    const r = await verify("--file", f, "--json");
    assert.equal(r.code, 1, showRun(r));
    const report = JSON.parse(r.stdout) as VerifyReport;
    assert.deepEqual(report.problems.map((p) => [p.kind, p.chain, p.range]), [["not_covered", "gw-test/invented", { from: 1, to: 9 }]]);
  });

  it("passes the genuine stream with a warning for the newest epoch's unsigned tail, and fails it with --strict", async () => {
    const f = file("genuine.jsonl", genuine);
    const r = await verify("--file", f, "--checkpoint-every", String(EVERY));
    assert.equal(r.code, 0, showRun(r));
    assert.match(r.stdout, /^OK: 10 records, 1 chain, 1 warning/);
    assert.match(r.stdout, /warning: not_covered .*:9 seq 9: gw-test\/real: seq 9\.\.10 not covered by a signature: after the last valid checkpoint \(seq 8\)/);
    const strict = await verify("--file", f, "--checkpoint-every", String(EVERY), "--strict");
    assert.equal(strict.code, 1, showRun(strict));
    assert.match(strict.stdout, /first bad record: .*:9 .*: not_covered:/);
  });

  it("refuses --strict without --public-key (usage error, exit 2)", async () => {
    const r = await runPortcullisHere(["audit", "verify", "--file", file("plain.jsonl", genuine), "--strict"]);
    assert.equal(r.code, 2, showRun(r));
    assert.match(r.stderr, /--strict checks signature coverage: give --public-key/);
  });
});
