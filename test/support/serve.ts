/**
 * The gateway as operators run it: `node dist/gateway/cli/main.js serve --config FILE` in a child
 * process, with a config written to a temp file (JSON is YAML).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort, repoRoot } from "./stack.js";

export interface ServedGateway {
  url: string;
  child: ChildProcess;
  /** Everything the process wrote to stderr so far (JSON log lines). */
  stderr(): string;
  /** Sends `signal` and resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** Writes `config` (listen port filled in, unless it names one) to a temp file and starts `serve` on it. */
export async function spawnServe(config: Record<string, unknown>): Promise<ServedGateway> {
  const port = (config.listen as { port?: number } | undefined)?.port ?? (await freePort());
  const dir = mkdtempSync(join(tmpdir(), "pc-serve-"));
  const file = join(dir, "gateway.yaml");
  writeFileSync(file, JSON.stringify({ ...config, listen: { host: "127.0.0.1", port } }, null, 2));
  const child = spawn(process.execPath, [join(repoRoot, "dist/gateway/cli/main.js"), "serve", "--config", file], {
    cwd: repoRoot,
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, PORTCULLIS_LOG_LEVEL: "info" },
  });
  let err = "";
  child.stderr!.on("data", (c: Buffer) => (err += c.toString()));
  child.stdout!.resume();
  const exit = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  await new Promise<void>((resolve, reject) => {
    const check = () => {
      if (err.includes("serving")) {
        child.stderr!.off("data", check);
        resolve();
      }
    };
    child.stderr!.on("data", check);
    void exit.then((code) => reject(new Error(`serve exited ${code} before listening:\n${err}`)));
  });
  return {
    url: `http://127.0.0.1:${port}`,
    child,
    stderr: () => err,
    async stop(signal = "SIGTERM") {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exit;
    },
  };
}
