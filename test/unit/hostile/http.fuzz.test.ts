/**
 * The property test of docs/security.md over real HTTP on 127.0.0.1: fewer runs than the in-process suite, but through
 * node's HTTP parser, the MCP path router and real sockets (chunked bodies included).
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { Harness, TOKENS } from "../proxy/pipeline-harness.js";
import { body, envelope, runs } from "./arbitraries.js";
import { checkOutcome, hostilePolicy, upstreamScript } from "./oracle.js";

const UNEXPECTED = new Set(["request failed", "unexpected edge failure", "decision point failed", "unhandled endpoint failure"]);

describe("hostile input: the POST path over HTTP (fast-check)", function () {
  this.timeout(120_000);
  let h: Harness;
  const sessions = { own: "", other: "" };
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => void unhandled.push(reason);

  before(async () => {
    process.on("unhandledRejection", onUnhandled);
    h = await Harness.start({ script: upstreamScript, decide: hostilePolicy, sessions: { maxSessions: 100_000 } });
    sessions.own = await h.initialize(TOKENS.alice);
    sessions.other = await h.initialize(TOKENS.bob);
    h.audit.clear();
  });
  after(async () => {
    process.off("unhandledRejection", onUnhandled);
    await h?.close();
  });

  const received = () => h.upstreams.flatMap(({ upstream }) => upstream.received.filter((r) => !r.opts?.internal).map((r) => r.message));

  it(`every request over HTTP: one answer, a documented status, one audit event per decision (${runs(600)} runs)`, async () => {
    await fc.assert(
      fc.asyncProperty(envelope, body, async (env, text) => {
        h.audit.clear();
        h.engine.inputs.length = 0;
        h.logs.length = 0;
        for (const { upstream } of h.upstreams) upstream.received.length = 0;
        const headers: Record<string, string> = {};
        if (env.contentType !== "") headers["content-type"] = env.contentType;
        if (env.origin !== undefined) headers.origin = env.origin;
        if (env.protocolVersion !== undefined) headers["mcp-protocol-version"] = env.protocolVersion;
        if (env.xff !== undefined) headers["x-forwarded-for"] = env.xff;
        const session = env.session === "match" ? (env.token === "bob" ? "other" : "own") : env.session;
        const token = env.token === "none" ? null : env.token === "bad" ? "forged" : TOKENS[env.token];
        // Half the bodies go out chunked, without Content-Length.
        const bytes = new TextEncoder().encode(text);
        const streamed = env.cuts.length > 0 ? new ReadableStream<Uint8Array>({ start(c) { c.enqueue(bytes); c.close(); } }) : text;
        const reply = await h.send(streamed, {
          token,
          headers: { ...headers, ...(env.contentType === "" ? { "content-type": "" } : {}) },
          ...(session === "none" ? {} : { session: session === "bogus" ? "not-a-session" : sessions[session] }),
        });
        assert.ok([200, 202, 400, 401, 403, 404, 413, 415, 429].includes(reply.status), `status ${reply.status}: ${reply.text}`);
        assert.deepEqual(h.logs.filter((l) => UNEXPECTED.has(l.msg)), []);
        checkOutcome({ text, status: reply.status, body: reply.text, events: h.audit.events, received: received(), inputs: h.engine.inputs });
      }),
      { numRuns: runs(600) },
    );
    assert.deepEqual(unhandled, []);
  });
});
