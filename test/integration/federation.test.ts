/**
 * Federation (issue 11 part 1, DESIGN.md contract 5): `/mcp` serves server-everything over HTTP, a
 * stdio server (server-everything stdio), an HTTP server of our own that pages its tools, and the
 * SDK v2 reference server (a 2026-07-28 upstream), all at once; `/mcp/v/NAME` a subset. Real SDK
 * clients of both eras over real HTTP: names namespaced and capped, lists merged across pages,
 * calls routed and decided per upstream, notifications reaching the right session, a dead
 * upstream named in the answer while the others serve.
 */
import assert from "node:assert/strict";
import { createServer } from "node:net";
import { Client as ClientV2, StreamableHTTPClientTransport as TransportV2 } from "@modelcontextprotocol/client";
import { Client as ClientV1 } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport as TransportV1 } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { ToolListChangedNotificationSchema } from "@modelcontextprotocol/sdk/types.js";
import { startReferenceServer, type ReferenceServer } from "../fixtures/reference-server.js";
import { LONG_TOOL, startPagingServer, type PagingServer } from "../fixtures/paging-server.js";
import { runPythonClient } from "../support/python-client.js";
import { everythingEntry, startEverythingHttp, startGatewayFor } from "../support/stack.js";

type Gateway = Awaited<ReturnType<typeof startGatewayFor>>;
const textOf = (content: unknown): string => (Array.isArray(content) ? content.map((c: { text?: string }) => c.text ?? "").join("") : "");

async function closedPortUrl(): Promise<string> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return `http://127.0.0.1:${port}/mcp`;
}

async function v1(url: string, token: string): Promise<{ client: ClientV1; transport: TransportV1 }> {
  const client = new ClientV1({ name: "v1-client", version: "1.0.0" }, { capabilities: {} });
  const transport = new TransportV1(new URL(url), { requestInit: { headers: { Authorization: `Bearer ${token}` } } });
  await client.connect(transport);
  return { client, transport };
}

async function allTools(client: ClientV1): Promise<{ names: string[]; pages: number }> {
  const names: string[] = [];
  let cursor: string | undefined;
  let pages = 0;
  do {
    const page = await client.listTools(cursor ? { cursor } : {});
    pages++;
    names.push(...page.tools.map((t) => t.name));
    cursor = page.nextCursor;
  } while (cursor);
  return { names, pages };
}

