import assert from "node:assert/strict";
import { silentLogger } from "../../../gateway/shared/log.js";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { AuthError, JwtVerifier, type AuthFailureCode, type JwtVerifierOptions } from "../../../gateway/auth/index.js";
import { startFakeIdp, type FakeIdp } from "../../fakes/jwks.js";

class ManualClock {
  constructor(public ms = Date.now()) {}
  now(): number {
    return this.ms;
  }
  advance(ms: number): void {
    this.ms += ms;
  }
}

const INTERVAL = 30_000;
const MAX_AGE = 600_000;
const MAX_STALE = 3_600_000;

function verifierFor(idp: FakeIdp, clock: ManualClock, overrides: Partial<JwtVerifierOptions> = {}): JwtVerifier {
  return new JwtVerifier({
    issuer: idp.issuer,
    audience: idp.audience,
    jwksUri: idp.jwksUri,
    log: silentLogger,
    algorithms: ["RS256"],
    unknownKidRefreshIntervalMs: INTERVAL,
    jwksCacheMaxAgeMs: MAX_AGE,
    jwksMaxStaleMs: MAX_STALE,
    clock,
    ...overrides,
  });
}

async function rejectsWith(promise: Promise<unknown>, code: AuthFailureCode): Promise<void> {
  await assert.rejects(promise, (err: unknown) => err instanceof AuthError && err.code === code);
}

async function until(condition: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !condition(); i++) await new Promise((r) => setTimeout(r, 5));
  assert.ok(condition(), "condition not reached");
}

