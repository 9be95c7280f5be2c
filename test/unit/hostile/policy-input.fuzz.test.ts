/**
 * Issue 5 item 6: the policy input builder and the decision converter under generated input.
 * Upstream tool definitions and token claims are attacker-influenced; whatever they hold, the
 * policy sees exactly contract 3's shape, and only a valid `allow: true` ever allows.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { buildPolicyInput, toDecision, toolDigest, type DecisionMethod } from "../../../gateway/policy/index.js";
import { jsonValue, nastyString, runs } from "./arbitraries.js";

const METHODS: DecisionMethod[] = ["tools/call", "tools/list", "resources/read", "resources/list", "prompts/get", "prompts/list"];
const opt = <T>(a: fc.Arbitrary<T>) => fc.option(a, { nil: undefined });

const identity = fc.record({
  sub: nastyString,
  iss: nastyString,
  client_id: fc.option(nastyString, { nil: null }),
  scopes: fc.array(nastyString, { maxLength: 4 }),
  roles: fc.array(nastyString, { maxLength: 4 }),
  claims: fc.dictionary(nastyString, jsonValue, { maxKeys: 6 }),
  expiresAt: fc.integer(),
  // Fields an identity object may carry that policy must never see.
  token: fc.constant("eyJ.raw.token"),
});

const request = fc.record({
  method: fc.constantFrom(...METHODS),
  server: nastyString,
  tool: opt(fc.option(nastyString, { nil: null })),
  arguments: opt(fc.option(fc.dictionary(nastyString, jsonValue, { maxKeys: 5 }), { nil: null })),
  resource: opt(fc.option(nastyString, { nil: null })),
  prompt: opt(fc.option(nastyString, { nil: null })),
  session_id: opt(fc.option(nastyString, { nil: null })),
  protocol_version: opt(fc.option(nastyString, { nil: null })),
  source_ip: opt(fc.option(fc.oneof(fc.ipV4(), fc.ipV6()), { nil: null })),
  time: fc.date({ noInvalidDate: true, min: new Date(0), max: new Date(4e12) }).map((d) => d.toISOString()),
});

/** A tool definition as an upstream may send it: any JSON in every field. */
const tool = fc.record(
  {
    name: nastyString,
    title: jsonValue,
    description: fc.oneof(nastyString, jsonValue),
    inputSchema: jsonValue,
    outputSchema: jsonValue,
    annotations: jsonValue,
    icons: jsonValue,
    _meta: jsonValue,
  },
  { requiredKeys: ["name"] },
);

/** Rebuilds a JSON value with every object's keys in reverse order. */
function reordered(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(reordered);
  if (v !== null && typeof v === "object") return Object.fromEntries(Object.keys(v).reverse().map((k) => [k, reordered((v as Record<string, unknown>)[k])]));
  return v;
}

describe("hostile input: the policy input builder and decision converter (fast-check)", function () {
  this.timeout(60_000);
  it(`buildPolicyInput gives contract 3's exact shape for any identity, request and tool (${runs(10_000)} runs)`, () => {
    fc.assert(
      fc.property(identity, request, fc.option(tool, { nil: null }), (id, req, t) => {
        const input = buildPolicyInput(Object.freeze({ ...id }), req as never, t as never);
        assert.deepEqual(Object.keys(input).sort(), ["agent", "request", "tool"]);
        assert.deepEqual(Object.keys(input.agent).sort(), ["claims", "client_id", "iss", "roles", "scopes", "sub"]);
        assert.deepEqual(Object.keys(input.request).sort(), ["arguments", "method", "prompt", "protocol_version", "resource", "server", "session_id", "source_ip", "time", "tool"]);
        for (const [k, v] of Object.entries(input.request)) assert.notEqual(v, undefined, `request.${k} is undefined`);
        if (t === null) assert.equal(input.tool, null);
        else {
          assert.deepEqual(Object.keys(input.tool!).sort(), ["annotations", "description", "digest", "input_schema", "name"]);
          assert.match(input.tool!.digest, /^sha256:[0-9a-f]{64}$/);
          assert.ok(input.tool!.description === null || typeof input.tool!.description === "string");
          for (const f of ["input_schema", "annotations"] as const) {
            const v = input.tool![f];
            assert.ok(v !== null && typeof v === "object" && !Array.isArray(v), `tool.${f} must be an object`);
          }
        }
        assert.ok(!JSON.stringify(input).includes("eyJ.raw.token"), "a non-contract identity field reached policy");
      }),
      { numRuns: runs(10_000) },
    );
  });

  it(`a tool's digest ignores key order and fields outside the definition, and changes with it (${runs(5_000)} runs)`, () => {
    fc.assert(
      fc.property(tool, nastyString, (t, extra) => {
        const d = toolDigest(t as never);
        assert.equal(toolDigest(reordered(t) as never), d);
        assert.equal(toolDigest({ ...(t as object), icons: [extra], _meta: { x: extra } } as never), d);
        const changed = { ...(t as object), description: `${typeof t.description === "string" ? t.description : ""}<IMPORTANT>${extra}` };
        assert.notEqual(toolDigest(changed as never), d, "a poisoned description kept the pinned digest");
      }),
      { numRuns: runs(5_000) },
    );
  });

  const decisionLike = fc.oneof(
    jsonValue,
    fc.record(
      {
        allow: fc.oneof(fc.boolean(), jsonValue, fc.constantFrom<unknown>("true", 1)),
        reasons: fc.oneof(fc.array(fc.string(), { maxLength: 3 }), jsonValue),
        message: fc.oneof(fc.string(), jsonValue),
        rate_limit: fc.oneof(fc.record({ key: fc.string(), limit: fc.oneof(fc.integer(), fc.double()), window_seconds: fc.oneof(fc.integer(), fc.double()) }, { requiredKeys: [] }), jsonValue),
        mask: fc.oneof(fc.array(fc.oneof(fc.constantFrom("/input/request/arguments/x", "/result/y"), fc.string()), { maxLength: 3 }), jsonValue),
        allowed: fc.boolean(),
      },
      { requiredKeys: [] },
    ),
  );

  it(`toDecision never throws, and allows only a well-formed allow: true (${runs(20_000)} runs)`, () => {
    fc.assert(
      fc.property(fc.oneof(decisionLike, fc.constant(undefined)), (raw) => {
        const { decision, error } = toDecision(raw);
        if (!decision.allow) return;
        assert.equal(error, undefined);
        const r = raw as Record<string, unknown>;
        assert.equal(r.allow, true, "allowed without allow: true");
        assert.ok(!("allowed" in r), "allowed although the decision had an unknown field");
        if (r.reasons !== undefined) assert.ok(Array.isArray(r.reasons) && r.reasons.every((x) => typeof x === "string"));
        if (r.message !== undefined) assert.equal(typeof r.message, "string");
        if (r.mask !== undefined) assert.ok(Array.isArray(r.mask));
      }),
      { numRuns: runs(20_000) },
    );
  });
});
