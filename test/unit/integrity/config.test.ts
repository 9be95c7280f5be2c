import assert from "node:assert/strict";
import { INTEGRITY_DEFAULTS, integrityConfigSchema, integritySectionSchema } from "../../../gateway/integrity/index.js";

describe("integrity config section", () => {
  it("absent: every default (local file var/integrity.json, pinning on, drift hidden and refused)", () => {
    assert.deepEqual(integritySectionSchema.parse(undefined), { store: "local", file: "var/integrity.json", redisKeyPrefix: "portcullis:int:", pinning: { enabled: true, onDrift: "hide_and_refuse" } });
    assert.deepEqual(integrityConfigSchema.parse({}), integritySectionSchema.parse(undefined));
    assert.equal(INTEGRITY_DEFAULTS.file, "var/integrity.json");
  });

  it("defaults are fresh objects (the loader resolves the file in place)", () => {
    const a = integritySectionSchema.parse(undefined);
    a.file = "/abs/x.json";
    a.pinning.enabled = false;
    assert.equal(integritySectionSchema.parse(undefined).file, "var/integrity.json");
    assert.equal(integritySectionSchema.parse(undefined).pinning.enabled, true);
  });

  const refused: Array<{ note: string; value: unknown; path: string }> = [
    { note: "unknown key", value: { fiel: "x" }, path: "" },
    { note: "unknown store", value: { store: "etcd" }, path: "store" },
    { note: "unknown onDrift", value: { pinning: { onDrift: "warn" } }, path: "pinning.onDrift" },
    { note: "unknown pinning key", value: { pinning: { enable: false } }, path: "pinning" },
    { note: "empty file", value: { file: "" }, path: "file" },
  ];
  for (const c of refused) {
    it(`refuses: ${c.note}`, () => {
      const r = integrityConfigSchema.safeParse(c.value);
      assert.equal(r.success, false);
      assert.equal(r.error!.issues[0]!.path.join("."), c.path);
    });
  }
});
