import assert from "node:assert/strict";
import { Refusal } from "../../../gateway/proxy/errors.js";
import { newSessionId, ownerOf, SessionStore, type GatewaySession } from "../../../gateway/proxy/session.js";
import type { UpstreamConnection } from "../../../gateway/proxy/upstream.js";

/** An upstream that only counts how often it was closed; every other call is a test failure. */
class FakeUpstream implements UpstreamConnection {
  readonly era = "legacy" as const;
  closes = 0;
  initialize(): never {
    throw new Error("not used");
  }
  request(): never {
    throw new Error("not used");
  }
  send(): never {
    throw new Error("not used");
  }
  listen(): never {
    throw new Error("not used");
  }
  async close(): Promise<void> {
    this.closes += 1;
  }
}

const ALICE = ownerOf("https://idp.test/", "alice");
const BOB = ownerOf("https://idp.test/", "bob");
const IDLE_MS = 60_000;

function setup(maxSessions = 10, bounds: { maxPerAgent?: number; maxStdio?: number } = {}) {
  const clock = { ms: 1_000_000 };
  const store = new SessionStore({ idleTimeoutMs: IDLE_MS, maxSessions, maxPerAgent: bounds.maxPerAgent ?? 100, maxStdio: bounds.maxStdio ?? 100, now: () => clock.ms });
  const add = (id: string, owner = ALICE, stdio = false) => {
    const upstream = new FakeUpstream();
    const session: GatewaySession = {
      id,
      server: "demo",
      owner,
      upstream,
      initResult: {},
      protocolVersion: "2025-11-25",
      lastSeenMs: clock.ms,
      catalog: null,
      catalogFetchedMs: 0,
      closeStream: null,
      serverRequests: new Map(),
      tasks: new Map(),
      slot: store.reserve(owner, stdio),
    };
    store.add(session);
    return { session, upstream };
  };
  return { clock, store, add };
}

