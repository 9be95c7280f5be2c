import { runPortcullisHere } from "../../support/cli.js";
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AuditChain } from "../../../gateway/audit/index.js";
import { sampleEvent, sequentialIds } from "../audit/helpers.js";

/** The CLI in this process (test/support/cli.ts), its output by the names these tests use. */
async function run(args: string[]): Promise<{ code: number; out: string; err: string }> {
  const r = await runPortcullisHere(args);
  return { code: r.code ?? -1, out: r.stdout, err: r.stderr };
}

describe("portcullis audit (usage and file mode)", () => {
  const dir = mkdtempSync(join(tmpdir(), "pc-cli-audit-"));
  const file = join(dir, "a.jsonl");
  before(() => {
    const chain = new AuditChain({ epoch: "e" });
    const ids = sequentialIds("ev");
    const events = [sampleEvent(ids, "alice"), sampleEvent(ids, "bob"), { ...sampleEvent(ids, "bob"), outcome: "denied" as const }];
    const listed = sampleEvent(ids, "carol");
    const lines = [...events, { ...listed, mcp: { ...listed.mcp, method: "tools/list", tool: null } }].map((e) => JSON.stringify(chain.seal(e)));
    writeFileSync(file, `${lines.join("\n")}\n`);
  });

  const cases: Array<{ note: string; args: () => string[]; code: number; out?: RegExp; err?: RegExp }> = [
    { note: "verify without a source is a usage error", args: () => ["audit", "verify"], code: 2, err: /a source is required/ },
    { note: "--file and --brokers together are a usage error", args: () => ["audit", "verify", "--file", file, "--brokers", "b:9092"], code: 2, err: /do not combine/ },
    { note: "a bad --checkpoint-every is a usage error", args: () => ["audit", "verify", "--file", file, "--checkpoint-every", "0"], code: 2, err: /positive integer/ },
    { note: "a clean file verifies", args: () => ["audit", "verify", "--file", file], code: 0, out: /^OK: 4 records, 1 chain\n/ },
    { note: "a missing file is a runtime failure", args: () => ["audit", "verify", "--file", join(dir, "none.jsonl")], code: 1, err: /ENOENT/ },
    { note: "an unknown tail format is a usage error", args: () => ["audit", "tail", "--file", file, "--format", "xml"], code: 2, err: /--format must be json, text or ocsf/ },
    { note: "tail filters by agent and outcome", args: () => ["audit", "tail", "--file", file, "--agent", "bob", "--outcome", "denied", "--format", "text"], code: 0, out: /^\S+ denied +bob +files\/tools\/call read_file ev-3\n$/ },
    { note: "tail --help documents the filters", args: () => ["audit", "tail", "--help"], code: 0, out: /--agent SUB.*--method tools\/call.*--tool NAME.*--outcome.*--follow/s },
    { note: "tail filters by method", args: () => ["audit", "tail", "--file", file, "--method", "tools/list", "--format", "text"], code: 0, out: /^\S+ allowed +carol +files\/tools\/list ev-4\n$/ },
    { note: "tail keeps every listed method", args: () => ["audit", "tail", "--file", file, "--method", "tools/call,tools/list", "--format", "text"], code: 0, out: /^(?:.*\n){4}$/ },
    { note: "--follow and --once together are a usage error", args: () => ["audit", "tail", "--file", file, "--follow", "--once"], code: 2, err: /contradict/ },
  ];
  // --config reads only the audit section: the gateway's other ${VAR}s need not be set on a SIEM host.
  const configWith = (name: string, audit: Record<string, unknown> | undefined) => {
    const path = join(dir, name);
    const doc = {
      auth: { issuer: "https://idp.example.com/", audience: "https://gw.example.com/mcp", jwksUri: "${PC_AUDIT_TEST_UNSET_JWKS}" },
      policy: { bundle: "b.tar.gz", verificationKey: "k.pem" },
      upstreams: { files: { url: "http://127.0.0.1:1/mcp", headers: { Authorization: "Bearer ${PC_AUDIT_TEST_UNSET_TOKEN}" } } },
      ...(audit ? { audit } : {}),
    };
    writeFileSync(path, JSON.stringify(doc));
    return path;
  };
  cases.push(
    { note: "--config without audit.kafka reads audit.file, relative to the config", args: () => ["audit", "verify", "--config", configWith("file-only.yaml", { file: "a.jsonl" })], code: 0, out: /^OK: 4 records, 1 chain\n/ },
    { note: "--config without an audit section reads its default file next to it", args: () => ["audit", "tail", "--config", configWith("no-audit.yaml", undefined)], code: 1, err: /var\/audit\.jsonl.*ENOENT|ENOENT.*var\/audit\.jsonl/ },
    { note: "--config: an unset ${VAR} of the audit section is still an error naming its field", args: () => ["audit", "tail", "--config", configWith("audit-var.yaml", { file: "${PC_AUDIT_TEST_UNSET_FILE}" })], code: 2, err: /config error: .*audit-var\.yaml: audit\.file: environment variable PC_AUDIT_TEST_UNSET_FILE is not set/ },
    { note: "--config without audit.kafka refuses --topic", args: () => ["audit", "tail", "--config", configWith("file-topic.yaml", { file: "a.jsonl" }), "--topic", "t"], code: 2, err: /has no audit\.kafka section/ },
  );

  for (const c of cases) {
    it(c.note, async () => {
      const r = await run(c.args());
      assert.equal(r.code, c.code, `${r.out}\n${r.err}`);
      if (c.out) assert.match(r.out, c.out);
      if (c.err) assert.match(r.err, c.err);
    });
  }
});

describe("portcullis --version", () => {
  it("prints the package's version", async () => {
    const { readFileSync } = await import("node:fs");
    const version = (JSON.parse(readFileSync(new URL("../../../../package.json", import.meta.url), "utf8")) as { version: string }).version;
    for (const flag of ["--version", "-V"]) {
      const r = await run([flag]);
      assert.deepEqual(r, { code: 0, out: `portcullis ${version}\n`, err: "" });
    }
  });
});
