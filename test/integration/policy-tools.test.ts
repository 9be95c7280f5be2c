import assert from "node:assert/strict";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { ReplayReport } from "../../gateway/policy/index.js";
import { buildUnsignedBundle, makeTempDir } from "../support/bundles.js";
import { runPortcullis, runPortcullisHere, showRun } from "../support/cli.js";
import { consumeAll, uniqueTopic } from "../support/kafka.js";
import { OwnBroker } from "../support/own-broker.js";
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

/**
 * Drives the recorded traffic: allowed and denied calls, and a listing, for two agents. Recorded
 * decisions: per agent initialize and notifications/initialized (protocol methods, allowed); alice's
 * tools/list (one event: echo, add, read_file shown, delete_record hidden), her echo call (allowed)
 * and read_file of /etc/passwd (denied); root's delete_record call (allowed). Each agent's SDK
 * client also opens the GET stream: an event without a decision.
 */
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
        // Every listed item too: its input, rebuilt from the list's, decides as the gateway did.
        assert.deepEqual(r.totals, { unchanged: 11, allow_to_deny: 0, deny_to_allow: 0 });
        assert.deepEqual([r.replayed, r.decisions, r.skipped.truncated], [8, 11, 0]);
        assert.deepEqual(r.list_items, { replayed: 4, without_tool_definition: 4, incomplete_lists: 0 });
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
        assert.deepEqual(r.by_tool["demo/echo"], { unchanged: 0, allow_to_deny: 2, deny_to_allow: 0 }, JSON.stringify(r.by_tool)); // listed + called
        assert.deepEqual(r.by_tool["demo/delete_record"], { unchanged: 1, allow_to_deny: 1, deny_to_allow: 0 }, "hidden from alice stays hidden; root's call is denied");
        assert.deepEqual(r.by_tool["demo/read_file"], { unchanged: 1, allow_to_deny: 1, deny_to_allow: 0 }, "listed: now hidden; the /etc/passwd deny stays a deny");
        assert.deepEqual(r.by_tool["demo/initialize"], { unchanged: 0, allow_to_deny: 2, deny_to_allow: 0 }, "a candidate denying the handshake is a change");
        assert.deepEqual(r.by_agent.root, { unchanged: 0, allow_to_deny: 3, deny_to_allow: 0 }); // initialize, notifications/initialized, delete_record
        assert.ok(r.changes.every((c) => c.from === "allow" && c.to === "deny" && c.reasons[0] === "candidate denies everything"));
        const listed = r.changes.filter((c) => c.listed_by !== undefined);
        assert.deepEqual(listed.map((c) => [c.tool, c.listed_by, c.without_tool_definition]).sort(), [["demo/add", "tools/list", true], ["demo/echo", "tools/list", true], ["demo/read_file", "tools/list", true]]);
      },
    },
    {
      note: "an allow-all candidate: denies become allows; --fail-on allow-to-deny passes",
      bundle: () => ["--bundle", allowAll],
      failOn: "allow-to-deny",
      code: 0,
      check: (r) => {
        assert.equal(r.totals.allow_to_deny, 0);
        assert.deepEqual(r.by_tool["demo/read_file"], { unchanged: 1, allow_to_deny: 0, deny_to_allow: 1 }, "listed before; the /etc/passwd call was denied");
        assert.deepEqual(r.by_tool["demo/delete_record"], { unchanged: 1, allow_to_deny: 0, deny_to_allow: 1 }, "hidden from alice's listing before; root's call was allowed");
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
    assert.match(r.stdout, /allow→deny 9, deny→allow 0/);
    assert.match(r.stdout, /8 events replayed as 11 decisions, 4 of them listed items/);
    assert.match(r.stdout, /^4 tools\/list items were evaluated with input\.tool null/m);
    assert.match(r.stdout, /^demo\/echo +2 +0 +0$/m);
    assert.match(r.stdout, /^root +3 +0 +0$/m);
    assert.match(r.stdout, /  alice  demo\/echo  allow→deny  \[tools\/list, without tool definition\]/);
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
    // A private broker (test/support/own-broker.ts): the shared one on :9092 is not for tests.
    let broker: OwnBroker | undefined;
    let kstack: Stack | undefined;
    const topic = uniqueTopic("it.replay");
    before(async function () {
      if (process.env.PORTCULLIS_SKIP_KAFKA === "1" || !OwnBroker.available()) {
        console.log("    policy replay from Kafka: skipped (PORTCULLIS_SKIP_KAFKA=1 or no Kafka jars in .tools/kafka/libs)");
        this.skip();
      }
      broker = await OwnBroker.start();
      kstack = await startStack({ kafka: { brokers: broker.brokers, topic } });
      await traffic(kstack);
      // The outbox sends after the answer: wait until the topic holds every event the file does.
      const lines = (await readFile(kstack.auditFile, "utf8")).split("\n").filter((l) => l.length > 0).length;
      const onTopic = await consumeAll(broker.brokers, topic, { expected: lines, timeoutMs: 30_000 });
      assert.equal(onTopic.length, lines);
    });
    after(async () => {
      await kstack?.close();
      await broker?.destroy();
    });

    it("replays the topic like the file, list items included, and --fail-on allow-to-deny fails for deny-all", async () => {
      const { code, report } = await replay(["--bundle", denyAll, "--brokers", broker!.brokers.join(","), "--topic", topic, "--fail-on", "allow-to-deny"]);
      assert.equal(code, 1);
      const fromFile = (await replay(["--bundle", denyAll, "--events", kstack!.auditFile])).report;
      assert.deepEqual(report.totals, fromFile.totals);
      assert.deepEqual([report.replayed, report.decisions, report.list_items], [fromFile.replayed, fromFile.decisions, fromFile.list_items]);
      assert.equal(report.list_items.replayed, 4);
    });
  });
});
