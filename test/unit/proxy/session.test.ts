import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { Refusal } from "../../../gateway/proxy/errors.js";
import { LocalSessionLedger, type SessionLedger } from "../../../gateway/proxy/session-ledger.js";
import { SessionSealer } from "../../../gateway/proxy/session-seal.js";
import { ownerOf, SessionStore, type GatewaySession } from "../../../gateway/proxy/session.js";
import type { UpstreamConnection, UpstreamState } from "../../../gateway/proxy/upstream.js";

/** An upstream that only counts closes and detaches; every other call is a test failure. */
class FakeUpstream implements UpstreamConnection {
  readonly era = "legacy" as const;
  closes = 0;
  detaches = 0;
  constructor(readonly sealedState: UpstreamState = { kind: "http", era: "legacy", sessionId: "up-1", protocolVersion: "2025-11-25" }) {}
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
  state(): UpstreamState {
    return this.sealedState;
  }
  async detach(): Promise<void> {
    this.detaches += 1;
  }
  async close(): Promise<void> {
    this.closes += 1;
  }
}

const ISS = "https://idp.test/";
const ALICE = ownerOf(ISS, "alice");
const BOB = ownerOf(ISS, "bob");
const IDLE_MS = 60_000;
const STDIO_IDLE_MS = 10_000;
const LIFETIME_MS = 3_600_000;
const KEY_A = { id: "a", key: randomBytes(32) };
const KEY_B = { id: "b", key: randomBytes(32) };

interface Replica {
  store: SessionStore;
  /** Connections the store resumed from sealed ids, with the state each was resumed from. */
  resumed: { server: string; state: UpstreamState; upstream: FakeUpstream }[];
}

function setup(opts: { maxSessions?: number; maxPerAgent?: number; maxStdio?: number } = {}) {
  const clock = { ms: 1_000_000_000 };
  const now = () => clock.ms;
  const replica = (sealer: SessionSealer, ledger: SessionLedger, durable = true): Replica => {
    const resumed: Replica["resumed"] = [];
    const store = new SessionStore({
      idleTimeoutMs: IDLE_MS,
      stdioIdleTimeoutMs: STDIO_IDLE_MS,
      maxSessions: opts.maxSessions ?? 10,
      maxPerAgent: opts.maxPerAgent ?? 100,
      maxStdio: opts.maxStdio ?? 100,
      maxLifetimeMs: LIFETIME_MS,
      now,
      sealer,
      ledger,
      resume: (server, state) => {
        const upstream = new FakeUpstream(state);
        resumed.push({ server, state, upstream });
        return upstream;
      },
      isStdio: (server) => server === "files",
      durable,
    });
    return { store, resumed };
  };
  const mint = async (r: Replica, sub = "alice", server = "demo", state?: UpstreamState) => {
    const upstream = new FakeUpstream(state);
    const session = await r.store.mint({ server, iss: ISS, sub, upstream, protocolVersion: "2025-11-25", initResult: {}, slot: r.store.reserve(ownerOf(ISS, sub), server === "files") });
    return { session, upstream };
  };
  return { clock, now, replica, mint };
}

