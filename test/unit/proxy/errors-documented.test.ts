import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { EDGE_ERRORS } from "../../../gateway/proxy/index.js";

const doc = readFileSync(new URL("../../../../docs/errors.md", import.meta.url), "utf8");
const AUTH_CODES = [
  "token_missing", "token_malformed", "token_expired", "token_not_yet_valid", "token_bad_signature", "token_bad_issuer",
  "token_bad_audience", "token_bad_algorithm", "token_unknown_key", "token_bad_claims", "jwks_unavailable",
];
const DECISION_CODES = ["policy_undefined", "policy_malformed", "policy_eval_error"];

describe("error catalogue", () => {
  for (const code of [...Object.keys(EDGE_ERRORS), ...AUTH_CODES, ...DECISION_CODES]) {
    it(`documents ${code} in docs/errors.md`, () => {
      assert.ok(doc.includes(`| \`${code}\` |`), `${code} is missing from docs/errors.md`);
    });
  }
});
