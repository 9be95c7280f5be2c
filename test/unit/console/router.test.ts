import assert from "node:assert/strict";
import { AuthError } from "../../../gateway/auth/index.js";
import { ConsoleFeed, type ConsoleEntry, type ConsoleIntegrity, type ConsoleRouterOptions } from "../../../gateway/console/index.js";
import type { FakeIdp } from "../../fakes/jwks.js";
import { operatorIdentity, startConsoleApp, type ConsoleApp } from "../../support/console-app.js";
import { auditEvent, type DecisionSpec } from "../../support/console-events.js";

const NOW = Date.now();
const call = (over: Partial<DecisionSpec> = {}): DecisionSpec => ({ agent: "alice", server: "files", tool: "read_file", outcome: "allowed", at: NOW, ...over });

/** Reads SSE `decision` events from a streaming response until `count` arrived (or fails after 5 s). */
async function readDecisions(res: Response, count: number): Promise<{ ids: string[]; entries: ConsoleEntry[] }> {
  const reader = (res.body as ReadableStream<Uint8Array>).getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  const ids: string[] = [];
  const entries: ConsoleEntry[] = [];
  const deadline = setTimeout(() => void reader.cancel(), 5000);
  try {
    while (entries.length < count) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let end: number;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const fields = Object.fromEntries(block.split("\n").filter((l) => !l.startsWith(":") && l.includes(":")).map((l) => [l.slice(0, l.indexOf(":")), l.slice(l.indexOf(":") + 2)]));
        if (fields["event"] === "decision") {
          ids.push(fields["id"] as string);
          entries.push(JSON.parse(fields["data"] as string) as ConsoleEntry);
        }
      }
    }
  } finally {
    clearTimeout(deadline);
    await reader.cancel().catch(() => undefined);
  }
  return { ids, entries };
}

