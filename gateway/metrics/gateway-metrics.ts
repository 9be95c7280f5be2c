import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";
import type { AuditEvent, AuditOutcome } from "../audit/index.js";
import {
  LabelSet,
  MAX_REVISION_LABEL_CHARS,
  MCP_METHODS,
  PIPELINE_STAGES,
  RATE_LIMIT_REASONS,
  SESSION_KINDS,
  UPSTREAM_ERROR_CODES,
  type PipelineStage,
  type RateLimitReason,
} from "./labels.js";
import { type BundleReading, type JwksReading, type MetricSourceName, type MetricSources, type OutboxReading } from "./sources.js";

export interface GatewayMetricsOptions {
  /** The configured upstream names (`upstreams.*`): the only values of the `server` label. */
  upstreams: readonly string[];
  sources: MetricSources;
  /** For the ages (bundle, JWKS): milliseconds since the epoch. */
  clock: { now(): number };
  /** Node process metrics (`portcullis_process_*`, `portcullis_nodejs_*`); default true. */
  processMetrics?: boolean;
  /** Told when a source throws (the scrape goes on without its series); e.g. to log it. */
  onSourceError?: (source: MetricSourceName, error: unknown) => void;
}

/** One request as the audit event records it: the audit outcome and the whole time spent on it. */
export interface RequestObservation {
  server: string;
  /** The JSON-RPC method (`mcp.method` of the audit event; "" when it was never read). */
  method: string;
  outcome: AuditOutcome;
  durationMs: number;
}

/** One exchange with an upstream MCP server. */
export interface UpstreamObservation {
  server: string;
  durationMs: number;
  /** The failure's `error.data.code` (`upstream_timeout`, …); null or absent when it answered. */
  errorCode?: string | null;
}

export interface RateLimitObservation {
  server: string;
  reason: RateLimitReason;
}

/** An answered exchange: its audit event and how long the audit write took (the pipeline's `ExchangeDone`). */
export interface ExchangeObservation {
  event: Pick<AuditEvent, "outcome" | "mcp" | "latency_ms" | "result" | "error">;
  auditMs: number;
}

/** What GET /metrics answers. */
export interface Exposition {
  contentType: string;
  body: string;
}

const AUDIT_OUTCOMES: readonly AuditOutcome[] = ["allowed", "denied", "rate_limited", "unauthenticated", "invalid", "error"];

/** Seconds. A whole request: 0.5 ms (a refusal at the edge) to 30 s (a slow tool call). */
export const REQUEST_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
/** Seconds. A stage: identity and decision usually take tens of microseconds, so the low end is finer. */
export const STAGE_BUCKETS = [0.0001, 0.00025, ...REQUEST_BUCKETS];

interface Readings {
  sessions?: Readonly<Record<string, number>> | null;
  outbox?: OutboxReading | null;
  bundle?: BundleReading | null;
  jwks?: JwksReading | null;
}

/**
 * The gateway's Prometheus metrics (docs/operations.md "Metrics"), on a registry of its own: never
 * prom-client's global one, so several gateways (and tests) in one process do not share series.
 *
 * The recording methods never throw: a metric must not fail a request. The gauges are read from
 * `sources` at each scrape (`exposition`); a source that throws costs only its own series.
 */
export class GatewayMetrics {
  private readonly registry = new Registry();
  private readonly servers: LabelSet<string>;
  private readonly methods = new LabelSet<string>(MCP_METHODS);
  private readonly outcomes = new LabelSet<AuditOutcome>(AUDIT_OUTCOMES);
  private readonly stages = new LabelSet<PipelineStage>(PIPELINE_STAGES);
  private readonly reasons = new LabelSet<RateLimitReason>(RATE_LIMIT_REASONS);
  private readonly errorCodes = new LabelSet<string>(UPSTREAM_ERROR_CODES);
  /** The codes of an upstream exchange that failed; an upstream's JSON-RPC error (`upstream_error`) is an answer, not one of them. */
  private readonly upstreamFailureCodes: ReadonlySet<string> = new Set(UPSTREAM_ERROR_CODES);

  private readonly decisions: Counter<"outcome" | "server" | "method">;
  private readonly requestDuration: Histogram<"server" | "method" | "outcome">;
  private readonly stageDuration: Histogram<"stage">;
  private readonly upstreamDuration: Histogram<"server">;
  private readonly upstreamErrors: Counter<"server" | "code">;
  private readonly rateLimited: Counter<"server" | "reason">;
  private readonly sourceErrors: Counter<"source">;
  /** This scrape's readings, taken once by `exposition` before the gauges collect them. */
  private readings: Readings = {};

