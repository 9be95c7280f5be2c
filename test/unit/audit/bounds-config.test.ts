import assert from "node:assert/strict";
import { DEFAULT_MAX_EVENT_BYTES, MIN_MAX_EVENT_BYTES } from "../../../gateway/audit/event-budget.js";
import { ConfigError, parseConfig } from "../../../gateway/config/index.js";

const minimal = (audit?: Record<string, unknown>) => ({
  auth: { issuer: "https://idp.example.com/", audience: "https://gw.example.com/mcp", jwksUri: "https://idp.example.com/jwks.json" },
  policy: { bundle: "b.tar.gz", verificationKey: "k.pem" },
  upstreams: { files: { url: "http://127.0.0.1:7001/mcp" } },
  ...(audit ? { audit } : {}),
});
const FILE = "/etc/portcullis/gw.yaml";

describe("config: audit.maxEventBytes, audit.fileMinFreeBytes, audit.refusals", () => {
  const defaults = { maxEventBytes: 512 * 1024, fileMinFreeBytes: 64 * 1024 * 1024, refusals: { perSourcePerMinute: 60 } };
  const accepted = [
    { note: "no audit section: the defaults", audit: undefined, expect: defaults },
    { note: "an audit section without the keys: the same defaults", audit: { file: "a.jsonl" }, expect: defaults },
    { note: "explicit values, 0 turning the checks off", audit: { maxEventBytes: 16384, fileMinFreeBytes: 0, refusals: { perSourcePerMinute: 0 } }, expect: { maxEventBytes: 16384, fileMinFreeBytes: 0, refusals: { perSourcePerMinute: 0 } } },
  ];
  for (const c of accepted) {
    it(c.note, () => {
      const a = parseConfig(minimal(c.audit), FILE, {}).audit;
      assert.deepEqual({ maxEventBytes: a.maxEventBytes, fileMinFreeBytes: a.fileMinFreeBytes, refusals: a.refusals }, c.expect);
    });
  }

  const refused = [
    { note: "maxEventBytes under 16 KiB", audit: { maxEventBytes: 4096 }, problem: /audit\.maxEventBytes.*16384/ },
    { note: "a negative fileMinFreeBytes", audit: { fileMinFreeBytes: -1 }, problem: /audit\.fileMinFreeBytes/ },
    { note: "an unknown refusals key", audit: { refusals: { perSource: 5 } }, problem: /audit\.refusals/ },
    { note: "a signing keyId over 128 characters", audit: { signing: { privateKey: "k.pem", keyId: "k".repeat(129) } }, problem: /audit\.signing\.keyId/ },
  ];
  for (const c of refused) {
    it(`refuses ${c.note}`, () => {
      assert.throws(() => parseConfig(minimal(c.audit), FILE, {}), (err: unknown) => err instanceof ConfigError && c.problem.test(err.message));
    });
  }

  it("has the defaults and minimum the audit stage assumes", () => {
    const a = parseConfig(minimal(), FILE, {}).audit;
    assert.equal(a.maxEventBytes, DEFAULT_MAX_EVENT_BYTES);
    assert.throws(() => parseConfig(minimal({ maxEventBytes: MIN_MAX_EVENT_BYTES - 1 }), FILE, {}));
    assert.doesNotThrow(() => parseConfig(minimal({ maxEventBytes: MIN_MAX_EVENT_BYTES }), FILE, {}));
  });
});
