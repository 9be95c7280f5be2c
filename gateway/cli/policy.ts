import { generateKeyPairSync } from "node:crypto";
import { readFile } from "node:fs/promises";
import { readJsonlFile, readTopicToEnd } from "../audit/readers.js";
import {
  parseBundle,
  readTarGz,
  replayDecisions,
  replayFails,
  signBundleFiles,
  WasmPolicyEngine,
  writeTarGz,
  type FailOn,
  type PolicyInput,
  type ReplayReport,
  type Tally,
} from "../policy/index.js";
import { GroupUsageError, optional, required, runGroup, type GroupIo, type Subcommand, type Values } from "./group.js";

/**
 * `portcullis policy eval|replay`: tools for policy authors. Both evaluate with the gateway's own
 * engine (the same wasm, the same fail-closed conversion), so what they print is what the gateway
 * would decide.
 */

const bundleOptions = {
  bundle: { type: "string", short: "b" },
  "verification-key": { type: "string" },
  "signing-alg": { type: "string" },
  "key-id": { type: "string" },
  scope: { type: "string" },
} as const;
const BUNDLE_USAGE = "--bundle FILE [--verification-key PEM [--signing-alg ALG] [--key-id ID] [--scope S]]";

const SUBCOMMANDS: Record<string, Subcommand> = {
  eval: {
    summary: "the decision (allow, reasons, message, rate_limit, mask) for one policy input",
    usage: `portcullis policy eval ${BUNDLE_USAGE} --input FILE\n  FILE holds a policy input (contract 3) or an audit event (its "input" is used).`,
    options: { ...bundleOptions, input: { type: "string", short: "i" } },
    async run(values, io) {
      const engine = await candidateEngine(values);
      const raw = JSON.parse(await readFile(required(values, "input"), "utf8")) as unknown;
      const input = isObject(raw) && "decision_id" in raw && isObject(raw.input) ? raw.input : raw;
      if (!isObject(input) || !isObject(input.agent) || !isObject(input.request)) throw new GroupUsageError("--input must hold a policy input ({agent, request, tool}) or an audit event");
      const outcome = engine.decide(input as unknown as PolicyInput);
      const result = { ...outcome.decision, ...(outcome.error ? { error: outcome.error } : {}), revision: outcome.revision, elapsed_ms: Math.round(outcome.elapsedMs * 1000) / 1000 };
      io.out.write(`${JSON.stringify(result, null, 2)}\n`);
      return 0;
    },
  },
  replay: {
    summary: "re-evaluate recorded decisions (audit JSONL or a Kafka topic) against a candidate bundle and report what would change",
    usage:
      `portcullis policy replay ${BUNDLE_USAGE}\n` +
      "         (--events audit.jsonl | --brokers host:port[,…] --topic T) [--fail-on allow-to-deny|any] [--json] [--max-changes 50]",
    options: { ...bundleOptions, events: { type: "string", short: "e" }, brokers: { type: "string" }, topic: { type: "string" }, "fail-on": { type: "string" }, json: { type: "boolean" }, "max-changes": { type: "string" } },
    async run(values, io) {
      const failOn = optional(values, "fail-on");
      if (failOn !== undefined && failOn !== "allow-to-deny" && failOn !== "any") throw new GroupUsageError(`--fail-on: "${failOn}" is not allow-to-deny or any`);
      const maxChanges = Number(optional(values, "max-changes") ?? 50);
      if (!Number.isInteger(maxChanges) || maxChanges < 0) throw new GroupUsageError("--max-changes must be a whole number");
      const events = optional(values, "events");
      const brokers = optional(values, "brokers");
      const topic = optional(values, "topic");
      if ((events === undefined) === (brokers === undefined || topic === undefined)) throw new GroupUsageError("give either --events FILE or --brokers and --topic");
      const engine = await candidateEngine(values);
      const stored = events !== undefined ? readJsonlFile(events) : await readTopicToEnd({ brokers: brokers!.split(","), topic: topic! });
      const report = replayDecisions(
        stored.map((r) => parseOrNull(r.text)),
        engine,
        { maxChanges },
      );
      io.out.write(values.json === true ? `${JSON.stringify(report, null, 2)}\n` : renderReport(report));
      if (replayFails(report, failOn as FailOn | undefined)) {
        io.err.write(`portcullis policy replay: failing (--fail-on ${failOn}): ${report.totals.allow_to_deny} allow→deny, ${report.totals.deny_to_allow} deny→allow\n`);
        return 1;
      }
      return 0;
    },
  },
};

