import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { Kafka, logLevel } from "kafkajs";
import { startDemoUpstream } from "../../demo/upstream.js";
import type { AuditEvent, KafkaSinkStats } from "../../gateway/audit/index.js";
import { startFakeIdp, type FakeIdp } from "../fakes/jwks.js";
import { createTopic, uniqueTopic } from "../support/kafka.js";
import { OwnBroker } from "../support/own-broker.js";
import { defaultBundle, freePort, repoRoot, startStack, type Stack } from "../support/stack.js";

/**
 * The durable outbox against a real broker that this file starts, stops and restarts itself
 * (test/support/own-broker.ts; the shared :9092 broker is never touched), and a real gateway
 * process killed with SIGKILL. Skipped only with PORTCULLIS_SKIP_KAFKA=1.
 */
const skip = process.env.PORTCULLIS_SKIP_KAFKA === "1";

/** Reads `topic` from the start until every id in `want` was seen (or the deadline). */
async function decisionIdsOnTopic(brokers: string[], topic: string, want: Set<string>, timeoutMs = 60_000): Promise<Map<string, number>> {
  const kafka = new Kafka({ clientId: "outbox-it", brokers, connectionTimeout: 3000, logLevel: logLevel.NOTHING });
  const consumer = kafka.consumer({ groupId: `outbox-it-${Date.now()}-${Math.random()}`, maxWaitTimeInMs: 200 });
  const seen = new Map<string, number>();
  let done!: () => void;
  const enough = new Promise<void>((r) => (done = r));
  const timer = setTimeout(() => done(), timeoutMs);
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ message }) => {
        const id = message.headers?.["decision-id"]?.toString() ?? "";
        seen.set(id, (seen.get(id) ?? 0) + 1);
        if ([...want].every((w) => seen.has(w))) done();
      },
    });
    await enough;
  } finally {
    clearTimeout(timer);
    await consumer.disconnect();
  }
  return seen;
}

const missing = (want: Iterable<string>, seen: Map<string, number>): string[] => [...want].filter((w) => !seen.has(w));

/** Runs `n` calls with `width` in flight; returns how many were answered. */
async function pool(n: number, width: number, call: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: width }, async () => {
    while (next < n) await call(next++);
  }));
}

