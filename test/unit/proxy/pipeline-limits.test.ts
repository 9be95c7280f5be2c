import assert from "node:assert/strict";
import { RATE_LIMIT_META_KEY, withConcurrencyLimit } from "../../../gateway/proxy/index.js";
import { LocalWindowStore, RateLimiter, Semaphore, type WindowStore } from "../../../gateway/ratelimit/index.js";
import { allow, deny } from "../../fakes/policy.js";
import type { UpstreamScript } from "../../fakes/upstream.js";
import { ManualClock } from "../audit/helpers.js";
import { ECHO, Harness, READ_FILE, TOKENS } from "./pipeline-harness.js";

const RESULT = { content: [{ type: "text", text: "ok" }] };
const SCRIPT: UpstreamScript = {
  toolPages: [[READ_FILE, ECHO]],
  methods: { "tools/call": { result: RESULT }, "resources/read": { result: { contents: [] } }, "prompts/get": { result: { messages: [] } } },
};
const limitedAllow = (limit: number) => () => allow({ rate_limit: { key: "k", limit, window_seconds: 30 } });

describe("proxy pipeline: the limits stage (decision → limits → forward)", () => {
  let h: Harness;
  let session: string;
  afterEach(async () => {
    await h?.close();
  });

  const call = (name = "echo") => h.rpc(session, "tools/call", { name, arguments: {} });

  it("sheds a tools/call over the decision's rate_limit as isError with the retry hint in text and _meta, audited rate_limited", async () => {
    const clock = new ManualClock();
    h = await Harness.start({ script: SCRIPT, decide: limitedAllow(2), limits: new RateLimiter(new LocalWindowStore(clock), {}) });
    session = await h.initialize();
    assert.equal((await call()).json?.result?.isError, undefined);
    clock.advanceMs(10_000);
    assert.equal((await call()).json?.result?.isError, undefined);
    const shed = await call();
    assert.equal(shed.status, 200);
    assert.equal(shed.json?.result?.isError, true);
    assert.deepEqual(shed.json?.result?._meta?.[RATE_LIMIT_META_KEY], { code: "rate_limited", retry_after_seconds: 20 });
    assert.match(shed.json?.result?.content?.[0]?.text, /^Rate limit exceeded: policy bucket k \(2 per 30 s\)\. Retry after 20 s\.$/);
    assert.equal(h.upstream.requests("tools/call").length, 2, "the shed call is not forwarded");
    const events = h.audit.events.filter((e) => e.mcp.method === "tools/call");
    assert.deepEqual(events.map((e) => e.outcome), ["allowed", "allowed", "rate_limited"]);
    assert.equal(events[2]?.error?.code, "rate_limited");
    assert.deepEqual((events[2]?.result as { rate_limit?: unknown }).rate_limit, { key: "k", limit: 2, window_seconds: 30 }, "the decision naming the bucket is on record");
  });

  const otherMethods = [
    { note: "resources/read", method: "resources/read", params: { uri: "demo://readme" } },
    { note: "prompts/get", method: "prompts/get", params: { name: "summarize" } },
  ];
  for (const c of otherMethods) {
    it(`answers a limited ${c.note} with a JSON-RPC error carrying the retry hint`, async () => {
      h = await Harness.start({ script: SCRIPT, decide: limitedAllow(1), limits: new RateLimiter(new LocalWindowStore(new ManualClock()), {}) });
      session = await h.initialize();
      assert.ok((await h.rpc(session, c.method, c.params)).json?.result);
      const shed = await h.rpc(session, c.method, c.params);
      assert.equal(shed.status, 200);
      assert.equal(shed.json?.error?.code, -32603);
      assert.match(shed.json?.error?.message ?? "", /Rate limit exceeded.*Retry after 30 s/);
      assert.equal(shed.json?.error?.data?.code, "rate_limited");
      assert.equal(shed.json?.error?.data?.retry_after_seconds, 30);
      assert.equal(h.audit.events.at(-1)?.outcome, "rate_limited");
    });
  }

  it("does not count denied calls: the limits stage runs only after an allow", async () => {
    const clock = new ManualClock();
    let denyAll = true;
    h = await Harness.start({
      script: SCRIPT,
      decide: (input) => (denyAll && input.request.method === "tools/call" ? deny("no") : allow()),
      limits: new RateLimiter(new LocalWindowStore(clock), { perAgent: { limit: 1, windowSeconds: 60 } }),
    });
    session = await h.initialize();
    for (let i = 0; i < 3; i++) assert.equal((await call()).json?.result?._meta?.[RATE_LIMIT_META_KEY], undefined);
    denyAll = false;
    assert.equal((await call()).json?.result?.isError, undefined, "the one allowed call still has its quota");
    assert.equal((await call()).json?.result?._meta?.[RATE_LIMIT_META_KEY]?.code, "rate_limited");
  });

  it("keeps per-agent defaults apart for different subjects", async () => {
    h = await Harness.start({ script: SCRIPT, limits: new RateLimiter(new LocalWindowStore(new ManualClock()), { perAgent: { limit: 1, windowSeconds: 60 } }) });
    session = await h.initialize();
    const bobSession = await h.initialize(TOKENS.bob);
    assert.equal((await call()).json?.result?.isError, undefined);
    assert.equal((await h.rpc(bobSession, "tools/call", { name: "echo", arguments: {} }, { token: TOKENS.bob })).json?.result?.isError, undefined);
    assert.equal((await call()).json?.result?.isError, true);
  });

  it("answers ratelimit_unavailable when the store refuses (onRedisDown: refuse)", async () => {
    const refusing: WindowStore = { hit: async () => ({ kind: "unavailable", retryAfterMs: 1000 }), close: async () => undefined };
    h = await Harness.start({ script: SCRIPT, limits: new RateLimiter(refusing, { perAgent: { limit: 5, windowSeconds: 60 } }) });
    session = await h.initialize();
    const shed = await call();
    assert.equal(shed.json?.result?.isError, true);
    assert.deepEqual(shed.json?.result?._meta?.[RATE_LIMIT_META_KEY], { code: "ratelimit_unavailable", retry_after_seconds: 1 });
    assert.equal(h.audit.events.at(-1)?.outcome, "rate_limited");
    assert.equal(h.audit.events.at(-1)?.error?.code, "ratelimit_unavailable");
    assert.equal(h.upstream.requests("tools/call").length, 0);
  });

  it("sheds calls beyond upstreams.NAME.maxConcurrent with upstream_busy, and frees the slot when a call ends", async () => {
    const gates: Array<() => void> = [];
    const slow: UpstreamScript = {
      ...SCRIPT,
      methods: { ...SCRIPT.methods, "tools/call": () => new Promise((resolve) => gates.push(() => resolve({ result: RESULT }))) },
    };
    const slots = new Semaphore(2);
    h = await Harness.start({ script: slow, wrapUpstream: (server, u) => withConcurrencyLimit(u, slots, server) });
    session = await h.initialize();
    await h.rpc(session, "tools/list");
    const inFlight = [call(), call()];
    while (gates.length < 2) await new Promise((r) => setTimeout(r, 5));
    const shed = await call();
    assert.equal(shed.json?.result?.isError, true);
    assert.equal(shed.json?.result?._meta?.[RATE_LIMIT_META_KEY]?.code, "upstream_busy");
    assert.match(shed.json?.result?.content?.[0]?.text, /concurrency limit.*maxConcurrent/);
    const plain = await h.rpc(session, "ping");
    assert.ok(plain.json?.result || plain.json?.error, "non-decision methods still answer");
    for (const g of gates.splice(0)) g();
    await Promise.all(inFlight);
    assert.equal(slots.inUse, 0);
    const again = call();
    while (gates.length < 1) await new Promise((r) => setTimeout(r, 5));
    gates[0]!();
    assert.equal((await again).json?.result?.isError, undefined, "a freed slot is reused");
    const outcomes = h.audit.events.filter((e) => e.mcp.method === "tools/call").map((e) => e.outcome);
    assert.deepEqual(outcomes.sort(), ["allowed", "allowed", "allowed", "rate_limited"]);
  });
});
