import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { buildPolicyInput, canonicalJsonOfValue, toolDigest, type McpToolDefinition, type PolicyRequest } from "../../../gateway/policy/index.js";

const identity = {
  sub: "alice",
  iss: "https://idp.example.com/",
  client_id: "cli",
  scopes: ["mcp:tools"],
  roles: ["analyst"],
  claims: { sub: "alice", roles: ["analyst"] },
  expiresAt: 1_900_000_000, // extra fields from gateway/auth must not reach the policy
};

const request: PolicyRequest = {
  method: "tools/call",
  server: "demo",
  tool: "read_file",
  arguments: { path: "/data/q3.csv" },
  resource: null,
  prompt: null,
  session_id: "s1",
  protocol_version: "2025-11-25",
  source_ip: "127.0.0.1",
  time: "2026-11-24T10:00:00.000Z",
};

const readFile: McpToolDefinition = {
  name: "read_file",
  title: "Read file",
  description: "Reads a file under /data",
  inputSchema: { type: "object", properties: { path: { type: "string" } }, required: ["path"] },
  annotations: { readOnlyHint: true },
};

describe("buildPolicyInput", () => {
  it("builds contract 3's input with only the contract's fields", () => {
    const input = buildPolicyInput(identity, request, readFile);
    assert.deepEqual(input.agent, {
      sub: "alice",
      iss: "https://idp.example.com/",
      client_id: "cli",
      scopes: ["mcp:tools"],
      roles: ["analyst"],
      claims: { sub: "alice", roles: ["analyst"] },
    });
    assert.deepEqual(input.request, request);
    assert.deepEqual(input.tool, {
      name: "read_file",
      description: "Reads a file under /data",
      input_schema: readFile.inputSchema,
      annotations: { readOnlyHint: true },
      digest: toolDigest(readFile),
    });
  });

  it("sets absent request fields to null so policies see one shape", () => {
    const sparse = { method: "tools/list", server: "demo", time: request.time } as unknown as PolicyRequest;
    const input = buildPolicyInput({ ...identity, client_id: undefined as unknown as null }, sparse, null);
    assert.deepEqual(input.request, {
      method: "tools/list",
      server: "demo",
      tool: null,
      arguments: null,
      resource: null,
      prompt: null,
      session_id: null,
      protocol_version: null,
      source_ip: null,
      time: request.time,
    });
    assert.equal(input.agent.client_id, null);
    assert.equal(input.tool, null);
    assert.ok(Object.keys(JSON.parse(JSON.stringify(input.request)) as object).length === 10);
  });

  it("defaults a tool's missing or non-object schema and annotations to {}", () => {
    const input = buildPolicyInput(identity, request, { name: "bare", inputSchema: "nope", annotations: [1] });
    assert.deepEqual(input.tool?.input_schema, {});
    assert.deepEqual(input.tool?.annotations, {});
    assert.equal(input.tool?.description, null);
  });

  it("reuses frozen agent and tool views for the same identity and definition objects", () => {
    const a = buildPolicyInput(identity, request, readFile);
    const b = buildPolicyInput(identity, { ...request, tool: "read_file" }, readFile);
    assert.equal(a.tool, b.tool);
    assert.equal(a.agent, b.agent);
    assert.ok(Object.isFrozen(a.tool));
    assert.ok(Object.isFrozen(a.agent));
    assert.notEqual(a.request, b.request);
  });
});

describe("toolDigest", () => {
  it("is sha256 over the canonical JSON of the definition", () => {
    const canonical =
      '{"annotations":{"readOnlyHint":true},"description":"Reads a file under /data",' +
      '"inputSchema":{"properties":{"path":{"type":"string"}},"required":["path"],"type":"object"},' +
      '"name":"read_file","title":"Read file"}';
    assert.equal(toolDigest(readFile), `sha256:${createHash("sha256").update(canonical).digest("hex")}`);
  });

  it("is stable across key order", () => {
    const reordered: McpToolDefinition = {
      annotations: { readOnlyHint: true },
      inputSchema: { required: ["path"], properties: { path: { type: "string" } }, type: "object" },
      description: "Reads a file under /data",
      title: "Read file",
      name: "read_file",
    };
    assert.equal(toolDigest(reordered), toolDigest(readFile));
  });

  const changes: Array<{ note: string; tool: McpToolDefinition }> = [
    { note: "description", tool: { ...readFile, description: "Reads any file" } },
    { note: "schema", tool: { ...readFile, inputSchema: { type: "object", properties: { path: { type: "string" }, mode: { type: "string" } } } } },
    { note: "annotations", tool: { ...readFile, annotations: { readOnlyHint: false } } },
    { note: "output schema added", tool: { ...readFile, outputSchema: { type: "object" } } },
    { note: "title removed", tool: { ...readFile, title: undefined } },
  ];
  for (const c of changes) {
    it(`changes when the definition drifts: ${c.note}`, () => {
      assert.notEqual(toolDigest(c.tool), toolDigest(readFile));
    });
  }

  it("ignores fields outside the definition (icons, _meta)", () => {
    const decorated = { ...readFile, icons: [{ src: "x" }], _meta: { a: 1 } } as McpToolDefinition;
    assert.equal(toolDigest(decorated), toolDigest(readFile));
  });
});

