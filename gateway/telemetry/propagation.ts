import { defaultTextMapGetter, defaultTextMapSetter, ROOT_CONTEXT, trace, type SpanContext } from "@opentelemetry/api";
import { TRACE_PARENT_HEADER, TRACE_STATE_HEADER, W3CTraceContextPropagator } from "@opentelemetry/core";

/**
 * W3C Trace Context in and out, through the OpenTelemetry W3C propagator (one parser: version,
 * all-zero ids, upper-case hex and the rest are its rules). A traceparent that does not parse is
 * ignored, never an error: the request then starts a new trace.
 */
const w3c = new W3CTraceContextPropagator();

/**
 * A trace-context value as received: a header as Node gives it (string or undefined), or a
 * `params._meta` member (any JSON value). Only a string can be valid; anything else is ignored.
 */
export type CarriedValue = unknown;

/** The remote span context a traceparent (and its tracestate) names, or undefined if it is missing or invalid. */
export function remoteParent(traceparent: CarriedValue, tracestate?: CarriedValue): SpanContext | undefined {
  const parent = single(traceparent);
  if (parent === undefined) return undefined;
  const carrier: Record<string, string> = { [TRACE_PARENT_HEADER]: parent };
  const state = single(tracestate);
  if (state !== undefined) carrier[TRACE_STATE_HEADER] = state;
  // The propagator sets a span context only for a traceparent that parses (all-zero ids included in its checks).
  return trace.getSpanContext(w3c.extract(ROOT_CONTEXT, carrier, defaultTextMapGetter));
}

/** The W3C headers that name `span` as the parent of the next hop; none for an invalid context. */
export function w3cHeaders(span: SpanContext): { traceparent?: string; tracestate?: string } {
  const carrier: Record<string, string> = {};
  w3c.inject(trace.setSpanContext(ROOT_CONTEXT, span), carrier, defaultTextMapSetter);
  const out: { traceparent?: string; tracestate?: string } = {};
  if (carrier[TRACE_PARENT_HEADER]) out.traceparent = carrier[TRACE_PARENT_HEADER];
  if (carrier[TRACE_STATE_HEADER]) out.tracestate = carrier[TRACE_STATE_HEADER];
  return out;
}

/** Longer than any traceparent or tracestate a peer may send (W3C: tracestate up to 32 members of 256 characters). */
const MAX_CARRIED_LENGTH = 8192;

/**
 * One string or nothing. W3C Trace Context: several traceparent headers make the request's
 * traceparent invalid (Node joins repeated headers with ", ", which then fails to parse; an array
 * is refused here).
 */
function single(value: CarriedValue): string | undefined {
  return typeof value === "string" && value.length > 0 && value.length <= MAX_CARRIED_LENGTH ? value : undefined;
}
