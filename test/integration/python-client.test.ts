/**
 * The official Python MCP SDK (test/python/mcp_client.py) against an SDK v2 server serving both eras,
 * straight (no gateway): proves the client speaks 2026-07-28 without ever sending `initialize`, and
 * 2025-11-25 through the initialize handshake, with tools, elicitation, sampling, resources and prompts.
 */
import assert from "node:assert/strict";
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server as HttpServer, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { randomUUID } from "node:crypto";
import { NodeStreamableHTTPServerTransport, toNodeHandler, toWebRequest } from "@modelcontextprotocol/node";
import { acceptedContent, createMcpHandler, inputRequired, inputResponse, isLegacyRequest, McpServer, type McpHttpHandler } from "@modelcontextprotocol/server";
import * as z from "zod";
import { isStepError, PythonClientError, runPythonClient, type JsonObject, type PythonScriptStep, type PythonStepResult } from "../support/python-client.js";

const FIXTURE_INFO = { name: "python-client-fixture", version: "4.5.6" };
const APPROVER_SCHEMA = { type: "object" as const, properties: { name: { type: "string" as const } }, required: ["name"] };
const GREETING_URI = "memo://greeting";
const GREETING_TEXT = "hello from the fixture";

/** One HTTP request as the fixture received it: for a POST the JSON-RPC method, and the MCP headers. */
interface SeenRequest {
  httpMethod: string | undefined;
  method: string | undefined;
  protocolVersionHeader: string | undefined;
  methodHeader: string | undefined;
  nameHeader: string | undefined;
  authorization: string | undefined;
  sessionId: string | undefined;
}

/** The same tools, resource and prompt for both eras; only how a tool asks for input differs. */
function buildServer(era: "legacy" | "modern"): McpServer {
  const server = new McpServer(FIXTURE_INFO);
  server.registerTool("echo", { description: "Echoes its message", inputSchema: z.object({ message: z.string() }) }, async ({ message }) => ({
    content: [{ type: "text", text: `echo: ${message}` }],
  }));
  server.registerTool("approve", { description: "Asks the user who approves an action", inputSchema: z.object({ action: z.string() }) }, async ({ action }, ctx) => {
    const message = `Who approves ${action}?`;
    if (era === "modern") {
      const answer = acceptedContent(ctx.mcpReq.inputResponses, "approver");
      if (answer === undefined) {
        const view = inputResponse(ctx.mcpReq.inputResponses, "approver");
        if (view.kind === "elicit") return { content: [{ type: "text", text: `${action}: ${view.action}` }], isError: true };
        return inputRequired({ inputRequests: { approver: inputRequired.elicit({ message, requestedSchema: APPROVER_SCHEMA }) } });
      }
      return { content: [{ type: "text", text: `${action} approved by ${String(answer.name)}` }] };
    }
    const result = await ctx.mcpReq.elicitInput({ mode: "form", message, requestedSchema: APPROVER_SCHEMA });
    if (result.action !== "accept") return { content: [{ type: "text", text: `${action}: ${result.action}` }], isError: true };
    return { content: [{ type: "text", text: `${action} approved by ${String(result.content?.name)}` }] };
  });
  server.registerTool("summarize", { description: "Asks the client's model for a summary", inputSchema: z.object({ topic: z.string() }) }, async ({ topic }, ctx) => {
    const request = { messages: [{ role: "user" as const, content: { type: "text" as const, text: `Summarize ${topic}` } }], maxTokens: 50 };
    let summary: string;
    if (era === "modern") {
      const view = inputResponse(ctx.mcpReq.inputResponses, "summary");
      if (view.kind !== "sampling") return inputRequired({ inputRequests: { summary: inputRequired.createMessage(request) } });
      summary = samplingText(view.result.content);
    } else {
      summary = samplingText((await ctx.mcpReq.requestSampling(request)).content);
    }
    return { content: [{ type: "text", text: `summary of ${topic}: ${summary}` }] };
  });
  server.registerResource("greeting", GREETING_URI, { mimeType: "text/plain" }, async (uri) => ({ contents: [{ uri: uri.href, text: GREETING_TEXT }] }));
  server.registerPrompt("greet", { description: "Greets someone", argsSchema: z.object({ name: z.string() }) }, ({ name }) => ({
    messages: [{ role: "user", content: { type: "text", text: `Say hello to ${name}` } }],
  }));
  return server;
}