describe("SessionStore: sealed sessions any replica serves", () => {
  it("a second replica with the same keys serves a session it never saw, from the id alone", async () => {
    const { replica, mint, now } = setup();
    const ledger = new LocalSessionLedger(now, LIFETIME_MS);
    const a = replica(new SessionSealer([KEY_A]), ledger);
    const b = replica(new SessionSealer([KEY_A]), ledger);
    const { session } = await mint(a);
    assert.doesNotMatch(session.id, /up-1/, "the upstream session id never shows in clear");
    const there = await b.store.find(session.id, ALICE, "demo");
    assert.ok(there);
    assert.equal(there.handle, session.handle);
    assert.equal(there.protocolVersion, "2025-11-25");
    assert.deepEqual(b.resumed.map((r) => r.state), [{ kind: "http", era: "legacy", sessionId: "up-1", protocolVersion: "2025-11-25" }]);
    // The second request on b uses b's copy: no second rebuild.
    assert.equal(await b.store.find(session.id, ALICE, "demo"), there);
    assert.equal(b.resumed.length, 1);
  });

  it("concurrent first requests on a replica share one rebuild", async () => {
    const { replica, mint, now } = setup();
    const ledger = new LocalSessionLedger(now, LIFETIME_MS);
    const a = replica(new SessionSealer([KEY_A]), ledger);
    const b = replica(new SessionSealer([KEY_A]), ledger);
    const { session } = await mint(a);
    const found = await Promise.all([1, 2, 3].map(() => b.store.find(session.id, ALICE, "demo")));
    assert.equal(new Set(found).size, 1);
    assert.equal(b.resumed.length, 1);
    assert.equal(b.store.reservations.total, 1);
  });

  it("is not found for another subject, another issuer, another server, a tampered id or a foreign key", async () => {
    const { replica, mint, now } = setup();
    const ledger = new LocalSessionLedger(now, LIFETIME_MS);
    const a = replica(new SessionSealer([KEY_A]), ledger);
    const b = replica(new SessionSealer([KEY_A]), ledger);
    const foreign = replica(new SessionSealer([{ id: "a", key: randomBytes(32) }]), ledger);
    const { session } = await mint(a);
    for (const store of [a.store, b.store]) {
      assert.equal(await store.find(session.id, BOB, "demo"), undefined);
      assert.equal(await store.find(session.id, ownerOf("https://other-idp.test/", "alice"), "demo"), undefined);
      assert.equal(await store.find(session.id, ALICE, "files"), undefined);
    }
    assert.equal(await foreign.store.find(session.id, ALICE, "demo"), undefined, "same key id, other key");
    const body = session.id.slice(session.id.indexOf(".") + 1);
    for (let i = 0; i < body.length; i += 7) {
      const c = body[i] === "A" ? "B" : "A";
      const tampered = `${session.id.slice(0, session.id.indexOf(".") + 1)}${body.slice(0, i)}${c}${body.slice(i + 1)}`;
      assert.equal(await b.store.find(tampered, ALICE, "demo"), undefined, `byte ${i} changed`);
    }
    assert.equal(await b.store.find(`${session.id}x`, ALICE, "demo"), undefined, "an appended character");
    assert.equal(await b.store.find(`zz.${body}`, ALICE, "demo"), undefined, "an unknown key id");
    assert.equal(await b.store.find("not-a-session", ALICE, "demo"), undefined);
    assert.equal(b.resumed.length, 0, "nothing was rebuilt for any of them");
    assert.equal(b.store.reservations.total, 0);
  });

  it("keys rotate without dropping sessions: a replica sealing with a new key still opens the old one's", async () => {
    const { replica, mint, now } = setup();
    const ledger = new LocalSessionLedger(now, LIFETIME_MS);
    const before = replica(new SessionSealer([KEY_A]), ledger);
    const after = replica(new SessionSealer([KEY_B, KEY_A]), ledger);
    const retired = replica(new SessionSealer([KEY_B]), ledger);
    const old = await mint(before);
    const fresh = await mint(after);
    assert.ok(fresh.session.id.startsWith("b."), "the first key seals");
    assert.ok(await after.store.find(old.session.id, ALICE, "demo"), "the old key still opens");
    assert.ok(await before.store.find(fresh.session.id, ALICE, "demo") === undefined, "a replica without the new key cannot open it");
    assert.equal(await retired.store.find(old.session.id, ALICE, "demo"), undefined, "once the old key is dropped, its sessions are gone");
  });

  it("expires at the sealed lifetime on every replica, however active", async () => {
    const { replica, mint, now, clock } = setup();
    const ledger = new LocalSessionLedger(now, LIFETIME_MS);
    const a = replica(new SessionSealer([KEY_A]), ledger);
    const b = replica(new SessionSealer([KEY_A]), ledger);
    const { session } = await mint(a);
    for (let t = 0; t < LIFETIME_MS - IDLE_MS; t += IDLE_MS / 2) {
      clock.ms += IDLE_MS / 2;
      assert.ok(await a.store.find(session.id, ALICE, "demo"));
    }
    clock.ms += IDLE_MS;
    assert.equal(await b.store.find(session.id, ALICE, "demo"), undefined);
    assert.equal(await a.store.find(session.id, ALICE, "demo"), undefined);
  });

  it("end() on one replica holds on the others (shared ledger); the upstream session is closed once", async () => {
    const { replica, mint, now } = setup();
    const ledger = new LocalSessionLedger(now, LIFETIME_MS);
    const a = replica(new SessionSealer([KEY_A]), ledger);
    const b = replica(new SessionSealer([KEY_A]), ledger);
    const { session, upstream } = await mint(a);
    const onB = (await b.store.find(session.id, ALICE, "demo"))!;
    let streamCloses = 0;
    onB.closeStream = () => void streamCloses++;
    await a.store.end(session.id);
    assert.equal(upstream.closes, 1);
    assert.equal(await b.store.find(session.id, ALICE, "demo"), undefined);
    assert.equal(streamCloses, 1, "b let go of its stream");
    assert.equal(b.resumed[0]!.upstream.closes, 0, "b does not close the upstream session again");
    assert.equal(b.resumed[0]!.upstream.detaches, 1);
    assert.equal(b.store.reservations.total, 0);
  });

  it("idle expiry: a session idle everywhere ends; one busy on another replica is only let go of here", async () => {
    const { replica, mint, now, clock } = setup();
    const shared = new LocalSessionLedger(now, LIFETIME_MS);
    // The shared ledger as Redis would be: `shared` tells the store other replicas see it too.
    const ledger: SessionLedger = Object.assign(Object.create(shared) as LocalSessionLedger, { shared: true });
    const a = replica(new SessionSealer([KEY_A]), ledger);
    const b = replica(new SessionSealer([KEY_A]), ledger);
    const busy = await mint(a);
    const idle = await mint(a, "bob");
    await b.store.find(busy.session.id, ALICE, "demo");
    for (let i = 0; i < 4; i++) {
      clock.ms += IDLE_MS / 3;
      assert.ok(await b.store.find(busy.session.id, ALICE, "demo"), "busy on b");
    }
    assert.equal(await a.store.sweep(), 2);
    assert.equal(busy.upstream.closes, 0, "alive on b: a only let go of it");
    assert.equal(busy.upstream.detaches, 1);
    assert.equal(idle.upstream.closes, 1, "idle everywhere: ended, closed upstream");
    assert.ok(await a.store.find(busy.session.id, ALICE, "demo"), "a serves it again from the id");
    assert.equal(await b.store.find(idle.session.id, BOB, "demo"), undefined);
  });

  it("without a shared ledger (one replica), idleness ends the session and closes its upstream once", async () => {
    const { replica, mint, now, clock } = setup();
    const a = replica(new SessionSealer([KEY_A]), new LocalSessionLedger(now, LIFETIME_MS));
    const idle = await mint(a);
    const active = await mint(a, "bob");
    clock.ms += IDLE_MS / 2;
    await a.store.find(active.session.id, BOB, "demo");
    clock.ms += IDLE_MS / 2 + 1;
    const swept = await Promise.all([a.store.sweep(), a.store.sweep()]);
    assert.deepEqual(swept.sort(), [0, 1]);
    assert.equal(idle.upstream.closes, 1);
    assert.equal(active.upstream.closes, 0);
    assert.equal(await a.store.find(idle.session.id, ALICE, "demo"), undefined, "ended, not just forgotten: the id is not served again");
    assert.ok(await a.store.find(active.session.id, BOB, "demo"));
  });

  it("stdio sessions end after the shorter stdioIdleTimeout (each holds a process), HTTP ones after idleTimeout", async () => {
    const { replica, mint, now, clock } = setup();
    const a = replica(new SessionSealer([KEY_A]), new LocalSessionLedger(now, LIFETIME_MS));
    const stdio = await mint(a, "alice", "files", { kind: "stdio", init: {} });
    const http = await mint(a, "bob");
    clock.ms += STDIO_IDLE_MS + 1;
    assert.equal(await a.store.sweep(), 1);
    assert.deepEqual([stdio.upstream.closes, http.upstream.closes], [1, 0]);
    assert.equal(await a.store.find(stdio.session.id, ALICE, "files"), undefined);
    assert.ok(await a.store.find(http.session.id, BOB, "demo"));
  });

  it("a stdio session resumed elsewhere carries the client's initialize for a new process", async () => {
    const { replica, mint, now } = setup();
    const ledger = new LocalSessionLedger(now, LIFETIME_MS);
    const a = replica(new SessionSealer([KEY_A]), ledger);
    const b = replica(new SessionSealer([KEY_A]), ledger);
    const init = { protocolVersion: "2025-11-25", capabilities: { roots: {} }, clientInfo: { name: "c", version: "1" } };
    const { session } = await mint(a, "alice", "files", { kind: "stdio", init });
    assert.equal(session.pendingInit, null, "the minting replica's process is running");
    const there = (await b.store.find(session.id, ALICE, "files"))!;
    assert.deepEqual(there.pendingInit, init);
    assert.deepEqual(b.store.reservations, { total: 1, stdio: 1 });
  });

  it("refuses to mint a session too large for a header, and mints none", async () => {
    const { replica, now } = setup();
    const a = replica(new SessionSealer([KEY_A]), new LocalSessionLedger(now, LIFETIME_MS));
    const huge: UpstreamState = { kind: "stdio", init: { capabilities: { experimental: { blob: "x".repeat(10_000) } } } };
    await assert.rejects(
      a.store.mint({ server: "files", iss: ISS, sub: "alice", upstream: new FakeUpstream(huge), protocolVersion: null, initResult: {}, slot: a.store.reserve(ALICE, true) }),
      (e: unknown) => e instanceof Refusal && e.code === "invalid_params",
    );
    assert.equal(a.store.size, 0);
  });

  it("closeAll(): durable keys let go (others serve on), a key of the process's own ends the sessions", async () => {
    const { replica, mint, now } = setup();
    const ledger = new LocalSessionLedger(now, LIFETIME_MS);
    const durable = replica(new SessionSealer([KEY_A]), ledger, true);
    const ephemeral = replica(SessionSealer.ephemeral(), ledger, false);
    const d = await mint(durable);
    const e = await mint(ephemeral);
    await Promise.all([durable.store.closeAll(), ephemeral.store.closeAll()]);
    assert.deepEqual([d.upstream.closes, d.upstream.detaches], [0, 1]);
    assert.deepEqual([e.upstream.closes, e.upstream.detaches], [1, 0]);
    const next = replica(new SessionSealer([KEY_A]), ledger);
    assert.ok(await next.store.find(d.session.id, ALICE, "demo"), "a restarted replica serves the session on");
  });

  it("reserve() holds this replica to maxSessions, each owner to maxPerAgent and stdio to maxStdio", async () => {
    const { replica, mint, now } = setup({ maxSessions: 3, maxPerAgent: 2, maxStdio: 1 });
    const a = replica(new SessionSealer([KEY_A]), new LocalSessionLedger(now, LIFETIME_MS));
    const first = await mint(a);
    await mint(a);
    assert.throws(() => a.store.reserve(ALICE, false), (e: unknown) => e instanceof Refusal && e.code === "session_quota");
    await mint(a, "bob", "files", { kind: "stdio", init: {} });
    assert.throws(() => a.store.reserve(ownerOf(ISS, "carol"), false), (e: unknown) => e instanceof Refusal && e.code === "session_limit");
    await a.store.end(first.session.id);
    assert.throws(() => a.store.reserve(BOB, true), (e: unknown) => e instanceof Refusal && e.code === "session_limit" && /maxStdio/.test(e.message));
    const slot = a.store.reserve(ALICE, false);
    slot.release();
    slot.release(); // giving a slot back twice frees it once
    assert.deepEqual(a.store.reservations, { total: 2, stdio: 1 });
  });

  it("keeps ending sessions when an upstream's close or the client stream fails", async () => {
    const { replica, mint, now } = setup();
    const a = replica(new SessionSealer([KEY_A]), new LocalSessionLedger(now, LIFETIME_MS));
    const { session, upstream } = await mint(a);
    upstream.close = async () => {
      upstream.closes += 1;
      throw new Error("DELETE failed");
    };
    (session as GatewaySession).closeStream = () => {
      throw new Error("stream already destroyed");
    };
    await a.store.end(session.id);
    assert.equal(upstream.closes, 1);
    assert.equal(a.store.size, 0);
    await a.store.end(session.id);
    assert.equal(upstream.closes, 1, "ending an ended session is a no-op");
  });

  it("held 2026 contexts are this replica's alone and never found by find()", async () => {
    const { replica, now } = setup();
    const a = replica(new SessionSealer([KEY_A]), new LocalSessionLedger(now, LIFETIME_MS));
    const held = a.store.hold("held:k", { server: "demo", owner: ALICE, upstream: new FakeUpstream(), protocolVersion: null, initResult: {}, slot: a.store.reserve(ALICE, false) });
    assert.equal(a.store.heldBy("held:k", ALICE), held);
    assert.equal(a.store.heldBy("held:k", BOB), undefined);
    assert.equal(await a.store.find("held:k", ALICE, "demo"), undefined);
  });
});
