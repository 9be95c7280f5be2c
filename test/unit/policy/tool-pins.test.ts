import assert from "node:assert/strict";
import { BundleError } from "../../../gateway/policy/errors.js";
import { toolPinsOf } from "../../../gateway/policy/tool-pins.js";

const DIGEST = `sha256:${"a".repeat(64)}`;

describe("tool pins in policy data (data.portcullis.tool_pins)", () => {
  it("reads server → tool → digest; none when the data names none", () => {
    const pins = toolPinsOf({ portcullis: { tool_pins: { files: { read_file: DIGEST } } } }, "b.tar.gz");
    assert.equal(pins.get("files")?.get("read_file"), DIGEST);
    assert.equal(toolPinsOf({ portcullis: {} }, "b.tar.gz").size, 0);
    assert.equal(toolPinsOf(null, "b.tar.gz").size, 0);
  });

  it("refuses the bundle on a malformed pin, naming the field", () => {
    for (const [pins, field] of [
      [[], "tool_pins"],
      [{ files: "x" }, "tool_pins.files"],
      [{ files: { read_file: "sha256:XYZ" } }, "tool_pins.files.read_file"],
      [{ files: { read_file: `sha256:${"A".repeat(64)}` } }, "tool_pins.files.read_file"],
      [{ files: { read_file: 7 } }, "tool_pins.files.read_file"],
    ] as const) {
      assert.throws(
        () => toolPinsOf({ portcullis: { tool_pins: pins } }, "b.tar.gz"),
        (e: unknown) => e instanceof BundleError && e.code === "bundle_malformed" && e.message.includes(`data.portcullis.${field} `) && e.message.includes("data.json"),
      );
    }
  });
});
