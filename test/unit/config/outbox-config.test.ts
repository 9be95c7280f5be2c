import assert from "node:assert/strict";
import { ConfigError, parseConfig } from "../../../gateway/config/index.js";

const minimal = (audit: Record<string, unknown>) => ({
  auth: { issuer: "https://idp.example.com/", audience: "https://gw.example.com/mcp", jwksUri: "https://idp.example.com/jwks.json" },
  policy: { bundle: "b.tar.gz", verificationKey: "k.pem" },
  upstreams: { files: { url: "http://127.0.0.1:7001/mcp" } },
  audit,
});
const kafka = { brokers: ["127.0.0.1:9092"], topic: "mcp.audit" };
const FILE = "/etc/portcullis/gw.yaml";

describe("config: audit.outbox and audit.onFull", () => {
  const accepted = [
    { note: "kafka without outbox: the outbox is on with its defaults, next to the config file", audit: { kafka }, outbox: { dir: "/etc/portcullis/var/outbox", maxBytes: 1024 ** 3, maxAgeSeconds: 86_400, segmentBytes: 64 * 1024 ** 2 }, onFull: "reject" },
    { note: "a relative dir is resolved from the config file", audit: { kafka, outbox: { dir: "spool", maxBytes: 8192 }, onFull: "block" }, outbox: { dir: "/etc/portcullis/spool", maxBytes: 8192, maxAgeSeconds: 86_400, segmentBytes: 64 * 1024 ** 2 }, onFull: "block" },
    { note: "outbox: false keeps the in-memory queue", audit: { kafka, outbox: false }, outbox: false, onFull: "reject" },
    { note: "no kafka, no outbox", audit: { file: "a.jsonl" }, outbox: undefined, onFull: "reject" },
  ];
  for (const c of accepted) {
    it(c.note, () => {
      const config = parseConfig(minimal(c.audit), FILE, {});
      assert.deepEqual(config.audit.outbox, c.outbox);
      assert.equal(config.audit.onFull, c.onFull);
    });
  }

  const refused = [
    { note: "an unknown outbox key", audit: { kafka, outbox: { dri: "x" } }, problem: /audit\.outbox/ },
    { note: "onFull drop (no mode drops events)", audit: { kafka, onFull: "drop" }, problem: /audit\.onFull/ },
    { note: "a bound too small to hold an event", audit: { kafka, outbox: { maxBytes: 10 } }, problem: /audit\.outbox\.maxBytes/ },
  ];
  for (const c of refused) {
    it(`refuses ${c.note}`, () => {
      assert.throws(() => parseConfig(minimal(c.audit), FILE, {}), (err: unknown) => err instanceof ConfigError && err.problems.some((p) => c.problem.test(p)));
    });
  }
});