async function until(check: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (check()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.fail(`timed out waiting for ${what}`);
}

describe("console router", () => {
  let idp: FakeIdp;
  let identity: Awaited<ReturnType<typeof operatorIdentity>>;
  let feed: ConsoleFeed;
  let app: ConsoleApp;
  let logged: Array<{ level: string; msg: string }>;
  let authorizeCalls: Array<string | undefined>;
  let approvedBy: Array<[string, string]>;

  async function start(over: Partial<ConsoleRouterOptions> = {}): Promise<void> {
    await app?.close();
    app = await startConsoleApp({
      feed,
      authorize: async (header) => {
        authorizeCalls.push(header);
        return identity.authorize(header);
      },
      bundle: () => ({ revision: "rev-7f3a", loadedAt: "2026-11-24T09:58:00.000Z" }),
      log: (level, msg) => void logged.push({ level, msg }),
      ...over,
    });
  }

  const get = (path: string, token: string | null = identity.operatorToken, headers: Record<string, string> = {}) =>
    fetch(`${app.url}${path}`, { headers: { ...(token === null ? {} : { Authorization: `Bearer ${token}` }), ...headers } });

  before(async () => {
    identity = await operatorIdentity();
    idp = identity.idp;
  });
  after(async () => {
    await app?.close();
    await idp.close();
  });
  beforeEach(async () => {
    feed = new ConsoleFeed();
    logged = [];
    authorizeCalls = [];
    approvedBy = [];
    await start();
  });

  describe("the page", () => {
    it("is served to anyone (it holds no data) with a strict CSP, nosniff, no-store and no framing", async () => {
      const res = await fetch(`${app.url}/console`);
      assert.equal(res.status, 200);
      assert.match(res.headers.get("content-type") ?? "", /^text\/html/);
      const csp = res.headers.get("content-security-policy") ?? "";
      for (const directive of ["default-src 'self'", "script-src 'self'", "frame-ancestors 'none'", "object-src 'none'"]) assert.ok(csp.includes(directive), `CSP lacks ${directive}: ${csp}`);
      assert.ok(!/unsafe-inline|unsafe-eval/.test(csp), csp);
      assert.equal(res.headers.get("x-content-type-options"), "nosniff");
      assert.equal(res.headers.get("cache-control"), "no-store");
      assert.equal(res.headers.get("x-frame-options"), "DENY");
      const html = await res.text();
      assert.ok(!/<script(?![^>]*\bsrc=)[^>]*>/.test(html), "the page has an inline script");
      assert.ok(!/\son[a-z]+=/i.test(html), "the page has an inline event handler");
      assert.ok(!/\sstyle=/i.test(html), "the page has an inline style");
      assert.deepEqual(authorizeCalls, [], "the page itself needs no token");
    });

    it("serves its script, style sheet and icon with their types", async () => {
      for (const [path, type] of [["/console/console.js", /^text\/javascript/], ["/console/console.css", /^text\/css/], ["/console/favicon.svg", /^image\/svg\+xml/]] as const) {
        const res = await fetch(`${app.url}${path}`);
        assert.equal(res.status, 200, path);
        assert.match(res.headers.get("content-type") ?? "", type, path);
        assert.equal(res.headers.get("x-content-type-options"), "nosniff", path);
        const body = await res.text();
        assert.ok(body.length > 100, path);
        if (path.endsWith(".js")) assert.ok(!body.includes("sourceMappingURL"), "the script names a source map that is not served");
      }
    });

    it("answers an unknown console path with 404, and leaves other paths to the app", async () => {
      assert.equal((await get("/console/api/nothing-here")).status, 404);
      const other = await fetch(`${app.url}/mcp/files`);
      assert.equal(other.status, 404);
      assert.equal(other.headers.get("content-security-policy"), null, "the router set headers outside /console");
    });
  });

  describe("authorization", () => {
    for (const path of ["/console/api/events", "/console/api/stream", "/console/api/summary", "/console/api/drifted", "/console/api/approvals"]) {
      it(`refuses ${path} without a token with 401 and a Bearer challenge, never asking authorize`, async () => {
        const res = await get(path, null);
        assert.equal(res.status, 401);
        assert.match(res.headers.get("www-authenticate") ?? "", /^Bearer /);
        assert.equal(((await res.json()) as { error: string }).error, "invalid_token");
        assert.deepEqual(authorizeCalls, []);
      });
    }

    it("refuses an invalid token with 401 invalid_token", async () => {
      const res = await get("/console/api/events", idp.mintDefective("tampered"));
      assert.equal(res.status, 401);
      assert.match(res.headers.get("www-authenticate") ?? "", /^Bearer .*error="invalid_token"/);
    });

    it("refuses an expired token with 401 saying so", async () => {
      const res = await get("/console/api/summary", idp.mintDefective("expired"));
      assert.equal(res.status, 401);
      assert.match(((await res.json()) as { error_description: string }).error_description, /expired/);
    });

    it("refuses a valid token without the operator role with 403", async () => {
      const res = await get("/console/api/events", identity.agentToken);
      assert.equal(res.status, 403);
      assert.equal(((await res.json()) as { error: string }).error, "insufficient_role");
    });

    it("answers 503 when the identity provider's keys are unavailable (the token may be fine)", async () => {
      await start({ authorize: async () => Promise.reject(new AuthError("jwks_unavailable", "JWKS fetch failed")) });
      const res = await get("/console/api/events");
      assert.equal(res.status, 503);
      assert.equal(res.headers.get("retry-after"), "30");
    });

    it("answers 500 and logs when authorize fails in another way, admitting no one", async () => {
      await start({ authorize: async () => Promise.reject(new Error("role lookup exploded")) });
      const res = await get("/console/api/events");
      assert.equal(res.status, 500);
      assert.ok(!(await res.text()).includes("exploded"), "the internal error leaked to the client");
      assert.ok(logged.some((l) => l.level === "error" && l.msg === "console: authorize failed"));
    });
  });

  describe("GET /console/api/events", () => {
    beforeEach(() => {
      feed.push(auditEvent(call({ agent: "alice", outcome: "allowed" })));
      feed.push(auditEvent(call({ agent: "bob", tool: "delete_file", outcome: "denied", reasons: ["deletes are never allowed"] })));
      feed.push(auditEvent(call({ agent: "alice", server: "crm", tool: "export", outcome: "rate_limited" })));
    });

    it("returns the retained entries oldest first", async () => {
      const body = (await (await get("/console/api/events")).json()) as { events: ConsoleEntry[]; matched: number };
      assert.deepEqual(body.events.map((e) => e.agent), ["alice", "bob", "alice"]);
      assert.equal(body.matched, 3);
      assert.deepEqual(body.events[1]?.reasons, ["deletes are never allowed"]);
    });

    const cases: Array<{ note: string; query: string; agents: Array<string | null>; tools: Array<string | null> }> = [
      { note: "agent", query: "agent=alice", agents: ["alice", "alice"], tools: ["read_file", "export"] },
      { note: "server", query: "server=crm", agents: ["alice"], tools: ["export"] },
      { note: "tool", query: "tool=delete_file", agents: ["bob"], tools: ["delete_file"] },
      { note: "outcome", query: "outcome=denied", agents: ["bob"], tools: ["delete_file"] },
      { note: "since in the future", query: `since=${new Date(NOW + 60_000).toISOString()}`, agents: [], tools: [] },
      { note: "since in the past (epoch ms)", query: `since=${NOW - 60_000}`, agents: ["alice", "bob", "alice"], tools: ["read_file", "delete_file", "export"] },
      { note: "empty values (no filter)", query: "agent=&tool=&outcome=", agents: ["alice", "bob", "alice"], tools: ["read_file", "delete_file", "export"] },
      { note: "limit (the newest)", query: "limit=1", agents: ["alice"], tools: ["export"] },
    ];
    for (const c of cases) {
      it(`filters by ${c.note}`, async () => {
        const res = await get(`/console/api/events?${c.query}`);
        assert.equal(res.status, 200);
        const { events } = (await res.json()) as { events: ConsoleEntry[] };
        assert.deepEqual(events.map((e) => e.agent), c.agents);
        assert.deepEqual(events.map((e) => e.tool), c.tools);
      });
    }

    const refused: Array<{ note: string; query: string; says: RegExp }> = [
      { note: "an unknown parameter", query: "agnet=alice", says: /unknown query parameter "agnet"/ },
      { note: "an unknown outcome", query: "outcome=permitted", says: /outcome: expected one of allowed, denied/ },
      { note: "a repeated parameter", query: "agent=a&agent=b", says: /agent: give it once/ },
      { note: "a since that is no timestamp", query: "since=yesterday", says: /since: expected an RFC 3339 timestamp/ },
      { note: "a limit out of range", query: "limit=0", says: /limit: expected an integer from 1 to/ },
    ];
    for (const c of refused) {
      it(`refuses ${c.note} with 400 naming the parameter`, async () => {
        const res = await get(`/console/api/events?${c.query}`);
        assert.equal(res.status, 400);
        const body = (await res.json()) as { error: string; error_description: string };
        assert.equal(body.error, "invalid_request");
        assert.match(body.error_description, c.says);
      });
    }
  });

  describe("GET /console/api/summary", () => {
    it("summarizes the last hour with the active bundle, and empty integrity sections without integrity", async () => {
      feed.push(auditEvent(call({ agent: "alice" })));
      feed.push(auditEvent(call({ agent: "bob", outcome: "denied", reasons: ["not on weekends"] })));
      const body = (await (await get("/console/api/summary")).json()) as Record<string, unknown> & {
        window: { events: number }; denials: Array<{ reasons: string[] }>; per_agent: unknown[]; per_tool: unknown[]; bundle: unknown; integrity: unknown;
      };
      assert.equal(body.window.events, 2);
      assert.deepEqual(body.denials.map((d) => d.reasons), [["not on weekends"]]);
      assert.equal(body.per_agent.length, 2);
      assert.deepEqual(body.per_tool, [{ server: "files", tool: "read_file", total: 2, refused: 1 }]);
      assert.deepEqual(body.bundle, { revision: "rev-7f3a", loadedAt: "2026-11-24T09:58:00.000Z" });
      assert.deepEqual(body.integrity, { available: false, drifted: [], approvals: [] });
      assert.deepEqual(await (await get("/console/api/drifted")).json(), { available: false, tools: [] });
      assert.deepEqual(await (await get("/console/api/approvals")).json(), { available: false, approvals: [] });
    });
  });

  describe("integrity extension point", () => {
    const drifted = [{ server: "files", tool: "read_file", pinned_digest: "sha256:aa", current_digest: "sha256:bb", detected_at: "2026-11-24T10:00:00Z" }];
    const approvals = [{ id: "apr-1", agent: "alice", server: "files", tool: "delete_file", reason: "deletes need a human", requested_at: "2026-11-24T10:00:00Z", expires_at: "2026-11-24T10:15:00Z" }];
    const integrity: ConsoleIntegrity = {
      drifted: async () => drifted,
      approvals: async () => approvals,
      approve: async (id, approver) => {
        approvedBy.push([id, approver]);
        return id === "apr-1";
      },
    };

    it("shows drifted tools and pending approvals when integrity is given", async () => {
      await start({ integrity });
      const body = (await (await get("/console/api/summary")).json()) as { integrity: unknown };
      assert.deepEqual(body.integrity, { available: true, drifted, approvals });
    });

    it("approves as the operator the token names, and answers 404 for an unknown id", async () => {
      await start({ integrity });
      const ok = await fetch(`${app.url}/console/api/approvals/apr-1/approve`, { method: "POST", headers: { Authorization: `Bearer ${identity.operatorToken}` } });
      assert.equal(ok.status, 200);
      assert.deepEqual(await ok.json(), { id: "apr-1", approved: true, approver: "ops-carol" });
      const unknown = await fetch(`${app.url}/console/api/approvals/apr-404/approve`, { method: "POST", headers: { Authorization: `Bearer ${identity.operatorToken}` } });
      assert.equal(unknown.status, 404);
      assert.deepEqual(approvedBy, [["apr-1", "ops-carol"], ["apr-404", "ops-carol"]]);
    });

    it("refuses to approve without the operator role", async () => {
      await start({ integrity });
      const res = await fetch(`${app.url}/console/api/approvals/apr-1/approve`, { method: "POST", headers: { Authorization: `Bearer ${identity.agentToken}` } });
      assert.equal(res.status, 403);
      assert.deepEqual(approvedBy, []);
    });

    it("answers approve with 404 when the gateway has no integrity part", async () => {
      const res = await fetch(`${app.url}/console/api/approvals/apr-1/approve`, { method: "POST", headers: { Authorization: `Bearer ${identity.operatorToken}` } });
      assert.equal(res.status, 404);
    });
  });

  describe("GET /console/api/stream", () => {
    it("streams the entries pushed after it opened that match its filter, with seq as the SSE id", async () => {
      feed.push(auditEvent(call({ agent: "before" })));
      const res = await get("/console/api/stream?outcome=denied");
      assert.equal(res.status, 200);
      assert.match(res.headers.get("content-type") ?? "", /^text\/event-stream/);
      assert.equal(res.headers.get("cache-control"), "no-store");
      await until(() => feed.subscribers === 1, "the stream to subscribe");
      feed.push(auditEvent(call({ agent: "alice", outcome: "allowed" })));
      feed.push(auditEvent(call({ agent: "bob", outcome: "denied", reasons: ["no"] })));
      feed.push(auditEvent(call({ agent: "eve", tool: "<img src=x onerror=alert(1)>", outcome: "denied" })));
      const { ids, entries } = await readDecisions(res, 2);
      assert.deepEqual(entries.map((e) => e.agent), ["bob", "eve"]);
      assert.deepEqual(ids, ["3", "4"]);
      assert.equal(entries[1]?.tool, "<img src=x onerror=alert(1)>", "the stream carries the text as it is; the page escapes it");
    });

    it("replays what came after Last-Event-ID before going live", async () => {
      for (const agent of ["a1", "a2", "a3"]) feed.push(auditEvent(call({ agent })));
      const res = await get("/console/api/stream", identity.operatorToken, { "Last-Event-ID": "1" });
      const { entries } = await readDecisions(res, 2);
      assert.deepEqual(entries.map((e) => e.agent), ["a2", "a3"]);
    });

    it("unsubscribes when the client goes away", async () => {
      const res = await get("/console/api/stream");
      await until(() => feed.subscribers === 1, "the stream to subscribe");
      await (res.body as ReadableStream).cancel();
      await until(() => feed.subscribers === 0, "the stream to unsubscribe");
    });

    it("ends an open stream once its token is no longer admitted (expired, role removed)", async () => {
      let admitted = true;
      await start({ heartbeatMs: 50, authorize: async (header) => (admitted ? identity.authorize(header) : null) });
      const res = await get("/console/api/stream");
      assert.equal(res.status, 200);
      await until(() => feed.subscribers === 1, "the stream to subscribe");
      await new Promise((r) => setTimeout(r, 120));
      assert.equal(feed.subscribers, 1, "an admitted stream stays open across heartbeats");
      admitted = false;
      await until(() => feed.subscribers === 0, "the stream to end");
      const rest = await res.text(); // the server ended the body: this resolves
      assert.match(rest, /keep-alive/);
    });

    it("refuses streams beyond maxStreams with 503", async () => {
      await start({ maxStreams: 1 });
      const first = await get("/console/api/stream");
      assert.equal(first.status, 200);
      const second = await get("/console/api/stream");
      assert.equal(second.status, 503);
      assert.equal(((await second.json()) as { error: string }).error, "too_many_streams");
      await (first.body as ReadableStream).cancel();
      await until(() => feed.subscribers === 0, "the first stream to close");
      const third = await get("/console/api/stream");
      assert.equal(third.status, 200, "a closed stream frees its place");
      await (third.body as ReadableStream).cancel();
    });
  });
});
