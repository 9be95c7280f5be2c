import assert from "node:assert/strict";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { startDemoUpstream } from "../../demo/upstream.js";
import { startGatewayFor } from "../support/stack.js";

/** The console as the gateway serves it: fed by the gateway's own audit stream, behind the operator role. */
describe("console in the gateway: /console reads the gateway's own audit stream", function () {
  this.timeout(30_000);

  it("serves the page, refuses the API without the operator role, and shows a real call to an operator", async () => {
    const demo = await startDemoUpstream();
    const g = await startGatewayFor({ demo: { url: demo.url } });
    const client = new Client({ name: "console-test", version: "1" });
    try {
      await client.connect(new StreamableHTTPClientTransport(new URL(g.url("demo")), { requestInit: { headers: { Authorization: `Bearer ${g.token("alice", ["analyst"])}` } } }));
      await client.callTool({ name: "echo", arguments: { text: "seen by the operator" } });
      const page = await fetch(`${g.gateway.url}/console`);
      assert.equal(page.status, 200);
      assert.match(page.headers.get("content-security-policy") ?? "", /default-src 'self'/);
      const api = `${g.gateway.url}/console/api/events?server=demo&tool=echo`;
      assert.equal((await fetch(api)).status, 401);
      assert.equal((await fetch(api, { headers: { authorization: `Bearer ${g.token("alice", ["analyst"])}` } })).status, 403, "an agent without the operator role");
      const res = await fetch(api, { headers: { authorization: `Bearer ${g.token("ops-1", ["portcullis-operator"])}` } });
      assert.equal(res.status, 200);
      const body = JSON.stringify(await res.json());
      assert.match(body, /"alice"/);
      assert.match(body, /tools\/call/);
      assert.match(body, /allowed/);
    } finally {
      await client.close().catch(() => undefined);
      await g.close();
      await demo.close();
    }
  });
});
