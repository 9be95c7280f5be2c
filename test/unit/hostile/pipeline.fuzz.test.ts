/**
 * The whole POST path under hostile input, in-process (McpEndpoint.post with one fake per
 * dependency): the property test of docs/security.md. For every generated request: the endpoint
 * never throws, answers exactly once, logs no unexpected failure, writes exactly one audit event,
 * and the upstream receives only a message equal to a request the policy allowed (oracle.ts).
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { parseConfig } from "../../../gateway/config/index.js";
import { McpEndpoint } from "../../../gateway/proxy/index.js";
import { FakeAudit } from "../../fakes/audit.js";
import { FakePolicyEngine } from "../../fakes/policy.js";
import { FakeUpstream } from "../../fakes/upstream.js";
import { FakeVerifier, identity } from "../../fakes/verifier.js";
import { ManualClock, sequentialIds } from "../audit/helpers.js";
import { body, envelope, runs } from "./arbitraries.js";
import { checkOutcome, hostilePolicy, MAX_BODY, upstreamScript } from "./oracle.js";
import { chunked, fakeExchange } from "./in-process.js";

/** Logged when something failed that no input should be able to cause. */
const UNEXPECTED = new Set(["request failed", "unexpected edge failure", "decision point failed", "unhandled endpoint failure"]);

describe("hostile input: the POST path, in-process (fast-check)", function () {
  this.timeout(120_000);
  const clock = new ManualClock();
  const audit = new FakeAudit();
  const engine = new FakePolicyEngine(hostilePolicy);
  const upstreams: FakeUpstream[] = [];
  const logs: Array<{ level: string; msg: string }> = [];
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => void unhandled.push(reason);
  const config = parseConfig(
    {
      auth: { issuer: "https://idp.test/", audience: "https://gw.test/mcp", jwksUri: "https://idp.test/jwks.json" },
      policy: { bundle: "b.tar.gz", verificationKey: "k.pem" },
      upstreams: { files: { url: "http://127.0.0.1:9/mcp" } },
      audit: { instanceId: "fuzz" },
      sessions: { maxSessions: 1_000_000 },
      edge: { maxBodyBytes: MAX_BODY, allowedOrigins: ["https://app.test"], trustedProxies: ["127.0.0.1/32"] },
    },
    "fuzz.yaml",
    {},
  );
  const endpoint = new McpEndpoint({
    config,
    verifier: new FakeVerifier({ "alice-token": identity("alice", { roles: ["analyst"], scopes: ["mcp:tools", "mcp:resources", "mcp:prompts"] }), "bob-token": identity("bob") }),
    policy: () => engine,
    audit,
    auditContext: { instanceId: "fuzz", version: "0", clock, ids: sequentialIds("d"), resultCapBytes: 64 },
    clock,
    log: (level, msg) => void logs.push({ level, msg }),
    connectUpstream: () => {
      const u = new FakeUpstream(upstreamScript);
      upstreams.push(u);
      return u;
    },
    resourceMetadataUrl: (s) => `https://gw.test/.well-known/oauth-protected-resource/mcp/${s}`,
  });
  const sessions = { own: "", other: "" };

  const post = async (headers: Record<string, string>, text: string, cuts: number[] = []) => {
    const { req, res, fake } = fakeExchange("POST", headers, chunked(Buffer.from(text, "utf8"), cuts));
    await endpoint.post("files", req, res);
    return fake;
  };
  const init = async (token: string) => {
    const r = await post({ "content-type": "application/json", authorization: `Bearer ${token}` }, JSON.stringify({ jsonrpc: "2.0", id: 0, method: "initialize", params: { protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: "f", version: "1" } } }));
    assert.equal(r.statusCode, 200, r.body);
    return String(r.headers["mcp-session-id"]);
  };

  before(async () => {
    process.on("unhandledRejection", onUnhandled);
    sessions.own = await init("alice-token");
    sessions.other = await init("bob-token");
    audit.clear();
  });
  after(async () => {
    process.off("unhandledRejection", onUnhandled);
    await endpoint.close();
  });

  const received = () => upstreams.flatMap((u) => u.received.filter((r) => !r.opts?.internal).map((r) => r.message));

  it(`every request: no throw, one answer, no unexpected failure, no allow without a decision, one audit event per decision (${runs(15_000)} runs)`, async () => {
    let decisions = 0;
    await fc.assert(
      fc.asyncProperty(envelope, body, async (env, text) => {
        audit.clear();
        engine.inputs.length = 0;
        for (const u of upstreams) u.received.length = 0;
        logs.length = 0;
        const headers: Record<string, string> = {};
        if (env.contentType !== "") headers["content-type"] = env.contentType;
        if (env.token !== "none") headers.authorization = env.token === "bad" ? "Bearer forged" : `Bearer ${env.token}-token`;
        const session = env.session === "match" ? (env.token === "bob" ? "other" : "own") : env.session;
        if (session !== "none") headers["mcp-session-id"] = session === "bogus" ? "not-a-session" : sessions[session];
        if (env.origin !== undefined) headers.origin = env.origin;
        if (env.protocolVersion !== undefined) headers["mcp-protocol-version"] = env.protocolVersion;
        if (env.xff !== undefined) headers["x-forwarded-for"] = env.xff;

        const res = await post(headers, text, env.cuts);

        // One answer, written once, with a status the edge documents.
        assert.equal(res.ends, 1, `answered ${res.ends} times`);
        assert.deepEqual(res.misuse, []);
        assert.ok([200, 202, 400, 401, 403, 404, 413, 415, 429].includes(res.statusCode), `status ${res.statusCode}: ${res.body}`);
        assert.deepEqual(logs.filter((l) => UNEXPECTED.has(l.msg)), [], "an input caused an unexpected failure");
        assert.ok(!res.body.includes('"Internal error"'), res.body);

        decisions += checkOutcome({ text, status: res.statusCode, body: res.body, events: audit.events, received: received(), inputs: engine.inputs });
      }),
      { numRuns: runs(15_000), seed: process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) : undefined },
    );
    assert.deepEqual(unhandled, [], "unhandled rejections");
    assert.ok(decisions > runs(15_000) / 8, `too few inputs reached a decision (${decisions}): the generators are off`);
  });
});
