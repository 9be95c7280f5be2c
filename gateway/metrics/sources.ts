import type { SessionKind } from "./labels.js";

/**
 * What the gauges read at scrape time. Each source is a synchronous callback into a long-lived part
 * of the gateway (its `status()`/`stats()`), called once per scrape; the values are the part's own
 * units (epoch milliseconds, milliseconds), converted to seconds here. A source left out, or one
 * answering null, leaves its series out of the scrape (the part is not configured, or not yet
 * known); a source that throws does too, and is counted in `portcullis_metrics_source_errors_total`.
 */
export interface MetricSources {
  /** Sessions held on this replica by upstream kind (`portcullis_sessions{kind}`). */
  sessions?(): Readonly<Record<SessionKind, number>>;
  /** The audit path to Kafka; null when there is no Kafka sink. */
  outbox?(): OutboxReading | null;
  /** The active policy bundle; null before the policy runtime exists. */
  bundle?(): BundleReading | null;
  /** The issuer's key set; null when the gateway verifies no tokens (no `auth.jwksUri`). */
  jwks?(): JwksReading | null;
}

export type MetricSourceName = keyof MetricSources;

export interface OutboxReading {
  /** Events accepted and not yet acknowledged by Kafka (KafkaSinkStats.queued). */
  unacked: number;
  /** Age of the oldest unacknowledged event (BacklogStats.oldestAgeMs; 0 when none); null when the backlog does not know it (the in-memory one). */
  oldestUnackedAgeMs: number | null;
  /**
   * How long the sender has been trying to deliver the batch it holds, retries included (0 while
   * it waits for events); null when unknown. It grows only while Kafka does not confirm, so it
   * tells a stalled sender from a long but moving backlog.
   */
  sendLagMs: number | null;
}

export interface BundleReading {
  /** The active bundle's revision; "" when no bundle is loaded. */
  revision: string;
  /**
   * When the source last confirmed the active bundle (a check that loaded it or found it
   * unchanged), epoch ms; null when never. Failed checks (source unreachable, bundle refused)
   * leave it, so the age grows while the gateway cannot see its policy source.
   */
  confirmedAtMs: number | null;
}

export interface JwksReading {
  /** When the key set in use was fetched, epoch ms (JwksStatus.fetchedAt); null when none is loaded. */
  fetchedAtMs: number | null;
  /** Failed fetches of the key set since the cache was created (a cumulative count). */
  refreshFailures: number;
}
