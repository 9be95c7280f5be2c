import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ApprovalStep } from "../../../gateway/audit/index.js";
import { auditApprovalSteps } from "../../../gateway/compose/integrity.js";
import { approvalBinding, createIntegrityStores, INTEGRITY_DEFAULTS } from "../../../gateway/integrity/index.js";
import { TestClock } from "../../support/integrity-contract.js";

// The steps of an approval that happen outside any request (an approver's decision, expiry) are
// audited by the gateway's timer; the held call's own events carry approval_required and used.
describe("approvals: the steps outside requests are audited, each once", () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), "pc-approval-steps-"))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it("approved (with the approver) and expired each become one audit step; a use does not", async () => {
    const clock = new TestClock();
    const file = join(dir, "integrity.json");
    const stores = () => createIntegrityStores({ ...INTEGRITY_DEFAULTS, pinning: { ...INTEGRITY_DEFAULTS.pinning }, store: "local", file }, { clock, file: { refreshMs: 0 } });
    const gateway = stores();
    const cli = stores();
    const agent = { iss: "https://idp.example.com/", sub: "alice" };
    const steps: ApprovalStep[] = [];
    const auditor = auditApprovalSteps(gateway.approvals, async (s) => void steps.push(s), () => undefined, 60_000);

    const approved = await gateway.approvals.request(approvalBinding(agent, "files", "delete_file", { path: "/a" }), "deletes are reviewed", 60);
    const lapsed = await gateway.approvals.request(approvalBinding(agent, "files", "delete_file", { path: "/b" }), "deletes are reviewed", 60);
    await cli.approvals.approve(approved.id, "bob");
    assert.ok(await gateway.approvals.consume(approvalBinding(agent, "files", "delete_file", { path: "/a" })));
    clock.advance(61_000);
    await auditor.stop(); // runs a last tick: expiry and the claimed transitions

    const seen = steps.map((s) => [s.event, s.approvalId, s.actor ?? null]);
    assert.deepEqual(seen, [
      ["approved", approved.id, "bob"],
      ["expired", lapsed.id, null],
    ]);
    assert.equal(steps[0]!.tool, "delete_file");
    assert.equal(steps[0]!.agent.sub, "alice");
  });
});
