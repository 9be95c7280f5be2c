import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { admittedBuiltins, HOST_BUILTIN_NAMES, SDK_BUILTINS, WASM_NATIVE_BUILTINS } from "../../../gateway/policy/index.js";

interface Capabilities {
  builtins: Array<{ name: string }>;
  features: string[];
}

const caps = JSON.parse(readFileSync(new URL("../../../../bundles/capabilities.json", import.meta.url), "utf8")) as Capabilities;

describe("bundles/capabilities.json", () => {
  it("admits exactly the wasm-native, SDK and host builtins (regenerate: node scripts/capabilities.mjs)", () => {
    assert.deepEqual(caps.builtins.map((b) => b.name).sort(), admittedBuiltins());
  });

  it("keeps OPA v1 syntax (rego_v1), which a capabilities file would otherwise switch off", () => {
    assert.ok(caps.features.includes("rego_v1"));
  });

  const refused: Array<{ note: string; name: string }> = [
    { note: "network I/O", name: "http.send" },
    { note: "JWT decoding", name: "io.jwt.decode_verify" },
    { note: "randomness", name: "uuid.rfc4122" },
    { note: "time formatting (not implemented)", name: "time.format" },
    { note: "opa.runtime", name: "opa.runtime" },
  ];
  for (const c of refused) {
    it(`refuses ${c.name} (${c.note})`, () => {
      assert.ok(!caps.builtins.some((b) => b.name === c.name));
    });
  }

  it("lists no builtin twice across native, SDK and host sets", () => {
    const all = [...WASM_NATIVE_BUILTINS, ...SDK_BUILTINS, ...HOST_BUILTIN_NAMES];
    assert.equal(new Set(all).size, all.length);
  });
});
