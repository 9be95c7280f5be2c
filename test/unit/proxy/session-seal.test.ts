import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { SessionSealer, type SealedSession } from "../../../gateway/proxy/session-seal.js";

const SESSION: SealedSession = {
  handle: "h1",
  iss: "https://idp.test/",
  sub: "alice",
  server: "demo",
  iat: 1,
  exp: 2,
  protocolVersion: "2025-11-25",
  upstream: { kind: "http", era: "legacy", sessionId: "upstream-secret-id", protocolVersion: "2025-11-25" },
};

describe("SessionSealer", () => {
  const key = { id: "k1", key: randomBytes(32) };

  it("seals into visible ASCII with the key id in clear and opens to the same session", () => {
    const s = new SessionSealer([key]);
    const token = s.sealSession(SESSION);
    assert.match(token, /^k1\.[A-Za-z0-9_-]+$/);
    assert.doesNotMatch(token, /upstream-secret-id|alice/);
    assert.deepEqual(s.openSession(token), SESSION);
    assert.notEqual(s.sealSession(SESSION), token, "a fresh nonce every time");
  });

  it("a token of one purpose never opens as another (a server-request seal is not a session)", () => {
    const s = new SessionSealer([key]);
    const other = s.seal("server-request/1", SESSION);
    assert.equal(s.openSession(other), null);
    assert.equal(s.open("server-request/1", s.sealSession(SESSION)), null);
  });

  it("refuses every truncation and a well-sealed value of the wrong shape", () => {
    const s = new SessionSealer([key]);
    const token = s.sealSession(SESSION);
    for (let n = 0; n < token.length; n += 5) assert.equal(s.openSession(token.slice(0, n)), null, `first ${n} characters`);
    assert.equal(s.openSession(s.seal("session/1", { ...SESSION, upstream: { kind: "ftp" } })), null);
    assert.equal(s.openSession(s.seal("session/1", { ...SESSION, exp: "never" })), null);
    assert.equal(s.openSession(s.seal("session/1", "just a string")), null);
    assert.equal(s.openSession("k1." + "A".repeat(20_000)), null, "oversized");
  });

  it("checks its keys: 32 bytes, well-formed unique ids, at least one", () => {
    assert.throws(() => new SessionSealer([]), /at least one/);
    assert.throws(() => new SessionSealer([{ id: "k", key: randomBytes(16) }]), /32 bytes/);
    assert.throws(() => new SessionSealer([{ id: "k.1", key: randomBytes(32) }]), /letters/);
    assert.throws(() => new SessionSealer([key, { ...key }]), /twice/);
  });
});
