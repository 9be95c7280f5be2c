import assert from "node:assert/strict";
import { Writable } from "node:stream";
import { parseConfig } from "../../../gateway/config/index.js";
import { childLogger, createLogger, effectiveLogLevel, type Logger } from "../../../gateway/shared/log.js";

/** A destination that keeps each JSON line, parsed. */
function lines(): { stream: Writable; parsed: () => Array<Record<string, unknown>> } {
  let text = "";
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      text += chunk.toString();
      done();
    },
  });
  return { stream, parsed: () => text.split("\n").filter((l) => l.length > 0).map((l) => JSON.parse(l) as Record<string, unknown>) };
}

describe("log (gateway/shared/log.ts, pino)", () => {
  it("writes one JSON line per call: level name, ISO time, the fields, msg", () => {
    const out = lines();
    const log = createLogger({ level: "debug", env: {}, destination: out.stream });
    log("info", "gateway listening", { url: "http://127.0.0.1:8080" });
    const [line] = out.parsed();
    assert.deepEqual(Object.keys(line!), ["level", "time", "url", "msg"]);
    assert.equal(line!.level, "info");
    assert.equal(line!.msg, "gateway listening");
    assert.equal(line!.url, "http://127.0.0.1:8080");
    assert.match(String(line!.time), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  });

  const levelCases: Array<{ note: string; configured?: "debug" | "info" | "warn" | "error"; env: Record<string, string>; written: string[] }> = [
    { note: "info by default", env: {}, written: ["info", "warn", "error"] },
    { note: "the configured level", configured: "warn", env: {}, written: ["warn", "error"] },
    { note: "PORTCULLIS_LOG_LEVEL overrides the configured level", configured: "error", env: { PORTCULLIS_LOG_LEVEL: "debug" }, written: ["debug", "info", "warn", "error"] },
    { note: "an empty PORTCULLIS_LOG_LEVEL is ignored", configured: "warn", env: { PORTCULLIS_LOG_LEVEL: "" }, written: ["warn", "error"] },
  ];
  for (const c of levelCases) {
    it(`level: ${c.note}`, () => {
      const out = lines();
      const log = createLogger({ ...(c.configured ? { level: c.configured } : {}), env: c.env, destination: out.stream });
      for (const l of ["debug", "info", "warn", "error"] as const) log(l, l);
      assert.deepEqual(out.parsed().map((l) => l.msg), c.written);
    });
  }

  it("a PORTCULLIS_LOG_LEVEL that is no level is a warning, and the configured level stays", () => {
    const out = lines();
    const log = createLogger({ level: "warn", env: { PORTCULLIS_LOG_LEVEL: "verbose" }, destination: out.stream });
    log("info", "hidden");
    assert.deepEqual(out.parsed().map((l) => [l.level, l.msg]), [["warn", 'PORTCULLIS_LOG_LEVEL="verbose" is not one of debug, info, warn, error: logging at warn']]);
    assert.deepEqual(effectiveLogLevel("error", { PORTCULLIS_LOG_LEVEL: "verbose" }), { level: "error", badEnv: "verbose" });
  });

  it("children carry their fields on every line, for pino loggers and plain functions alike", () => {
    const out = lines();
    const log = createLogger({ env: {}, destination: out.stream });
    log.child({ server: "files" }).child({ decision_id: "d1" })("info", "call", { status: 200 });
    assert.deepEqual(out.parsed()[0], { ...out.parsed()[0], server: "files", decision_id: "d1", status: 200, msg: "call" });
    const seen: Array<Record<string, unknown> | undefined> = [];
    const plain: Logger = (_l, _m, f) => void seen.push(f);
    childLogger(plain, { server: "files" })("warn", "x", { a: 1 });
    assert.deepEqual(seen, [{ server: "files", a: 1 }]);
    childLogger(log, { via: "childLogger" })("info", "y");
    assert.equal(out.parsed()[1]!.via, "childLogger");
  });

  it("announce writes its line at info whatever the level", () => {
    const out = lines();
    const log = createLogger({ level: "error", env: {}, destination: out.stream });
    log("warn", "hidden");
    log.announce("portcullis 0.1.0 serving http://127.0.0.1:8080/mcp/demo", { version: "0.1.0" });
    assert.deepEqual(out.parsed().map((l) => [l.level, l.msg, l.version]), [["info", "portcullis 0.1.0 serving http://127.0.0.1:8080/mcp/demo", "0.1.0"]]);
  });

  it("errors in err/error fields are serialized with type and message", () => {
    const out = lines();
    createLogger({ env: {}, destination: out.stream })("error", "failed", { error: new Error("boom") });
    assert.deepEqual((out.parsed()[0]!.error as { type: string; message: string }).message, "boom");
  });

  describe("config: logging.level", () => {
    const base = {
      auth: { issuer: "https://idp.example.com/", audience: "https://gw.example.com/mcp", jwksUri: "https://idp.example.com/jwks.json" },
      policy: { bundle: "b.tar.gz", verificationKey: "k.pem" },
      upstreams: { files: { url: "http://127.0.0.1:7001/mcp" } },
    };
    it("defaults to info and takes the four levels", () => {
      assert.equal(parseConfig(base, "gw.yaml", {}).logging.level, "info");
      assert.equal(parseConfig({ ...base, logging: { level: "debug" } }, "gw.yaml", {}).logging.level, "debug");
    });
    it("refuses another value or key, naming the field", () => {
      assert.throws(() => parseConfig({ ...base, logging: { level: "trace" } }, "gw.yaml", {}), /gw\.yaml: logging\.level: /);
      assert.throws(() => parseConfig({ ...base, logging: { format: "text" } }, "gw.yaml", {}), /gw\.yaml: logging: unknown key "format"/);
    });
  });
});
