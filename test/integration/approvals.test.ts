import assert from "node:assert/strict";
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { startDemoUpstream } from "../../demo/upstream.js";
import { buildSignedBundle, generateKeyPair } from "../support/bundles.js";
import { runPortcullis, showRun } from "../support/cli.js";
import { repoRoot, startGatewayFor } from "../support/stack.js";

type Gateway = Awaited<ReturnType<typeof startGatewayFor>>;
type ToolResult = { content: { type: string; text: string }[]; isError?: boolean; _meta?: Record<string, { approval_id?: string }> };

/** Issue 11 part 3: a call held for a human, approved with the real CLI, let through exactly once. */
describe("approvals: require_approval holds the identical call until an approver approves it, then once", function () {
  this.timeout(90_000);
  let demo: Awaited<ReturnType<typeof startDemoUpstream>>;
  let g: Gateway;
  let client: Client;

  before(async () => {
    // The starter policy with one approval rule: demo's `add` needs a human.
    const policies = mkdtempSync(join(tmpdir(), "pc-approval-policy-"));
    cpSync(join(repoRoot, "policies"), policies, { recursive: true });
    const dataFile = join(policies, "data.json");
    const data = JSON.parse(readFileSync(dataFile, "utf8")) as { portcullis: Record<string, unknown> };
    data.portcullis.approvals = { tools: { demo: { add: { reason: "adding numbers needs a second pair of eyes", ttl_seconds: 600 } } } };
    writeFileSync(dataFile, JSON.stringify(data));
    const keys = generateKeyPair("rsa");
    const bundle = join(policies, "bundle.tar.gz");
    await buildSignedBundle({ policyDir: policies, outFile: bundle, privateKeyPem: keys.privateKeyPem, algorithm: "RS256", revision: "approvals-1" });
    writeFileSync(join(policies, "pub.pem"), keys.publicKeyPem);
    demo = await startDemoUpstream();
    g = await startGatewayFor({ demo: { url: demo.url } }, { policy: { bundle, verificationKey: join(policies, "pub.pem") } });
    client = new Client({ name: "approvals-test", version: "1" });
    await client.connect(new StreamableHTTPClientTransport(new URL(g.url("demo")), { requestInit: { headers: { Authorization: `Bearer ${g.token("alice", ["analyst"])}` } } }));
  });
  after(async () => {
    await client?.close().catch(() => undefined);
    await g?.close();
    await demo?.close();
  });

  const add = (a: number, b: number) => client.callTool({ name: "add", arguments: { a, b } }) as Promise<ToolResult>;
  const cli = (...args: string[]) => runPortcullis([...args, "--config", g.configFile]);
  const events = () => g.auditEvents();
  const waitForEvent = async (code: string) => {
    for (let i = 0; i < 60; i++) {
      const e = events().find((ev) => ev.error?.code === code);
      if (e) return e;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.fail(`no ${code} event`);
  };

  it("holds the call: an isError result naming the approval and how to retry; nothing reaches the upstream", async () => {
    const held = await add(1, 2);
    assert.equal(held.isError, true);
    const id = held._meta?.["dev.portcullis/approval"]?.approval_id;
    assert.match(String(id), /^apr_/);
    assert.match(held.content[0]!.text, new RegExp(`portcullis approvals approve ${id}`));
    const e = events().filter((ev) => ev.mcp.method === "tools/call").at(-1)!;
    assert.deepEqual([e.outcome, e.error?.code, e.approval], ["denied", "approval_required", { id, state: "pending" }]);
    assert.equal(e.latency_ms.upstream, null, "not forwarded");
  });

  it("an agent cannot approve its own call; an approver can, with the CLI; the identical call then goes through once", async () => {
    const listed = await cli("approvals", "list", "--json");
    assert.equal(listed.code, 0, showRun(listed));
    const pending = JSON.parse(listed.stdout) as { id: string; agent: { sub: string }; state: string }[];
    const mine = pending.find((p) => p.agent.sub === "alice" && p.state === "pending")!;
    assert.ok(mine, listed.stdout);
    const self = await cli("approvals", "approve", mine.id, "--as", "alice");
    assert.notEqual(self.code, 0, "self-approval refused");
    assert.match(self.stderr + self.stdout, /own/i);
    const ok = await cli("approvals", "approve", mine.id, "--as", "sec-ops");
    assert.equal(ok.code, 0, showRun(ok));

    assert.equal((await add(1, 3)).isError, true, "other arguments are another call: still held");
    const through = await add(1, 2);
    assert.deepEqual(through.content, [{ type: "text", text: "3" }]);
    const used = events().filter((ev) => ev.mcp.method === "tools/call" && ev.outcome === "allowed").at(-1)!;
    assert.deepEqual(used.approval, { id: mine.id, state: "used" });
    assert.equal((await add(1, 2)).isError, true, "exactly once: the next identical call waits again");

    const approved = await waitForEvent("approval_approved");
    assert.deepEqual([approved.mcp.method, approved.requested_by, approved.agent.sub, approved.approval?.id], ["portcullis/approval", "sec-ops", "alice", mine.id]);
  });

  it("a denied approval is audited with the approver, and the call stays held", async () => {
    const held = await add(2, 2);
    const id = held._meta?.["dev.portcullis/approval"]?.approval_id!;
    const denied = await cli("approvals", "deny", id, "--as", "sec-ops", "--reason", "not today");
    assert.equal(denied.code, 0, showRun(denied));
    const e = await waitForEvent("approval_denied");
    assert.match(e.error?.message ?? "", /by sec-ops.*not today/);
    assert.equal((await add(2, 2)).isError, true);
  });
});