  constructor(private readonly options: GatewayMetricsOptions) {
    this.servers = new LabelSet(options.upstreams);
    const registers = [this.registry];
    if (options.processMetrics ?? true) collectDefaultMetrics({ register: this.registry, prefix: "portcullis_" });

    this.decisions = new Counter({
      name: "portcullis_decisions_total",
      help: "Requests by audit outcome (allowed, denied, rate_limited, unauthenticated, invalid, error), upstream and MCP method.",
      labelNames: ["outcome", "server", "method"],
      registers,
    });
    this.requestDuration = new Histogram({
      name: "portcullis_request_duration_seconds",
      help: "Time from a request's arrival to its answer, by upstream, MCP method and audit outcome.",
      labelNames: ["server", "method", "outcome"],
      buckets: REQUEST_BUCKETS,
      registers,
    });
    this.stageDuration = new Histogram({
      name: "portcullis_stage_duration_seconds",
      help: "Time spent in each stage of the request line (edge, identity, decision, limits, upstream, audit).",
      labelNames: ["stage"],
      buckets: STAGE_BUCKETS,
      registers,
    });
    this.upstreamDuration = new Histogram({
      name: "portcullis_upstream_duration_seconds",
      help: "Time an upstream MCP server took to answer a forwarded request, failures included.",
      labelNames: ["server"],
      buckets: REQUEST_BUCKETS,
      registers,
    });
    this.upstreamErrors = new Counter({
      name: "portcullis_upstream_errors_total",
      help: "Failed exchanges with an upstream MCP server, by error.data.code (upstream_timeout, upstream_unreachable, ...).",
      labelNames: ["server", "code"],
      registers,
    });
    this.rateLimited = new Counter({
      name: "portcullis_rate_limited_total",
      help: "Calls refused by the limits stage, by reason (rate_limited, ratelimit_unavailable, upstream_busy).",
      labelNames: ["server", "reason"],
      registers,
    });
    this.sourceErrors = new Counter({
      name: "portcullis_metrics_source_errors_total",
      help: "Scrapes at which a gauge source threw; that source's series were left out of the scrape.",
      labelNames: ["source"],
      registers,
    });
    this.defineGauges();
  }

  /** Once per request, when its audit event is closed: `portcullis_decisions_total` and `portcullis_request_duration_seconds`. */
  recordRequest(request: RequestObservation): void {
    const labels = { outcome: this.outcomes.of(request.outcome), server: this.servers.of(request.server), method: this.methods.of(request.method) };
    this.decisions.inc(labels);
    const seconds = toSeconds(request.durationMs);
    if (seconds !== null) this.requestDuration.observe(labels, seconds);
  }

  /**
   * Everything one audit event says, once per answered exchange: the request (recordRequest), the
   * audit stage's time, the decision stage's when the policy ran, the upstream exchange when one
   * was started (its failure code from `error.code`), and a refusal of the limits stage. The
   * edge, identity and limits stages are not in the event: time them with recordStage.
   */
  recordExchange({ event, auditMs }: ExchangeObservation): void {
    const server = event.mcp.server;
    this.recordRequest({ server, method: event.mcp.method, outcome: event.outcome, durationMs: event.latency_ms.total });
    this.recordStage("audit", auditMs);
    if (event.result !== null) this.recordStage("decision", event.latency_ms.decision);
    const code = event.error?.code ?? null;
    if (event.outcome === "rate_limited") {
      // Shed before it reached the upstream: no upstream exchange to time.
      this.rateLimited.inc({ server: this.servers.of(server), reason: this.reasons.of(code) });
      return;
    }
    if (event.latency_ms.upstream !== null) {
      const failed = event.outcome === "error" && code !== null && this.upstreamFailureCodes.has(code);
      this.recordUpstream({ server, durationMs: event.latency_ms.upstream, errorCode: failed ? code : null });
    }
  }

  /** Once per stage a request went through: `portcullis_stage_duration_seconds`. */
  recordStage(stage: PipelineStage, durationMs: number): void {
    const seconds = toSeconds(durationMs);
    if (seconds !== null) this.stageDuration.observe({ stage: this.stages.of(stage) }, seconds);
  }

  /** Once per forwarded request: `portcullis_upstream_duration_seconds`, and `portcullis_upstream_errors_total` when it failed. */
  recordUpstream(exchange: UpstreamObservation): void {
    const server = this.servers.of(exchange.server);
    const seconds = toSeconds(exchange.durationMs);
    if (seconds !== null) this.upstreamDuration.observe({ server }, seconds);
    if (exchange.errorCode !== undefined && exchange.errorCode !== null) this.upstreamErrors.inc({ server, code: this.errorCodes.of(exchange.errorCode) });
  }

  /** Once per call the limits stage refused: `portcullis_rate_limited_total`. */
  recordRateLimited(refusal: RateLimitObservation): void {
    this.rateLimited.inc({ server: this.servers.of(refusal.server), reason: this.reasons.of(refusal.reason) });
  }

  /** The Prometheus text exposition of every metric, the gauges read from their sources now. */
  async exposition(): Promise<Exposition> {
    this.readings = this.readSources();
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }

