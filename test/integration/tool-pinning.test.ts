import assert from "node:assert/strict";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { startRugPullServer, type RugPullServer } from "../fixtures/rug-pull-server.js";
import { runPortcullis, showRun } from "../support/cli.js";
import { startGatewayFor } from "../support/stack.js";
import { cpSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { pinOf } from "../../gateway/integrity/index.js";
import { buildSignedBundle, defaultPolicyDir, generateKeyPair, makeTempDir } from "../support/bundles.js";

type Gateway = Awaited<ReturnType<typeof startGatewayFor>>;

/** Issue 11 part 2: a rug pull through the gateway, with the SDK client and the real CLI. */
describe("tool pinning: a tool that changes after it was trusted is hidden and refused until approved", function () {
  this.timeout(60_000);
  let rug: RugPullServer;
  let g: Gateway;
  let client: Client;

  before(async () => {
    rug = await startRugPullServer();
    g = await startGatewayFor({ rug: { url: rug.url } });
    client = new Client({ name: "pinning-test", version: "1" });
    await client.connect(new StreamableHTTPClientTransport(new URL(g.url("rug")), { requestInit: { headers: { Authorization: `Bearer ${g.token("root", ["admin"])}` } } }));
  });
  after(async () => {
    await client?.close().catch(() => undefined);
    await g?.close();
    await rug?.close();
  });

  const names = async () => (await client.listTools()).tools.map((t) => t.name);
  const call = () => client.callTool({ name: "get_weather", arguments: { city: "Oslo" } });
  const lastCall = () => g.auditEvents().filter((e) => e.mcp.method === "tools/call").at(-1)!;

  it("pins on first sight: listed and callable", async () => {
    assert.deepEqual(await names(), ["get_weather"]);
    assert.deepEqual((await call()).content, [{ type: "text", text: "sunny in Oslo" }]);
    assert.equal(lastCall().outcome, "allowed");
  });

  it("a changed description: hidden from the list, the call refused like a denial, the audit says what changed", async () => {
    rug.phase(1);
    assert.deepEqual(await names(), []);
    const refused = await call();
    assert.equal(refused.isError, true);
    assert.match(JSON.stringify(refused.content), /definition changed since it was approved/);
    const e = lastCall();
    assert.equal(e.outcome, "denied");
    assert.equal(e.error?.code, "tool_drifted");
    assert.match(e.error?.message ?? "", /description changed: .*Gets the weather for a city\..*id_rsa/);
    const list = g.auditEvents().filter((ev) => ev.mcp.method === "tools/list").at(-1)!;
    assert.deepEqual(list.list?.hidden, ["get_weather"]);
    assert.equal(list.error?.code, "tool_drifted");
  });

  it("tools list shows the drift; tools approve (the real CLI) lets the new definition through", async () => {
    const listed = await runPortcullis(["tools", "list", "--config", g.configFile, "--json"]);
    assert.equal(listed.code, 0, showRun(listed));
    assert.match(listed.stdout, /drifted/);
    const approved = await runPortcullis(["tools", "approve", "--config", g.configFile, "--server", "rug", "--tool", "get_weather", "--as", "sec-ops"]);
    assert.equal(approved.code, 0, showRun(approved));
    // The local store is re-read within about a second of a change.
    for (let i = 0; i < 40 && (await names()).length === 0; i++) await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(await names(), ["get_weather"]);
    assert.deepEqual((await call()).content, [{ type: "text", text: "sunny in Oslo" }]);
  });

  it("then a changed input schema drifts again", async () => {
    rug.phase(2);
    assert.deepEqual(await names(), []);
    assert.equal((await call()).isError, true);
    assert.match(lastCall().error?.message ?? "", /inputSchema/);
  });

  it("a shadowing tool whose name folds to the same is refused with the one it shadows", async () => {
    const approved = await runPortcullis(["tools", "approve", "--config", g.configFile, "--server", "rug", "--tool", "get_weather", "--as", "sec-ops"]);
    assert.equal(approved.code, 0, showRun(approved));
    for (let i = 0; i < 40 && (await names()).length === 0; i++) await new Promise((r) => setTimeout(r, 100));
    rug.phase(3);
    assert.deepEqual(await names(), [], "neither the original nor its look-alike is shown");
    const list = g.auditEvents().filter((ev) => ev.mcp.method === "tools/list").at(-1)!;
    assert.equal(list.error?.code, "tool_name_collision");
    assert.match(list.error?.message ?? "", /collide/);
    // Calling either name is refused as well, not only hiding it: nothing reaches the upstream.
    const refused = await call();
    assert.equal(refused.isError, true);
    assert.match(JSON.stringify(refused.content), /collides with another tool/);
    const event = lastCall();
    assert.equal(event.outcome, "denied");
    assert.equal(event.error?.code, "tool_name_collision");
    assert.equal(event.latency_ms.upstream, null, "not forwarded");
  });
});

describe("tool pinning: a digest named in policy data is the pin (pinnedBy policy_data)", function () {
  this.timeout(120_000);
  let rug: RugPullServer;
  let g: Gateway;
  let client: Client;

  before(async () => {
    rug = await startRugPullServer();
    // The digest of get_weather as the rug server lists it now (phase 0), computed as the gateway does.
    const direct = new Client({ name: "direct", version: "1" });
    await direct.connect(new StreamableHTTPClientTransport(new URL(rug.url)));
    const listed = (await direct.listTools()).tools[0]!;
    await direct.close();
    const digest = pinOf("rug", listed, "policy_data", 0).digest;
    // A bundle of the starter policy whose data pins it, built and signed by the real opa.
    const dir = await makeTempDir("pc-datapins-");
    cpSync(defaultPolicyDir(), join(dir, "policies"), { recursive: true });
    const dataFile = join(dir, "policies", "data.json");
    const data = JSON.parse(readFileSync(dataFile, "utf8")) as { portcullis: Record<string, unknown> };
    data.portcullis.tool_pins = { rug: { get_weather: digest } };
    writeFileSync(dataFile, JSON.stringify(data));
    const keys = generateKeyPair("rsa");
    const bundle = join(dir, "bundle.tar.gz");
    await buildSignedBundle({ policyDir: join(dir, "policies"), outFile: bundle, privateKeyPem: keys.privateKeyPem, algorithm: "RS256", revision: "datapins-1" });
    writeFileSync(join(dir, "pub.pem"), keys.publicKeyPem);
    // The description changes before the gateway ever saw the tool: first sight must not pin it.
    rug.phase(1);
    g = await startGatewayFor({ rug: { url: rug.url } }, { policy: { bundle, verificationKey: join(dir, "pub.pem") } });
    client = new Client({ name: "pinning-test", version: "1" });
    await client.connect(new StreamableHTTPClientTransport(new URL(g.url("rug")), { requestInit: { headers: { Authorization: `Bearer ${g.token("root", ["admin"])}` } } }));
  });
  after(async () => {
    await client?.close().catch(() => undefined);
    await g?.close();
    await rug?.close();
  });

  it("a definition other than the one policy data pins is hidden and refused even on first sight", async () => {
    assert.deepEqual((await client.listTools()).tools.map((t) => t.name), []);
    const refused = await client.callTool({ name: "get_weather", arguments: { city: "Oslo" } });
    assert.equal(refused.isError, true);
    const event = g.auditEvents().filter((e) => e.mcp.method === "tools/call").at(-1)!;
    assert.equal(event.error?.code, "tool_drifted");
    assert.match(event.error?.message ?? "", /policy data/);
  });

  it("the definition whose digest the data names is served", async () => {
    rug.phase(0);
    assert.deepEqual((await client.listTools()).tools.map((t) => t.name), ["get_weather"]);
    assert.deepEqual((await client.callTool({ name: "get_weather", arguments: { city: "Oslo" } })).content, [{ type: "text", text: "sunny in Oslo" }]);
  });
});
