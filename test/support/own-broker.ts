/**
 * A private single-node KRaft broker for tests that stop and restart Kafka (the shared broker on
 * :9092 must never be touched). Same recipe as scripts/kafka.sh: the jars in .tools/kafka/libs,
 * tools/kafka-broker/server.properties.template and log4j2.properties, its own ports and data dir.
 *
 *   const broker = await OwnBroker.start();   // formats a fresh data dir, waits until it serves
 *   await broker.stop();                      // SIGTERM (SIGKILL after 20 s), data kept
 *   await broker.restart();                   // same data, same ports
 *   await broker.destroy();                   // stop and delete the data dir
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Kafka, logLevel } from "kafkajs";
import { freePort, repoRoot } from "./stack.js";

const LIBS = join(repoRoot, ".tools/kafka/libs");

export class OwnBroker {
  private child: ChildProcess | null = null;

  private constructor(
    readonly port: number,
    readonly controllerPort: number,
    readonly dataDir: string,
  ) {}

  get brokers(): string[] {
    return [`127.0.0.1:${this.port}`];
  }

  static available(): boolean {
    return existsSync(join(LIBS, ".complete"));
  }

  static async start(): Promise<OwnBroker> {
    if (!OwnBroker.available()) throw new Error(`Kafka jars missing in ${LIBS}: run 'make tools'`);
    const b = new OwnBroker(await freePort(), await freePort(), mkdtempSync(join(tmpdir(), "pc-own-kafka-")));
    mkdirSync(join(b.dataDir, "logs"), { recursive: true });
    const template = readFileSync(join(repoRoot, "tools/kafka-broker/server.properties.template"), "utf8");
    writeFileSync(b.conf, template.replaceAll("${PORT}", String(b.port)).replaceAll("${CPORT}", String(b.controllerPort)).replaceAll("${DATA}", b.dataDir));
    const clusterId = randomBytes(16).toString("base64url").replace(/^-/, "A");
    const f = spawnSync("java", [...b.jvmOpts(), "-cp", `${LIBS}/*`, "kafka.tools.StorageTool", "format", "-t", clusterId, "-c", b.conf, "--ignore-formatted"], { encoding: "utf8" });
    if (f.status !== 0) throw new Error(`StorageTool format failed: ${f.stderr}${f.stdout}`);
    await b.restart();
    return b;
  }

  private get conf(): string {
    return join(this.dataDir, "server.properties");
  }

  private jvmOpts(): string[] {
    return [
      "-Xms256m", "-Xmx256m", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20", "-Djava.awt.headless=true", "-XX:TieredStopAtLevel=1",
      `-Dkafka.logs.dir=${join(this.dataDir, "logs")}`,
      `-Dlog4j2.configurationFile=${join(repoRoot, "tools/kafka-broker/log4j2.properties")}`,
    ];
  }

  /** Starts the broker (again) and resolves once it answers metadata and admin requests. */
  async restart(timeoutMs = 90_000): Promise<void> {
    if (this.child) return;
    const out = openSync(join(this.dataDir, "broker.log"), "a");
    this.child = spawn("java", [...this.jvmOpts(), "-cp", `${LIBS}/*`, "kafka.Kafka", this.conf], { stdio: ["ignore", out, out] });
    const child = this.child;
    child.once("exit", () => {
      if (this.child === child) this.child = null;
    });
    const kafka = new Kafka({ clientId: "own-broker-probe", brokers: this.brokers, connectionTimeout: 1000, retry: { retries: 0 }, logLevel: logLevel.NOTHING });
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (!this.child) throw new Error(`own broker exited during start; see ${join(this.dataDir, "broker.log")}`);
      const admin = kafka.admin();
      try {
        await admin.connect();
        await admin.listTopics();
        return;
      } catch {
        if (Date.now() > deadline) throw new Error(`own broker on :${this.port} not ready in ${timeoutMs} ms`);
        await new Promise((r) => setTimeout(r, 300));
      } finally {
        await admin.disconnect().catch(() => undefined);
      }
    }
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise<void>((r) => child.once("exit", () => r()));
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), 20_000);
    await exited;
    clearTimeout(timer);
    this.child = null;
  }

  async destroy(): Promise<void> {
    await this.stop();
    rmSync(this.dataDir, { recursive: true, force: true });
  }
}