describe("JwtVerifier key handling", () => {
  let idp: FakeIdp;
  let clock: ManualClock;

  beforeEach(async () => {
    clock = new ManualClock();
    idp = await startFakeIdp({ clock });
  });
  afterEach(() => idp.close());

  it("keeps the key set fresh without traffic: an idle replica's keys do not expire (readiness)", async function () {
    this.timeout(5_000);
    // maxAge 2 s: the background check runs every second of real time.
    const verifier = verifierFor(idp, clock, { jwksCacheMaxAgeMs: 2_000, jwksMaxStaleMs: 1_000, unknownKidRefreshIntervalMs: 1_000 });
    await verifier.start();
    assert.equal(idp.jwksFetchCount, 1);
    clock.advance(2_500); // stale by the clock; no request comes
    for (let i = 0; i < 60 && idp.jwksFetchCount < 2; i++) await new Promise((r) => setTimeout(r, 50));
    assert.equal(idp.jwksFetchCount, 2, "refreshed in the background");
    assert.equal(verifier.status().state, "fresh");
  });

  it("fetches the JWKS once for many tokens signed by a known key", async () => {
    const verifier = verifierFor(idp, clock);
    for (let i = 0; i < 20; i++) await verifier.verify(idp.mint({ sub: `agent-${i}` }));
    assert.equal(idp.jwksFetchCount, 1);
  });

  it("shares one fetch among concurrent first requests", async () => {
    const verifier = verifierFor(idp, clock);
    await Promise.all(Array.from({ length: 10 }, (_, i) => verifier.verify(idp.mint({ sub: `a${i}` }))));
    assert.equal(idp.jwksFetchCount, 1);
  });

  it("lets an unknown kid trigger at most one JWKS fetch per interval", async () => {
    const verifier = verifierFor(idp, clock);
    await verifier.verify(idp.mint());
    assert.equal(idp.jwksFetchCount, 1);

    // Within the interval of the last fetch: refused without asking the IdP.
    for (let i = 0; i < 5; i++) await rejectsWith(verifier.verify(idp.mint({}, { kid: `guess-${i}` })), "token_unknown_key");
    assert.equal(idp.jwksFetchCount, 1);

    clock.advance(INTERVAL + 1);
    await Promise.all(
      Array.from({ length: 5 }, (_, i) => rejectsWith(verifier.verify(idp.mint({}, { kid: `again-${i}` })), "token_unknown_key")),
    );
    await rejectsWith(verifier.verify(idp.mint({}, { kid: "one-more" })), "token_unknown_key");
    assert.equal(idp.jwksFetchCount, 2);
  });

  it("picks up a key rotated in the IdP once the interval allows a refresh", async () => {
    const verifier = verifierFor(idp, clock);
    await verifier.verify(idp.mint());
    idp.rotate();
    clock.advance(INTERVAL + 1);
    const identity = await verifier.verify(idp.mint({ sub: "after-rotation" }));
    assert.equal(identity.sub, "after-rotation");
    assert.equal(idp.jwksFetchCount, 2);
  });

  it("learns every new kid from one refresh, not one fetch per kid", async () => {
    const verifier = verifierFor(idp, clock);
    await verifier.verify(idp.mint());
    idp.rotate();
    const signedByFirst = idp.mint({ sub: "first" });
    idp.rotate();
    const signedBySecond = idp.mint({ sub: "second" });
    clock.advance(INTERVAL + 1);
    assert.equal((await verifier.verify(signedByFirst)).sub, "first");
    assert.equal((await verifier.verify(signedBySecond)).sub, "second");
    assert.equal(idp.jwksFetchCount, 2);
  });

  it("stops accepting a cached token once its key is dropped from the JWKS", async () => {
    const verifier = verifierFor(idp, clock);
    const old = idp.mint({ sub: "old" });
    await verifier.verify(old);
    await verifier.verify(old); // cached
    idp.rotate({ keepPrevious: false });
    clock.advance(INTERVAL + 1);
    await verifier.verify(idp.mint({ sub: "new" })); // refresh: the old key is gone
    await rejectsWith(verifier.verify(old), "token_unknown_key");
  });

  it("re-checks exp on a cached token against the injected clock", async () => {
    const verifier = verifierFor(idp, clock, { clockToleranceSeconds: 0 });
    const token = idp.mint({ exp: Math.floor(clock.now() / 1000) + 60 });
    const first = await verifier.verify(token);
    assert.equal(await verifier.verify(token), first, "second verify is a cache hit");
    clock.advance(61_000);
    await rejectsWith(verifier.verify(token), "token_expired");
  });

  it("re-checks nbf on a cached token against the injected clock", async () => {
    const verifier = verifierFor(idp, clock, { clockToleranceSeconds: 0 });
    const token = idp.mint({ nbf: Math.floor(clock.now() / 1000) });
    await verifier.verify(token);
    clock.advance(-10_000);
    await rejectsWith(verifier.verify(token), "token_not_yet_valid");
  });

  it("keeps verifying with the cached key while the IdP is down", async () => {
    const verifier = verifierFor(idp, clock);
    await verifier.verify(idp.mint({ sub: "before" }));
    const later = idp.mint({ sub: "during-outage" });
    await idp.close();
    assert.equal((await verifier.verify(later)).sub, "during-outage");
    assert.equal(verifier.status().state, "fresh");
  });

  it("serves a stale key set while refreshes fail, until max stale age, then jwks_unavailable", async () => {
    const verifier = verifierFor(idp, clock);
    await verifier.verify(idp.mint());
    idp.setAvailable(false);

    clock.advance(MAX_AGE + 1);
    assert.equal((await verifier.verify(idp.mint({ sub: "stale-ok" }))).sub, "stale-ok");
    await until(() => verifier.status().lastError !== null);
    assert.equal(verifier.status().state, "stale");
    assert.equal(verifier.status().refreshFailures, 1, "the failed background refresh is counted");

    clock.advance(MAX_STALE);
    await rejectsWith(verifier.verify(idp.mint({ sub: "too-stale" })), "jwks_unavailable");
  });

  it("answers jwks_unavailable when the IdP is down and no key was ever fetched", async () => {
    const verifier = verifierFor(idp, clock);
    const token = idp.mint();
    await idp.close();
    await rejectsWith(verifier.verify(token), "jwks_unavailable");
    assert.equal(verifier.status().state, "not_loaded");
  });

  it("retries a failed first fetch only after the interval, then recovers", async () => {
    const verifier = verifierFor(idp, clock);
    idp.setAvailable(false);
    await rejectsWith(verifier.verify(idp.mint()), "jwks_unavailable");
    idp.setAvailable(true);
    await rejectsWith(verifier.verify(idp.mint()), "jwks_unavailable");
    assert.equal(idp.jwksFetchCount, 1);
    assert.equal(verifier.status().refreshFailures, 1);
    clock.advance(INTERVAL + 1);
    assert.equal((await verifier.verify(idp.mint({ sub: "recovered" }))).sub, "recovered");
    assert.equal(idp.jwksFetchCount, 2);
    assert.equal(verifier.status().refreshFailures, 1, "a cumulative count: recovering does not reset it");
  });

  it("refreshes a stale key set in the background without delaying the request", async () => {
    const verifier = verifierFor(idp, clock);
    await verifier.verify(idp.mint());
    clock.advance(MAX_AGE + 1);
    await verifier.verify(idp.mint({ sub: "x" }));
    await until(() => idp.jwksFetchCount === 2);
    await until(() => verifier.status().state === "fresh");
  });

  it("gives up on a JWKS endpoint that never answers after jwksTimeoutMs", async () => {
    const silent = createServer(() => {
      /* never responds */
    });
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
    try {
      const { port } = silent.address() as AddressInfo;
      const verifier = verifierFor(idp, clock, { jwksUri: `http://127.0.0.1:${port}/jwks.json`, jwksTimeoutMs: 100 });
      const started = Date.now();
      await rejectsWith(verifier.verify(idp.mint()), "jwks_unavailable");
      assert.ok(Date.now() - started < 2_000);
    } finally {
      silent.closeAllConnections();
      await new Promise((resolve) => silent.close(resolve));
    }
  });

  it("start() prefetches the JWKS and reports the status", async () => {
    const verifier = verifierFor(idp, clock);
    const status = await verifier.start();
    assert.deepEqual(
      { state: status.state, keyCount: status.keyCount, lastError: status.lastError, refreshFailures: status.refreshFailures },
      { state: "fresh", keyCount: 1, lastError: null, refreshFailures: 0 },
    );
    await verifier.verify(idp.mint());
    assert.equal(idp.jwksFetchCount, 1);
  });
});