  /** Each source once; one that throws is left out (and counted), the others still read. */
  private readSources(): Readings {
    const { sources } = this.options;
    // Called as methods of `sources`, so a source that is a method keeps its `this`.
    return {
      sessions: this.readSource("sessions", () => sources.sessions?.()),
      outbox: this.readSource("outbox", () => sources.outbox?.()),
      bundle: this.readSource("bundle", () => sources.bundle?.()),
      jwks: this.readSource("jwks", () => sources.jwks?.()),
    };
  }

  private readSource<T>(name: MetricSourceName, read: () => T | undefined): T | undefined {
    try {
      return read();
    } catch (err) {
      this.sourceErrors.inc({ source: name });
      try {
        this.options.onSourceError?.(name, err);
      } catch {
        // A failing error callback must not fail the scrape either.
      }
      return undefined;
    }
  }

  /**
   * The gauges filled from this scrape's readings by their `collect`: each starts empty, so a
   * reading that is missing leaves its series out rather than repeating an old value, and a label
   * value that went away (an old bundle revision) goes with it.
   */
  private defineGauges(): void {
    const registers = [this.registry];
    // `this` inside collect is the gauge (prom-client calls it so); the readings come from the class.
    const readings = () => this.readings;
    const now = () => this.options.clock.now();

    new Gauge({
      name: "portcullis_sessions",
      help: "MCP sessions held on this replica, by the kind of upstream behind them (http, stdio).",
      labelNames: ["kind"],
      registers,
      collect() {
        this.reset();
        const sessions = readings().sessions;
        if (!sessions) return;
        for (const kind of SESSION_KINDS) {
          const value = sessions[kind];
          if (isCount(value)) this.set({ kind }, value);
        }
      },
    });
    labellessGauge(registers, "portcullis_audit_outbox_events", "Audit events accepted and not yet acknowledged by Kafka.", () => {
      const value = readings().outbox?.unacked;
      return isCount(value) ? value : null;
    });
    labellessGauge(registers, "portcullis_audit_oldest_unacked_age_seconds", "Age of the oldest audit event not yet acknowledged by Kafka (0 when none waits).", () =>
      toSeconds(readings().outbox?.oldestUnackedAgeMs),
    );
    labellessGauge(registers, "portcullis_audit_kafka_send_lag_seconds", "How long the Kafka sender has been trying to deliver its current batch, retries included (0 while idle).", () =>
      toSeconds(readings().outbox?.sendLagMs),
    );
    new Gauge({
      name: "portcullis_bundle_info",
      help: "The active policy bundle (value 1), its revision as a label.",
      labelNames: ["revision"],
      registers,
      collect() {
        this.reset();
        const revision = readings().bundle?.revision;
        if (typeof revision === "string" && revision !== "") this.set({ revision: revision.slice(0, MAX_REVISION_LABEL_CHARS) }, 1);
      },
    });
    labellessGauge(registers, "portcullis_bundle_age_seconds", "Seconds since the policy source last confirmed the active bundle (+Inf when never).", () => {
      const bundle = readings().bundle;
      return bundle ? ageSeconds(bundle.confirmedAtMs, now()) : null;
    });
    labellessGauge(registers, "portcullis_jwks_age_seconds", "Seconds since the issuer's key set in use was fetched (+Inf when none is loaded).", () => {
      const jwks = readings().jwks;
      return jwks ? ageSeconds(jwks.fetchedAtMs, now()) : null;
    });
    new Counter({
      name: "portcullis_jwks_refresh_failures_total",
      help: "Failed fetches of the issuer's key set (JWKS) since the gateway started.",
      registers,
      collect() {
        this.reset();
        const failures = readings().jwks?.refreshFailures;
        if (isCount(failures)) this.inc(failures);
        else this.remove();
      },
    });
  }
}

/** A gauge without labels whose value is read at scrape time; null leaves it out of the scrape. */
function labellessGauge(registers: Registry[], name: string, help: string, read: () => number | null): void {
  new Gauge({
    name,
    help,
    registers,
    collect() {
      const value = read();
      if (value === null) this.remove();
      else this.set(value);
    },
  });
}

function isCount(value: unknown): value is number {
  return typeof value === "number" && Number.isFinite(value) && value >= 0;
}

/** Milliseconds to seconds; null for what is not a finite number (a bad reading is left out, never recorded). */
function toSeconds(ms: number | null | undefined): number | null {
  if (typeof ms !== "number" || !Number.isFinite(ms)) return null;
  return Math.max(0, ms) / 1000;
}

/** Never confirmed is infinitely old: an alert on the age then fires rather than seeing no series. */
function ageSeconds(atMs: number | null, nowMs: number): number | null {
  if (atMs === null) return Number.POSITIVE_INFINITY;
  return toSeconds(nowMs - atMs);
}
