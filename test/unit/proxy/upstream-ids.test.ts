import assert from "node:assert/strict";
import { GATEWAY_ID_PREFIX, UpstreamIds } from "../../../gateway/proxy/upstream-ids.js";

describe("upstream ids (issue 8, finding 6)", () => {
  it("passes an agent's id through unchanged when nothing else uses it", () => {
    const ids = new UpstreamIds();
    assert.equal(ids.assign(7), 7);
    assert.equal(ids.assign("a"), "a");
  });
  it("never sends an agent id in the gateway's namespace: the gateway's own lookups cannot collide with it", () => {
    const ids = new UpstreamIds();
    const own = ids.assign(null);
    assert.ok(String(own).startsWith(GATEWAY_ID_PREFIX));
    const agent = ids.assign(own); // an agent that guessed the gateway's id
    assert.notEqual(agent, own);
    const later = ids.assign(`${GATEWAY_ID_PREFIX}99`);
    assert.notEqual(later, `${GATEWAY_ID_PREFIX}99`);
  });
  it("rewrites an id already in flight and restores it on the answer", () => {
    const ids = new UpstreamIds();
    const first = ids.assign(1);
    const second = ids.assign(1);
    assert.notEqual(first, second);
    const answer = ids.restore({ jsonrpc: "2.0", id: second, result: {} }, second, 1);
    assert.equal(answer.id, 1);
    ids.release(first);
    assert.equal(ids.assign(1), 1);
  });
  it("translates an agent's cancellation to the id the upstream knows", () => {
    const ids = new UpstreamIds();
    ids.assign(5);
    const dup = ids.assign(5);
    ids.release(5);
    const cancel = ids.translateCancellation({ jsonrpc: "2.0", method: "notifications/cancelled", params: { requestId: 5 } });
    assert.deepEqual(cancel.params, { requestId: dup });
  });
});
