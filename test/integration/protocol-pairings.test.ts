/**
 * Every era pairing with real clients (issue 9, DESIGN.md contract 5): the TS SDK v1 client
 * (2025-11-25), the TS SDK v2 client pinned at 2026-07-28 and in its default 2025 mode, and the
 * Python SDK at 2026-07-28 without fallback and at 2025-11-25, each through the gateway in front
 * of one SDK v2 server that serves both eras. The gateway is told which era to speak upstream
 * (`upstreams.NAME.protocol`), and `auto` must find 2026 by itself; a 2025-only upstream
 * (server-everything, HTTP and stdio) covers the other side. Each pairing lists, calls a tool,
 * and answers an elicitation the upstream asks for mid-call, however each era carries it.
 */
import assert from "node:assert/strict";
import { Client as ClientV2, StreamableHTTPClientTransport as TransportV2 } from "@modelcontextprotocol/client";
import { Client as ClientV1 } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport as TransportV1 } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { ElicitRequestSchema, ToolListChangedNotificationSchema } from "@modelcontextprotocol/sdk/types.js";
import { startReferenceServer, type ReferenceServer } from "../fixtures/reference-server.js";
import { runPythonClient } from "../support/python-client.js";
import { everythingEntry, startEverythingHttp, startGatewayFor } from "../support/stack.js";

type Gateway = Awaited<ReturnType<typeof startGatewayFor>>;
const ELICITATION_TOOL = "test_input_required_result_elicitation";

/** The plain call each pairing makes: the reference server's simple tool, or server-everything's echo. */
interface Probe {
  tool: string;
  args: Record<string, string>;
  elicit: boolean;
}
const REFERENCE: Probe = { tool: "test_simple_text", args: {}, elicit: true };
const EVERYTHING: Probe = { tool: "echo", args: { message: "hi" }, elicit: false };

/** What one client did through the gateway, in the same shape for every client. */
interface Outcome {
  version: string | undefined;
  tools: string[];
  simple: string;
  elicited: string | null;
}

const textOf = (content: unknown): string => (Array.isArray(content) ? content.map((c: { text?: string }) => c.text ?? "").join("") : "");

async function viaV1(url: string, token: string, p: Probe): Promise<Outcome> {
  const client = new ClientV1({ name: "v1-client", version: "1.0.0" }, { capabilities: { elicitation: {} } });
  client.setRequestHandler(ElicitRequestSchema, async () => ({ action: "accept", content: { name: "Ada" } }));
  const transport = new TransportV1(new URL(url), { requestInit: { headers: { Authorization: `Bearer ${token}` } } });
  await client.connect(transport);
  try {
    const tools = (await client.listTools()).tools.map((t) => t.name);
    const simple = textOf((await client.callTool({ name: p.tool, arguments: p.args })).content);
    const elicited = p.elicit ? textOf((await client.callTool({ name: ELICITATION_TOOL, arguments: {} })).content) : null;
    return { version: transport.protocolVersion, tools, simple, elicited };
  } finally {
    await client.close();
  }
}

async function viaV2(url: string, token: string, mode: "legacy" | "modern", p: Probe): Promise<Outcome> {
  const client = new ClientV2({ name: "v2-client", version: "2.0.0" }, { capabilities: { elicitation: {} }, ...(mode === "modern" && { versionNegotiation: { mode: { pin: "2026-07-28" } } }) });
  client.setRequestHandler("elicitation/create", async () => ({ action: "accept", content: { name: "Ada" } }));
  await client.connect(new TransportV2(new URL(url), { requestInit: { headers: { Authorization: `Bearer ${token}` } } }));
  try {
    const tools = (await client.listTools()).tools.map((t) => t.name);
    const simple = textOf((await client.callTool({ name: p.tool, arguments: p.args })).content);
    const elicited = p.elicit ? textOf((await client.callTool({ name: ELICITATION_TOOL, arguments: {} })).content) : null;
    return { version: client.getNegotiatedProtocolVersion(), tools, simple, elicited };
  } finally {
    await client.close();
  }
}

async function viaPython(url: string, token: string, era: "2026-07-28" | "2025-11-25", p: Probe): Promise<Outcome> {
  const out = await runPythonClient({
    url,
    token,
    era,
    elicitAccept: { name: "Ada" },
    script: [{ op: "list_tools" }, { op: "call_tool", name: p.tool, arguments: p.args }, ...(p.elicit ? [{ op: "call_tool" as const, name: ELICITATION_TOOL, arguments: {} }] : [])],
  });
  const [list, simple, elicited] = out.results as Array<{ tools?: Array<{ name: string }>; content?: unknown; error?: unknown }>;
  assert.equal(simple?.error, undefined, JSON.stringify(simple));
  return { version: out.negotiatedVersion, tools: (list?.tools ?? []).map((t) => t.name), simple: textOf(simple?.content), elicited: p.elicit ? textOf(elicited?.content) : null };
}

