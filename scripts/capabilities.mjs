#!/usr/bin/env node
// Writes bundles/capabilities.json: `opa capabilities --current` cut down to the builtins the gateway
// can evaluate under wasm (gateway/policy/capabilities.ts: native + SDK + host builtins), so a policy
// calling anything else fails `opa check`/`opa build --capabilities` instead of a request.
// Needs the compiled dist/ (npx tsc -p tsconfig.json). Usage: node scripts/capabilities.mjs [OPA]
import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { admittedBuiltins } from "../dist/gateway/policy/capabilities.js";

const opa = process.argv[2] ?? ".tools/bin/opa";
const current = JSON.parse(execFileSync(opa, ["capabilities", "--current"], { encoding: "utf8" }));
const admitted = new Set(admittedBuiltins());
const builtins = current.builtins.filter((b) => admitted.has(b.name));
const missing = [...admitted].filter((n) => !builtins.some((b) => b.name === n));
if (missing.length > 0) throw new Error(`opa does not know: ${missing.join(", ")}`);
const out = { ...current, builtins };
writeFileSync("bundles/capabilities.json", JSON.stringify(out, null, 2) + "\n");
console.log(`bundles/capabilities.json: ${builtins.length} builtins of ${current.builtins.length}`);
