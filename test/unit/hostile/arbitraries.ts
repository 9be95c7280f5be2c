/**
 * fast-check generators for hostile MCP traffic: well-formed messages next to every near-miss an
 * attacker (or a buggy client) sends. Shared by the in-process and HTTP fuzz suites.
 */
import fc from "fast-check";

/** How many generated inputs each property runs, scaled by FUZZ_SCALE (default 1; CI keeps 1). */
export function runs(base: number): number {
  const scale = Number(process.env.FUZZ_SCALE ?? "1");
  return Math.max(1, Math.round(base * (Number.isFinite(scale) && scale > 0 ? scale : 1)));
}

/** Strings that stress parsers: unicode, control characters, prototype keys, path tricks. */
export const nastyString = fc.oneof(
  fc.string({ maxLength: 24 }),
  fc.string({ unit: "grapheme", maxLength: 12 }),
  fc.constantFrom("", "__proto__", "constructor", "prototype", "../../etc/passwd", "/data/../etc/passwd", "\u0000", "\r\nX-Injected: 1", "tools/call", "*", "%00", "\u202e", "a".repeat(300)),
);

export const jsonValue = fc.jsonValue({ maxDepth: 4, depthSize: "small" });

export const rpcId = fc.oneof(
  { weight: 4, arbitrary: fc.integer({ min: -1000, max: 1_000_000 }) },
  { weight: 2, arbitrary: fc.string({ maxLength: 12 }) },
  { weight: 1, arbitrary: fc.constantFrom<unknown>(null, 1.5, true, {}, [], 2 ** 60, -0) },
);

export const KNOWN_TOOLS = ["read_file", "echo", "delete_record"] as const;

const toolName = fc.oneof({ weight: 3, arbitrary: fc.constantFrom<string>(...KNOWN_TOOLS) }, { weight: 1, arbitrary: nastyString });
const argsObject = fc.dictionary(nastyString, jsonValue, { maxKeys: 5 });

/** Messages with a decision point, mostly well-formed. */
export const decisionMessage = fc.oneof(
  fc.record({ jsonrpc: fc.constant("2.0"), id: rpcId, method: fc.constant("tools/call"), params: fc.record({ name: toolName, arguments: fc.oneof({ weight: 4, arbitrary: argsObject }, { weight: 1, arbitrary: jsonValue }) }, { requiredKeys: [] }) }),
  fc.record({ jsonrpc: fc.constant("2.0"), id: rpcId, method: fc.constant("resources/read"), params: fc.record({ uri: fc.oneof(nastyString, jsonValue) }, { requiredKeys: [] }) }),
  fc.record({ jsonrpc: fc.constant("2.0"), id: rpcId, method: fc.constant("prompts/get"), params: fc.record({ name: nastyString, arguments: fc.oneof(argsObject, jsonValue) }, { requiredKeys: [] }) }),
  fc.record({ jsonrpc: fc.constant("2.0"), id: rpcId, method: fc.constantFrom("tools/list", "resources/list", "prompts/list", "resources/templates/list"), params: fc.record({ cursor: fc.oneof(nastyString, jsonValue) }, { requiredKeys: [] }) }),
);

/** Messages without a decision point: plumbing, notifications, responses to server requests. */
export const plumbingMessage = fc.oneof(
  fc.record({ jsonrpc: fc.constant("2.0"), id: rpcId, method: fc.constantFrom("ping", "logging/setLevel", "completion/complete", "initialize", "nonexistent/method") }),
  fc.record({ jsonrpc: fc.constant("2.0"), method: fc.constantFrom("notifications/cancelled", "notifications/progress", "notifications/initialized", "x") , params: fc.option(argsObject, { nil: undefined }) }, { requiredKeys: ["jsonrpc", "method"] }),
  fc.record({ jsonrpc: fc.constant("2.0"), id: rpcId, result: argsObject }),
);

/** Envelopes with every field possibly wrong: wrong version, types, extra members. */
export const mangledEnvelope = fc.record(
  {
    jsonrpc: fc.oneof(fc.constant("2.0"), fc.constantFrom<unknown>("1.0", 2, null, "")),
    id: fc.oneof(rpcId, jsonValue),
    method: fc.oneof(fc.constantFrom("tools/call", "tools/list", "ping", ""), jsonValue),
    params: fc.oneof(argsObject, jsonValue),
    result: jsonValue,
    error: jsonValue,
  },
  { requiredKeys: [] },
);

