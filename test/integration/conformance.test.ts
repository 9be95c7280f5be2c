/**
 * The official MCP conformance suites' SERVER scenarios, run twice: straight against the reference
 * server (test/fixtures/reference-server.ts) and through the gateway in front of it. The gateway
 * must not break anything its upstream gets right: every scenario that passes straight must pass
 * through `/mcp/ref` as well.
 *
 *   2025: @modelcontextprotocol/conformance 0.1.16 (2025-11-25, sessionful)
 *   2026: @modelcontextprotocol/conformance 0.2.0-alpha.12, requirement set 2026-07-28 (stateless)
 *
 * The suite cannot send an Authorization header, so it talks to an auth hop
 * (test/support/auth-hop.ts) that adds a token from the fake IdP. The policy allows everything:
 * this test is about the protocol, not about decisions.
 *
 * Needs test/conformance/node_modules (`npm ci --prefix test/conformance`): without it the test
 * fails, it does not skip.
 */
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseConfig } from "../../gateway/config/index.js";
import { startGateway, type RunningGateway } from "../../gateway/compose/index.js";
import { runConformance, suiteInstall, type ConformanceSuite, type ScenarioOutcome } from "../conformance/run.js";
import { startFakeIdp, type FakeIdp } from "../fakes/jwks.js";
import { startReferenceServer, type ReferenceServer } from "../fixtures/reference-server.js";
import { startAuthHop, type AuthHop } from "../support/auth-hop.js";
import { buildSignedBundle, generateKeyPair } from "../support/bundles.js";
import { freePort } from "../support/stack.js";

/**
 * Fewest scenarios the reference server must pass straight, per suite, so that a harness that
 * runs nothing (or a fixture that broke) cannot pass vacuously. The pinned suites have 32 (2025,
 * `--suite all`) and 50 (2026, requirement set incl. not-scored) server scenarios; the fixture
 * passes all but the optional Tasks extension.
 */
const MIN_STRAIGHT_PASSES: Record<ConformanceSuite, number> = { "2025": 30, "2026": 36 };

/** Scenarios every straight run must pass: the suite really reached the fixture's tools and prompts. */
const MUST_PASS_STRAIGHT: Record<ConformanceSuite, string[]> = {
  "2025": ["server-initialize", "tools-call-simple-text", "tools-call-sampling", "prompts-get-with-args", "resources-templates-read"],
  "2026": ["server-stateless", "tools-call-simple-text", "input-required-result-multi-round", "caching", "prompts-get-with-args"],
};

/** How long gateway.close() may take once every conformance client has gone (drain is 1 s). */
const GATEWAY_CLOSE_BOUND_MS = 15_000;

const ALLOW_ALL_REGO = `# Allows every request: the conformance run tests the protocol path, not decisions.
package mcp.authz

decision := {"allow": true, "reasons": ["conformance: allow every request"]}
`;

function describeOutcomes(results: Map<string, ScenarioOutcome>): string {
  return [...results]
    .map(([name, r]) => `  ${r.passed ? "ok  " : "FAIL"} ${name}${r.notScored ? ` (not scored: ${r.notScored})` : ""}${r.passed ? "" : ` — ${r.detail}`}`)
    .join("\n");
}

