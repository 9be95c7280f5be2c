/** Runs the built CLI (dist/gateway/cli/main.js) as a child process, for black-box CLI tests. */
import { spawn } from "node:child_process";
import { join } from "node:path";
import { repoRoot } from "./bundles.js";

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function runPortcullis(args: string[], opts: { cwd?: string; timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): Promise<CliRun> {
  const main = join(repoRoot(), "dist", "gateway", "cli", "main.js");
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [main, ...args], { cwd: opts.cwd ?? repoRoot(), env: opts.env ?? process.env, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c: Buffer) => (stdout += c.toString()));
    child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`portcullis ${args.join(" ")} did not exit in time\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, opts.timeoutMs ?? 60_000);
    child.once("error", reject);
    child.once("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

export const showRun = (r: CliRun): string => `exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`;

/** Runs the CLI in this process (runCli with captured output): the same code path, without ~1 s of node start-up per run. */
export async function runPortcullisHere(args: string[]): Promise<CliRun> {
  const { Writable } = await import("node:stream");
  const { runCli } = await import("../../gateway/cli/commands.js");
  const sink = (): { stream: InstanceType<typeof Writable>; text: () => string } => {
    const chunks: Buffer[] = [];
    const stream = new Writable({
      write(chunk: Buffer | string, _enc, done) {
        chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk));
        done();
      },
    });
    return { stream, text: () => Buffer.concat(chunks).toString("utf8") };
  };
  const out = sink();
  const err = sink();
  const code = await runCli(args, { out: out.stream, err: err.stream });
  return { code, stdout: out.text(), stderr: err.text() };
}
