import assert from "node:assert/strict";
import { request } from "node:http";
import { originPolicy } from "../../../gateway/proxy/origin-policy.js";
import { Harness, INITIALIZE } from "./pipeline-harness.js";

describe("Host and Origin (DNS rebinding; issue 9 §2)", () => {
  it("serves the listen address and, on loopback, localhost, 127.0.0.1 and [::1] at that port", () => {
    const p = originPolicy({ allowedOrigins: [], listen: { host: "127.0.0.1", port: 8080 } });
    for (const host of ["127.0.0.1:8080", "localhost:8080", "LOCALHOST:8080", "[::1]:8080"]) assert.equal(p.hostAllowed(host), true, host);
    for (const host of ["evil.example.com", "evil.example.com:8080", "127.0.0.1:9999", undefined]) assert.equal(p.hostAllowed(host), false, String(host));
    assert.equal(p.originAllowed("http://localhost:8080"), true, "the gateway's own origin is allowed by default");
    assert.equal(p.originAllowed("http://evil.example.com"), false);
  });
  it("serves publicUrl's host and edge.allowedHosts; bound to every interface with neither, it cannot know its names", () => {
    const p = originPolicy({ allowedOrigins: ["https://app.example"], allowedHosts: ["lb.internal:8080"], publicUrl: "https://mcp.example.com", listen: { host: "0.0.0.0", port: 8080 } });
    assert.deepEqual(["mcp.example.com", "lb.internal:8080", "evil.example"].map((h) => p.hostAllowed(h)), [true, true, false]);
    assert.equal(p.originAllowed("https://mcp.example.com"), true);
    assert.equal(p.originAllowed("https://app.example"), true);
    const open = originPolicy({ allowedOrigins: [], listen: { host: "0.0.0.0", port: 8080 } });
    assert.equal(open.hostAllowed("anything"), true);
  });

  it("refuses a request whose Host is not the gateway's with 403, on record, before identity", async () => {
    const h = await Harness.start();
    try {
      const url = new URL(h.url());
      const body = JSON.stringify(INITIALIZE);
      const status = await new Promise<number>((resolve, reject) => {
        const req = request({ host: "127.0.0.1", port: url.port, path: url.pathname, method: "POST", headers: { host: "evil.example.com", "content-type": "application/json", "content-length": Buffer.byteLength(body), authorization: "Bearer alice-token" } }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.on("error", reject);
        req.end(body);
      });
      assert.equal(status, 403);
      assert.deepEqual(h.verifier.seen, []);
      assert.deepEqual([h.audit.only().outcome, h.audit.only().error?.code], ["invalid", "host_forbidden"]);
      // The gateway's own origin is served.
      const own = await h.send(INITIALIZE, { headers: { origin: `http://localhost:${url.port}` } });
      assert.equal(own.status, 200, own.text);
    } finally {
      await h.close();
    }
  });
});
