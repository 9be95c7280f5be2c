import assert from "node:assert/strict";
import { createRequire } from "node:module";
import { applyKafkaJsIdleFix } from "../../../gateway/audit/kafkajs-idle-fix.js";

interface Queue {
  pending: unknown[];
  throttledUntil: number;
  throttleCheckTimeoutId: unknown;
  checkPendingRequests(): void;
}
type QueueClass = new (opts: Record<string, unknown>) => Queue;

const quiet = { debug() {}, info() {}, warn() {}, error() {} };
const RequestQueue = createRequire(import.meta.url)("kafkajs/src/network/requestQueue/index.js") as QueueClass;
const queue = (): Queue => new RequestQueue({ maxInFlightRequests: 1, requestTimeout: 1000, enforceRequestTimeout: false, clientId: "t", broker: "b", logger: quiet });

describe("kafkajs idle fix (RequestQueue)", () => {
  before(() => assert.equal(applyKafkaJsIdleFix(), true, "the pinned kafkajs version is the one the fix is for"));

  it("an empty queue arms no timer after a check (unpatched: a 1 ms timer loop for as long as the connection lives)", () => {
    const q = queue();
    q.checkPendingRequests();
    assert.equal(q.throttleCheckTimeoutId ?? null, null);
  });

  it("a pending request under a throttle is checked when the throttle ends; without one, after the usual interval", async () => {
    const q = queue();
    let checks = 0;
    const original = q.checkPendingRequests.bind(q);
    q.checkPendingRequests = () => {
      checks++;
      q.pending.length = 0; // what sending it would do
      original();
    };
    q.pending.push({});
    q.throttledUntil = Date.now() + 30;
    (q as unknown as { scheduleCheckPendingRequests(): void }).scheduleCheckPendingRequests();
    assert.notEqual(q.throttleCheckTimeoutId ?? null, null);
    await new Promise((r) => setTimeout(r, 10));
    assert.equal(checks, 0, "not before the throttle ends");
    await new Promise((r) => setTimeout(r, 60));
    assert.equal(checks, 1);
    assert.equal(q.throttleCheckTimeoutId ?? null, null, "nothing pending: no timer left behind");
  });
});