describe("toolDigest's memo", () => {
  it("answers what hashing the canonical JSON answers, for the same definition again, a reordered one and a changed one", async () => {
    const fc = (await import("fast-check")).default;
    const hashed = (t: Record<string, unknown>): string =>
      `sha256:${createHash("sha256").update(canonicalJsonOfValue({ name: t.name, title: t.title, description: t.description, inputSchema: t.inputSchema, outputSchema: t.outputSchema, annotations: t.annotations }), "utf8").digest("hex")}`;
    const definition = fc.record(
      { name: fc.string({ minLength: 1, maxLength: 8 }), title: fc.string(), description: fc.string(), inputSchema: fc.dictionary(fc.string({ maxLength: 4 }), fc.jsonValue({ maxDepth: 2 })), annotations: fc.dictionary(fc.string({ maxLength: 4 }), fc.boolean()) },
      { requiredKeys: ["name"] },
    );
    fc.assert(
      fc.property(definition, fc.string({ minLength: 1 }), (tool, extra) => {
        const expected = hashed(tool);
        assert.equal(toolDigest(tool), expected);
        assert.equal(toolDigest(JSON.parse(JSON.stringify(tool))), expected, "a new object with the same definition");
        const reordered = Object.fromEntries(Object.entries(tool).reverse()) as typeof tool;
        assert.equal(toolDigest(reordered), expected, "members in another order");
        const changed = { ...tool, description: `${tool.description ?? ""}${extra}` };
        assert.equal(toolDigest(changed), hashed(changed));
        assert.notEqual(toolDigest(changed), expected);
      }),
      { numRuns: 500 },
    );
  });
});

describe("toolDigest's memo bounds", () => {
  it("stays within its entries and characters however many or however large the definitions an upstream lists", async () => {
    const { toolDigestMemoSize } = await import("../../../gateway/policy/input.js");
    for (let i = 0; i < 5000; i++) toolDigest({ name: `t${i}`, description: "x".repeat(3000) });
    const after = toolDigestMemoSize();
    assert.ok(after.entries <= 4096, `${after.entries} entries`);
    assert.ok(after.chars <= 8 * 1024 * 1024, `${after.chars} characters`);
    const huge = { name: "huge", description: "y".repeat(200_000) };
    const digest = toolDigest(huge);
    assert.equal(toolDigest({ ...huge }), digest, "a definition too large to remember is still hashed right");
    assert.ok(toolDigestMemoSize().chars <= 8 * 1024 * 1024);
  });
});

describe("the policy's tool view, shared by equal definitions", () => {
  it("gives a re-listed definition (a new object, same content) the view already built, and a changed one its own", () => {
    const listed = (): McpToolDefinition => JSON.parse(JSON.stringify({ name: "share_me", description: "v1", inputSchema: { type: "object", properties: { a: { type: "string" } } }, annotations: { readOnlyHint: true } })) as McpToolDefinition;
    const first = buildPolicyInput(identity, { ...request, method: "tools/list", tool: "share_me", arguments: null }, listed()).tool!;
    const again = buildPolicyInput(identity, { ...request, method: "tools/list", tool: "share_me", arguments: null }, listed()).tool!;
    assert.equal(again, first, "one frozen view: the engine parses and pins it once");
    assert.ok(Object.isFrozen(first));
    const changed = buildPolicyInput(identity, { ...request, method: "tools/list", tool: "share_me", arguments: null }, { ...listed(), description: "v2" }).tool!;
    assert.notEqual(changed, first);
    assert.equal(changed.description, "v2");
    assert.notEqual(changed.digest, first.digest);
    assert.equal(first.description, "v1", "the shared view is not touched by the change");
  });
});
