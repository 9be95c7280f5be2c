import assert from "node:assert/strict";
import { register as globalRegistry } from "prom-client";
import type { UpstreamError } from "../../../gateway/proxy/upstream.js";
import type { ErrorCode } from "../../../gateway/proxy/index.js";
import {
  GatewayMetrics,
  type BundleReading,
  type ExchangeObservation,
  type GatewayMetricsOptions,
  type JwksReading,
  type MetricSources,
  type OutboxReading,
  type RateLimitReason,
  type UpstreamErrorCode,
} from "../../../gateway/metrics/index.js";
import { find, parseExposition, valueOf, type ParsedExposition } from "./exposition.js";

// Compile-time: every code an upstream failure can carry has its own label value, and every
// rate-limit reason is an error code of the catalogue (a new code added there fails the build here).
const everyUpstreamCodeListed: [Exclude<UpstreamError["code"], UpstreamErrorCode>] extends [never] ? true : false = true;
const reasonsAreErrorCodes: [Exclude<RateLimitReason, ErrorCode>] extends [never] ? true : false = true;
void everyUpstreamCodeListed;
void reasonsAreErrorCodes;

const NOW = 1_800_000_000_000;

function metrics(sources: MetricSources = {}, extra: Partial<GatewayMetricsOptions> = {}): GatewayMetrics {
  return new GatewayMetrics({ upstreams: ["files", "search"], sources, clock: { now: () => NOW }, processMetrics: false, ...extra });
}

async function scrape(m: GatewayMetrics): Promise<ParsedExposition & { body: string }> {
  const { body } = await m.exposition();
  return { ...parseExposition(body), body };
}