describe("MCP conformance: the gateway passes every server scenario its upstream passes", function () {
  // Two suites, each twice; a hanging scenario costs the suite's own 30 s timeout.
  this.timeout(20 * 60_000);

  let work: string;
  let fixture: ReferenceServer | undefined;
  let idp: FakeIdp | undefined;
  let gateway: RunningGateway | undefined;
  let hop: AuthHop | undefined;

  before(async function () {
    // Fails (never skips) without the suite's own install, naming the command that fixes it.
    for (const suite of ["2025", "2026"] as const) suiteInstall(suite);
    work = mkdtempSync(join(tmpdir(), "pc-conformance-"));
    fixture = await startReferenceServer();

    const policyDir = join(work, "policy");
    mkdirSync(join(policyDir, "mcp", "authz"), { recursive: true });
    writeFileSync(join(policyDir, "mcp", "authz", "allow.rego"), ALLOW_ALL_REGO);
    const keys = generateKeyPair("rsa");
    const bundle = join(work, "allow-all.tar.gz");
    await buildSignedBundle({ policyDir, outFile: bundle, privateKeyPem: keys.privateKeyPem, algorithm: "RS256", revision: "conformance-allow-all" });
    writeFileSync(join(work, "pub.pem"), keys.publicKeyPem);

    const port = await freePort();
    // A client handed hop.url sends Origin http://127.0.0.1:<hop port> (dns-rebinding-protection's
    // valid probe does): that is the agent's origin here, so the gateway is told to serve it.
    const hopPort = await freePort();
    const audience = `http://127.0.0.1:${port}/mcp`;
    idp = await startFakeIdp({ audience });
    const config = parseConfig(
      {
        listen: { host: "127.0.0.1", port },
        auth: { issuer: idp.issuer, audience, jwksUri: idp.jwksUri, algorithms: ["RS256"] },
        policy: { bundle, verificationKey: join(work, "pub.pem") },
        upstreams: { ref: { url: fixture.url } },
        audit: { file: join(work, "audit.jsonl") },
        edge: { allowedOrigins: [`http://127.0.0.1:${hopPort}`] },
        shutdown: { drainTimeoutMs: 1000 },
      },
      join(work, "gateway.yaml"),
    );
    gateway = await startGateway(config, { log: process.env.PORTCULLIS_TEST_LOG ? undefined : () => undefined });
    const token = idp.mint({ sub: "conformance-suite", roles: ["admin"], scope: "mcp:tools mcp:resources mcp:prompts", client_id: "conformance-suite" });
    hop = await startAuthHop(gateway.url, token, { port: hopPort });
  });

  after(async function () {
    this.timeout(60_000);
    await hop?.close();
    // Bounded: a gateway that keeps upstream streams open after their client left would wait on
    // them forever. Closing the upstream releases it; the hang itself is still reported.
    let closeError: Error | undefined;
    if (gateway) {
      const closing = gateway.close();
      const finished = await Promise.race([closing.then(() => true), new Promise<false>((r) => setTimeout(() => r(false), GATEWAY_CLOSE_BOUND_MS))]);
      if (!finished) {
        closeError = new Error(
          `gateway.close() did not finish within ${GATEWAY_CLOSE_BOUND_MS / 1000} s after the conformance runs (their clients had all disconnected): ` +
            `it waits on upstream requests nobody is listening to any more (e.g. a 2026 subscriptions/listen stream whose client went away)`,
        );
        await fixture?.close();
        await closing;
      }
    }
    await idp?.close();
    await fixture?.close();
    if (work) rmSync(work, { recursive: true, force: true });
    if (closeError) throw closeError;
  });

  for (const suite of ["2025", "2026"] as const) {
    it(`suite ${suite}: every scenario that passes straight also passes through the gateway`, async () => {
      assert.ok(fixture && hop);
      let t0 = Date.now();
      const straight = await runConformance({ suite, url: fixture.url });
      const straightSeconds = (Date.now() - t0) / 1000;
      t0 = Date.now();
      const through = await runConformance({ suite, url: `${hop.url}/mcp/ref` });
      const throughSeconds = (Date.now() - t0) / 1000;

      const passedStraight = [...straight].filter(([, r]) => r.passed).map(([name]) => name);
      const passedThrough = [...through].filter(([, r]) => r.passed).length;
      console.log(
        `      conformance ${suite}: straight ${passedStraight.length}/${straight.size} scenarios ok in ${straightSeconds.toFixed(1)} s, ` +
          `through the gateway ${passedThrough}/${through.size} ok in ${throughSeconds.toFixed(1)} s`,
      );
      if (process.env.CONFORMANCE_VERBOSE) console.log(`straight:\n${describeOutcomes(straight)}\nthrough the gateway:\n${describeOutcomes(through)}`);

      assert.ok(
        passedStraight.length >= MIN_STRAIGHT_PASSES[suite],
        `the reference server passed only ${passedStraight.length} scenarios of suite ${suite} straight (expected at least ${MIN_STRAIGHT_PASSES[suite]}): the harness or the fixture is broken\n${describeOutcomes(straight)}`,
      );
      const missing = MUST_PASS_STRAIGHT[suite].filter((name) => straight.get(name)?.passed !== true);
      assert.deepEqual(missing, [], `the reference server must pass these scenarios straight:\n${describeOutcomes(straight)}`);

      const regressions = passedStraight.filter((name) => through.get(name)?.passed !== true);
      const report = regressions.map((name) => `  ${name}: ${through.get(name)?.detail ?? "did not run through the gateway"}`).join("\n");
      assert.deepEqual(
        regressions,
        [],
        `${regressions.length} scenario(s) of suite ${suite} pass straight against the reference server but fail through the gateway:\n${report}`,
      );
    });
  }
});
