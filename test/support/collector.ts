/**
 * A real OpenTelemetry Collector for tests (tools/otelcol, built by `make tools-otelcol` into
 * .tools/bin/otelcol): the OTLP/HTTP receiver on a free 127.0.0.1 port and the file exporter,
 * whose OTLP JSON lines are read back here as flat spans. Its own telemetry is off, so it opens no
 * other port. Gateway end-to-end tests set `telemetry.traces.endpoint` to `tracesEndpoint`.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort, repoRoot } from "./stack.js";

export type CollectedValue = string | number | boolean | null | CollectedValue[] | { [key: string]: CollectedValue };

/** One span as the collector received it, flattened out of its resource and scope. */
export interface CollectedSpan {
  traceId: string;
  spanId: string;
  /** Absent for a root span. */
  parentSpanId?: string;
  name: string;
  kind: "INTERNAL" | "SERVER" | "CLIENT" | "PRODUCER" | "CONSUMER" | "UNSPECIFIED";
  attributes: Record<string, CollectedValue>;
  status: { code: "UNSET" | "OK" | "ERROR"; message?: string };
  links: Array<{ traceId: string; spanId: string }>;
  /** Nanoseconds since the epoch (OTLP JSON gives them as strings). */
  startTimeUnixNano: bigint;
  endTimeUnixNano: bigint;
  resource: Record<string, CollectedValue>;
  scope: string;
}

export interface TestCollector {
  /** The OTLP/HTTP traces URL: `telemetry.traces.endpoint`. */
  readonly tracesEndpoint: string;
  /** The OTLP/HTTP base URL: `OTEL_EXPORTER_OTLP_ENDPOINT`. */
  readonly endpoint: string;
  /** Every span received so far. */
  spans(): CollectedSpan[];
  /** The spans of one trace, once `count` of them arrived (default: at least one); throws after `timeoutMs` listing what did. */
  waitForTrace(traceId: string, count?: number, timeoutMs?: number): Promise<CollectedSpan[]>;
  /** Waits until `accept` holds for the spans received so far, and returns them. */
  waitForSpans(accept: (spans: CollectedSpan[]) => boolean, timeoutMs?: number): Promise<CollectedSpan[]>;
  /** Its log so far (for failure messages). */
  log(): string;
  /** Stops it (SIGTERM) and removes its files. Idempotent. */
  stop(): Promise<void>;
}

/** The collector binary: $OTELCOL_BIN, else <repo>/.tools/bin/otelcol. */
export function collectorBinary(): string {
  return process.env.OTELCOL_BIN ?? join(repoRoot, ".tools", "bin", "otelcol");
}

export function collectorAvailable(): boolean {
  return spawnSync(collectorBinary(), ["--version"], { stdio: "ignore" }).status === 0;
}

const READY_LINE = "Everything is ready";
const START_TIMEOUT_MS = 15_000;

export async function startCollector(): Promise<TestCollector> {
  const dir = mkdtempSync(join(tmpdir(), "pc-otelcol-"));
  const spansFile = join(dir, "spans.jsonl");
  const configFile = join(dir, "otelcol.yaml");
  const port = await freePort();
  writeFileSync(
    configFile,
    `receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:${port}
exporters:
  file:
    path: ${JSON.stringify(spansFile)}
    flush_interval: 50ms
service:
  telemetry:
    metrics:
      level: none
    logs:
      level: info
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [file]
`,
  );
  const child: ChildProcess = spawn(collectorBinary(), [`--config=file:${configFile}`], { stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`otelcol did not start within ${START_TIMEOUT_MS} ms:\n${output}`)), START_TIMEOUT_MS);
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes(READY_LINE)) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout!.on("data", onData);
    child.stderr!.on("data", onData);
    child.once("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`otelcol exited ${code}:\n${output}`));
    });
  });

  const spans = (): CollectedSpan[] => (existsSync(spansFile) ? parseSpansFile(readFileSync(spansFile, "utf8")) : []);
  const waitForSpans = async (accept: (s: CollectedSpan[]) => boolean, timeoutMs = 10_000): Promise<CollectedSpan[]> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const got = spans();
      if (accept(got)) return got;
      if (child.exitCode !== null) throw new Error(`otelcol exited ${child.exitCode} while spans were awaited:\n${output}`);
      if (Date.now() > deadline) {
        throw new Error(`spans awaited for ${timeoutMs} ms; the collector has ${got.length}: ${got.map((s) => `${s.name} (${s.traceId})`).join(", ") || "none"}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  let stopped: Promise<void> | null = null;
  return {
    tracesEndpoint: `http://127.0.0.1:${port}/v1/traces`,
    endpoint: `http://127.0.0.1:${port}`,
    spans,
    waitForSpans,
    async waitForTrace(traceId, count = 1, timeoutMs) {
      const all = await waitForSpans((s) => s.filter((x) => x.traceId === traceId).length >= count, timeoutMs);
      return all.filter((s) => s.traceId === traceId);
    },
    log: () => output,
    stop() {
      stopped ??= (async () => {
        if (child.exitCode === null) {
          const exited = new Promise((r) => child.once("exit", r));
          child.kill("SIGTERM");
          await exited;
        }
        rmSync(dir, { recursive: true, force: true });
      })();
      return stopped;
    },
  };
}