const CLIENTS: Array<{ name: string; era: "2025" | "2026"; run: (url: string, token: string, p: Probe) => Promise<Outcome> }> = [
  { name: "TS SDK v1", era: "2025", run: (u, t, p) => viaV1(u, t, p) },
  { name: "TS SDK v2 (default, 2025)", era: "2025", run: (u, t, p) => viaV2(u, t, "legacy", p) },
  { name: "TS SDK v2 pinned at 2026-07-28", era: "2026", run: (u, t, p) => viaV2(u, t, "modern", p) },
  { name: "Python SDK at 2026-07-28", era: "2026", run: (u, t, p) => viaPython(u, t, "2026-07-28", p) },
  { name: "Python SDK at 2025-11-25", era: "2025", run: (u, t, p) => viaPython(u, t, "2025-11-25", p) },
];

describe("every era pairing through the gateway, with real clients", function () {
  this.timeout(120_000);
  let reference: ReferenceServer;
  let everything: Awaited<ReturnType<typeof startEverythingHttp>>;
  let gw: Gateway;
  let token: string;

  before(async () => {
    reference = await startReferenceServer();
    everything = await startEverythingHttp();
    gw = await startGatewayFor({
      "ref-2026": { url: reference.url, protocol: "2026-07-28" },
      "ref-2025": { url: reference.url, protocol: "2025-11-25" },
      "ref-auto": { url: reference.url },
      everything: { url: everything.url },
      "everything-stdio": { command: process.execPath, args: [everythingEntry, "stdio"] },
    });
    token = gw.token("alice", ["admin"]);
  });
  after(async () => {
    await gw?.close();
    await reference?.close();
    await everything?.close();
  });

  for (const upstream of ["ref-2026", "ref-2025", "ref-auto"]) {
    for (const client of CLIENTS) {
      it(`${client.name} → gateway → ${upstream}: lists, calls, and answers the upstream's elicitation`, async () => {
        const out = await client.run(gw.url(upstream), token, REFERENCE);
        assert.equal(out.version, client.era === "2026" ? "2026-07-28" : "2025-11-25");
        assert.ok(out.tools.includes("test_simple_text") && out.tools.includes(ELICITATION_TOOL), out.tools.join(","));
        assert.equal(out.simple, "This is a simple text response for testing.");
        assert.equal(out.elicited, "Hello, Ada!");
      });
    }
  }

  for (const upstream of ["everything", "everything-stdio"]) {
    for (const client of CLIENTS) {
      it(`${client.name} → gateway → ${upstream} (a 2025-only server)`, async () => {
        const out = await client.run(gw.url(upstream), token, EVERYTHING).catch((err: unknown) => {
          throw new Error(`${client.name} → ${upstream}: ${String(err)}`);
        });
        assert.equal(out.version, client.era === "2026" ? "2026-07-28" : "2025-11-25");
        assert.ok(out.tools.includes("echo"), out.tools.join(","));
        assert.equal(out.simple, "Echo: hi");
      });
    }
  }

  it("a 2025 client's GET stream in front of a 2026 upstream carries its list changes (subscriptions/listen behind it)", async () => {
    const client = new ClientV1({ name: "v1-listener", version: "1.0.0" });
    let changed!: () => void;
    const notified = new Promise<void>((resolve) => (changed = resolve));
    client.setNotificationHandler(ToolListChangedNotificationSchema, async () => changed());
    await client.connect(new TransportV1(new URL(gw.url("ref-2026")), { requestInit: { headers: { Authorization: `Bearer ${token}` } } }));
    try {
      assert.deepEqual(await client.subscribeResource({ uri: "test://static-text" }), {});
      // The v1 client opens its GET stream after initialize; give the listen request a moment upstream.
      await new Promise((r) => setTimeout(r, 300));
      await client.callTool({ name: "test_trigger_tool_change", arguments: {} });
      await Promise.race([notified, new Promise((_, reject) => setTimeout(() => reject(new Error("no notifications/tools/list_changed on the GET stream")), 5_000))]);
      await client.callTool({ name: "test_trigger_tool_change", arguments: {} }); // back as it was
    } finally {
      await client.close();
    }
  });

  it("records 2026 requests with protocol_version 2026-07-28 and no session, 2025 ones with their session", () => {
    const calls = gw.auditEvents().filter((e) => e.mcp.method === "tools/call" && e.mcp.server === "ref-auto");
    const input = (e: (typeof calls)[number]) => (e.input as { request: { protocol_version: string | null; session_id: string | null } }).request;
    assert.ok(calls.some((e) => input(e).protocol_version === "2026-07-28" && input(e).session_id === null && e.mcp.session_id === null));
    assert.ok(calls.some((e) => input(e).protocol_version === "2025-11-25" && typeof input(e).session_id === "string"));
  });
});
