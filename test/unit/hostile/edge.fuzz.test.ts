/**
 * Issue 5 item 6: the JSON-RPC edge's pure functions under generated input. `classify` decides
 * what the gateway treats as a request (a decision point) versus anything else, so its verdict
 * must match the JSON-RPC 2.0 rules exactly, for every value, without throwing.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { classify, parseMessage, RpcCode, serialize } from "../../../gateway/proxy/jsonrpc.js";
import { clientIpResolver, normalizeIp } from "../../../gateway/proxy/client-ip.js";
import { body, decisionMessage, jsonValue, mangledEnvelope, plumbingMessage, runs } from "./arbitraries.js";

const isObj = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === "object" && !Array.isArray(v);
const isId = (v: unknown) => typeof v === "string" || (typeof v === "number" && Number.isSafeInteger(v));

/** An independent statement of what classify must answer (the oracle). */
function expected(v: unknown): "request" | "notification" | "response" | "invalid" {
  if (!isObj(v) || v.jsonrpc !== "2.0") return "invalid";
  if (v.params !== undefined && !isObj(v.params)) return "invalid";
  if ("method" in v) {
    if (typeof v.method !== "string" || v.method === "") return "invalid";
    if (!("id" in v)) return "notification";
    return isId(v.id) ? "request" : "invalid";
  }
  return isId(v.id) && (isObj(v.result) || isObj(v.error)) ? "response" : "invalid";
}

function check(v: unknown): void {
  const c = classify(v);
  const want = expected(v);
  if (!c.ok) {
    assert.equal(want, "invalid", `refused a valid ${want}: ${c.message}`);
    assert.equal(c.code, RpcCode.InvalidRequest);
    return;
  }
  assert.equal(c.parsed.kind, want);
  // The typed message is the value itself: nothing is lost or invented on the way in.
  assert.equal(c.parsed.message, v);
}

describe("hostile input: the JSON-RPC edge (fast-check)", function () {
  this.timeout(60_000);
  it(`classify agrees with JSON-RPC 2.0 for any JSON value (${runs(25_000)} runs)`, () => {
    fc.assert(fc.property(jsonValue, (v) => check(v)), { numRuns: runs(25_000) });
  });

  it(`classify agrees for near-miss envelopes and real MCP messages (${runs(15_000)} runs)`, () => {
    fc.assert(fc.property(fc.oneof(mangledEnvelope, decisionMessage, plumbingMessage), (v) => check(JSON.parse(JSON.stringify(v)))), { numRuns: runs(15_000) });
  });

  it(`classify never accepts a batch, however it is built (${runs(5_000)} runs)`, () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(decisionMessage, jsonValue), { maxLength: 4 }), (batch) => {
        const c = classify(batch);
        assert.equal(c.ok, false);
      }),
      { numRuns: runs(5_000) },
    );
  });

  it(`classify survives values JSON.parse cannot produce (${runs(5_000)} runs)`, () => {
    fc.assert(
      fc.property(fc.anything({ withBigInt: true, withMap: true, withSet: true, withDate: true, withTypedArray: true, withNullPrototype: true, withSparseArray: true }), (v) => {
        const c = classify(v);
        assert.equal(typeof c.ok, "boolean");
      }),
      { numRuns: runs(5_000) },
    );
  });

  it(`parseMessage never throws, and serialize gives back the exact upstream bytes (${runs(15_000)} runs)`, () => {
    fc.assert(
      fc.property(body, (text) => {
        const m = parseMessage(text);
        if (m === null) return;
        assert.equal(serialize(m), text);
      }),
      { numRuns: runs(15_000) },
    );
  });

  it(`the client IP resolver returns the peer or an address from the header, never anything else (${runs(10_000)} runs)`, () => {
    const resolve = clientIpResolver(["10.0.0.0/8", "::1/128"]);
    const ip = fc.oneof(fc.ipV4(), fc.ipV6(), fc.constantFrom("10.1.1.1", "::1", "garbage", "", "[::1]:80", "1.2.3.4:5"));
    fc.assert(
      fc.property(ip, fc.array(ip, { maxLength: 5 }), (peer, hops) => {
        const got = resolve(peer, hops.join(", "));
        const p = normalizeIp(peer);
        if (p === undefined) return assert.equal(got, null);
        assert.ok(got === p || hops.some((h) => normalizeIp(h) === got), `${got} from ${peer} / ${hops.join(",")}`);
        // An untrusted peer is always the answer, whatever the header says.
        if (!p.startsWith("10.") && p !== "::1") assert.equal(got, p);
      }),
      { numRuns: runs(10_000) },
    );
  });
});