describe("gateway metrics (prom-client, own registry)", () => {
  it("counts each request under its outcome, server and method, and times it", async () => {
    const m = metrics();
    m.recordRequest({ server: "files", method: "tools/call", outcome: "allowed", durationMs: 3 });
    m.recordRequest({ server: "files", method: "tools/call", outcome: "allowed", durationMs: 40 });
    m.recordRequest({ server: "files", method: "tools/call", outcome: "denied", durationMs: 1 });
    const s = await scrape(m);
    assert.equal(valueOf(s, "portcullis_decisions_total", { outcome: "allowed", server: "files", method: "tools/call" }), 2);
    assert.equal(valueOf(s, "portcullis_decisions_total", { outcome: "denied", server: "files", method: "tools/call" }), 1);
    const allowed = { server: "files", method: "tools/call", outcome: "allowed" };
    assert.equal(valueOf(s, "portcullis_request_duration_seconds_count", allowed), 2);
    assert.ok(Math.abs(valueOf(s, "portcullis_request_duration_seconds_sum", allowed) - 0.043) < 1e-9);
    // 3 ms falls in le=0.005, 40 ms only from le=0.05 on.
    assert.equal(valueOf(s, "portcullis_request_duration_seconds_bucket", { ...allowed, le: "0.005" }), 1);
    assert.equal(valueOf(s, "portcullis_request_duration_seconds_bucket", { ...allowed, le: "0.05" }), 2);
    assert.equal(s.types.get("portcullis_decisions_total"), "counter");
    assert.equal(s.types.get("portcullis_request_duration_seconds"), "histogram");
  });

  it("records an unconfigured server and an unknown method as \"other\", never as sent", async () => {
    const m = metrics();
    m.recordRequest({ server: "attacker-chosen", method: "tools/evil", outcome: "invalid", durationMs: 1 });
    m.recordRequest({ server: "", method: "", outcome: "invalid", durationMs: 1 });
    m.recordRequest({ server: "search", method: "http:PATCH", outcome: "invalid", durationMs: 1 });
    m.recordUpstream({ server: "nope", durationMs: 5, errorCode: "made_up_code" });
    m.recordRateLimited({ server: "nope", reason: "rate_limited" });
    const s = await scrape(m);
    assert.equal(valueOf(s, "portcullis_decisions_total", { outcome: "invalid", server: "other", method: "other" }), 2);
    assert.equal(valueOf(s, "portcullis_decisions_total", { outcome: "invalid", server: "search", method: "other" }), 1);
    assert.equal(valueOf(s, "portcullis_upstream_errors_total", { server: "other", code: "other" }), 1);
    assert.equal(valueOf(s, "portcullis_rate_limited_total", { server: "other", reason: "rate_limited" }), 1);
    for (const sent of ["attacker-chosen", "tools/evil", "http:PATCH", "made_up_code", "nope"]) assert.ok(!s.body.includes(sent), `${sent} is in the exposition`);
  });

  it("times upstream exchanges and counts failures by code; an answered exchange is no error", async () => {
    const m = metrics();
    m.recordUpstream({ server: "search", durationMs: 120 });
    m.recordUpstream({ server: "search", durationMs: 30_000, errorCode: "upstream_timeout" });
    m.recordUpstream({ server: "search", durationMs: 2, errorCode: null });
    const s = await scrape(m);
    assert.equal(valueOf(s, "portcullis_upstream_duration_seconds_count", { server: "search" }), 3);
    assert.equal(valueOf(s, "portcullis_upstream_duration_seconds_bucket", { server: "search", le: "0.25" }), 2);
    assert.deepEqual(find(s, "portcullis_upstream_errors_total").map((x) => [x.labels, x.value]), [[{ server: "search", code: "upstream_timeout" }, 1]]);
  });

  it("times each stage and counts refusals by reason", async () => {
    const m = metrics();
    m.recordStage("decision", 0.05);
    m.recordStage("decision", 0.2);
    m.recordStage("upstream", 800);
    m.recordRateLimited({ server: "files", reason: "upstream_busy" });
    m.recordRateLimited({ server: "files", reason: "upstream_busy" });
    m.recordRateLimited({ server: "files", reason: "ratelimit_unavailable" });
    const s = await scrape(m);
    assert.equal(valueOf(s, "portcullis_stage_duration_seconds_count", { stage: "decision" }), 2);
    // 50 µs and 200 µs: both in le=0.00025, only the first in le=0.0001.
    assert.equal(valueOf(s, "portcullis_stage_duration_seconds_bucket", { stage: "decision", le: "0.0001" }), 1);
    assert.equal(valueOf(s, "portcullis_stage_duration_seconds_bucket", { stage: "decision", le: "0.00025" }), 2);
    assert.equal(valueOf(s, "portcullis_stage_duration_seconds_bucket", { stage: "upstream", le: "0.5" }), 0);
    assert.equal(valueOf(s, "portcullis_stage_duration_seconds_bucket", { stage: "upstream", le: "1" }), 1);
    assert.equal(valueOf(s, "portcullis_rate_limited_total", { server: "files", reason: "upstream_busy" }), 2);
    assert.equal(valueOf(s, "portcullis_rate_limited_total", { server: "files", reason: "ratelimit_unavailable" }), 1);
  });

  it("records an answered exchange from its audit event: request, audit and decision stages, upstream, refusals", async () => {
    const m = metrics();
    const event = (over: Partial<ExchangeObservation["event"]>): ExchangeObservation["event"] => ({
      outcome: "allowed",
      mcp: { server: "files", method: "tools/call", tool: "read" },
      latency_ms: { decision: 0.2, upstream: 120, total: 125 },
      result: { allow: true },
      ...over,
    });
    m.recordExchange({ event: event({}), auditMs: 1 });
    m.recordExchange({ event: event({ outcome: "error", error: { code: "upstream_timeout", message: "…" }, latency_ms: { decision: 0.2, upstream: 30_000, total: 30_001 } }), auditMs: 1 });
    // The upstream answered with a JSON-RPC error: an answer, not a failed exchange.
    m.recordExchange({ event: event({ error: { code: "upstream_error", message: "-32000: nope" } }), auditMs: 1 });
    // Shed at the concurrency limit: counted as a refusal, no upstream exchange timed.
    m.recordExchange({ event: event({ outcome: "rate_limited", error: { code: "upstream_busy", message: "…" }, latency_ms: { decision: 0.2, upstream: 0, total: 1 } }), auditMs: 2 });
    // Refused before identity: no decision ran, no upstream.
    m.recordExchange({ event: event({ outcome: "unauthenticated", result: null, mcp: { server: "files", method: "", tool: null }, latency_ms: { decision: 0, upstream: null, total: 0.3 } }), auditMs: 3 });
    const s = await scrape(m);
    assert.equal(valueOf(s, "portcullis_decisions_total", { outcome: "allowed", server: "files", method: "tools/call" }), 2);
    assert.equal(valueOf(s, "portcullis_decisions_total", { outcome: "error", server: "files", method: "tools/call" }), 1);
    assert.equal(valueOf(s, "portcullis_decisions_total", { outcome: "rate_limited", server: "files", method: "tools/call" }), 1);
    assert.equal(valueOf(s, "portcullis_decisions_total", { outcome: "unauthenticated", server: "files", method: "other" }), 1);
    assert.equal(valueOf(s, "portcullis_stage_duration_seconds_count", { stage: "audit" }), 5);
    assert.equal(valueOf(s, "portcullis_stage_duration_seconds_count", { stage: "decision" }), 4, "not for the request no policy saw");
    assert.equal(valueOf(s, "portcullis_upstream_duration_seconds_count", { server: "files" }), 3, "not for the shed call");
    assert.deepEqual(find(s, "portcullis_upstream_errors_total").map((x) => [x.labels, x.value]), [[{ server: "files", code: "upstream_timeout" }, 1]]);
    assert.deepEqual(find(s, "portcullis_rate_limited_total").map((x) => [x.labels, x.value]), [[{ server: "files", reason: "upstream_busy" }, 1]]);
  });

  it("never throws on a bad duration and records none", async () => {
    const m = metrics();
    assert.doesNotThrow(() => {
      m.recordRequest({ server: "files", method: "ping", outcome: "allowed", durationMs: Number.NaN });
      m.recordStage("edge", Number.POSITIVE_INFINITY);
      m.recordUpstream({ server: "files", durationMs: Number.NaN, errorCode: "upstream_closed" });
    });
    m.recordStage("edge", -5); // a clock step backwards: counted as 0
    const s = await scrape(m);
    assert.equal(valueOf(s, "portcullis_decisions_total", { outcome: "allowed", server: "files", method: "ping" }), 1, "the request still counts");
    assert.equal(find(s, "portcullis_request_duration_seconds_count").length, 0);
    assert.equal(valueOf(s, "portcullis_stage_duration_seconds_count", { stage: "edge" }), 1);
    assert.equal(valueOf(s, "portcullis_stage_duration_seconds_sum", { stage: "edge" }), 0);
    assert.equal(valueOf(s, "portcullis_upstream_errors_total", { server: "files", code: "upstream_closed" }), 1);
  });

  it("reads every gauge from its source at scrape time, each source once per scrape", async () => {
    const state = { http: 2, stdio: 1, unacked: 7, oldestMs: 1500, lagMs: 0, confirmedAtMs: NOW - 60_000, fetchedAtMs: NOW - 30_000, failures: 0 };
    const calls = { sessions: 0, outbox: 0, bundle: 0, jwks: 0 };
    const m = metrics({
      sessions: () => (calls.sessions++, { http: state.http, stdio: state.stdio }),
      outbox: (): OutboxReading => (calls.outbox++, { unacked: state.unacked, oldestUnackedAgeMs: state.oldestMs, sendLagMs: state.lagMs }),
      bundle: (): BundleReading => (calls.bundle++, { revision: "r1", confirmedAtMs: state.confirmedAtMs }),
      jwks: (): JwksReading => (calls.jwks++, { fetchedAtMs: state.fetchedAtMs, refreshFailures: state.failures }),
    });
    let s = await scrape(m);
    assert.equal(valueOf(s, "portcullis_sessions", { kind: "http" }), 2);
    assert.equal(valueOf(s, "portcullis_sessions", { kind: "stdio" }), 1);
    assert.equal(valueOf(s, "portcullis_audit_outbox_events"), 7);
    assert.equal(valueOf(s, "portcullis_audit_oldest_unacked_age_seconds"), 1.5);
    assert.equal(valueOf(s, "portcullis_audit_kafka_send_lag_seconds"), 0);
    assert.equal(valueOf(s, "portcullis_bundle_age_seconds"), 60);
    assert.equal(valueOf(s, "portcullis_jwks_age_seconds"), 30);
    assert.equal(valueOf(s, "portcullis_jwks_refresh_failures_total"), 0);
    assert.equal(s.types.get("portcullis_jwks_refresh_failures_total"), "counter");
    assert.deepEqual(calls, { sessions: 1, outbox: 1, bundle: 1, jwks: 1 });

    Object.assign(state, { http: 0, stdio: 4, unacked: 0, oldestMs: 0, lagMs: 42_000, confirmedAtMs: NOW - 7_200_000, fetchedAtMs: null, failures: 3 });
    s = await scrape(m);
    assert.equal(valueOf(s, "portcullis_sessions", { kind: "http" }), 0);
    assert.equal(valueOf(s, "portcullis_sessions", { kind: "stdio" }), 4);
    assert.equal(valueOf(s, "portcullis_audit_outbox_events"), 0);
    assert.equal(valueOf(s, "portcullis_audit_kafka_send_lag_seconds"), 42);
    assert.equal(valueOf(s, "portcullis_bundle_age_seconds"), 7200);
    assert.equal(valueOf(s, "portcullis_jwks_age_seconds"), Infinity, "a key set never loaded is infinitely old");
    assert.ok(s.body.includes("portcullis_jwks_age_seconds +Inf"));
    assert.equal(valueOf(s, "portcullis_jwks_refresh_failures_total"), 3);
    assert.deepEqual(calls, { sessions: 2, outbox: 2, bundle: 2, jwks: 2 });
  });

  it("keeps scraping when a source throws: only its series are left out, and the failure is counted", async () => {
    let outboxFails = true;
    const told: string[] = [];
    const m = metrics(
      {
        sessions: () => ({ http: 1, stdio: 0 }),
        outbox: () => {
          if (outboxFails) throw new Error("stats() failed");
          return { unacked: 3, oldestUnackedAgeMs: 10, sendLagMs: 20 };
        },
        bundle: () => {
          throw new Error("no runtime");
        },
      },
      { onSourceError: (source, err) => told.push(`${source}: ${(err as Error).message}`) },
    );
    m.recordRequest({ server: "files", method: "initialize", outcome: "allowed", durationMs: 9 });
    let s = await scrape(m);
    assert.equal(valueOf(s, "portcullis_sessions", { kind: "http" }), 1);
    assert.equal(valueOf(s, "portcullis_decisions_total", { outcome: "allowed", server: "files", method: "initialize" }), 1);
    for (const absent of ["portcullis_audit_outbox_events", "portcullis_audit_oldest_unacked_age_seconds", "portcullis_audit_kafka_send_lag_seconds", "portcullis_bundle_info", "portcullis_bundle_age_seconds"]) {
      assert.equal(find(s, absent).length, 0, `${absent} is left out`);
    }
    assert.equal(valueOf(s, "portcullis_metrics_source_errors_total", { source: "outbox" }), 1);
    assert.equal(valueOf(s, "portcullis_metrics_source_errors_total", { source: "bundle" }), 1);
    assert.deepEqual(told, ["outbox: stats() failed", "bundle: no runtime"]);

    outboxFails = false;
    s = await scrape(m);
    assert.equal(valueOf(s, "portcullis_audit_outbox_events"), 3, "the source answers again: its series come back");
    assert.equal(valueOf(s, "portcullis_metrics_source_errors_total", { source: "outbox" }), 1);
    assert.equal(valueOf(s, "portcullis_metrics_source_errors_total", { source: "bundle" }), 2);
  });

  it("a throwing onSourceError does not fail the scrape", async () => {
    const m = metrics(
      {
        jwks: () => {
          throw new Error("x");
        },
      },
      {
        onSourceError: () => {
          throw new Error("logger down");
        },
      },
    );
    const s = await scrape(m);
    assert.equal(valueOf(s, "portcullis_metrics_source_errors_total", { source: "jwks" }), 1);
    assert.equal(find(s, "portcullis_jwks_refresh_failures_total").length, 0);
  });

  it("labels bundle_info with the active revision only: a new revision replaces the old series", async () => {
    let revision = "2026-01-01.1";
    const m = metrics({ bundle: () => ({ revision, confirmedAtMs: NOW }) });
    let s = await scrape(m);
    assert.deepEqual(find(s, "portcullis_bundle_info").map((x) => [x.labels, x.value]), [[{ revision: "2026-01-01.1" }, 1]]);
    revision = "2026-02-01.1";
    s = await scrape(m);
    assert.deepEqual(find(s, "portcullis_bundle_info").map((x) => [x.labels, x.value]), [[{ revision: "2026-02-01.1" }, 1]]);
    revision = "";
    s = await scrape(m);
    assert.equal(find(s, "portcullis_bundle_info").length, 0, "no bundle loaded: no info series");
    revision = "x".repeat(500);
    s = await scrape(m);
    assert.equal(find(s, "portcullis_bundle_info")[0]!.labels.revision!.length, 128, "a long revision is cut");
  });

  it("leaves out the series of a source that is absent or answers null", async () => {
    const s = await scrape(metrics({ outbox: () => null, jwks: () => null }));
    for (const absent of ["portcullis_sessions", "portcullis_audit_outbox_events", "portcullis_audit_oldest_unacked_age_seconds", "portcullis_bundle_info", "portcullis_bundle_age_seconds", "portcullis_jwks_age_seconds", "portcullis_jwks_refresh_failures_total"]) {
      assert.equal(find(s, absent).length, 0, `${absent} is left out`);
      assert.ok(s.types.has(absent), `${absent} is still declared`);
    }
    const partial = await scrape(metrics({ outbox: () => ({ unacked: 2, oldestUnackedAgeMs: null, sendLagMs: null }) }));
    assert.equal(valueOf(partial, "portcullis_audit_outbox_events"), 2);
    assert.equal(find(partial, "portcullis_audit_oldest_unacked_age_seconds").length, 0, "an age the backlog does not know is not reported as 0");
    assert.equal(find(partial, "portcullis_audit_kafka_send_lag_seconds").length, 0);
  });

  it("keeps each gateway's series apart and off prom-client's global registry", async () => {
    const a = metrics();
    const b = metrics();
    a.recordRequest({ server: "files", method: "tools/list", outcome: "allowed", durationMs: 1 });
    assert.equal(valueOf(await scrape(a), "portcullis_decisions_total", { outcome: "allowed", server: "files", method: "tools/list" }), 1);
    assert.equal(find(await scrape(b), "portcullis_decisions_total").length, 0);
    assert.ok(!(await globalRegistry.metrics()).includes("portcullis_"));
  });

  it("exports Node process metrics under the portcullis_ prefix, in the Prometheus text format", async () => {
    const m = metrics({}, { processMetrics: true });
    const { contentType, body } = await m.exposition();
    assert.match(contentType, /^text\/plain; version=0\.0\.4/);
    const s = parseExposition(body);
    assert.ok(find(s, "portcullis_process_cpu_user_seconds_total").length === 1);
    assert.ok(find(s, "portcullis_nodejs_heap_size_used_bytes").length === 1);
    assert.ok(!s.samples.some((x) => x.name.startsWith("process_") || x.name.startsWith("nodejs_")), "nothing unprefixed");
    assert.ok(!(await metrics().exposition()).body.includes("portcullis_process_"), "processMetrics: false leaves them out");
  });
});
