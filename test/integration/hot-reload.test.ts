import assert from "node:assert/strict";
import { copyFile, mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { startDemoUpstream } from "../../demo/upstream.js";
import { BUNDLE_REFUSED_METHOD, type AuditEvent } from "../../gateway/audit/index.js";
import { parseConfig } from "../../gateway/config/index.js";
import { startGateway, type RunningGateway } from "../../gateway/compose/index.js";
import { startFakeIdp, type FakeIdp } from "../fakes/jwks.js";
import { buildSignedBundle, defaultPolicyDir, generateKeyPair, makeTempDir, rewriteBundle, type KeyPairPem } from "../support/bundles.js";
import { assertAuditEvents } from "../support/audit-schema.js";
import { freePort } from "../support/stack.js";

/** A one-rule policy for shadow tests: denies everything, with a reason. */
const DENY_ALL = 'package mcp.authz\n\ndecision := {"allow": false, "reasons": ["candidate denies everything"]}\n';

interface Harness {
  gateway: RunningGateway;
  auditFile: string;
  token(sub: string): string;
  connect(token: string): Promise<Client>;
  events(): Promise<AuditEvent[]>;
  close(): Promise<void>;
}

async function startHarness(work: string, policy: Record<string, unknown>): Promise<Harness> {
  const demo = await startDemoUpstream();
  const port = await freePort();
  const audience = `http://127.0.0.1:${port}/mcp`;
  const idp: FakeIdp = await startFakeIdp({ audience });
  const auditFile = join(work, `audit-${port}.jsonl`);
  const config = parseConfig(
    {
      listen: { host: "127.0.0.1", port },
      auth: { issuer: idp.issuer, audience, jwksUri: idp.jwksUri, algorithms: ["RS256"] },
      policy,
      upstreams: { demo: { url: demo.url } },
      audit: { file: auditFile },
    },
    join(work, "gateway.yaml"),
  );
  const gateway = await startGateway(config, { log: () => undefined });
  const clients: Client[] = [];
  return {
    gateway,
    auditFile,
    token: (sub) => idp.mint({ sub, roles: ["analyst"], scope: "mcp:tools mcp:resources mcp:prompts", client_id: `${sub}-agent` }),
    async connect(token) {
      const client = new Client({ name: "reload-it", version: "1.0.0" });
      await client.connect(new StreamableHTTPClientTransport(new URL(`${gateway.url}/mcp/demo`), { requestInit: { headers: { Authorization: `Bearer ${token}` } } }));
      clients.push(client);
      return client;
    },
    async events() {
      return (await readFile(auditFile, "utf8"))
        .split("\n")
        .filter((l) => l.length > 0)
        .map((l) => JSON.parse(l) as AuditEvent);
    },
    async close() {
      await Promise.all(clients.map((c) => c.close().catch(() => undefined)));
      await gateway.close();
      await demo.close();
      await idp.close();
    },
  };
}

async function until(what: string, check: () => boolean, ms = 10_000): Promise<number> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
  return Date.now();
}

const revisionOf = (e: AuditEvent): string | undefined => e.bundles["mcp-authz"]?.revision;