describe("durable audit outbox with a real broker (stopped, restarted; gateway SIGKILLed)", function () {
  this.timeout(240_000);
  let broker: OwnBroker | null = null;

  before(async function () {
    if (skip || !OwnBroker.available()) {
      console.log("    audit-outbox: skipped (PORTCULLIS_SKIP_KAFKA=1 or no Kafka jars in .tools/kafka/libs)");
      this.skip();
    }
    broker = await OwnBroker.start();
  });
  after(async () => {
    await broker?.destroy();
  });

  it("delivers all 1,000 decisions served while the broker was down, once it is back", async () => {
    const b = broker as OwnBroker;
    const topic = uniqueTopic("it.outbox");
    const stack: Stack = await startStack({ kafka: { brokers: b.brokers, topic } });
    try {
      // Ten agents: the default policy allows one agent 120 echo calls a minute.
      const clients = await Promise.all(Array.from({ length: 10 }, (_, k) => stack.connect("demo", stack.token(`agent-${k}`, ["analyst"])).then((c) => c.client)));
      await clients[0]!.callTool({ name: "echo", arguments: { text: "before the outage" } });
      await b.stop();
      await pool(1000, 16, async (i) => {
        const r = await clients[i % clients.length]!.callTool({ name: "echo", arguments: { text: `outage-${i}` } });
        assert.equal(r.isError, undefined, `call ${i} was not answered normally: ${JSON.stringify(r)}`);
      });
      const stats = stack.gateway.audit.sinkStats()[`kafka:${topic}`] as KafkaSinkStats;
      assert.ok((stats.outbox?.unacked ?? 0) >= 1000, `outbox holds ${JSON.stringify(stats)}`);
      const during = stack.auditEvents().filter((e) => e.mcp.method === "tools/call" && String((e.input as { request?: { arguments?: { text?: string } } }).request?.arguments?.text).startsWith("outage-"));
      assert.equal(during.length, 1000);
      await b.restart();
      const seen = await decisionIdsOnTopic(b.brokers, topic, new Set(during.map((e) => e.decision_id)));
      assert.deepEqual(missing(during.map((e) => e.decision_id), seen), [], "decisions missing from the topic");
    } finally {
      await stack.close();
    }
  });

  it("loses nothing when the gateway is SIGKILLed mid-stream: the restarted gateway resends from its outbox", async () => {
    const b = broker as OwnBroker;
    const topic = uniqueTopic("it.outbox.kill");
    await b.restart(); // no-op when it runs; an earlier failure may have left it stopped
    await createTopic(b.brokers, topic);
    const gw = await GatewayProcess.prepare(b.brokers, topic);
    try {
      await b.stop(); // events pile up in the outbox, so the kill leaves some unacknowledged
      await gw.spawn();
      const clients = await Promise.all(Array.from({ length: 8 }, (_, k) => gw.connect(`agent-${k}`).then((c) => c.client)));
      const answered: string[] = [];
      let killed = false;
      const stream = pool(400, 8, async (i) => {
        if (killed) return;
        try {
          await clients[i % clients.length]!.callTool({ name: "echo", arguments: { text: `kill-${i}` } });
          answered.push(`kill-${i}`);
        } catch {
          // in flight when the process died: never answered, so nothing to find on the topic
        }
        if (answered.length === 150 && !killed) {
          killed = true;
          gw.kill();
        }
      });
      await stream;
      assert.ok(answered.length >= 150, `only ${answered.length} calls answered before the kill`);
      await b.restart();
      await gw.spawn();
      assert.match(await gw.waitForLog(/resending events not acknowledged/), /"events":\d+/);
      const byText = gw.decisionIdsByText();
      const want = answered.map((t) => byText.get(t));
      assert.ok(want.every((w) => typeof w === "string"), "every answered call is in the JSONL file");
      const seen = await decisionIdsOnTopic(b.brokers, topic, new Set(want as string[]));
      assert.deepEqual(missing(want as string[], seen), [], "answered decisions missing from the topic");
    } finally {
      await gw.close();
    }
  });

  it("refuses calls while the outbox is over its bound (onFull reject), counting every refusal", async () => {
    const unreachable = [`127.0.0.1:${await freePort()}`];
    const topic = uniqueTopic("it.outbox.full");
    const stack = await startStack({ kafka: { brokers: unreachable, topic }, audit: { outbox: { maxBytes: 8192 }, onFull: "reject" } });
    try {
      const { client } = await stack.connect("demo", stack.token("alice", ["analyst"]));
      const outcomes: string[] = [];
      for (let i = 0; i < 20; i++) {
        const r = await client.callTool({ name: "echo", arguments: { text: `full-${i}` } }).then(
          () => "answered",
          (e: unknown) => (/Audit backlog full/.test(String(e)) ? "refused" : `other: ${String(e)}`),
        );
        outcomes.push(r);
      }
      const refused = outcomes.filter((o) => o === "refused").length;
      assert.ok(refused > 0 && outcomes[0] === "answered", outcomes.join(","));
      assert.deepEqual(outcomes.filter((o) => o !== "answered" && o !== "refused"), []);
      assert.equal(outcomes.lastIndexOf("answered") < outcomes.indexOf("refused"), true, "once full, every later call is refused");
      const stats = stack.gateway.audit.sinkStats()[`kafka:${topic}`] as KafkaSinkStats;
      // Every refused request is counted (the client's GET stream retries are refused too).
      assert.ok((stats.outbox?.refused ?? 0) >= refused, `counted ${stats.outbox?.refused}, ${refused} calls refused`);
      const events = stack.auditEvents().filter((e: AuditEvent) => e.mcp.method === "tools/call");
      const echoed = events.filter((e: AuditEvent) => e.mcp.tool === "echo");
      assert.equal(echoed.length, outcomes.length - refused, "a refused call is never decided nor forwarded");
      // …but it is on record: one event per refusal, with no decision in it.
      const refusedEvents = events.filter((e: AuditEvent) => e.error?.code === "audit_backpressure");
      assert.equal(refusedEvents.length, refused);
      assert.ok(refusedEvents.every((e: AuditEvent) => e.result === null && e.outcome === "error"));
    } finally {
      await stack.close();
    }
  });
});

