import assert from "node:assert/strict";
import { ConfigError, parseConfig } from "../../../gateway/config/index.js";

const withPolicy = (policy: Record<string, unknown>) => ({
  auth: { issuer: "https://idp.example.com/", audience: "https://gw.example.com/mcp", jwksUri: "https://idp.example.com/jwks.json" },
  policy: { bundle: "b.tar.gz", verificationKey: "k.pem", ...policy },
  upstreams: { files: { url: "http://127.0.0.1:7001/mcp" } },
});

describe("config: policy.allowRollback", () => {
  it("defaults to false: a hot reload that goes back to an older revision is refused", () => {
    assert.equal(parseConfig(withPolicy({}), "gw.yaml", {}).policy.allowRollback, false);
  });

  it("accepts true", () => {
    assert.equal(parseConfig(withPolicy({ allowRollback: true }), "gw.yaml", {}).policy.allowRollback, true);
  });

  it("refuses a value that is not a boolean, naming the key", () => {
    assert.throws(
      () => parseConfig(withPolicy({ allowRollback: "yes" }), "gw.yaml", {}),
      (err: unknown) => err instanceof ConfigError && err.problems.some((p) => p.startsWith("policy.allowRollback:")),
    );
  });
});
