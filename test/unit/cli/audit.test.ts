import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { AuditChain } from "../../../gateway/audit/index.js";
import { runCli } from "../../../gateway/cli/commands.js";
import { sampleEvent, sequentialIds } from "../audit/helpers.js";

async function run(args: string[]): Promise<{ code: number; out: string; err: string }> {
  const out = new PassThrough();
  const err = new PassThrough();
  let o = "";
  let e = "";
  out.on("data", (c: Buffer) => (o += c.toString()));
  err.on("data", (c: Buffer) => (e += c.toString()));
  const code = await runCli(args, { out, err });
  return { code, out: o, err: e };
}

describe("portcullis audit (usage and file mode)", () => {
  const dir = mkdtempSync(join(tmpdir(), "pc-cli-audit-"));
  const file = join(dir, "a.jsonl");
  before(() => {
    const chain = new AuditChain({ epoch: "e" });
    const ids = sequentialIds("ev");
    const lines = [sampleEvent(ids, "alice"), sampleEvent(ids, "bob"), { ...sampleEvent(ids, "bob"), outcome: "denied" as const }].map((e) => JSON.stringify(chain.seal(e)));
    writeFileSync(file, `${lines.join("\n")}\n`);
  });

  const cases: Array<{ note: string; args: () => string[]; code: number; out?: RegExp; err?: RegExp }> = [
    { note: "verify without a source is a usage error", args: () => ["audit", "verify"], code: 2, err: /a source is required/ },
    { note: "--file and --brokers together are a usage error", args: () => ["audit", "verify", "--file", file, "--brokers", "b:9092"], code: 2, err: /do not combine/ },
    { note: "a bad --checkpoint-every is a usage error", args: () => ["audit", "verify", "--file", file, "--checkpoint-every", "0"], code: 2, err: /positive integer/ },
    { note: "a clean file verifies", args: () => ["audit", "verify", "--file", file], code: 0, out: /^OK: 3 records, 1 chain\n/ },
    { note: "a missing file is a runtime failure", args: () => ["audit", "verify", "--file", join(dir, "none.jsonl")], code: 1, err: /ENOENT/ },
    { note: "an unknown tail format is a usage error", args: () => ["audit", "tail", "--file", file, "--format", "xml"], code: 2, err: /--format must be json, text or ocsf/ },
    { note: "tail filters by agent and outcome", args: () => ["audit", "tail", "--file", file, "--agent", "bob", "--outcome", "denied", "--format", "text"], code: 0, out: /^\S+ denied +bob +files\/tools\/call read_file ev-3\n$/ },
    { note: "tail --help documents the filters", args: () => ["audit", "tail", "--help"], code: 0, out: /--agent SUB.*--tool NAME.*--outcome/s },
  ];
  for (const c of cases) {
    it(c.note, async () => {
      const r = await run(c.args());
      assert.equal(r.code, c.code, `${r.out}\n${r.err}`);
      if (c.out) assert.match(r.out, c.out);
      if (c.err) assert.match(r.err, c.err);
    });
  }
});
