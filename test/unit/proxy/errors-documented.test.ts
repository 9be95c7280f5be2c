import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { ERRORS, type ErrorCode } from "../../../gateway/proxy/index.js";

const doc = readFileSync(new URL("../../../../docs/errors.md", import.meta.url), "utf8");
const AUTH_CODES = [
  "token_missing", "token_malformed", "token_expired", "token_not_yet_valid", "token_bad_signature", "token_bad_issuer",
  "token_bad_audience", "token_bad_algorithm", "token_unknown_key", "token_bad_claims", "jwks_unavailable",
];
const DECISION_CODES = ["policy_undefined", "policy_malformed", "policy_eval_error"];

/** The catalogue table's rows: `| code | HTTP | JSON-RPC | outcome | when |`. */
function catalogueRows(): Map<string, string[]> {
  const rows = new Map<string, string[]>();
  for (const line of doc.split("\n")) {
    const m = /^\| `([a-z_]+)` \| ([^|]+) \| ([^|]+) \| ([^|]+) \|/.exec(line);
    if (m) rows.set(m[1]!, [m[2]!.trim(), m[3]!.trim(), m[4]!.trim()]);
  }
  return rows;
}

describe("error catalogue (gateway/proxy/errors.ts ↔ docs/errors.md)", () => {
  const rows = catalogueRows();
  for (const code of Object.keys(ERRORS) as ErrorCode[]) {
    const entry = ERRORS[code];
    it(`documents ${code} with its status, JSON-RPC code and outcome`, () => {
      const row = rows.get(code);
      assert.ok(row, `${code} has no row in docs/errors.md`);
      const [status, rpc, outcome] = row;
      const expectedStatus = entry.inBand ? "200 (in band)" : String(entry.status);
      assert.equal(status, expectedStatus, `${code}: HTTP column`);
      assert.equal(rpc, String(entry.rpc), `${code}: JSON-RPC column`);
      assert.equal(outcome, `\`${entry.outcome}\``, `${code}: outcome column`);
    });
  }
  it("has no documented row that the catalogue lacks", () => {
    const extra = [...rows.keys()].filter((c) => !(c in ERRORS));
    assert.deepEqual(extra, []);
  });
  for (const code of [...AUTH_CODES, ...DECISION_CODES, "request_timeout"]) {
    it(`documents ${code}`, () => {
      assert.ok(doc.includes(`\`${code}\``), `${code} is missing from docs/errors.md`);
    });
  }
});
