import assert from "node:assert/strict";
import { McpError } from "@modelcontextprotocol/sdk/types.js";
import { EXPECTED_CODE, type DefectKind } from "../fakes/jwks.js";
import { startStack, type Stack } from "../support/stack.js";
import { assertAuditEvents } from "../support/audit-schema.js";

const INIT = { jsonrpc: "2.0", id: 1, method: "initialize", params: { protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: "raw", version: "1" } } };

async function post(url: string, body: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", accept: "application/json, text/event-stream", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
  return { status: res.status, headers: res.headers, body: await res.text() };
}

const textOf = (r: object) => ((r as { content?: Array<{ text?: string }> }).content ?? []).map((c) => c.text ?? "").join("");

describe("gateway end to end (demo upstream, real opa bundle, SDK client)", function () {
  this.timeout(60_000);
  let stack: Stack;
  before(async () => {
    stack = await startStack({ everythingHttp: true, everythingStdio: true });
  });
  after(async () => {
    await stack?.close();
  });

  it("allows a granted tool call and relays the upstream's result", async () => {
    const { client } = await stack.connect("demo", stack.token("alice", ["analyst"]));
    const result = await client.callTool({ name: "echo", arguments: { text: "hi" } });
    assert.equal(result.isError, undefined);
    assert.equal(textOf(result), "hi");
  });

  it("filters tools/list per role", async () => {
    const { client: analyst } = await stack.connect("demo", stack.token("alice", ["analyst"]));
    const { client: admin } = await stack.connect("demo", stack.token("root", ["admin"]));
    const { client: nobody } = await stack.connect("demo", stack.token("eve", []));
    assert.deepEqual((await analyst.listTools()).tools.map((t) => t.name).sort(), ["add", "echo", "read_file"]);
    assert.deepEqual((await admin.listTools()).tools.map((t) => t.name).sort(), ["add", "delete_record", "echo", "read_file"]);
    assert.deepEqual((await nobody.listTools()).tools, []);
  });

  it("denies by argument with the policy's message as an isError result", async () => {
    const { client } = await stack.connect("demo", stack.token("alice", ["analyst"]));
    for (const path of ["/etc/passwd", "/data/../etc/passwd"]) {
      const result = await client.callTool({ name: "read_file", arguments: { path } });
      assert.equal(result.isError, true, path);
      assert.match(textOf(result), /limited to \/data/);
    }
    const ok = await client.callTool({ name: "read_file", arguments: { path: "/data/q3.csv" } });
    assert.equal(ok.isError, undefined);
    assert.match(textOf(ok), /north,120/);
  });

  it("answers a hidden tool exactly like a tool that does not exist", async () => {
    const { client } = await stack.connect("demo", stack.token("alice", ["analyst"]));
    const errorOf = async (name: string) => {
      try {
        await client.callTool({ name, arguments: { id: "1" } });
      } catch (err) {
        assert.ok(err instanceof McpError);
        return { code: err.code, message: err.message.replace(name, "<name>") };
      }
      assert.fail(`${name} was not refused`);
    };
    const hidden = await errorOf("delete_record");
    const missing = await errorOf("no_such_tool");
    assert.deepEqual(hidden, missing);
    assert.equal(hidden.code, -32602);
  });

  it("lets admin call the destructive tool that analysts cannot see", async () => {
    const { client } = await stack.connect("demo", stack.token("root", ["admin"]));
    const result = await client.callTool({ name: "delete_record", arguments: { id: "42" } });
    assert.equal(textOf(result), "deleted 42");
  });

  it("gates resources and prompts through the same policy", async () => {
    const { client } = await stack.connect("demo", stack.token("alice", ["analyst"]));
    const resources = await client.listResources();
    assert.deepEqual(resources.resources.map((r) => r.uri), ["demo://readme"]);
    const read = await client.readResource({ uri: "demo://readme" });
    assert.match(JSON.stringify(read.contents), /behind portcullis/);
    const prompt = await client.getPrompt({ name: "summarize", arguments: { text: "x" } });
    assert.equal(prompt.messages.length, 1);
    const { client: nobody } = await stack.connect("demo", stack.token("eve", []));
    assert.deepEqual((await nobody.listResources()).resources, []);
    await assert.rejects(nobody.readResource({ uri: "demo://readme" }), (err: unknown) => err instanceof McpError && err.code === -32602);
  });

  it("binds a session to its subject: another subject presenting the id gets 404", async () => {
    const { transport } = await stack.connect("demo", stack.token("alice", ["analyst"]));
    const sid = transport.sessionId;
    assert.ok(sid);
    const list = { jsonrpc: "2.0", id: 2, method: "tools/list", params: {} };
    const asBob = await post(stack.url("demo"), list, { authorization: `Bearer ${stack.token("bob", ["analyst"])}`, "mcp-session-id": sid, "mcp-protocol-version": "2025-11-25" });
    assert.equal(asBob.status, 404);
    const asAlice = await post(stack.url("demo"), list, { authorization: `Bearer ${stack.token("alice", ["analyst"])}`, "mcp-session-id": sid, "mcp-protocol-version": "2025-11-25" });
    assert.equal(asAlice.status, 200);
    assert.match(asAlice.body, /"echo"/);
  });

  it("ends a session on DELETE", async () => {
    const token = stack.token("alice", ["analyst"]);
    const { transport } = await stack.connect("demo", token);
    const sid = transport.sessionId!;
    const del = await fetch(stack.url("demo"), { method: "DELETE", headers: { authorization: `Bearer ${token}`, "mcp-session-id": sid } });
    assert.equal(del.status, 200);
    const after = await post(stack.url("demo"), { jsonrpc: "2.0", id: 3, method: "ping" }, { authorization: `Bearer ${token}`, "mcp-session-id": sid });
    assert.equal(after.status, 404);
  });

  it("never forwards the agent's token, cookies or the gateway's session id upstream", async () => {
    const token = stack.token("alice", ["analyst"]);
    const init = await post(stack.url("demo"), INIT, { authorization: `Bearer ${token}`, cookie: "sid=agent-cookie" });
    assert.equal(init.status, 200);
    const sid = init.headers.get("mcp-session-id");
    assert.ok(sid);
    const call = { jsonrpc: "2.0", id: 4, method: "tools/call", params: { name: "echo", arguments: { text: "x" } } };
    const res = await post(stack.url("demo"), call, { authorization: `Bearer ${token}`, cookie: "sid=agent-cookie", "mcp-session-id": sid });
    assert.equal(res.status, 200);
    const seen = JSON.stringify(stack.upstreamHeaders);
    assert.ok(!seen.includes(token), "agent token reached the upstream");
    assert.ok(!seen.includes("agent-cookie"), "agent cookie reached the upstream");
    assert.ok(!seen.includes(sid), "gateway session id reached the upstream");
    assert.ok(stack.upstreamHeaders.every((h) => h.authorization === "Bearer upstream-secret-of-the-gateway"));
  });

  describe("refuses every bad token with 401 and a resource_metadata challenge", () => {
    const kinds: DefectKind[] = ["expired", "wrong_audience", "wrong_issuer", "alg_none", "hs256_public_key", "unknown_kid", "wrong_key", "not_yet_valid", "garbage", "tampered", "no_exp"];
    for (const kind of kinds) {
      it(`${kind} → 401 (${EXPECTED_CODE[kind]})`, async () => {
        const res = await post(stack.url("demo"), INIT, { authorization: `Bearer ${stack.idp.mintDefective(kind)}` });
        assert.equal(res.status, 401);
        const challenge = res.headers.get("www-authenticate") ?? "";
        assert.match(challenge, /^Bearer /);
        assert.ok(challenge.includes(`resource_metadata="${stack.gateway.url}/.well-known/oauth-protected-resource/mcp/demo"`), challenge);
        assert.match(challenge, /error="invalid_token"/);
        const event = stack.auditEvents().reverse().find((e) => e.outcome === "unauthenticated" && e.error?.code === EXPECTED_CODE[kind]);
        assert.ok(event, `no unauthenticated audit event with ${EXPECTED_CODE[kind]}`);
      });
    }
    it("missing token → 401 without error= (RFC 6750 §3.1)", async () => {
      const res = await post(stack.url("demo"), INIT);
      assert.equal(res.status, 401);
      assert.match(res.headers.get("www-authenticate") ?? "", /^Bearer resource_metadata="[^"]+"$/);
    });
  });

  it("serves RFC 9728 protected resource metadata naming the issuer", async () => {
    const res = await fetch(`${stack.gateway.url}/.well-known/oauth-protected-resource/mcp/demo`);
    assert.equal(res.status, 200);
    const prm = (await res.json()) as Record<string, unknown>;
    assert.equal(prm.resource, stack.url("demo"));
    assert.deepEqual(prm.authorization_servers, [stack.idp.issuer]);
    const root = (await (await fetch(`${stack.gateway.url}/.well-known/oauth-protected-resource`)).json()) as Record<string, unknown>;
    assert.deepEqual(root.authorization_servers, [stack.idp.issuer]);
  });

  it("writes contract-4 audit events for allowed, denied and unauthenticated requests", async () => {
    const { client } = await stack.connect("demo", stack.token("carol", ["analyst"]));
    await client.callTool({ name: "echo", arguments: { text: "audited", password: "hunter2" } });
    await client.callTool({ name: "read_file", arguments: { path: "/etc/shadow" } });
    const events = stack.auditEvents().filter((e) => e.agent.sub === "carol" && e.mcp.method === "tools/call");
    const allowed = events.find((e) => e.outcome === "allowed");
    const denied = events.find((e) => e.outcome === "denied");
    assert.ok(allowed && denied);
    for (const e of [allowed, denied]) {
      assert.match(e.decision_id, /^[0-9a-f-]{36}$/);
      assert.match(e.timestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/);
      assert.equal(e.path, "mcp/authz/decision");
      assert.equal(e.bundles["mcp-authz"]?.revision, "test-rev-1");
      assert.equal(e.mcp.server, "demo");
      assert.equal(typeof e.latency_ms.total, "number");
      assert.equal(typeof e.labels.id, "string");
    }
    assert.equal(allowed.mcp.tool, "echo");
    assert.equal(allowed.tool_result?.is_error, false);
    assert.match(allowed.tool_result?.content ?? "", /audited/);
    assert.equal(allowed.tool_result?.sha256.length, 64);
    assert.equal(typeof allowed.latency_ms.upstream, "number");
    const input = allowed.input as { request: { arguments: Record<string, unknown> } };
    assert.equal(input.request.arguments.password, "**REDACTED**");
    assert.ok(allowed.masked.includes("/input/request/arguments/password"));
    assert.equal((denied.result as { allow: boolean }).allow, false);
    // Every event this suite produced so far matches the schema SIEMs are given.
    assertAuditEvents(stack.auditEvents());
  });

  it("proxies the third-party server-everything over Streamable HTTP (SSE answers)", async () => {
    const { client } = await stack.connect("everything", stack.token("alice", ["analyst"]));
    const names = (await client.listTools()).tools.map((t) => t.name);
    assert.ok(names.includes("echo") && names.includes("get-sum"), names.join(","));
    assert.ok(!names.includes("get-env"), "analyst must not see get-env");
    const result = await client.callTool({ name: "echo", arguments: { message: "via sse" } });
    assert.match(textOf(result), /via sse/);
  });

  it("proxies a stdio upstream (server-everything spawned per session)", async () => {
    const { client } = await stack.connect("stdio", stack.token("root", ["admin"]));
    const result = await client.callTool({ name: "get-sum", arguments: { a: 2, b: 3 } });
    assert.match(textOf(result), /5/);
  });

  it("refuses edge garbage with JSON-RPC errors, never a crash", async () => {
    const auth = { authorization: `Bearer ${stack.token("alice", ["analyst"])}` };
    assert.equal((await post(stack.url("demo"), "{not json", auth)).status, 400);
    assert.equal((await post(stack.url("demo"), [INIT], auth)).status, 400);
    assert.equal((await post(stack.url("nope"), INIT, auth)).status, 404);
    assert.equal((await post(stack.url("demo"), INIT, { ...auth, origin: "https://evil.example" })).status, 403);
    assert.equal((await post(stack.url("demo"), { jsonrpc: "2.0", id: 9, method: "tools/list" }, auth)).status, 400);
    const big = await post(stack.url("demo"), JSON.stringify({ jsonrpc: "2.0", id: 1, method: "ping", params: { x: "a".repeat(5 * 1024 * 1024) } }), auth);
    assert.equal(big.status, 413);
    const res = await fetch(stack.url("demo"), { method: "POST", headers: { ...auth, "content-type": "text/plain" }, body: JSON.stringify(INIT) });
    assert.equal(res.status, 415);
  });
});
