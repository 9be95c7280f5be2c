import assert from "node:assert/strict";
import { kafkaSecurityOptions } from "../../../gateway/audit/index.js";
import { ConfigError, parseConfig } from "../../../gateway/config/index.js";

const base = () => ({
  auth: { issuer: "https://idp.example.com/", audience: "https://gw.example.com/mcp", jwksUri: "https://idp.example.com/jwks.json" },
  policy: { bundle: "b.tar.gz", verificationKey: "k.pem" },
  upstreams: { files: { url: "http://127.0.0.1:7001/mcp" } },
});
const withAudit = (audit: Record<string, unknown>) => ({ ...base(), audit });
const kafka = (extra: Record<string, unknown>) => withAudit({ kafka: { brokers: ["b1:9093"], topic: "mcp.audit", ...extra } });

function problems(raw: unknown): string[] {
  try {
    parseConfig(raw, "gw.yaml", {});
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    return err.problems;
  }
  return [];
}

describe("audit config: Kafka TLS/SASL, signing, masking", () => {
  const accepted: Array<{ note: string; raw: unknown }> = [
    { note: "ssl: true (system CAs)", raw: kafka({ ssl: true }) },
    { note: "ssl with CA, client cert and key files", raw: kafka({ ssl: { ca: "ca.pem", cert: "c.pem", key: "k.pem" } }) },
    { note: "SCRAM-SHA-512 over TLS", raw: kafka({ ssl: true, sasl: { mechanism: "scram-sha-512", username: "gw", password: "pw" } }) },
    { note: "SCRAM-SHA-256 without TLS (the password never crosses the wire)", raw: kafka({ sasl: { mechanism: "scram-sha-256", username: "gw", password: "pw" } }) },
    { note: "PLAIN over TLS", raw: kafka({ ssl: { rejectUnauthorized: true }, sasl: { mechanism: "plain", username: "gw", password: "pw" } }) },
    { note: "signing with an interval and key id", raw: withAudit({ signing: { privateKey: "audit.pem", checkpointEvery: 50, keyId: "k1" } }) },
    { note: "mask paths and keys", raw: withAudit({ mask: { paths: ["/input/agent/claims/email"], keys: ["ssn"], defaultKeys: false } }) },
    { note: "an OCSF topic", raw: kafka({ ocsfTopic: "mcp.audit.ocsf" }) },
  ];
  for (const c of accepted) it(`accepts ${c.note}`, () => assert.deepEqual(problems(c.raw), []));

  const refused: Array<{ note: string; raw: unknown; problem: RegExp }> = [
    { note: "PLAIN without TLS", raw: kafka({ sasl: { mechanism: "plain", username: "gw", password: "pw" } }), problem: /audit\.kafka\.sasl\.mechanism.*set ssl/ },
    { note: "an unknown SASL mechanism", raw: kafka({ ssl: true, sasl: { mechanism: "gssapi", username: "gw", password: "pw" } }), problem: /audit\.kafka\.sasl\.mechanism/ },
    { note: "SASL without a password", raw: kafka({ ssl: true, sasl: { mechanism: "scram-sha-256", username: "gw" } }), problem: /audit\.kafka\.sasl\.password/ },
    { note: "a client cert without its key", raw: kafka({ ssl: { cert: "c.pem" } }), problem: /cert and ssl\.key go together/ },
    { note: "an unknown ssl key", raw: kafka({ ssl: { verify: false } }), problem: /audit\.kafka\.ssl/ },
    { note: "a zero checkpoint interval", raw: withAudit({ signing: { privateKey: "a.pem", checkpointEvery: 0 } }), problem: /audit\.signing\.checkpointEvery/ },
    { note: "a mask path outside /input and /result", raw: withAudit({ mask: { paths: ["/agent/sub"] } }), problem: /audit\.mask\.paths/ },
  ];
  for (const c of refused) {
    it(`refuses ${c.note}`, () => {
      const p = problems(c.raw);
      assert.ok(p.some((x) => c.problem.test(x)), p.join("\n") || "accepted");
    });
  }

  it("defaults: default keys masked, no signing, no TLS or SASL", () => {
    const c = parseConfig(kafka({}), "gw.yaml", {});
    assert.deepEqual(c.audit.mask, { paths: [], keys: [], defaultKeys: true });
    assert.equal(c.audit.signing, undefined);
    assert.deepEqual(kafkaSecurityOptions({ ssl: c.audit.kafka?.ssl, sasl: c.audit.kafka?.sasl }), {});
    assert.deepEqual(parseConfig(base(), "gw.yaml", {}).audit.mask, { paths: [], keys: [], defaultKeys: true });
  });
});

describe("kafkaSecurityOptions (config → kafkajs)", () => {
  const files: Record<string, string> = { "ca1.pem": "CA1", "ca2.pem": "CA2", "c.pem": "CERT", "k.pem": "KEY" };
  const read = (p: string): string => {
    const v = files[p];
    if (v === undefined) throw Object.assign(new Error("nope"), { code: "ENOENT" });
    return v;
  };
  const cases: Array<{ note: string; cfg: Parameters<typeof kafkaSecurityOptions>[0]; out: unknown }> = [
    { note: "nothing configured: plaintext, no SASL", cfg: {}, out: {} },
    { note: "ssl false is plaintext", cfg: { ssl: false }, out: {} },
    { note: "ssl true passes through", cfg: { ssl: true }, out: { ssl: true } },
    {
      note: "files are read into the TLS options",
      cfg: { ssl: { ca: ["ca1.pem", "ca2.pem"], cert: "c.pem", key: "k.pem", servername: "kafka.internal", rejectUnauthorized: true } },
      out: { ssl: { rejectUnauthorized: true, ca: ["CA1", "CA2"], cert: "CERT", key: "KEY", servername: "kafka.internal" } },
    },
    { note: "a single CA file", cfg: { ssl: { ca: "ca1.pem", rejectUnauthorized: false } }, out: { ssl: { rejectUnauthorized: false, ca: ["CA1"] } } },
    { note: "SCRAM maps to kafkajs's mechanism names", cfg: { ssl: true, sasl: { mechanism: "scram-sha-256", username: "u", password: "p" } }, out: { ssl: true, sasl: { mechanism: "scram-sha-256", username: "u", password: "p" } } },
    { note: "PLAIN", cfg: { ssl: true, sasl: { mechanism: "plain", username: "u", password: "p" } }, out: { ssl: true, sasl: { mechanism: "plain", username: "u", password: "p" } } },
  ];
  for (const c of cases) it(c.note, () => assert.deepEqual(kafkaSecurityOptions(c.cfg, read), c.out));

  it("names the config field of a file it cannot read", () => {
    assert.throws(() => kafkaSecurityOptions({ ssl: { ca: "missing.pem", rejectUnauthorized: true } }, read), /audit\.kafka\.ssl\.ca: cannot read missing\.pem \(ENOENT\)/);
  });
});