export function runPolicyCommand(argv: string[], io: GroupIo): Promise<number> {
  return runGroup("policy", SUBCOMMANDS, argv, io);
}

/**
 * The engine of the bundle under test. With --verification-key it is verified exactly as the
 * gateway verifies it. Without one (an author's unsigned local build) it is signed in memory with
 * a throwaway key first: the loader has no unverified path by design, and this keeps it so.
 */
async function candidateEngine(values: Values): Promise<WasmPolicyEngine> {
  const path = required(values, "bundle");
  const bytes = await readFile(path);
  const keyFile = optional(values, "verification-key");
  if (keyFile !== undefined) {
    const alg = optional(values, "signing-alg");
    const scope = optional(values, "scope");
    const bundle = parseBundle(bytes, path, { verificationKeyPem: await readFile(keyFile, "utf8"), keyId: optional(values, "key-id") ?? "default", ...(alg ? { algorithm: alg } : {}), ...(scope ? { scope } : {}) });
    return WasmPolicyEngine.create(bundle);
  }
  const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "prime256v1", publicKeyEncoding: { type: "spki", format: "pem" }, privateKeyEncoding: { type: "pkcs8", format: "pem" } });
  const resigned = writeTarGz(signBundleFiles(readTarGz(bytes), { privateKeyPem: privateKey, algorithm: "ES256" }));
  return WasmPolicyEngine.create(parseBundle(resigned, path, { verificationKeyPem: publicKey }));
}

function renderReport(r: ReplayReport): string {
  const lines: string[] = [];
  lines.push(`candidate revision ${r.candidate_revision || "(none)"}; recorded by ${r.recorded_revisions.join(", ") || "(none)"}`);
  const listed = r.list_items.replayed > 0 ? `, ${r.list_items.replayed} of them listed items` : "";
  lines.push(`${r.records} records, ${r.replayed} events replayed as ${r.decisions} decisions${listed} (skipped: ${r.skipped.not_a_decision} not decisions, ${r.skipped.duplicate} duplicates, ${r.skipped.unparseable} unparseable, ${r.skipped.truncated} cut for size)`);
  if (r.with_masked_fields > 0) lines.push(`${r.with_masked_fields} events had masked fields and were evaluated with the masked values`);
  if (r.with_truncated_arguments > 0) lines.push(`${r.with_truncated_arguments} events had their arguments cut for size and were evaluated with the size marker in their place`);
  if (r.list_items.without_tool_definition > 0) lines.push(`${r.list_items.without_tool_definition} tools/list items were evaluated with input.tool null (the event has no tool definition): a policy that reads input.tool may decide them differently than the gateway did`);
  if (r.list_items.incomplete_lists > 0) lines.push(`${r.list_items.incomplete_lists} list events had their shown or hidden names cut for size: those items were not replayed`);
  lines.push(`unchanged ${r.totals.unchanged}, allow→deny ${r.totals.allow_to_deny}, deny→allow ${r.totals.deny_to_allow}`);
  const table = (title: string, rows: Record<string, Tally>): void => {
    const changed = Object.entries(rows).filter(([, t]) => t.allow_to_deny + t.deny_to_allow > 0).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    if (changed.length === 0) return;
    const width = Math.max(title.length, ...changed.map(([k]) => k.length));
    lines.push("", `${title.padEnd(width)}  allow→deny  deny→allow  unchanged`);
    for (const [k, t] of changed) lines.push(`${k.padEnd(width)}  ${String(t.allow_to_deny).padStart(10)}  ${String(t.deny_to_allow).padStart(10)}  ${String(t.unchanged).padStart(9)}`);
  };
  table("tool", r.by_tool);
  table("agent", r.by_agent);
  if (r.changes.length > 0) {
    lines.push("", "changes (first " + r.changes.length + "):");
    for (const c of r.changes) {
      const listed = c.listed_by === undefined ? "" : `  [${c.listed_by}${c.without_tool_definition ? ", without tool definition" : ""}]`;
      lines.push(`  ${c.decision_id}  ${c.agent}  ${c.tool}  ${c.from}→${c.to}${listed}${c.reasons.length > 0 ? `  (${c.reasons.join("; ")})` : ""}`);
    }
  }
  return `${lines.join("\n")}\n`;
}

function parseOrNull(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return null;
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}