function samplingText(content: unknown): string {
  const blocks: unknown[] = Array.isArray(content) ? content : [content];
  const text = blocks.find((block): block is { type: "text"; text: string } => typeof block === "object" && block !== null && "text" in block);
  return text?.text ?? "<no text>";
}

function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value.join(",") : value;
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

function methodOf(body: unknown): string | undefined {
  return typeof body === "object" && body !== null && "method" in body && typeof body.method === "string" ? body.method : undefined;
}

/**
 * 2025 traffic on sessions of its own: the stateless legacy fallback of createMcpHandler builds a fresh
 * server per request, which never saw the client's initialize capabilities and so refuses to elicit or
 * sample. A gateway in front of a real 2025 server meets sessions, so the fixture has them too.
 */
function legacySessions(): { serve(req: IncomingMessage, res: ServerResponse, body: unknown): Promise<void>; close(): Promise<void> } {
  const sessions = new Map<string, NodeStreamableHTTPServerTransport>();
  return {
    async serve(req, res, body) {
      const sessionId = header(req.headers, "mcp-session-id");
      let transport = sessionId === undefined ? undefined : sessions.get(sessionId);
      if (transport === undefined) {
        if (methodOf(body) !== "initialize") {
          res.writeHead(sessionId === undefined ? 400 : 404, { "content-type": "application/json" });
          res.end(JSON.stringify({ jsonrpc: "2.0", id: null, error: { code: -32600, message: "no such session" } }));
          return;
        }
        const created = new NodeStreamableHTTPServerTransport({ sessionIdGenerator: () => randomUUID(), onsessioninitialized: (id) => void sessions.set(id, created) });
        created.onclose = () => {
          if (created.sessionId !== undefined) sessions.delete(created.sessionId);
        };
        await buildServer("legacy").connect(created);
        transport = created;
      }
      await transport.handleRequest(req, res, body);
    },
    async close() {
      await Promise.all([...sessions.values()].map((t) => t.close()));
    },
  };
}