describe("policy hot reload and shadow mode (real opa bundles, SDK clients, real HTTP)", function () {
  this.timeout(120_000);
  let work: string;
  let keys: KeyPairPem;
  let pub: string;
  let rev1: string;
  let rev2: string;
  before(async () => {
    work = await makeTempDir("pc-reload-");
    keys = generateKeyPair("rsa");
    pub = join(work, "pub.pem");
    await writeFile(pub, keys.publicKeyPem);
    rev1 = await buildSignedBundle({ policyDir: defaultPolicyDir(), outFile: join(work, "rev-1.tar.gz"), privateKeyPem: keys.privateKeyPem, algorithm: "RS256", revision: "rev-1" });
    rev2 = await buildSignedBundle({ policyDir: defaultPolicyDir(), outFile: join(work, "rev-2.tar.gz"), privateKeyPem: keys.privateKeyPem, algorithm: "RS256", revision: "rev-2" });
  });

  it("swaps policies under a steady load with no failed call, each decision made by exactly one revision, and refuses a tampered bundle on the way", async () => {
    const active = join(work, "active.tar.gz");
    await copyFile(rev1, active);
    // Reload only on SIGHUP here, so the test decides when the swaps happen.
    const h = await startHarness(work, { bundle: active, verificationKey: pub, reload: { intervalSeconds: 0 } });
    try {
      const sessions = await Promise.all(["a1", "a2", "a3", "a4"].map((s) => h.connect(h.token(s))));
      let stop = false;
      const failures: string[] = [];
      let calls = 0;
      const load = sessions.map(async (client, i) => {
        for (let n = 0; !stop; n++) {
          try {
            const r = await client.callTool({ name: "echo", arguments: { text: `s${i}-${n}` } });
            if (r.isError === true) failures.push(`s${i}-${n}: ${JSON.stringify(r.content)}`);
            calls++;
          } catch (err) {
            failures.push(`s${i}-${n}: ${(err as Error).message}`);
          }
        }
      });
      await until("some calls on rev-1", () => calls >= 40);

      // 1. A tampered candidate is refused; rev-1 keeps serving.
      const tampered = join(work, "tampered.tar.gz");
      await rewriteBundle(rev2, tampered, (f) => f.set("/data.json", Buffer.from("{}")));
      await rename(tampered, active);
      process.kill(process.pid, "SIGHUP");
      await until("the refusal", () => h.gateway.bundles.status().policy.state === "error");
      assert.equal(h.gateway.bundles.revision, "rev-1");
      const afterRefusal = calls;
      await until("more calls after the refusal", () => calls >= afterRefusal + 40);

      // 2. A good rev-2 is swapped in while calls keep flowing.
      await copyFile(rev2, `${active}.new`);
      await rename(`${active}.new`, active);
      process.kill(process.pid, "SIGHUP");
      const swappedAt = await until("rev-2 active", () => h.gateway.bundles.revision === "rev-2");
      const afterSwap = calls;
      await until("calls on rev-2", () => calls >= afterSwap + 40);
      stop = true;
      await Promise.all(load);

      assert.deepEqual(failures, [], "no call failed");
      const events = await h.events();
      assertAuditEvents(events);
      const refusals = events.filter((e) => e.mcp.method === BUNDLE_REFUSED_METHOD);
      assert.equal(refusals.length, 1, "one audit event for the refused bundle");
      assert.equal(refusals[0]!.error?.code, "bundle_digest_mismatch");
      assert.equal(revisionOf(refusals[0]!), "rev-1");

      const decisions = events.filter((e) => e.mcp.method === "tools/call");
      assert.ok(decisions.length >= 120, `${decisions.length} decisions`);
      for (const e of decisions) assert.ok(["rev-1", "rev-2"].includes(revisionOf(e) ?? ""), `event ${e.decision_id} names ${JSON.stringify(e.bundles)}`);
      assert.ok(decisions.some((e) => revisionOf(e) === "rev-1") && decisions.some((e) => revisionOf(e) === "rev-2"));
      // Each session calls sequentially and its events are on record before the next call: in file
      // order, its revisions switch from rev-1 to rev-2 exactly once and never back.
      const bySession = new Map<string, string[]>();
      for (const e of decisions) bySession.set(String(e.mcp.session_id), [...(bySession.get(String(e.mcp.session_id)) ?? []), revisionOf(e)!]);
      assert.equal(bySession.size, 4);
      for (const [session, revs] of bySession) {
        const switches = revs.filter((r, i) => i > 0 && r !== revs[i - 1]).length;
        assert.equal(switches, 1, `session ${session}: ${revs.join(" ")}`);
        assert.equal(revs[0], "rev-1");
      }
      // Nothing that arrived after the swap was observed was decided by the old revision.
      const late = decisions.filter((e) => Date.parse(e.timestamp) > swappedAt && revisionOf(e) !== "rev-2");
      assert.deepEqual(late.map((e) => e.decision_id), []);
    } finally {
      await h.close();
    }
  });

  /** Starts on rev-1, swaps to rev-2, then publishes rev-1 again: a rollback (served before rev-2). */
  async function rollBack(allowRollback: boolean): Promise<Harness> {
    const publish = async (bundle: string, active: string): Promise<void> => {
      await copyFile(bundle, `${active}.new`);
      await rename(`${active}.new`, active);
      process.kill(process.pid, "SIGHUP");
    };
    const active = join(work, `rollback-${allowRollback}.tar.gz`);
    await copyFile(rev1, active);
    const h = await startHarness(work, { bundle: active, verificationKey: pub, reload: { intervalSeconds: 0 }, ...(allowRollback ? { allowRollback } : {}) });
    await publish(rev2, active);
    await until("rev-2 active", () => h.gateway.bundles.revision === "rev-2");
    await publish(rev1, active);
    return h;
  }

  it("refuses a validly signed older bundle on reload as bundle_rollback, audited, and keeps serving the newer one", async () => {
    const h = await rollBack(false);
    try {
      await until("the refusal", () => h.gateway.bundles.status().policy.state === "error");
      assert.equal(h.gateway.bundles.revision, "rev-2");
      const events = await h.events();
      assertAuditEvents(events);
      const refusals = events.filter((e) => e.mcp.method === BUNDLE_REFUSED_METHOD);
      assert.deepEqual(refusals.map((e) => [e.error?.code, revisionOf(e)]), [["bundle_rollback", "rev-2"]]);
      assert.match(refusals[0]!.error?.message ?? "", /revision "rev-1" was served before the active "rev-2"/);
      const client = await h.connect(h.token("carol"));
      assert.equal((await client.callTool({ name: "echo", arguments: { text: "still served" } })).isError, undefined);
    } finally {
      await h.close();
    }
  });

  it("takes an older bundle on reload with policy.allowRollback: true", async () => {
    const h = await rollBack(true);
    try {
      await until("rev-1 active again", () => h.gateway.bundles.revision === "rev-1");
      assert.equal(h.gateway.bundles.status().policy.state, "ok");
      const client = await h.connect(h.token("dave"));
      assert.equal((await client.callTool({ name: "echo", arguments: { text: "on rev-1" } })).isError, undefined);
      const events = await h.events();
      assertAuditEvents(events);
      assert.deepEqual(events.filter((e) => e.mcp.method === BUNDLE_REFUSED_METHOD), [], "no refusal");
      assert.deepEqual(events.filter((e) => e.mcp.method === "tools/call").map(revisionOf), ["rev-1"], "rev-1 decides");
    } finally {
      await h.close();
    }
  });

  it("shadow mode audits what a candidate would decide and never changes the answer", async () => {
    const candDir = join(work, "candidate-policy");
    await mkdir(join(candDir, "mcp"), { recursive: true });
    await writeFile(join(candDir, "mcp", "deny_all.rego"), DENY_ALL);
    const candidate = await buildSignedBundle({ policyDir: candDir, outFile: join(work, "candidate.tar.gz"), privateKeyPem: keys.privateKeyPem, algorithm: "RS256", revision: "cand-1" });
    const h = await startHarness(work, { bundle: rev1, verificationKey: pub, shadow: { bundle: candidate } });
    try {
      const client = await h.connect(h.token("alice"));
      const ok = await client.callTool({ name: "echo", arguments: { text: "still allowed" } });
      assert.equal(ok.isError, undefined, JSON.stringify(ok));
      const denied = await client.callTool({ name: "read_file", arguments: { path: "/etc/passwd" } });
      assert.equal(denied.isError, true);
      const all = await h.events();
      assertAuditEvents(all);
      const events = all.filter((e) => e.mcp.method === "tools/call");
      assert.deepEqual(
        events.map((e) => [e.mcp.tool, e.outcome, revisionOf(e), e.shadow]),
        [
          ["echo", "allowed", "rev-1", { revision: "cand-1", allow: false, differs: true }],
          ["read_file", "denied", "rev-1", { revision: "cand-1", allow: false, differs: false }],
        ],
      );
      assert.deepEqual(h.gateway.bundles.status().shadow?.revision, "cand-1");
    } finally {
      await h.close();
    }
  });

  it("starts without a shadow that cannot be loaded, audits the refusal, and serves", async () => {
    const bad = await rewriteBundle(rev2, join(work, "bad-candidate.tar.gz"), (f) => f.delete("/data.json"));
    const h = await startHarness(work, { bundle: rev1, verificationKey: pub, shadow: { bundle: bad } });
    try {
      const client = await h.connect(h.token("bob"));
      const ok = await client.callTool({ name: "echo", arguments: { text: "hi" } });
      assert.equal(ok.isError, undefined);
      const events = await h.events();
      assertAuditEvents(events);
      const refusal = events.find((e) => e.mcp.method === BUNDLE_REFUSED_METHOD);
      assert.equal(refusal?.error?.code, "bundle_file_missing");
      assert.match(refusal?.error?.message ?? "", /^shadow bundle refused/);
      assert.equal(events.find((e) => e.mcp.method === "tools/call")?.shadow, undefined);
    } finally {
      await h.close();
    }
  });
});
