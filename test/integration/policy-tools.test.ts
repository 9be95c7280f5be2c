import assert from "node:assert/strict";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Kafka, logLevel } from "kafkajs";
import type { ReplayReport } from "../../gateway/policy/index.js";
import { buildUnsignedBundle, makeTempDir } from "../support/bundles.js";
import { runPortcullis, runPortcullisHere, showRun } from "../support/cli.js";
import { kafkaBrokers, uniqueTopic } from "../support/kafka.js";
import { defaultBundle, startStack, type Stack } from "../support/stack.js";

/**
 * `portcullis policy eval|replay` against decisions a real gateway recorded (the default policy,
 * the demo upstream, the SDK client), replayed against candidates built by the real opa.
 */
const DENY_ALL = 'package mcp.authz\n\ndecision := {"allow": false, "reasons": ["candidate denies everything"]}\n';
const ALLOW_ALL = 'package mcp.authz\n\ndecision := {"allow": true, "reasons": ["candidate allows everything"]}\n';

async function candidate(work: string, name: string, rego: string): Promise<string> {
  const dir = join(work, name);
  await mkdir(join(dir, "mcp"), { recursive: true });
  await writeFile(join(dir, "mcp", "policy.rego"), rego);
  return buildUnsignedBundle({ policyDir: dir, outFile: join(work, `${name}.tar.gz`), revision: name });
}

/** Drives the recorded traffic: allowed and denied calls, and a listing, for two agents. */
async function traffic(stack: Stack): Promise<void> {
  const { client: alice } = await stack.connect("demo", stack.token("alice", ["analyst"]));
  await alice.listTools();
  await alice.callTool({ name: "echo", arguments: { text: "hi" } });
  await alice.callTool({ name: "read_file", arguments: { path: "/etc/passwd" } });
  const { client: root } = await stack.connect("demo", stack.token("root", ["admin"]));
  await root.callTool({ name: "delete_record", arguments: { id: "7" } });
}

