import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { approvalBinding, createIntegrityStores, INTEGRITY_DEFAULTS, pinOf, toolDefinitionOf, type IntegrityStores } from "../../gateway/integrity/index.js";
import { runPortcullis, showRun } from "../support/cli.js";
import { readFile, readFileRugPulled } from "../support/integrity-contract.js";

/**
 * The local integrity file shared by two processes: the gateway (here, the test's own store with
 * its default refresh) and `portcullis tools|approvals` run as separate processes.
 */
describe("local integrity file: the CLI's changes reach a running gateway", function () {
  this.timeout(60_000);
  const dir = mkdtempSync(join(tmpdir(), "pc-integrity-cli-"));
  const config = join(dir, "gateway.yaml");
  let gateway: IntegrityStores;
  const clock = { now: () => Date.now() };

  before(() => {
    // Relative to the config file's folder; the other ${VAR}s of the file are not needed.
    writeFileSync(config, ["auth: { issuer: '${NOT_NEEDED_BY_THE_CLI}' }", "integrity: { file: state/integrity.json }", ""].join("\n"));
    gateway = createIntegrityStores({ ...INTEGRITY_DEFAULTS, pinning: { ...INTEGRITY_DEFAULTS.pinning }, file: join(dir, "state", "integrity.json") }, { clock });
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  /** How long until `probe` holds (the gateway looks at the file at most once a second). */
  async function msUntil(probe: () => Promise<boolean>, limitMs = 3000): Promise<number> {
    const start = Date.now();
    while (!(await probe())) {
      if (Date.now() - start > limitMs) assert.fail(`not seen within ${limitMs} ms`);
      await new Promise((r) => setTimeout(r, 50));
    }
    return Date.now() - start;
  }

  it("tools approve in another process: the gateway serves the approved pin within about a second", async () => {
    await gateway.pins.pinFirstSeen(pinOf("files", readFile, "first_seen", clock.now()));
    const drift = await gateway.pins.noteDrift("files", "read_file", toolDefinitionOf(readFileRugPulled));
    assert.ok(drift);
    const r = await runPortcullis(["tools", "approve", "--config", config, "--server", "files", "--tool", "read_file", "--as", "ops-bob"]);
    assert.equal(r.code, 0, showRun(r));
    assert.match(r.stdout, new RegExp(`^approved files/read_file: pinned ${drift.digest} \\(was ${drift.pinnedDigest}\\), operator:ops-bob\\n$`));
    const waited = await msUntil(async () => (await gateway.pins.get("files", "read_file"))?.digest === drift.digest);
    assert.ok(waited <= 1500, `seen after ${waited} ms`);
    assert.equal(await gateway.pins.getDrift("files", "read_file"), null);
  });

  it("approvals decided by concurrent CLI processes while the gateway writes: no change is lost", async () => {
    const agent = { iss: "https://idp/", sub: "alice" };
    const requests = await Promise.all([1, 2, 3].map((n) => gateway.approvals.request(approvalBinding(agent, "files", "delete_file", { n }), "r", 600)));
    const runs = requests.map((q, i) => runPortcullis(["approvals", i === 2 ? "deny" : "approve", q.id, "--config", config, "--as", `approver-${i}`]));
    // Meanwhile the gateway keeps writing to the same file.
    const more = await Promise.all([4, 5, 6].map((n) => gateway.approvals.request(approvalBinding(agent, "files", "delete_file", { n }), "r", 600)));
    for (const r of await Promise.all(runs)) assert.equal(r.code, 0, showRun(r));
    const used = await gateway.approvals.consume(approvalBinding(agent, "files", "delete_file", { n: 1 }));
    assert.equal(used?.id, requests[0]!.id, "consume reads the file fresh: the approval is there at once");
    await msUntil(async () => (await gateway.approvals.get(requests[2]!.id))?.state === "denied");
    assert.equal((await gateway.approvals.get(requests[1]!.id))?.state, "approved");
    for (const q of more) assert.equal((await gateway.approvals.get(q.id))?.state, "pending");
    const events = (await gateway.approvals.claimTransitions(100)).map((t) => `${t.approvalId}:${t.event}:${t.actor ?? ""}`);
    for (const [i, q] of requests.entries()) assert.ok(events.includes(`${q.id}:${i === 2 ? "denied" : "approved"}:approver-${i}`), events.join("\n"));
  });
});