/** `portcullis serve` as a child process, with its config, IdP and upstream in this process. */
class GatewayProcess {
  private child: ChildProcess | null = null;
  private log = "";
  private constructor(
    private readonly configFile: string,
    private readonly port: number,
    private readonly auditFile: string,
    private readonly idp: FakeIdp,
    private readonly closeUpstream: () => Promise<void>,
  ) {}

  static async prepare(brokers: string[], topic: string): Promise<GatewayProcess> {
    const { bundle, dir } = await defaultBundle();
    const work = mkdtempSync(join(tmpdir(), "pc-outbox-gw-"));
    const port = await freePort();
    const idp = await startFakeIdp({ audience: `http://127.0.0.1:${port}/mcp` });
    const demo = await startDemoUpstream();
    const auditFile = join(work, "audit.jsonl");
    const config = {
      listen: { host: "127.0.0.1", port },
      auth: { issuer: idp.issuer, audience: `http://127.0.0.1:${port}/mcp`, jwksUri: idp.jwksUri, algorithms: ["RS256"] },
      policy: { bundle, verificationKey: join(dir, "pub.pem") },
      upstreams: { demo: { url: demo.url } },
      audit: { file: auditFile, kafka: { brokers, topic }, outbox: { dir: join(work, "outbox") } },
    };
    const configFile = join(work, "gateway.yaml");
    writeFileSync(configFile, JSON.stringify(config)); // JSON is YAML
    return new GatewayProcess(configFile, port, auditFile, idp, () => demo.close());
  }

  async spawn(): Promise<void> {
    const child = spawn(process.execPath, [join(repoRoot, "dist/gateway/cli/main.js"), "serve", "--config", this.configFile], { cwd: repoRoot, stdio: ["ignore", "pipe", "pipe"] });
    this.child = child;
    this.log = "";
    const onData = (c: Buffer): void => void (this.log += c.toString());
    child.stdout?.on("data", onData);
    child.stderr?.on("data", onData);
    await this.waitForLog(/gateway listening/);
  }

  async waitForLog(re: RegExp, timeoutMs = 30_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const line = this.log.split("\n").find((l) => re.test(l));
      if (line) return line;
      if (this.child?.exitCode !== null || Date.now() > deadline) throw new Error(`no log line ${re} (exit ${this.child?.exitCode}):\n${this.log}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  async connect(sub: string): Promise<{ client: Client }> {
    const token = this.idp.mint({ sub, roles: ["analyst"], scope: "mcp:tools", client_id: "alice-agent" });
    const transport = new StreamableHTTPClientTransport(new URL(`http://127.0.0.1:${this.port}/mcp/demo`), { requestInit: { headers: { Authorization: `Bearer ${token}` } } });
    const client = new Client({ name: "outbox-it", version: "1.0.0" });
    await client.connect(transport);
    return { client };
  }

  kill(): void {
    this.child?.kill("SIGKILL");
  }

  /** echo text → decision id, from the JSONL file (complete: a SIGKILL keeps the page cache). */
  decisionIdsByText(): Map<string, string> {
    const out = new Map<string, string>();
    for (const line of readFileSync(this.auditFile, "utf8").split("\n")) {
      if (!line) continue;
      const e = JSON.parse(line) as AuditEvent;
      const text = (e.input as { request?: { arguments?: { text?: unknown } } } | null)?.request?.arguments?.text;
      if (e.mcp.tool === "echo" && typeof text === "string") out.set(text, e.decision_id);
    }
    return out;
  }

  async close(): Promise<void> {
    const child = this.child;
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child.once("exit", r));
      child.kill("SIGTERM");
      await exited;
    }
    await this.idp.close();
    await this.closeUpstream();
  }
}
