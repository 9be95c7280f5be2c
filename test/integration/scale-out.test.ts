/**
 * Issue 10: any replica serves any session. Three `portcullis serve` processes with the same
 * sessions.sealKeys, one Redis (rate limits and the session ledger), behind a real HAProxy doing
 * round robin per request with no stickiness. Clients are the official SDK's, over real HTTP.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { startDemoUpstream } from "../../demo/upstream.js";
import type { AuditEvent } from "../../gateway/audit/index.js";
import { startFakeIdp, type FakeIdp } from "../fakes/jwks.js";
import { runPortcullisHere, showRun } from "../support/cli.js";
import { haproxyAvailable, startHaproxy, type TestBalancer } from "../support/haproxy.js";
import { redisServerAvailable, startRedis, type TestRedis } from "../support/redis.js";
import { spawnServe, type ServedGateway } from "../support/serve.js";
import { defaultBundle, everythingEntry, freePort } from "../support/stack.js";

const REPLICAS = 3;
/** Per-agent calls per window (rateLimits.defaults.perAgent), counted in Redis across replicas. */
const PER_AGENT_LIMIT = 10;

type SealKeys = { id: string; key: string }[];
const newKey = (id: string) => ({ id, key: randomBytes(32).toString("base64") });

describe("scale-out: three replicas behind HAProxy, round robin, no stickiness (issue 10)", function () {
  this.timeout(180_000);
  let redis: TestRedis;
  let idp: FakeIdp;
  let demo: Awaited<ReturnType<typeof startDemoUpstream>>;
  let balancer: TestBalancer;
  let lbUrl: string;
  const replicas: ServedGateway[] = [];
  const ports: number[] = [];
  const auditFiles: string[] = [];
  let base: (keys: SealKeys, i: number) => Record<string, unknown>;
  let keys: SealKeys = [newKey("k1")];
  const clients: Client[] = [];

  before(async function () {
    if (!haproxyAvailable() || !redisServerAvailable()) this.skip();
    const work = mkdtempSync(join(tmpdir(), "pc-scale-"));
    const { bundle, dir } = await defaultBundle();
    redis = await startRedis();
    const lbPort = await freePort();
    lbUrl = `http://127.0.0.1:${lbPort}`;
    idp = await startFakeIdp({ audience: `${lbUrl}/mcp` });
    demo = await startDemoUpstream();
    for (let i = 0; i < REPLICAS; i++) {
      ports.push(await freePort());
      auditFiles.push(join(work, `audit-${i + 1}.jsonl`));
    }
    base = (sealKeys, i) => ({
      listen: { host: "127.0.0.1", port: ports[i] },
      publicUrl: lbUrl,
      auth: { issuer: idp.issuer, audience: `${lbUrl}/mcp`, jwksUri: idp.jwksUri, algorithms: ["RS256"] },
      policy: { bundle, verificationKey: join(dir, "pub.pem") },
      upstreams: { demo: { url: demo.url }, stdio: { command: process.execPath, args: [everythingEntry, "stdio"] } },
      audit: { file: auditFiles[i] },
      sessions: { sealKeys, store: "redis" },
      rateLimits: { store: "redis", redis: { url: redis.url }, defaults: { perAgent: { limit: PER_AGENT_LIMIT, windowSeconds: 600 } } },
      edge: { trustedProxies: ["127.0.0.1"] },
    });
    for (let i = 0; i < REPLICAS; i++) replicas.push(await spawnServe(base(keys, i)));
    balancer = await startHaproxy(replicas.map((r) => r.url), lbPort);
  });

  after(async () => {
    await Promise.all(clients.map((c) => c.close().catch(() => undefined)));
    await balancer?.stop();
    await Promise.all(replicas.map((r) => r.stop()));
    await demo?.close();
    await idp?.close();
    await redis?.stop();
  });

  const token = (sub: string, roles = ["analyst"]) => idp.mint({ sub, roles, scope: "mcp:tools mcp:resources mcp:prompts", client_id: `${sub}-agent` });

  async function connect(server: string, sub: string, roles?: string[]): Promise<{ client: Client; transport: StreamableHTTPClientTransport }> {
    const transport = new StreamableHTTPClientTransport(new URL(`${lbUrl}/mcp/${server}`), { requestInit: { headers: { Authorization: `Bearer ${token(sub, roles)}` } } });
    const client = new Client({ name: "scale-out-client", version: "1.0.0" });
    await client.connect(transport);
    clients.push(client);
    return { client, transport };
  }

  const events = (i: number): AuditEvent[] =>
    existsSync(auditFiles[i]!) ? readFileSync(auditFiles[i]!, "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l) as AuditEvent) : [];
  const allEvents = () => auditFiles.flatMap((_, i) => events(i));
  /** The session's handle, as audit names it: from its initialize event, wherever that landed. */
  const handleOf = (sub: string): string => {
    const init = allEvents().filter((e) => e.agent?.sub === sub && e.mcp.method === "initialize" && e.outcome === "allowed").at(-1);
    assert.ok(init?.mcp.session_id, `no initialize on record for ${sub}`);
    return init.mcp.session_id;
  };
  /** How many of the session's events each replica wrote. */
  const perReplica = (handle: string) => auditFiles.map((_, i) => events(i).filter((e) => e.mcp.session_id === handle).length);

  async function restartReplica(i: number, sealKeys: SealKeys): Promise<void> {
    await replicas[i]!.stop();
    replicas[i] = await spawnServe(base(sealKeys, i));
    // Back in the balancer's rotation (rise 2 × inter 300 ms).
    await new Promise((r) => setTimeout(r, 900));
  }

  it("one SDK session: its requests land on every replica and each one serves them", async () => {
    const { client, transport } = await connect("demo", "alice");
    assert.match(transport.sessionId ?? "", /^k1\./);
    for (let n = 0; n < 8; n++) {
      const result = await client.callTool({ name: "add", arguments: { a: n, b: 1 } });
      assert.deepEqual(result.content, [{ type: "text", text: String(n + 1) }]);
    }
    assert.equal((await client.listTools()).tools.length, 3, "the analyst sees echo, add and read_file");
    const counts = perReplica(handleOf("alice"));
    assert.ok(counts.every((c) => c > 0), `every replica served the session: ${counts.join(", ")}`);
    const calls = allEvents().filter((e) => e.agent?.sub === "alice" && e.mcp.method === "tools/call");
    assert.deepEqual([calls.length, calls.every((e) => e.outcome === "allowed")], [8, true]);
  });

  it("a replica killed with SIGKILL mid-session: the session goes on through the others", async () => {
    const { client } = await connect("demo", "bob");
    await client.callTool({ name: "echo", arguments: { text: "before" } });
    const killed = replicas[1]!;
    await killed.stop("SIGKILL");
    for (let n = 0; n < 6; n++) {
      const result = await client.callTool({ name: "echo", arguments: { text: `after ${n}` } });
      assert.deepEqual(result.content, [{ type: "text", text: `after ${n}` }]);
    }
    const counts = perReplica(handleOf("bob"));
    assert.ok(counts[0]! > 0 && counts[2]! > 0, `the survivors served it: ${counts.join(", ")}`);
    replicas[1] = await spawnServe(base(keys, 1));
    await new Promise((r) => setTimeout(r, 900));
    // The restarted replica serves the session too: straight to it, no balancer.
    const direct = await rpc(replicas[1]!.url, "demo", "bob", (await sessionOf(client))!, "tools/call", { name: "echo", arguments: { text: "restarted" } });
    assert.equal(direct.status, 200);
    assert.match(direct.text, /restarted/);
  });

  it("DELETE through the balancer ends the session on every replica", async () => {
    const { client, transport } = await connect("demo", "dave");
    await client.callTool({ name: "echo", arguments: { text: "x" } });
    const id = transport.sessionId!;
    // Every replica has served it (so each holds a copy) before it ends.
    for (const r of replicas) assert.equal((await rpc(r.url, "demo", "dave", id, "tools/list", {})).status, 200);
    await transport.terminateSession();
    for (const r of replicas) {
      const after = await rpc(r.url, "demo", "dave", id, "tools/list", {});
      assert.equal(after.status, 404, `${r.url} still serves an ended session`);
    }
    const ends = allEvents().filter((e) => e.agent?.sub === "dave" && e.mcp.method === "portcullis/session-end");
    assert.deepEqual(ends.map((e) => e.outcome), ["allowed"]);
  });

  it("rate limits hold across replicas: one agent's calls are counted once, wherever they land", async () => {
    const { client } = await connect("demo", "carol");
    const outcomes: string[] = [];
    for (let n = 0; n < PER_AGENT_LIMIT + 4; n++) {
      const result = await client.callTool({ name: "echo", arguments: { text: String(n) } });
      outcomes.push(result.isError ? "refused" : "allowed");
    }
    assert.deepEqual(outcomes, [...Array(PER_AGENT_LIMIT).fill("allowed"), ...Array(4).fill("refused")]);
    const calls = allEvents().filter((e) => e.agent?.sub === "carol" && e.mcp.method === "tools/call");
    assert.equal(calls.filter((e) => e.outcome === "rate_limited").length, 4);
    const byReplica = perReplica(handleOf("carol"));
    assert.ok(byReplica.filter((c) => c > 0).length >= 2, `spread over replicas: ${byReplica.join(", ")}`);
  });

  it("a stdio upstream: each replica the session reaches starts its own process, and the session goes on", async () => {
    const { client } = await connect("stdio", "erin", ["admin"]);
    for (let n = 0; n < 6; n++) {
      const result = await client.callTool({ name: "echo", arguments: { message: `m${n}` } });
      assert.match(JSON.stringify(result.content), new RegExp(`m${n}`));
    }
    const counts = perReplica(handleOf("erin"));
    assert.ok(counts.filter((c) => c > 0).length >= 2, `served by several replicas: ${counts.join(", ")}`);
    const restarts = replicas.filter((r) => r.stderr().includes("stdio upstream restarted for a session from another replica")).length;
    assert.ok(restarts >= 1, "a replica other than the minting one started a process for the session");
  });

  it("keys rotate while sessions are open: old sessions go on, new ones use the new key, a dropped key ends its sessions", async () => {
    const { client: old, transport: oldTransport } = await connect("demo", "frank");
    assert.match(oldTransport.sessionId ?? "", /^k1\./);
    const rotated = [newKey("k2"), ...keys];
    for (let i = 0; i < REPLICAS; i++) {
      await restartReplica(i, rotated);
      await old.callTool({ name: "echo", arguments: { text: `during ${i}` } });
    }
    keys = rotated;
    const { client: fresh, transport: freshTransport } = await connect("demo", "grace");
    assert.match(freshTransport.sessionId ?? "", /^k2\./, "the first key seals");
    for (let n = 0; n < 3; n++) await old.callTool({ name: "echo", arguments: { text: `after ${n}` } });
    // Retire k1: sessions it sealed are gone on every replica, those of k2 are not.
    keys = [rotated[0]!];
    for (let i = 0; i < REPLICAS; i++) await restartReplica(i, keys);
    for (const r of replicas) {
      assert.equal((await rpc(r.url, "demo", "frank", oldTransport.sessionId!, "tools/list", {})).status, 404);
      assert.equal((await rpc(r.url, "demo", "grace", freshTransport.sessionId!, "tools/list", {})).status, 200);
    }
    await fresh.callTool({ name: "echo", arguments: { text: "still here" } });
  });

  it("audit verify over the replicas' streams together checks each replica's chain", async () => {
    // Interleaved as one topic would carry them: each replica's events in its own write order.
    const streams = auditFiles.map((_, i) => events(i));
    const merged: AuditEvent[] = [];
    for (let n = 0; streams.some((s) => n < s.length); n++) for (const s of streams) if (n < s.length) merged.push(s[n]!);
    const file = join(mkdtempSync(join(tmpdir(), "pc-scale-audit-")), "merged.jsonl");
    writeFileSync(file, merged.map((e) => JSON.stringify(e)).join("\n") + "\n");
    const run = await runPortcullisHere(["audit", "verify", "--file", file, "--json"]);
    assert.equal(run.code, 0, showRun(run));
    const report = JSON.parse(run.stdout) as { ok: boolean; chains?: unknown[] };
    assert.equal(report.ok, true);
    // Three replicas, each restarted at least once: every epoch is a chain of its own.
    assert.ok(Array.isArray(report.chains) && report.chains.length >= REPLICAS * 2, JSON.stringify(report).slice(0, 400));
  });

  /** One JSON-RPC request straight to a replica, with the session and the agent's token. */
  async function rpc(base: string, server: string, sub: string, session: string, method: string, params: Record<string, unknown>): Promise<{ status: number; text: string }> {
    const res = await fetch(`${base}/mcp/${server}`, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        accept: "application/json, text/event-stream",
        authorization: `Bearer ${token(sub)}`,
        "mcp-session-id": session,
        "mcp-protocol-version": "2025-11-25",
      },
      body: JSON.stringify({ jsonrpc: "2.0", id: 1, method, params }),
    });
    return { status: res.status, text: await res.text() };
  }

  async function sessionOf(client: Client): Promise<string | undefined> {
    return (client.transport as StreamableHTTPClientTransport | undefined)?.sessionId;
  }
});
