import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { loadBundle, WasmPolicyEngine, type Decision, type PolicyInput, type PolicyRequest } from "../../gateway/policy/index.js";
import { buildSignedBundle, defaultPolicyDir, generateKeyPair, makeTempDir, opaBin } from "../support/bundles.js";
import { aliceInput, ALL_SCOPES } from "../support/policy-input.js";

const execFileAsync = promisify(execFile);

/** The same input with this suite's source address (the starter library's network rules read it). */
const input = (roles: string[], method: string, fields: Partial<PolicyRequest> = {}, scopes = ALL_SCOPES): PolicyInput =>
  aliceInput(roles, method, { source_ip: "10.0.0.5", ...fields }, scopes);

const query = (sql: string): PolicyInput => input(["ops"], "tools/call", { tool: "query", arguments: { sql } });

/**
 * The starter policy compiled to wasm must decide every method and every SQL shape exactly as
 * `opa eval` (topdown, where the Rego tests run) does: the readonly_sql tokenizer leans on RE2
 * semantics (leftmost-first alternation, \S, non-ASCII classes) that both must share.
 */
const cases: Array<{ note: string; input: PolicyInput; allow: boolean }> = [
  ...["initialize", "server/discover", "ping", "logging/setLevel", "tasks/list", "notifications/initialized", "notifications/cancelled", "notifications/progress", "notifications/roots/list_changed"].map(
    (method) => ({ note: `protocol method ${method} with no roles`, input: input([], method, {}, []), allow: true }),
  ),
  { note: "admin/exec for an admin", input: input(["admin"], "admin/exec"), allow: false },
  { note: "Tools/Call is not tools/call", input: input(["admin"], "Tools/Call", { tool: "echo", arguments: { text: "hi" } }), allow: false },
  { note: "resources/subscribe granted", input: input(["analyst"], "resources/subscribe", { resource: "demo://readme" }), allow: true },
  { note: "resources/unsubscribe ungranted", input: input(["guest"], "resources/unsubscribe", { resource: "demo://readme" }), allow: false },
  { note: "tasks/result of a granted tool", input: input(["analyst"], "tasks/result", { tool: "echo", arguments: { text: "hi" } }), allow: true },
  { note: "tasks/cancel of an ungranted tool", input: input(["analyst"], "tasks/cancel", { tool: "delete_record", arguments: { id: "r1" } }), allow: false },
  { note: "completion of a granted prompt", input: input(["analyst"], "completion/complete", { prompt: "summarize" }), allow: true },
  { note: "completion of an ungranted resource template", input: input(["analyst"], "completion/complete", { resource: "demo://files/{path}" }), allow: false },
  { note: "completion naming both", input: input(["admin"], "completion/complete", { prompt: "summarize", resource: "demo://readme" }), allow: false },
  { note: "SELECT pg_terminate_backend(1)", input: query("SELECT pg_terminate_backend(1)"), allow: false },
  { note: "SELECT lo_export(…)", input: query("SELECT lo_export(16409, '/tmp/x')"), allow: false },
  { note: "SELECT setval(…)", input: query("SELECT setval('s', 1)"), allow: false },
  { note: "SELECT pg_sleep(100)", input: query("SELECT pg_sleep(100)"), allow: false },
  { note: "quoted function name", input: query('select "pg_sleep"(1)'), allow: false },
  { note: "quotes inside a quoted name", input: query(`select "'", pg_sleep(1), "'" from t`), allow: false },
  { note: "non-breaking space before (", input: query("select pg_sleep\u00a0(1)"), allow: false },
  { note: "vertical tab before (", input: query("select pg_sleep\u000b(1)"), allow: false },
  { note: "Kelvin sign", input: query("select \u212aount(*) from t"), allow: false },
  { note: "writing CTE", input: query("with x as (delete from t returning *) select * from x"), allow: false },
  { note: "for share", input: query("select * from t for share"), allow: false },
  { note: "unterminated literal", input: query("select 'abc"), allow: false },
  { note: "aggregate query", input: query("select count(*), avg(price) from orders group by date_trunc('day', created_at);"), allow: true },
  { note: "literal holding SQL", input: query("select * from t where note = 'pg_sleep(1)' and s = 'it''s'"), allow: true },
  { note: "explain with options", input: query("explain (analyze, format json) select count(*) from t"), allow: true },
  { note: "alias column list", input: query("select v.x from (values (1), (2)) as v(x)"), allow: true },
  { note: "show", input: query("show search_path"), allow: true },
];

describe("the starter policy in wasm: every method, every SQL shape, as opa eval decides", function () {
  this.timeout(60_000);
  let dir: string;
  let engine: WasmPolicyEngine;
  let topdown: Decision[];

  before(async () => {
    dir = await makeTempDir("pc-methods-");
    const keys = generateKeyPair("ec-p256");
    const file = await buildSignedBundle({ policyDir: defaultPolicyDir(), outFile: join(dir, "b.tar.gz"), privateKeyPem: keys.privateKeyPem, algorithm: "ES256", revision: "methods" });
    engine = await WasmPolicyEngine.create(await loadBundle(file, { verificationKeyPem: keys.publicKeyPem }));
    const inputFile = join(dir, "cases.json");
    await writeFile(inputFile, JSON.stringify({ cases: cases.map((c) => c.input) }));
    const { stdout } = await execFileAsync(opaBin(), ["eval", "-d", defaultPolicyDir(), "-i", inputFile, "-f", "raw", "[d | some c in input.cases; d := data.mcp.authz.decision with input as c]"], { maxBuffer: 16 << 20 });
    topdown = JSON.parse(stdout) as Decision[];
    assert.equal(topdown.length, cases.length);
  });
  after(() => rm(dir, { recursive: true, force: true }));

  cases.forEach((c, i) => {
    it(`${c.note} → ${c.allow ? "allow" : "deny"}`, () => {
      const outcome = engine.decide(c.input);
      assert.equal(outcome.error, undefined, outcome.error?.message);
      assert.equal(outcome.decision.allow, c.allow, JSON.stringify(outcome.decision));
      assert.deepEqual(outcome.raw, topdown[i], "wasm and topdown agree");
    });
  });
});