describe("federation: /mcp serves every upstream at once", function () {
  this.timeout(120_000);
  let everything: Awaited<ReturnType<typeof startEverythingHttp>>;
  let paging: PagingServer;
  let reference: ReferenceServer;
  let gw: Gateway;
  let admin: string;
  let analyst: string;

  before(async () => {
    everything = await startEverythingHttp();
    paging = await startPagingServer();
    reference = await startReferenceServer();
    gw = await startGatewayFor(
      {
        everything: { url: everything.url },
        local: { command: process.execPath, args: [everythingEntry, "stdio"] },
        paging: { url: paging.url },
        ref: { url: reference.url },
        gone: { url: await closedPortUrl() },
      },
      { federation: { separator: "__", upstreams: ["everything", "local", "paging", "ref"], virtualServers: { pair: ["everything", "paging"], flaky: ["paging", "gone"] } } },
    );
    admin = gw.token("alice", ["admin"]);
    analyst = gw.token("bob", ["analyst"]);
  });
  after(async () => {
    await gw?.close();
    await everything?.close();
    await paging?.close();
    await reference?.close();
  });
  const root = () => gw.url("").replace(/\/mcp\/$/, "/mcp");

  it("a 2025 client (SDK v1) sees every upstream's tools namespaced, merged across pages, capped at 64 characters, and calls each", async () => {
    const { client } = await v1(root(), admin);
    try {
      const info = client.getServerVersion();
      assert.equal(info?.name, "portcullis");
      const { names, pages } = await allTools(client);
      assert.ok(pages >= 3, `the paging upstream lists 2 tools a page, so the merged list has pages (${pages})`);
      for (const n of ["everything__echo", "local__echo", "paging__alpha", "paging__beta", "paging__echo", "paging__announce", "ref__test_simple_text"]) assert.ok(names.includes(n), `${n} in ${names.length} tools`);
      assert.equal(new Set(names).size, names.length, "no name twice");
      assert.ok(names.every((n) => n.length <= 64), "every name at most 64 characters");
      const long = names.find((n) => n.startsWith("paging__summarize"));
      assert.ok(long, "the long tool is listed, shortened");
      assert.equal(long.length, 64);
      assert.match(long, /-[0-9a-f]{8}$/);

      assert.equal(textOf((await client.callTool({ name: "everything__echo", arguments: { message: "hi" } })).content), "Echo: hi");
      assert.equal(textOf((await client.callTool({ name: "local__echo", arguments: { message: "from stdio" } })).content), "Echo: from stdio");
      assert.equal(textOf((await client.callTool({ name: "paging__echo", arguments: { text: "own" } })).content), "paging echo: own");
      assert.equal(textOf((await client.callTool({ name: long, arguments: {} })).content), "long tool ran");
      assert.match(textOf((await client.callTool({ name: "ref__test_simple_text", arguments: {} })).content), /simple text response/);

      await assert.rejects(client.callTool({ name: "nowhere__echo", arguments: {} }), /Unknown tool: nowhere__echo/);
    } finally {
      await client.close();
    }
    const events = gw.auditEvents();
    const call = events.find((e) => e.mcp.method === "tools/call" && e.mcp.tool === "echo" && e.mcp.server === "paging");
    assert.ok(call, "the routed call is on record as the upstream's own call");
    assert.equal(call.outcome, "allowed");
    assert.deepEqual(call.federation, { endpoint: "/mcp", name: "paging__echo" });
    assert.equal((call.input as { request: { server: string; tool: string } }).request.server, "paging", "decided with request.server = the upstream");
    const longCall = events.find((e) => e.mcp.method === "tools/call" && e.mcp.tool === LONG_TOOL);
    assert.ok(longCall, "the shortened name reached the upstream as its own name");
    const list = events.find((e) => e.mcp.method === "tools/list" && e.mcp.server === "*");
    const visible = list?.list?.visible;
    assert.ok(Array.isArray(visible), "one event per merged list page, with list.visible");
    assert.ok(visible.includes("everything__echo"));
    assert.equal(list?.federation?.endpoint, "/mcp");
    assert.equal(list?.federation?.members?.everything, "ok");
    // The paging upstream was asked for its own pages, with its own cursors.
    assert.deepEqual(paging.listCursors.slice(0, 3), [null, "2", "4"]);
  });

  it("prompts and resource templates are namespaced too; prompts/get and resources/read go to the upstream that has them", async () => {
    const { client } = await v1(root(), admin);
    try {
      const prompts = (await client.listPrompts()).prompts.map((p) => p.name);
      assert.ok(prompts.includes("paging__greet") && prompts.some((p) => p.startsWith("everything__")), prompts.join(","));
      const got = await client.getPrompt({ name: "paging__greet", arguments: { who: "Ada" } });
      assert.equal((got.messages[0]!.content as { text: string }).text, "Hello, Ada");
      const templates = (await client.listResourceTemplates()).resourceTemplates;
      const item = templates.find((t) => t.uriTemplate === "paging://items/{id}");
      assert.equal(item?.name, "paging__item");
      const resources = (await client.listResources()).resources.map((r) => r.uri);
      assert.ok(resources.includes("paging://notes/readme"));
      const read = await client.readResource({ uri: "paging://notes/readme" });
      assert.equal((read.contents[0] as { text: string }).text, "contents of paging://notes/readme");
      // Not listed, but fits the paging upstream's template: routed there.
      const fromTemplate = await client.readResource({ uri: "paging://items/42" });
      assert.equal((fromTemplate.contents[0] as { text: string }).text, "contents of paging://items/42");
    } finally {
      await client.close();
    }
  });

  it("a 2026-07-28 client (SDK v2 pinned) lists and calls through the federated endpoint, stateless", async () => {
    const client = new ClientV2({ name: "v2-client", version: "2.0.0" }, { capabilities: {}, versionNegotiation: { mode: { pin: "2026-07-28" } } });
    await client.connect(new TransportV2(new URL(root()), { requestInit: { headers: { Authorization: `Bearer ${admin}` } } }));
    try {
      assert.equal(client.getNegotiatedProtocolVersion(), "2026-07-28");
      const names: string[] = [];
      let cursor: string | undefined;
      do {
        const page = await client.listTools(cursor ? { cursor } : {});
        names.push(...page.tools.map((t) => t.name));
        cursor = page.nextCursor;
      } while (cursor);
      assert.ok(names.includes("everything__echo") && names.includes("paging__alpha") && names.includes("ref__test_simple_text"), names.join(","));
      assert.equal(textOf((await client.callTool({ name: "everything__echo", arguments: { message: "modern" } })).content), "Echo: modern");
      assert.equal(textOf((await client.callTool({ name: "local__echo", arguments: { message: "modern stdio" } })).content), "Echo: modern stdio");
      assert.match(textOf((await client.callTool({ name: "ref__test_simple_text", arguments: {} })).content), /simple text response/);
    } finally {
      await client.close();
    }
  });

  it("the Python SDK (2026-07-28 first) lists and calls through /mcp", async () => {
    const out = await runPythonClient({ url: root(), token: admin, era: "2026-07-28", script: [{ op: "list_tools" }, { op: "call_tool", name: "paging__echo", arguments: { text: "py" } }] });
    const [list, call] = out.results as Array<{ tools?: Array<{ name: string }>; content?: unknown; error?: unknown }>;
    assert.equal(out.negotiatedVersion, "2026-07-28");
    assert.ok((list?.tools ?? []).some((t) => t.name.startsWith("everything__")));
    assert.equal(call?.error, undefined, JSON.stringify(call));
    assert.equal(textOf(call?.content), "paging echo: py");
  });

  it("each item is decided for its own upstream: an analyst sees only what policy gives it on each, and a hidden tool is unknown", async () => {
    const { client } = await v1(root(), analyst);
    try {
      const { names } = await allTools(client);
      // The starter policy gives analysts echo and get-sum on `everything` and nothing elsewhere.
      assert.deepEqual(names.filter((n) => n.startsWith("everything__")).sort(), ["everything__echo", "everything__get-sum"]);
      assert.equal(names.filter((n) => !n.startsWith("everything__")).length, 0, names.join(","));
      assert.equal(textOf((await client.callTool({ name: "everything__echo", arguments: { message: "ok" } })).content), "Echo: ok");
      await assert.rejects(client.callTool({ name: "paging__echo", arguments: { text: "x" } }), /Unknown tool: paging__echo/);
    } finally {
      await client.close();
    }
    const denied = gw.auditEvents().find((e) => e.mcp.method === "tools/call" && e.agent.sub === "bob" && e.mcp.server === "paging");
    assert.equal(denied?.outcome, "denied");
    assert.equal((denied?.input as { request: { server: string } }).request.server, "paging");
  });

  it("list_changed from one upstream reaches the session that upstream belongs to, and the next list has the new tool", async () => {
    // Both sessions on /v/flaky (paging + a dead member): server-everything announces list_changed
    // on its own after initialize (it registers tools by client capability), which would blur whose
    // notification reached whom.
    const { client } = await v1(root() + "/v/flaky", admin);
    const other = await v1(root() + "/v/flaky", admin);
    let mine = 0;
    let theirs = 0;
    client.setNotificationHandler(ToolListChangedNotificationSchema, () => void mine++);
    other.client.setNotificationHandler(ToolListChangedNotificationSchema, () => void theirs++);
    try {
      await allTools(client);
      await allTools(other.client);
      // The SDK opens the GET stream after initialized; give both a moment to be listening.
      await new Promise((r) => setTimeout(r, 500));
      const [mineBefore, theirsBefore] = [mine, theirs];
      assert.equal(textOf((await client.callTool({ name: "paging__announce", arguments: {} })).content), "announced");
      for (let i = 0; i < 50 && mine === mineBefore; i++) await new Promise((r) => setTimeout(r, 100));
      assert.equal(mine, mineBefore + 1, "the announcing session heard list_changed");
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(theirs, theirsBefore, "another session (its own upstream session) did not");
      const { names } = await allTools(client);
      assert.ok(names.includes("paging__gamma"));
    } finally {
      await client.close();
      await other.client.close();
    }
  });

  it("a virtual server serves only its upstreams; a dead upstream is named in the answer while the others serve", async () => {
    const pair = await v1(root() + "/v/pair", admin);
    try {
      const { names } = await allTools(pair.client);
      assert.ok(names.some((n) => n.startsWith("everything__")) && names.some((n) => n.startsWith("paging__")));
      assert.ok(!names.some((n) => n.startsWith("local__") || n.startsWith("ref__")), names.join(","));
      await assert.rejects(pair.client.callTool({ name: "ref__test_simple_text", arguments: {} }), /Unknown tool/, "an upstream outside the virtual server is not reachable through it");
    } finally {
      await pair.client.close();
    }
    const res = await fetch(root() + "/v/flaky", {
      method: "POST",
      headers: { authorization: `Bearer ${admin}`, "content-type": "application/json", accept: "application/json, text/event-stream" },
      body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "initialize", params: { protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: "raw", version: "1" } } }),
    });
    assert.equal(res.status, 200);
    const init = (await res.json()) as { result: { _meta?: Record<string, { unavailable: Array<{ server: string; error: string }> }> } };
    const unavailable = init.result._meta?.["dev.portcullis/federation"]?.unavailable ?? [];
    assert.deepEqual(unavailable.map((u) => u.server), ["gone"]);
    assert.equal(unavailable[0]!.error, "upstream_unreachable");
    const flaky = await v1(root() + "/v/flaky", admin);
    try {
      const { names } = await allTools(flaky.client);
      assert.ok(names.includes("paging__echo") && !names.some((n) => n.startsWith("gone__")));
      await assert.rejects(flaky.client.callTool({ name: "gone__echo", arguments: {} }), /Unknown tool/);
    } finally {
      await flaky.client.close();
    }
    const initEvent = gw.auditEvents().find((e) => e.mcp.method === "initialize" && e.federation?.endpoint === "/mcp/v/flaky");
    assert.equal(initEvent?.federation?.members?.gone, "failed: upstream_unreachable");
    assert.equal(initEvent?.federation?.members?.paging, "ok");
  });

  it("bad input at the federated endpoint gets a clear error: a forged cursor, a method that names no upstream", async () => {
    const { client } = await v1(root(), admin);
    try {
      await assert.rejects(client.listTools({ cursor: Buffer.from(JSON.stringify({ nowhere: "1" })).toString("base64url") }), /cursor/);
      await assert.rejects(client.listTools({ cursor: "not a cursor" }), /cursor/);
      await assert.rejects(client.request({ method: "sampling/createMessage", params: { messages: [], maxTokens: 1 } }, (await import("@modelcontextprotocol/sdk/types.js")).CreateMessageResultSchema), /names no upstream|Method not found/);
      await client.ping();
    } finally {
      await client.close();
    }
  });
});
