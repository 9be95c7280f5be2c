/**
 * A real redis-server for tests, started by the test run on a free 127.0.0.1 port with no
 * persistence, and stopped again. The Debian package `redis-server` provides the binary
 * (make tools installs it when missing).
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { freePort } from "./stack.js";

export interface TestRedis {
  port: number;
  url: string;
  /** Stops the server (SIGTERM) and waits for it to exit. Idempotent. */
  stop(): Promise<void>;
  /** Starts it again on the same port (after stop). */
  restart(): Promise<void>;
}

export function redisServerAvailable(): boolean {
  return spawnSync("redis-server", ["--version"], { stdio: "ignore" }).status === 0;
}

export async function startRedis(): Promise<TestRedis> {
  const port = await freePort();
  let child: ChildProcess | null = await launch(port);
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    async stop() {
      const c = child;
      child = null;
      if (!c || c.exitCode !== null) return;
      const exited = new Promise((r) => c.once("exit", r));
      c.kill("SIGTERM");
      await exited;
    },
    async restart() {
      if (child) throw new Error("redis-server is still running");
      child = await launch(port);
    },
  };
}

async function launch(port: number): Promise<ChildProcess> {
  const child = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  await new Promise<void>((resolve, reject) => {
    let seen = "";
    const onData = (c: Buffer) => {
      seen += c.toString();
      if (seen.includes("Ready to accept connections")) resolve();
    };
    child.stdout?.on("data", onData);
    child.stderr?.on("data", onData);
    child.once("error", reject);
    child.once("exit", (code) => reject(new Error(`redis-server exited ${code}: ${seen}`)));
  });
  return child;
}