// ---- the file exporter's format: one OTLP JSON ExportTraceServiceRequest per line

interface OtlpAnyValue {
  stringValue?: string;
  boolValue?: boolean;
  intValue?: string | number;
  doubleValue?: number;
  arrayValue?: { values?: OtlpAnyValue[] };
  kvlistValue?: { values?: OtlpKeyValue[] };
  bytesValue?: string;
}
interface OtlpKeyValue {
  key: string;
  value?: OtlpAnyValue;
}
interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind?: number;
  startTimeUnixNano?: string;
  endTimeUnixNano?: string;
  attributes?: OtlpKeyValue[];
  links?: Array<{ traceId: string; spanId: string }>;
  status?: { code?: number; message?: string };
}
interface OtlpLine {
  resourceSpans?: Array<{
    resource?: { attributes?: OtlpKeyValue[] };
    scopeSpans?: Array<{ scope?: { name?: string }; spans?: OtlpSpan[] }>;
  }>;
}

const KINDS: CollectedSpan["kind"][] = ["UNSPECIFIED", "INTERNAL", "SERVER", "CLIENT", "PRODUCER", "CONSUMER"];
const STATUS: CollectedSpan["status"]["code"][] = ["UNSET", "OK", "ERROR"];

/** Every complete line of the file (the last one may be half-written while the exporter flushes). */
export function parseSpansFile(text: string): CollectedSpan[] {
  const complete = text.slice(0, text.lastIndexOf("\n") + 1);
  return complete
    .split("\n")
    .filter((line) => line.trim() !== "")
    .flatMap((line) => flatten(JSON.parse(line) as OtlpLine));
}

function flatten(line: OtlpLine): CollectedSpan[] {
  return (line.resourceSpans ?? []).flatMap((rs) => {
    const resource = attributesOf(rs.resource?.attributes);
    return (rs.scopeSpans ?? []).flatMap((ss) =>
      (ss.spans ?? []).map((s): CollectedSpan => {
        const span: CollectedSpan = {
          traceId: s.traceId,
          spanId: s.spanId,
          name: s.name,
          kind: KINDS[s.kind ?? 0] ?? "UNSPECIFIED",
          attributes: attributesOf(s.attributes),
          status: { code: STATUS[s.status?.code ?? 0] ?? "UNSET", ...(s.status?.message ? { message: s.status.message } : {}) },
          links: (s.links ?? []).map((l) => ({ traceId: l.traceId, spanId: l.spanId })),
          startTimeUnixNano: BigInt(s.startTimeUnixNano ?? "0"),
          endTimeUnixNano: BigInt(s.endTimeUnixNano ?? "0"),
          resource,
          scope: ss.scope?.name ?? "",
        };
        if (s.parentSpanId) span.parentSpanId = s.parentSpanId;
        return span;
      }),
    );
  });
}

function attributesOf(list: OtlpKeyValue[] | undefined): Record<string, CollectedValue> {
  const out: Record<string, CollectedValue> = {};
  for (const kv of list ?? []) out[kv.key] = valueOf(kv.value);
  return out;
}

function valueOf(v: OtlpAnyValue | undefined): CollectedValue {
  if (!v) return null;
  if (v.stringValue !== undefined) return v.stringValue;
  if (v.boolValue !== undefined) return v.boolValue;
  if (v.intValue !== undefined) return Number(v.intValue);
  if (v.doubleValue !== undefined) return v.doubleValue;
  if (v.arrayValue) return (v.arrayValue.values ?? []).map(valueOf);
  if (v.kvlistValue) return attributesOf(v.kvlistValue.values);
  if (v.bytesValue !== undefined) return v.bytesValue;
  return null;
}