/** The v2 handler (2026) plus sessionful 2025 serving on a node http server, recording every request before the SDK sees it. */
async function startFixture(): Promise<{ url: string; seen: SeenRequest[]; close(): Promise<void> }> {
  const modern: McpHttpHandler = createMcpHandler(({ era }) => buildServer(era), { legacy: "reject" });
  const modernNode = toNodeHandler(modern);
  const legacy = legacySessions();
  const seen: SeenRequest[] = [];
  const server: HttpServer = createServer((req, res) => {
    void (async () => {
      const text = req.method === "POST" ? await readBody(req) : "";
      let body: unknown;
      try {
        body = text === "" ? undefined : JSON.parse(text);
      } catch {
        body = undefined;
      }
      seen.push({
        httpMethod: req.method,
        method: methodOf(body),
        protocolVersionHeader: header(req.headers, "mcp-protocol-version"),
        methodHeader: header(req.headers, "mcp-method"),
        nameHeader: header(req.headers, "mcp-name"),
        authorization: header(req.headers, "authorization"),
        sessionId: header(req.headers, "mcp-session-id"),
      });
      if (req.method !== "POST") {
        // GET (2025 notification stream) and DELETE (2025 session end) belong to a 2025 session.
        if (header(req.headers, "mcp-session-id") !== undefined) return legacy.serve(req, res, undefined);
        return modernNode(req, res);
      }
      if (body !== undefined && (await isLegacyRequest(await toWebRequest(req, body), body))) return legacy.serve(req, res, body);
      return modernNode(req, res, body);
    })().catch((error: unknown) => {
      res.statusCode = 500;
      res.end(String(error));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/mcp`,
    seen,
    async close() {
      await modern.close();
      await legacy.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

const TOKEN = "dummy-token-for-an-unauthenticated-fixture";

const FULL_SCRIPT: PythonScriptStep[] = [
  { op: "list_tools" },
  { op: "call_tool", name: "echo", arguments: { message: "hi" } },
  { op: "list_resources" },
  { op: "read_resource", uri: GREETING_URI },
  { op: "list_prompts" },
  { op: "get_prompt", name: "greet", arguments: { name: "Ada" } },
  { op: "call_tool", name: "approve", arguments: { action: "deploy" } },
  { op: "call_tool", name: "summarize", arguments: { topic: "the logs" } },
  { op: "call_tool", name: "nope", arguments: {} },
];

function ok(result: PythonStepResult | undefined): JsonObject {
  assert.ok(result !== undefined, "missing step result");
  assert.ok(!isStepError(result), `step failed: ${JSON.stringify(result)}`);
  return result;
}

function toolText(result: PythonStepResult | undefined): string {
  const content = ok(result).content;
  assert.ok(Array.isArray(content), `no content in ${JSON.stringify(result)}`);
  const first = content[0];
  assert.ok(typeof first === "object" && first !== null && !Array.isArray(first) && typeof first.text === "string", `no text block in ${JSON.stringify(result)}`);
  return first.text;
}

function names(result: PythonStepResult | undefined, key: "tools" | "resources" | "prompts", field: "name" | "uri"): string[] {
  const list = ok(result)[key];
  assert.ok(Array.isArray(list), `no ${key} in ${JSON.stringify(result)}`);
  return list.map((item) => (typeof item === "object" && item !== null && !Array.isArray(item) ? String(item[field]) : "?")).sort();
}

/** The results every era must agree on: FULL_SCRIPT's steps 0-6 and 8. */
function assertCommonResults(results: PythonStepResult[]): void {
  assert.equal(results.length, FULL_SCRIPT.length);
  assert.deepEqual(names(results[0], "tools", "name"), ["approve", "echo", "summarize"]);
  assert.equal(toolText(results[1]), "echo: hi");
  assert.deepEqual(names(results[2], "resources", "uri"), [GREETING_URI]);
  const contents = ok(results[3]).contents;
  assert.deepEqual(Array.isArray(contents) ? contents.map((c) => (c !== null && typeof c === "object" && !Array.isArray(c) ? c.text : null)) : contents, [GREETING_TEXT]);
  assert.deepEqual(names(results[4], "prompts", "name"), ["greet"]);
  const messages = ok(results[5]).messages;
  assert.ok(Array.isArray(messages) && messages.length === 1, JSON.stringify(results[5]));
  assert.deepEqual(messages[0], { role: "user", content: { type: "text", text: "Say hello to Ada" } });
  assert.equal(toolText(results[6]), "deploy approved by Ada Lovelace");
  assert.equal(toolText(results[7]), "summary of the logs: three errors, all fixed");
  const unknown = results[8];
  assert.ok(isStepError(unknown), `unknown tool should be a JSON-RPC error: ${JSON.stringify(unknown)}`);
  assert.equal(unknown.error.code, -32602);
}

describe("python MCP client (official Python SDK) against an SDK v2 server", function () {
  this.timeout(120_000);
  let fixture: Awaited<ReturnType<typeof startFixture>>;
  beforeEach(async () => {
    fixture = await startFixture();
  });
  afterEach(async () => {
    await fixture?.close();
  });

  const run = (era: "2026-07-28" | "2025-11-25", extra: { noDiscover?: boolean } = {}) =>
    runPythonClient({
      url: fixture.url,
      token: TOKEN,
      era,
      script: FULL_SCRIPT,
      elicitAccept: { name: "Ada Lovelace" },
      sampleText: "three errors, all fixed",
      ...extra,
    });

  it("speaks 2026-07-28 with no initialize: discover, tools, input_required elicitation and sampling, resources, prompts", async () => {
    const out = await run("2026-07-28");
    assert.equal(out.negotiatedVersion, "2026-07-28");
    assert.deepEqual(out.serverInfo, FIXTURE_INFO);
    assertCommonResults(out.results);
    assert.deepEqual(
      out.callbacks.map((c) => c.kind),
      ["elicitation", "sampling"],
    );
    assert.equal(out.callbacks[0]?.params.message, "Who approves deploy?");

    const methods = fixture.seen.map((s) => s.method);
    assert.ok(!methods.includes("initialize"), `initialize was sent: ${methods.join(", ")}`);
    assert.ok(!methods.includes("notifications/initialized"), methods.join(", "));
    assert.equal(methods[0], "server/discover");
    // Each input_required round is a retry of the same call: approve and summarize are POSTed twice.
    assert.deepEqual(
      methods.filter((m) => m === "tools/call"),
      Array(6).fill("tools/call"),
    );
    for (const s of fixture.seen) {
      assert.equal(s.httpMethod, "POST", "2026-07-28 has no GET stream and no DELETE");
      assert.equal(s.protocolVersionHeader, "2026-07-28", JSON.stringify(s));
      assert.equal(s.methodHeader, s.method, JSON.stringify(s));
      assert.equal(s.authorization, `Bearer ${TOKEN}`);
      assert.equal(s.sessionId, undefined);
    }
    const named = fixture.seen.filter((s) => s.method === "tools/call" || s.method === "resources/read" || s.method === "prompts/get").map((s) => s.nameHeader);
    assert.deepEqual(named, ["echo", GREETING_URI, "greet", "approve", "approve", "summarize", "summarize", "nope"]);
  });

  it("pins 2026-07-28 without the discover probe when asked: the script's first request is the first on the wire", async () => {
    const out = await run("2026-07-28", { noDiscover: true });
    assert.equal(out.negotiatedVersion, "2026-07-28");
    // No discover: the identity comes from the results' _meta stamp.
    assert.deepEqual(out.serverInfo, FIXTURE_INFO);
    assertCommonResults(out.results);
    const methods = fixture.seen.map((s) => s.method);
    assert.equal(methods[0], "tools/list");
    assert.ok(!methods.includes("initialize") && !methods.includes("server/discover"), methods.join(", "));
  });

  it("speaks 2025-11-25 through the initialize handshake, answering elicitation and sampling requests", async () => {
    const out = await run("2025-11-25");
    assert.equal(out.negotiatedVersion, "2025-11-25");
    assert.deepEqual(out.serverInfo, FIXTURE_INFO);
    assertCommonResults(out.results);
    assert.deepEqual(
      out.callbacks.map((c) => c.kind),
      ["elicitation", "sampling"],
    );
    const methods = fixture.seen.map((s) => s.method);
    assert.equal(methods[0], "initialize");
    assert.equal(methods[1], "notifications/initialized");
    assert.ok(!methods.includes("server/discover"), methods.join(", "));
    for (const s of fixture.seen) {
      assert.equal(s.authorization, `Bearer ${TOKEN}`);
      assert.equal(s.methodHeader, undefined, "no Mcp-Method on the 2025 wire");
    }
    assert.equal(fixture.seen[0]?.protocolVersionHeader, undefined, "initialize carries no MCP-Protocol-Version");
    assert.equal(fixture.seen[0]?.sessionId, undefined);
    const sessionIds = new Set(fixture.seen.slice(1).map((s) => s.sessionId));
    assert.equal(sessionIds.size, 1, `one session throughout: ${[...sessionIds].join(", ")}`);
    assert.ok(fixture.seen.slice(1).every((s) => s.protocolVersionHeader === "2025-11-25"), JSON.stringify(fixture.seen));
    // The SDK ends its session on exit.
    assert.equal(fixture.seen.at(-1)?.httpMethod, "DELETE");
  });

  for (const era of ["2026-07-28", "2025-11-25"] as const) {
    it(`at ${era} without a configured answer, a call that needs elicitation fails as that step's error, not the run`, async () => {
      const out = await runPythonClient({
        url: fixture.url,
        token: TOKEN,
        era,
        script: [{ op: "call_tool", name: "approve", arguments: { action: "deploy" } }, { op: "call_tool", name: "echo", arguments: { message: "still here" } }],
      });
      assert.deepEqual(out.callbacks, []);
      const first = out.results[0];
      assert.ok(first !== undefined, "missing step result");
      if (era === "2026-07-28") {
        // The client declares no elicitation capability in the request's envelope, so the server refuses to ask.
        assert.ok(isStepError(first), JSON.stringify(first));
        assert.equal(first.error.code, -32021);
      } else {
        // None declared at initialize: the SDK server's elicitInput throws, McpServer makes it a tool error.
        assert.equal(ok(first).isError, true);
        assert.match(toolText(first), /does not support form elicitation/);
      }
      assert.equal(toolText(out.results[1]), "echo: still here");
    });
  }

  it("at 2026-07-28 fails instead of falling back when the server speaks only 2025", async () => {
    const seenMethods: string[] = [];
    const legacyOnly = createServer((req, res) => {
      void readBody(req).then((text) => {
        seenMethods.push(methodOf(JSON.parse(text)) ?? "?");
        // What a 2025-only streamable HTTP server answers a request it cannot route: 400, JSON-RPC error body.
        res.writeHead(400, { "content-type": "application/json" });
        res.end(JSON.stringify({ jsonrpc: "2.0", id: null, error: { code: -32600, message: "Bad Request: Server not initialized" } }));
      });
    });
    await new Promise<void>((resolve) => legacyOnly.listen(0, "127.0.0.1", resolve));
    try {
      const { port } = legacyOnly.address() as AddressInfo;
      await assert.rejects(
        runPythonClient({ url: `http://127.0.0.1:${port}/mcp`, token: TOKEN, era: "2026-07-28", script: [{ op: "list_tools" }] }),
        (e: unknown) => e instanceof PythonClientError && e.exitCode === 1 && e.fatal !== undefined && /server\/discover/.test(e.fatal) && e.fatalCode === -32600,
      );
      assert.deepEqual(seenMethods, ["server/discover"]);
    } finally {
      legacyOnly.closeAllConnections();
      await new Promise<void>((resolve) => legacyOnly.close(() => resolve()));
    }
  });

  for (const era of ["2026-07-28", "2025-11-25"] as const) {
    it(`at ${era} a 401 on the first request is fatal, with no retry and no OAuth discovery`, async () => {
      const seenRequests: string[] = [];
      const unauthorized = createServer((req, res) => {
        void readBody(req).then((text) => {
          seenRequests.push(`${req.method} ${req.url} ${text === "" ? "" : (methodOf(JSON.parse(text)) ?? "?")}`.trim());
          // What a bearer-protected resource server answers a bad token: a non-JSON-RPC body.
          res.writeHead(401, { "content-type": "application/json", "www-authenticate": 'Bearer error="invalid_token", resource_metadata="http://127.0.0.1:1/.well-known/oauth-protected-resource"' });
          res.end(JSON.stringify({ error: "invalid_token" }));
        });
      });
      await new Promise<void>((resolve) => unauthorized.listen(0, "127.0.0.1", resolve));
      try {
        const { port } = unauthorized.address() as AddressInfo;
        await assert.rejects(
          runPythonClient({ url: `http://127.0.0.1:${port}/mcp`, token: "expired", era, script: [{ op: "list_tools" }] }),
          (e: unknown) => e instanceof PythonClientError && e.exitCode === 1 && e.fatalCode === -32603 && /Server returned an error response/.test(e.fatal ?? ""),
        );
        assert.deepEqual(seenRequests, [`POST /mcp ${era === "2026-07-28" ? "server/discover" : "initialize"}`]);
      } finally {
        unauthorized.closeAllConnections();
        await new Promise<void>((resolve) => unauthorized.close(() => resolve()));
      }
    });
  }
});
