/**
 * Runs the official Python MCP SDK as a client (test/python/mcp_client.py in .tools/venv, made by
 * scripts/python-venv.sh) and returns its one-JSON-object report, typed.
 */
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const repoRoot = fileURLToPath(new URL("../../../", import.meta.url));
const toolsDir = process.env.TOOLS_DIR ?? join(repoRoot, ".tools");
export const pythonClientInterpreter = join(toolsDir, "venv", "bin", "python");
export const pythonClientScript = join(repoRoot, "test", "python", "mcp_client.py");

export type PythonClientEra = "2026-07-28" | "2025-11-25";

export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };
export type JsonObject = { [key: string]: JsonValue };

export type PythonScriptStep =
  | { op: "list_tools" }
  | { op: "call_tool"; name: string; arguments?: JsonObject }
  | { op: "list_resources" }
  | { op: "list_resource_templates" }
  | { op: "read_resource"; uri: string }
  | { op: "list_prompts" }
  | { op: "get_prompt"; name: string; arguments?: Record<string, string> };

export interface PythonStepError {
  error: { code: number; message: string };
}

/** One step's outcome: the result object as the SDK parsed it (camelCase wire names), or its JSON-RPC error. */
export type PythonStepResult = JsonObject | PythonStepError;

/** A server→client input request the client answered (2025: a JSON-RPC request; 2026: an input_required entry). */
export interface PythonCallback {
  kind: "elicitation" | "sampling";
  params: JsonObject;
}

export interface PythonClientOutput {
  negotiatedVersion: string;
  serverInfo: JsonObject | null;
  results: PythonStepResult[];
  callbacks: PythonCallback[];
}

export interface PythonClientOptions {
  url: string;
  /** Sent as `Authorization: Bearer <token>`; an empty string sends no Authorization header. */
  token: string;
  era: PythonClientEra;
  script: PythonScriptStep[];
  /** Accept every elicitation with this content (otherwise the client declares no elicitation capability). */
  elicitAccept?: JsonObject;
  /** Decline every elicitation. */
  elicitDecline?: boolean;
  /** Answer every sampling request with this assistant text (otherwise no sampling capability). */
  sampleText?: string;
  /** 2026-07-28 only: skip the `server/discover` probe; the first request of the script is the first on the wire. */
  noDiscover?: boolean;
  /** Whole-run limit; the process is killed after it (default 60 s). */
  timeoutMs?: number;
}

/** The client exited non-zero: `fatal` is its connection/protocol failure, when it printed one. */
export class PythonClientError extends Error {
  constructor(
    message: string,
    readonly exitCode: number | null,
    readonly stderr: string,
    readonly fatal: string | undefined,
    readonly fatalCode: number | undefined,
    readonly partialResults: PythonStepResult[],
  ) {
    super(message);
    this.name = "PythonClientError";
  }
}

export function isStepError(result: PythonStepResult | undefined): result is PythonStepError {
  if (result === undefined || !("error" in result)) return false;
  const error = result.error;
  return typeof error === "object" && error !== null && !Array.isArray(error) && typeof error.code === "number";
}

function isJsonObject(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function asStepResults(value: unknown): PythonStepResult[] {
  if (!Array.isArray(value) || !value.every(isJsonObject)) throw new Error("'results' is not a list of objects");
  return value;
}

function asCallbacks(value: unknown): PythonCallback[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) throw new Error("'callbacks' is not a list");
  return value.map((entry) => {
    if (!isJsonObject(entry) || (entry.kind !== "elicitation" && entry.kind !== "sampling") || !isJsonObject(entry.params)) {
      throw new Error(`bad callback entry ${JSON.stringify(entry)}`);
    }
    return { kind: entry.kind, params: entry.params };
  });
}

function parseOutput(stdout: string): JsonObject {
  const parsed: unknown = JSON.parse(stdout);
  if (!isJsonObject(parsed)) throw new Error("stdout is not a JSON object");
  return parsed;
}

function commandLine(opts: PythonClientOptions): string[] {
  const args = [pythonClientScript, "--url", opts.url, "--token", opts.token, "--era", opts.era, "--script", JSON.stringify(opts.script)];
  if (opts.elicitAccept !== undefined) args.push("--elicit-accept", JSON.stringify(opts.elicitAccept));
  if (opts.elicitDecline) args.push("--elicit-decline");
  if (opts.sampleText !== undefined) args.push("--sample-text", opts.sampleText);
  if (opts.noDiscover) args.push("--no-discover");
  return args;
}

export async function runPythonClient(opts: PythonClientOptions): Promise<PythonClientOutput> {
  if (!existsSync(pythonClientInterpreter)) {
    throw new Error(`${pythonClientInterpreter} is missing: run scripts/python-venv.sh first (it creates .tools/venv for the Python MCP client)`);
  }
  const timeoutMs = opts.timeoutMs ?? 60_000;
  const child = spawn(pythonClientInterpreter, commandLine(opts), { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, PYTHONUNBUFFERED: "1" } });
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill("SIGKILL");
  }, timeoutMs);
  const exitCode = await new Promise<number | null>((resolve, reject) => {
    child.once("error", reject);
    child.once("close", (code) => resolve(code));
  }).finally(() => clearTimeout(timer));

  const where = `python client (${opts.era} ${opts.url})`;
  if (timedOut) throw new PythonClientError(`${where} timed out after ${timeoutMs} ms\nstderr:\n${stderr}`, exitCode, stderr, undefined, undefined, []);
  let report: JsonObject;
  try {
    report = parseOutput(stdout);
  } catch (e) {
    throw new PythonClientError(`${where} exited ${exitCode} without a JSON report (${String(e)})\nstdout:\n${stdout}\nstderr:\n${stderr}`, exitCode, stderr, undefined, undefined, []);
  }
  if (exitCode !== 0 || typeof report.fatal === "string") {
    const fatal = typeof report.fatal === "string" ? report.fatal : undefined;
    const fatalCode = typeof report.code === "number" ? report.code : undefined;
    const partial = report.results === undefined ? [] : asStepResults(report.results);
    throw new PythonClientError(`${where} failed (exit ${exitCode}): ${fatal ?? stdout}\nstderr:\n${stderr}`, exitCode, stderr, fatal, fatalCode, partial);
  }
  if (typeof report.negotiatedVersion !== "string") throw new Error(`${where}: report has no negotiatedVersion: ${stdout}`);
  const serverInfo = report.serverInfo ?? null;
  if (serverInfo !== null && !isJsonObject(serverInfo)) throw new Error(`${where}: serverInfo is not an object: ${stdout}`);
  return { negotiatedVersion: report.negotiatedVersion, serverInfo, results: asStepResults(report.results), callbacks: asCallbacks(report.callbacks) };
}
