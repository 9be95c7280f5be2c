/**
 * kafkajs 2.2.4 spins when idle: RequestQueue.scheduleCheckPendingRequests re-arms a timer with a
 * negative delay whenever nothing is pending, so every broker connection runs a 1 ms timer loop
 * for as long as it is open (kafkajs issues #1556 and #1704; fix proposed in pull request #1667,
 * not released). Measured here: 60 ms of CPU per second in a gateway with no calls at all, and the
 * same loop under load.
 *
 * The replacement schedules a check only when something is pending: at the end of a client-side
 * throttle, else after the queue's usual 10 ms. Nothing else needs one: a request pushed later is
 * sent at once or queued with its own check, and a finished in-flight request checks the queue.
 * Applied once, to the exact version it was written for; any other version is left alone.
 */
import { createRequire } from "node:module";

const PATCHED_VERSION = "2.2.4";
const CHECK_PENDING_REQUESTS_INTERVAL_MS = 10;

interface RequestQueueLike {
  pending: unknown[];
  throttledUntil: number;
  throttleCheckTimeoutId: ReturnType<typeof setTimeout> | null;
  checkPendingRequests(): void;
  scheduleCheckPendingRequests(): void;
}

let applied: boolean | undefined;

/** Patches kafkajs's RequestQueue once; true when the fix is in place. */
export function applyKafkaJsIdleFix(): boolean {
  if (applied !== undefined) return applied;
  const require = createRequire(import.meta.url);
  const version = (require("kafkajs/package.json") as { version?: string }).version;
  if (version !== PATCHED_VERSION) return (applied = false);
  const RequestQueue = require("kafkajs/src/network/requestQueue/index.js") as { prototype: RequestQueueLike };
  RequestQueue.prototype.scheduleCheckPendingRequests = function (this: RequestQueueLike): void {
    if (this.throttleCheckTimeoutId || this.pending.length === 0) return;
    const untilThrottleEnds = this.throttledUntil - Date.now();
    this.throttleCheckTimeoutId = setTimeout(() => {
      this.throttleCheckTimeoutId = null;
      this.checkPendingRequests();
    }, untilThrottleEnds > 0 ? untilThrottleEnds : CHECK_PENDING_REQUESTS_INTERVAL_MS);
  };
  return (applied = true);
}