describe("SessionStore", () => {
  it("hides a session from a different owner and does not refresh it for them", () => {
    const { clock, store, add } = setup();
    const { session } = add("s1", ALICE);
    const created = session.lastSeenMs;
    clock.ms += 5_000;
    assert.equal(store.lookup("s1", BOB), undefined);
    assert.equal(session.lastSeenMs, created, "a foreign lookup must not keep the session alive");
    assert.equal(store.lookup("s1", ownerOf("https://other-idp.test/", "alice")), undefined, "same sub, other issuer");
    assert.equal(store.lookup("no-such-id", ALICE), undefined);
    assert.equal(store.lookup("s1", ALICE), session);
  });

  it("refreshes lastSeen on every lookup by the owner", () => {
    const { clock, store, add } = setup();
    const { session } = add("s1");
    clock.ms += 12_345;
    assert.equal(store.lookup("s1", ALICE), session);
    assert.equal(session.lastSeenMs, clock.ms);
    clock.ms += 1;
    store.lookup("s1", ALICE);
    assert.equal(session.lastSeenMs, clock.ms);
  });

  it("sweep() ends sessions idle past the timeout, closing their upstream once, and keeps active ones", async () => {
    const { clock, store, add } = setup();
    const idle1 = add("idle-1");
    const idle2 = add("idle-2");
    const active = add("active");
    clock.ms += IDLE_MS / 2;
    store.lookup("active", ALICE);
    const late = add("late");
    clock.ms += IDLE_MS / 2 + 1; // the idle ones were last seen just over the timeout ago

    assert.equal(await store.sweep(), 2);
    assert.equal(store.size, 2);
    assert.equal(idle1.upstream.closes, 1);
    assert.equal(idle2.upstream.closes, 1);
    assert.equal(store.lookup("idle-1", ALICE), undefined);
    assert.equal(store.lookup("idle-2", ALICE), undefined);
    assert.equal(active.upstream.closes, 0);
    assert.equal(late.upstream.closes, 0);
    assert.equal(store.lookup("active", ALICE), active.session);
    assert.equal(store.lookup("late", ALICE), late.session);

    // A later sweep never closes an ended session again, and the refreshed ones are still in time.
    clock.ms += 1;
    assert.equal(await store.sweep(), 0);
    assert.equal(idle1.upstream.closes, 1);
    assert.equal(idle2.upstream.closes, 1);
  });

  it("concurrent sweeps of the same idle session close its upstream exactly once", async () => {
    const { clock, store, add } = setup();
    const { upstream } = add("s1");
    clock.ms += IDLE_MS + 1;
    const ended = await Promise.all([store.sweep(), store.sweep(), store.sweep()]);
    assert.deepEqual(ended.sort(), [0, 0, 1]);
    assert.equal(upstream.closes, 1);
    assert.equal(store.size, 0);
  });

  it("startSweeping() ends idle sessions on its timer until closeAll()", async () => {
    const { clock, store, add } = setup();
    const { upstream } = add("s1");
    clock.ms += IDLE_MS + 1;
    store.startSweeping(5);
    try {
      for (let i = 0; i < 200 && upstream.closes === 0; i++) await new Promise((r) => setTimeout(r, 5));
      assert.equal(upstream.closes, 1);
      assert.equal(store.size, 0);
    } finally {
      await store.closeAll();
    }
  });

  it("reserve() refuses once maxSessions slots are held and gives one back when a session ends", async () => {
    const { store, add } = setup(2);
    add("a");
    add("b", BOB);
    assert.throws(() => store.reserve(ALICE, false), (e: unknown) => e instanceof Refusal && e.code === "session_limit");
    await store.end("a");
    store.reserve(ALICE, false).release();
  });

  it("reserve() holds each owner to maxPerAgent and stdio sessions to maxStdio (issue 8, finding 9)", async () => {
    const { store, add } = setup(10, { maxPerAgent: 2, maxStdio: 1 });
    add("a");
    add("b");
    assert.throws(() => store.reserve(ALICE, false), (e: unknown) => e instanceof Refusal && e.code === "session_quota");
    store.reserve(BOB, false).release();
    add("c", BOB, true);
    assert.throws(() => store.reserve(BOB, true), (e: unknown) => e instanceof Refusal && e.code === "session_limit");
    await store.end("c");
    const slot = store.reserve(BOB, true);
    slot.release();
    slot.release(); // giving a slot back twice frees it once
    assert.deepEqual(store.reservations, { total: 2, stdio: 0 });
  });

  it("end() closes the session's stream and its upstream and forgets it", async () => {
    const { store, add } = setup();
    const { session, upstream } = add("s1");
    let streamCloses = 0;
    session.closeStream = () => {
      streamCloses += 1;
    };
    await store.end("s1");
    assert.equal(streamCloses, 1);
    assert.equal(upstream.closes, 1);
    assert.equal(store.size, 0);
    assert.equal(store.lookup("s1", ALICE), undefined);
    await store.end("s1");
    assert.equal(upstream.closes, 1, "ending an ended session is a no-op");
    assert.equal(streamCloses, 1);
  });

  it("closeAll() ends every session", async () => {
    const { store, add } = setup();
    const a = add("a");
    const b = add("b", BOB);
    await store.closeAll();
    assert.equal(store.size, 0);
    assert.deepEqual([a.upstream.closes, b.upstream.closes], [1, 1]);
  });

  it("newSessionId() is 32 base64url characters and different on every call", () => {
    const ids = new Set<string>();
    for (let i = 0; i < 1000; i++) {
      const id = newSessionId();
      assert.match(id, /^[A-Za-z0-9_-]{32}$/);
      ids.add(id);
    }
    assert.equal(ids.size, 1000);
  });

  it("keeps ending sessions when an upstream's close or the client stream fails", async () => {
    const { clock, store, add } = setup();
    const { session, upstream } = add("s-bad");
    upstream.close = async () => {
      upstream.closes += 1;
      throw new Error("DELETE failed");
    };
    session.closeStream = () => {
      throw new Error("stream already destroyed");
    };
    clock.ms += IDLE_MS + 1;
    assert.equal(await store.sweep(), 1);
    assert.equal(upstream.closes, 1, "the upstream is closed even when the stream close throws");
    assert.equal(store.size, 0);
  });
});