describe("portcullis policy eval|replay", function () {
  this.timeout(120_000);
  let work: string;
  let stack: Stack;
  let live: { bundle: string; key: string };
  let denyAll: string;
  let allowAll: string;

  before(async () => {
    work = await makeTempDir("pc-policy-tools-");
    const d = await defaultBundle();
    live = { bundle: d.bundle, key: join(d.dir, "pub.pem") };
    [denyAll, allowAll] = await Promise.all([candidate(work, "deny-all", DENY_ALL), candidate(work, "allow-all", ALLOW_ALL)]);
    stack = await startStack();
    await traffic(stack);
  });
  after(async () => stack?.close());

  async function replay(args: string[]): Promise<{ code: number | null; report: ReplayReport; stderr: string }> {
    const r = await runPortcullisHere(["policy", "replay", ...args, "--json"]);
    assert.ok(r.code === 0 || r.code === 1, showRun(r));
    return { code: r.code, report: JSON.parse(r.stdout) as ReplayReport, stderr: r.stderr };
  }

  const cases: Array<{ note: string; bundle: () => string[]; failOn?: string; code: number; check: (r: ReplayReport) => void }> = [
    {
      note: "the live bundle itself: nothing changes, --fail-on any passes",
      bundle: () => ["--bundle", live.bundle, "--verification-key", live.key],
      failOn: "any",
      code: 0,
      check: (r) => {
        assert.equal(r.totals.allow_to_deny + r.totals.deny_to_allow, 0);
        assert.ok(r.totals.unchanged >= 6, JSON.stringify(r.totals));
        assert.deepEqual(r.recorded_revisions, ["test-rev-1"]);
      },
    },
    {
      note: "a deny-all candidate: every allow becomes a deny, per tool and per agent; --fail-on allow-to-deny fails",
      bundle: () => ["--bundle", denyAll],
      failOn: "allow-to-deny",
      code: 1,
      check: (r) => {
        assert.equal(r.candidate_revision, "deny-all");
        assert.equal(r.totals.deny_to_allow, 0);
        assert.ok(r.by_tool["demo/echo"]!.allow_to_deny >= 2, JSON.stringify(r.by_tool)); // listed + called
        assert.equal(r.by_tool["demo/delete_record"]!.allow_to_deny, 1);
        assert.equal(r.by_agent.root!.allow_to_deny, 1);
        assert.equal(r.by_tool["demo/read_file"]!.unchanged >= 1, true, "the /etc/passwd deny stays a deny");
        assert.ok(r.changes.every((c) => c.from === "allow" && c.to === "deny" && c.reasons[0] === "candidate denies everything"));
      },
    },
    {
      note: "an allow-all candidate: denies become allows; --fail-on allow-to-deny passes",
      bundle: () => ["--bundle", allowAll],
      failOn: "allow-to-deny",
      code: 0,
      check: (r) => {
        assert.equal(r.totals.allow_to_deny, 0);
        assert.ok(r.by_tool["demo/read_file"]!.deny_to_allow >= 1);
        assert.ok(r.by_tool["demo/delete_record"]!.deny_to_allow >= 1, "hidden from alice's listing before");
      },
    },
    { note: "an allow-all candidate fails --fail-on any", bundle: () => ["--bundle", allowAll], failOn: "any", code: 1, check: (r) => assert.ok(r.totals.deny_to_allow > 0) },
  ];
  for (const c of cases) {
    it(`replay: ${c.note}`, async () => {
      const { code, report } = await replay([...c.bundle(), "--events", stack.auditFile, ...(c.failOn ? ["--fail-on", c.failOn] : [])]);
      assert.equal(code, c.code);
      assert.equal(report.skipped.unparseable, 0);
      c.check(report);
    });
  }

  it("replay prints a per-tool and per-agent table without --json", async () => {
    // Through the real binary once: exit code and stdout as CI sees them.
    const r = await runPortcullis(["policy", "replay", "--bundle", denyAll, "--events", stack.auditFile]);
    assert.equal(r.code, 0, showRun(r));
    assert.match(r.stdout, /allow→deny \d+, deny→allow 0/);
    assert.match(r.stdout, /^demo\/echo +\d+ +0 +\d+$/m);
    assert.match(r.stdout, /^root +1 +0 +0$/m);
  });

  it("replay refuses a candidate that fails verification with the given key", async () => {
    const r = await runPortcullisHere(["policy", "replay", "--bundle", denyAll, "--verification-key", live.key, "--events", stack.auditFile]);
    assert.equal(r.code, 1, showRun(r));
    assert.match(r.stderr, /unsigned/);
  });

  it("eval prints the decision with reasons for a recorded event and for a bare input", async () => {
    const events = (await readFile(stack.auditFile, "utf8")).split("\n").filter((l) => l.length > 0).map((l) => JSON.parse(l) as { mcp: { tool: string | null; method: string }; input: unknown });
    const denied = events.find((e) => e.mcp.method === "tools/call" && e.mcp.tool === "read_file")!;
    const eventFile = join(work, "event.json");
    await writeFile(eventFile, JSON.stringify(denied));
    const inputFile = join(work, "input.json");
    await writeFile(inputFile, JSON.stringify(denied.input));
    for (const file of [eventFile, inputFile]) {
      const r = await runPortcullisHere(["policy", "eval", "--bundle", live.bundle, "--verification-key", live.key, "--input", file]);
      assert.equal(r.code, 0, showRun(r));
      const d = JSON.parse(r.stdout) as { allow: boolean; reasons: string[]; message?: string; revision: string };
      assert.deepEqual([d.allow, d.message, d.revision], [false, "read_file is limited to /data", "test-rev-1"]);
      assert.ok(d.reasons.length > 0);
    }
    const bad = join(work, "bad.json");
    await writeFile(bad, '{"hello": 1}');
    const r = await runPortcullisHere(["policy", "eval", "--bundle", live.bundle, "--input", bad]);
    assert.equal(r.code, 2, showRun(r));
  });

  it("replay exits 2 without a source, or with an unknown --fail-on", async () => {
    assert.equal((await runPortcullisHere(["policy", "replay", "--bundle", denyAll])).code, 2);
    const r = await runPortcullisHere(["policy", "replay", "--bundle", denyAll, "--events", stack.auditFile, "--fail-on", "sometimes"]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--fail-on/);
  });

  describe("from a Kafka topic", () => {
    let kstack: Stack | undefined;
    const topic = uniqueTopic("it.replay");
    before(async function () {
      if (process.env.PORTCULLIS_SKIP_KAFKA === "1") this.skip();
      const admin = new Kafka({ clientId: "pc-replay-probe", brokers: kafkaBrokers(), connectionTimeout: 3000, retry: { retries: 1 }, logLevel: logLevel.NOTHING }).admin();
      try {
        await admin.connect();
      } catch (err) {
        throw new Error(`Kafka broker at ${kafkaBrokers().join(",")} is unreachable (${String(err)}); make kafka-up, or PORTCULLIS_SKIP_KAFKA=1`);
      } finally {
        await admin.disconnect().catch(() => undefined);
      }
      kstack = await startStack({ kafka: { brokers: kafkaBrokers(), topic } });
      await traffic(kstack);
    });
    after(async () => kstack?.close());

    it("replays the topic like the file, and --fail-on allow-to-deny fails for deny-all", async () => {
      const { code, report } = await replay(["--bundle", denyAll, "--brokers", kafkaBrokers().join(","), "--topic", topic, "--fail-on", "allow-to-deny"]);
      assert.equal(code, 1);
      const fromFile = (await replay(["--bundle", denyAll, "--events", kstack!.auditFile])).report;
      assert.deepEqual(report.totals, fromFile.totals);
      assert.equal(report.replayed, fromFile.replayed);
    });
  });
});
