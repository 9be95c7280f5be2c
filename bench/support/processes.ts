/**
 * Child processes of a bench run and what the kernel says about them (CPU time, resident memory).
 * Every process started here is stopped when the run ends, however it ends (error, Ctrl-C).
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";

export interface Running {
  readonly child: ChildProcess;
  readonly pid: number;
  /** What it printed so far (stdout and stderr), for error messages. */
  output(): string;
  stop(): Promise<void>;
}

const running = new Set<Running>();
const cleanups = new Set<() => Promise<void>>();

/** Runs `fn` when the bench ends (stopAll), in reverse order of registration. */
export function onCleanup(fn: () => Promise<void>): () => void {
  cleanups.add(fn);
  return () => void cleanups.delete(fn);
}

export async function stopAll(): Promise<void> {
  for (const fn of [...cleanups].reverse()) {
    cleanups.delete(fn);
    await fn().catch((err: unknown) => process.stderr.write(`cleanup: ${String(err)}\n`));
  }
  await Promise.all([...running].map((r) => r.stop()));
}

let signalled = false;

/**
 * Runs a bench's main: its processes are stopped however it ends; an error sets exit code 1 and
 * is printed, unless it is only the fallout of Ctrl-C stopping the processes under it.
 */
export function runMain(main: () => Promise<void>): void {
  main()
    .catch((err: unknown) => {
      if (signalled) return;
      process.stderr.write(`bench failed: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
      process.exitCode = 1;
    })
    .finally(() => stopAll());
}
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    if (signalled) return;
    signalled = true;
    process.stderr.write(`\n${signal}: stopping the bench's processes\n`);
    void stopAll().finally(() => process.exit(130));
  });
}

/** Readiness: a text or pattern its output shows, or a probe (e.g. an HTTP health check) polled every 250 ms. */
export type Readiness = string | RegExp | (() => Promise<boolean>);

/**
 * Starts `cmd args` and resolves once it is ready. Rejects if it exits first or is not ready
 * within `timeoutMs`.
 */
export function startProcess(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; ready: Readiness; timeoutMs?: number; cwd?: string }): Promise<Running> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: { ...process.env, ...opts.env }, stdio: ["ignore", "pipe", "pipe"], cwd: opts.cwd });
    let seen = "";
    let ready = false;
    const timer = setTimeout(() => {
      if (ready) return;
      child.kill("SIGKILL");
      reject(new Error(`${cmd} ${args.join(" ")} not ready within ${opts.timeoutMs ?? 60_000} ms:\n${seen.slice(-4000)}`));
    }, opts.timeoutMs ?? 60_000);
    const exited = new Promise<void>((r) => child.once("exit", () => r()));
    const handle: Running = {
      child,
      pid: child.pid ?? -1,
      output: () => seen,
      async stop() {
        running.delete(handle);
        if (child.exitCode !== null || child.signalCode !== null) return;
        child.kill("SIGTERM");
        const killTimer = setTimeout(() => child.kill("SIGKILL"), 10_000);
        await exited;
        clearTimeout(killTimer);
      },
    };
    const becameReady = () => {
      if (ready) return;
      ready = true;
      clearTimeout(timer);
      running.add(handle);
      resolve(handle);
    };
    const check = opts.ready;
    const onData = (c: Buffer) => {
      // Keep the start of the output (where readiness and errors are) and the end, not everything.
      seen = seen.length < 64_000 ? seen + c.toString() : seen.slice(0, 32_000) + seen.slice(-16_000) + c.toString();
      if (typeof check === "string" ? seen.includes(check) : check instanceof RegExp ? check.test(seen) : false) becameReady();
    };
    if (typeof check === "function") {
      const poll = async () => {
        while (!ready && child.exitCode === null && child.signalCode === null) {
          if (await check().catch(() => false)) return becameReady();
          await new Promise((r) => setTimeout(r, 250));
        }
      };
      void poll();
    }
    child.stdout!.on("data", onData);
    child.stderr!.on("data", onData);
    child.once("error", (err) => reject(new Error(`${cmd}: ${err.message}`)));
    child.once("exit", (code, signal) => {
      clearTimeout(timer);
      if (!ready) reject(new Error(`${cmd} ${args.join(" ")} exited (${code ?? signal}) before it was ready:\n${seen.slice(-4000)}`));
    });
  });
}

const clockTicksPerSecond = (() => {
  try {
    return Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** CPU time (user + system, all threads) the process has used so far, in ms (/proc/PID/stat). */
export function cpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  // Fields after the command name, which is in parentheses and may itself hold spaces.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  return ((utime + stime) * 1000) / clockTicksPerSecond;
}

/** CPU time of the process and all its descendants (a server that forks helpers), in ms. */
export function treeCpuMs(pid: number): number {
  let total = cpuMs(pid);
  for (const child of childPids(pid)) {
    try {
      total += treeCpuMs(child);
    } catch {
      // It exited between the listing and the read.
    }
  }
  return total;
}

function childPids(pid: number): number[] {
  try {
    return readdirSync(`/proc/${pid}/task`).flatMap((tid) => {
      try {
        return readFileSync(`/proc/${pid}/task/${tid}/children`, "utf8").split(" ").filter(Boolean).map(Number);
      } catch {
        return [];
      }
    });
  } catch {
    return [];
  }
}

/** Resident set size of the process, in bytes (/proc/PID/status VmRSS). */
export function rssBytes(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  if (!m) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(m[1]) * 1024;
}
