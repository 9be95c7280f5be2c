import { z } from "zod";

/**
 * The `telemetry` section of the gateway config (docs/operations.md "Traces"). Tracing is on when
 * `telemetry.traces` is present, off otherwise: spans carry session ids, tool names and client
 * addresses, so a gateway never starts sending them somewhere because of an environment variable
 * alone. Keys left out are filled from the standard OpenTelemetry environment variables, then from
 * the defaults below, in one place (`resolveTracesSettings`).
 */

/** Where spans go when neither the config nor the environment names an endpoint (the OTLP/HTTP default). */
export const DEFAULT_TRACES_ENDPOINT = "http://localhost:4318/v1/traces";
export const DEFAULT_SERVICE_NAME = "portcullis";

const otlpHttpUrl = z
  .string()
  .min(1)
  .refine((u) => isHttpUrl(u), "must be an http:// or https:// URL of an OTLP/HTTP traces endpoint, e.g. http://collector:4318/v1/traces");

export const tracesConfigSchema = z
  .object({
    /** OTLP/HTTP traces endpoint, the full URL including /v1/traces. */
    endpoint: otlpHttpUrl.optional(),
    /** `service.name` of the gateway's spans. */
    serviceName: z.string().min(1).max(256).optional(),
    /** Share of new traces recorded (0..1); a trace continued from the agent keeps the agent's sampling decision. */
    sampleRatio: z.number().min(0).max(1).default(1),
    /** Sent with every export, e.g. { Authorization: "Bearer ${OTLP_TOKEN}" } for a hosted backend. */
    headers: z.record(z.string().min(1), z.string()).default({}),
  })
  .strict();

export const telemetryConfigSchema = z
  .object({
    traces: tracesConfigSchema.optional(),
  })
  .strict();

export type TracesConfig = z.infer<typeof tracesConfigSchema>;
export type TelemetryConfig = z.infer<typeof telemetryConfigSchema>;

/** What the exporter is set up with, every key decided. */
export interface TracesSettings {
  readonly endpoint: string;
  /** Where `endpoint` came from, for the start-up log line. */
  readonly endpointSource: "config" | "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT" | "OTEL_EXPORTER_OTLP_ENDPOINT" | "default";
  readonly serviceName: string;
  readonly sampleRatio: number;
  readonly headers: Readonly<Record<string, string>>;
}

/**
 * The settings tracing runs with, or null when it is off (no `telemetry.traces`, or
 * OTEL_SDK_DISABLED=true). Precedence for the endpoint: the config, then
 * OTEL_EXPORTER_OTLP_TRACES_ENDPOINT (used as is), then OTEL_EXPORTER_OTLP_ENDPOINT with
 * `/v1/traces` appended (as the OTLP exporter specification says), then the OTLP default. The
 * service name: the config, then OTEL_SERVICE_NAME, then "portcullis". An environment endpoint
 * that is not an http(s) URL is an error naming the variable, as a config key would be.
 */
export function resolveTracesSettings(config: TracesConfig | undefined, env: NodeJS.ProcessEnv = process.env): TracesSettings | null {
  if (!config) return null;
  if ((env.OTEL_SDK_DISABLED ?? "").trim().toLowerCase() === "true") return null;
  return {
    ...resolveEndpoint(config.endpoint, env),
    serviceName: config.serviceName ?? nonEmpty(env.OTEL_SERVICE_NAME) ?? DEFAULT_SERVICE_NAME,
    sampleRatio: config.sampleRatio,
    headers: { ...config.headers },
  };
}

function resolveEndpoint(configured: string | undefined, env: NodeJS.ProcessEnv): Pick<TracesSettings, "endpoint" | "endpointSource"> {
  if (configured !== undefined) return { endpoint: configured, endpointSource: "config" };
  const signal = nonEmpty(env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT);
  if (signal !== undefined) return { endpoint: checkedEnvUrl("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", signal), endpointSource: "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT" };
  const base = nonEmpty(env.OTEL_EXPORTER_OTLP_ENDPOINT);
  if (base !== undefined) {
    const url = checkedEnvUrl("OTEL_EXPORTER_OTLP_ENDPOINT", base);
    return { endpoint: `${url.replace(/\/+$/, "")}/v1/traces`, endpointSource: "OTEL_EXPORTER_OTLP_ENDPOINT" };
  }
  return { endpoint: DEFAULT_TRACES_ENDPOINT, endpointSource: "default" };
}

function checkedEnvUrl(name: string, value: string): string {
  if (!isHttpUrl(value)) throw new Error(`environment variable ${name}: must be an http:// or https:// URL (got "${value}")`);
  return value;
}

function isHttpUrl(value: string): boolean {
  try {
    const u = new URL(value);
    return (u.protocol === "http:" || u.protocol === "https:") && u.hostname !== "";
  } catch {
    return false;
  }
}

function nonEmpty(value: string | undefined): string | undefined {
  const v = value?.trim();
  return v ? v : undefined;
}
