import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { INTEGRITY_ERROR_CODES } from "../../../gateway/integrity/index.js";

const doc = readFileSync(new URL("../../../../docs/errors.md", import.meta.url), "utf8");
const start = doc.indexOf("## Tool-integrity stores");
const section = start < 0 ? "" : doc.slice(start);

describe("integrity error codes (gateway/integrity/errors.ts ↔ docs/errors.md)", () => {
  const rows = new Set([...section.matchAll(/^\| `([a-z_]+)` \|/gm)].map((m) => m[1]));
  it("documents every code in its own table", () => {
    assert.ok(start >= 0, "docs/errors.md has a Tool-integrity stores section");
    assert.deepEqual(INTEGRITY_ERROR_CODES.filter((c) => !rows.has(c)), []);
  });
  it("documents no code the stores lack", () => {
    assert.deepEqual([...rows].filter((c) => !(INTEGRITY_ERROR_CODES as readonly string[]).includes(c!)), []);
  });
});
