/**
 * The bench's own Kafka broker: scripts/kafka.sh with a state directory and ports of its own, so
 * the broker of the integration tests (and whatever listens on :9092) is never touched. Stopped
 * (and its data deleted) when the run ends.
 */
import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { onCleanup } from "./processes.js";
import { freePort, repoRoot, toolsDir } from "./setup.js";

const run = promisify(execFile);

export type BrokerOutcome = { brokers: string[] } | { skipped: string };

/** Starts the broker, or says why it cannot (jars absent, no Java, start failed). */
export async function startBenchBroker(): Promise<BrokerOutcome> {
  if (process.env.BENCH_KAFKA === "0") return { skipped: "BENCH_KAFKA=0" };
  const libs = join(toolsDir, "kafka/libs");
  if (!existsSync(join(libs, ".complete"))) return { skipped: `the Kafka broker jars are absent (${libs}): run 'make tools-kafka'` };
  const port = await freePort();
  let controllerPort = await freePort();
  while (controllerPort === port) controllerPort = await freePort();
  if (port === 9092 || controllerPort === 9092) return startBenchBroker(); // never the shared broker's port
  const stateDir = mkdtempSync(join(tmpdir(), "pc-bench-kafka-"));
  const env = { ...process.env, TOOLS_DIR: toolsDir, KAFKA_STATE_DIR: stateDir, KAFKA_PORT: String(port), KAFKA_CONTROLLER_PORT: String(controllerPort) };
  const script = join(repoRoot, "scripts/kafka.sh");
  const stop = async () => {
    await run("bash", [script, "down"], { env }).catch((err: unknown) => process.stderr.write(`kafka.sh down: ${String(err)}\n`));
    rmSync(stateDir, { recursive: true, force: true });
  };
  onCleanup(stop);
  try {
    await run("bash", [script, "up"], { env, timeout: 120_000 });
  } catch (err) {
    const e = err as { stderr?: string; stdout?: string; message: string };
    const why = (e.stderr || e.stdout || e.message).trim().split("\n").filter((l) => l.includes("error")).slice(-1)[0] ?? e.message;
    return { skipped: `the bench broker did not start: ${why}` };
  }
  return { brokers: [`127.0.0.1:${port}`] };
}