/**
 * Texts JSON.stringify never produces: duplicate and case-colliding member names (the parser
 * differential of issue 8), method members in two cases, deep nesting, out-of-range numbers.
 */
const ambiguousText = fc.oneof(
  fc.tuple(fc.constantFrom("path", "name", "method", "Name", "k"), fc.constantFrom("PATH", "Name", "Method", "name", "\\u212a", "path"), jsonValue, jsonValue).map(
    ([a, b, va, vb]) => `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_file","arguments":{"${a}":${JSON.stringify(va)},"${b}":${JSON.stringify(vb)}}}}`,
  ),
  fc.constantFrom(
    '{"jsonrpc":"2.0","id":1,"method":"ping","Method":"tools/call","params":{"name":"delete_record"}}',
    '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","Name":"delete_record","arguments":{}}}',
    '{"jsonrpc":"2.0","id":1,"method":"tools/call","method":"ping","params":{"name":"echo"}}',
    '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"n":1e999}}}',
    '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"s":"\\ud800"}}}',
    '{"jsonrpc":"2.0","method":"tools/call","params":{"name":"delete_record","arguments":{}}}',
  ),
  fc.nat({ max: 300 }).map((n) => `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"x":${"[".repeat(n)}${"]".repeat(n)}}}}`),
);

/** One POST body: JSON of a message, a batch, any JSON, or bytes that are not JSON at all. */
export const body = fc.oneof(
  { weight: 2, arbitrary: ambiguousText },
  { weight: 6, arbitrary: decisionMessage.map((m) => JSON.stringify(m)) },
  { weight: 2, arbitrary: plumbingMessage.map((m) => JSON.stringify(m)) },
  { weight: 2, arbitrary: mangledEnvelope.map((m) => JSON.stringify(m)) },
  { weight: 1, arbitrary: fc.array(decisionMessage, { maxLength: 3 }).map((m) => JSON.stringify(m)) },
  { weight: 1, arbitrary: jsonValue.map((v) => JSON.stringify(v)) },
  { weight: 1, arbitrary: fc.string({ maxLength: 64 }) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b).toString("latin1")) },
  { weight: 1, arbitrary: fc.nat({ max: 4000 }).map((n) => JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/call", params: { name: "echo", arguments: { text: "x".repeat(n) } } })) },
);

/** The HTTP envelope around the body: mostly a legitimate client, often a hostile one. */
const hostileEnvelope = fc.record({
  token: fc.constantFrom<"alice" | "bob" | "bad" | "none">("alice", "bob", "bad", "none"),
  session: fc.constantFrom<"match" | "own" | "other" | "bogus" | "none">("match", "own", "other", "bogus", "none"),
  contentType: fc.constantFrom("application/json", "application/json; charset=utf-8", "APPLICATION/JSON", "text/plain", "", "application/json-patch+json"),
  origin: fc.constantFrom<string | undefined>(undefined, "https://app.test", "https://evil.test", "null"),
  protocolVersion: fc.constantFrom<string | undefined>(undefined, "2025-11-25", "2025-06-18", "1999-01-01", ""),
  xff: fc.option(fc.constantFrom("1.2.3.4", "10.0.0.1, 6.6.6.6", "garbage, ::1"), { nil: undefined }),
  cuts: fc.array(fc.nat({ max: 5000 }), { maxLength: 4 }),
});

const cleanEnvelope = fc.record({
  token: fc.constantFrom<"alice" | "bob" | "bad" | "none">("alice", "bob"),
  session: fc.constant<"match" | "own" | "other" | "bogus" | "none">("match"),
  contentType: fc.constantFrom("application/json", "application/json; charset=utf-8"),
  origin: fc.constantFrom<string | undefined>(undefined, "https://app.test"),
  protocolVersion: fc.constantFrom<string | undefined>(undefined, "2025-11-25"),
  xff: fc.option(fc.constantFrom("1.2.3.4", "10.0.0.1, 6.6.6.6"), { nil: undefined }),
  cuts: fc.array(fc.nat({ max: 5000 }), { maxLength: 4 }),
});

export const envelope = fc.oneof({ weight: 3, arbitrary: cleanEnvelope }, { weight: 2, arbitrary: hostileEnvelope });
