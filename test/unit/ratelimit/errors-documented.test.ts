import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { LIMIT_ERRORS } from "../../../gateway/proxy/index.js";

const doc = readFileSync(new URL("../../../../docs/errors.md", import.meta.url), "utf8");

describe("limits error catalogue", () => {
  for (const code of [...Object.keys(LIMIT_ERRORS), "request_timeout"]) {
    it(`documents ${code} in docs/errors.md`, () => {
      assert.ok(doc.includes(`| \`${code}\` |`), `${code} is missing from docs/errors.md`);
    });
  }
});
