import assert from "node:assert/strict";
import { UpstreamError } from "../../../gateway/proxy/upstream.js";
import { Harness, INITIALIZE, TOKENS } from "./pipeline-harness.js";

const getStream = (h: Harness, session: string) =>
  fetch(h.url(), { headers: { authorization: `Bearer ${TOKENS.alice}`, "mcp-session-id": session, accept: "text/event-stream" } });

describe("proxy pipeline: streams, re-initialize and upstream failures", () => {
  it("opens one server→client stream per session even when two GETs race", async () => {
    const h = await Harness.start({ script: { listen: "open" } });
    try {
      const session = await h.initialize();
      const [a, b] = await Promise.all([getStream(h, session), getStream(h, session)]);
      assert.deepEqual([a.status, b.status].sort(), [200, 409]);
      await (a.status === 200 ? a : b).body?.cancel();
    } finally {
      await h.close();
    }
  });

  it("ends the client's stream when the upstream ends its own", async () => {
    const h = await Harness.start({ script: { listen: "open" } });
    try {
      const session = await h.initialize();
      const res = await getStream(h, session);
      assert.equal(res.status, 200);
      h.upstream.endStream();
      const reader = res.body!.getReader();
      while (!(await reader.read()).done); // resolves only if the gateway ends the response
      // The slot is free again: a new GET opens a new stream.
      const again = await getStream(h, session);
      assert.equal(again.status, 200);
      await again.body?.cancel();
    } finally {
      await h.close();
    }
  });

  it("answers GET with 405 and an Allow header when the upstream has no stream", async () => {
    const h = await Harness.start();
    try {
      const session = await h.initialize();
      const reply = await h.send(undefined, { method: "GET", session });
      assert.equal(reply.status, 405);
      assert.equal(reply.headers.get("allow"), "POST, DELETE");
    } finally {
      await h.close();
    }
  });

  it("refuses a second initialize inside a session instead of renegotiating upstream", async () => {
    const h = await Harness.start();
    try {
      const session = await h.initialize();
      const reply = await h.send({ ...INITIALIZE, id: 7 }, { session });
      assert.equal(reply.status, 400);
      assert.equal(reply.json?.error?.code, -32600);
      assert.equal(reply.json?.id, 7);
      assert.equal(h.upstreams.length, 1);
      assert.equal(h.upstream.requests().filter((m) => m.method === "initialize").length, 1, "only the first initialize went upstream");
    } finally {
      await h.close();
    }
  });

  it("names the request's id when refusing a missing or unknown session", async () => {
    const h = await Harness.start();
    try {
      const missing = await h.send({ jsonrpc: "2.0", id: "r-1", method: "tools/list" });
      assert.equal(missing.status, 400);
      assert.equal(missing.json?.id, "r-1");
      const unknown = await h.send({ jsonrpc: "2.0", id: "r-2", method: "tools/list" }, { session: "no-such-session" });
      assert.equal(unknown.status, 404);
      assert.equal(unknown.json?.id, "r-2");
    } finally {
      await h.close();
    }
  });

  for (const method of ["tools/list", "ping"]) {
    it(`maps an upstream failure on ${method} to upstream_failed with its code`, async () => {
      const h = await Harness.start({ script: { methods: { [method]: { throws: new UpstreamError("upstream_timeout", "slow") } } } });
      try {
        const session = await h.initialize();
        const reply = await h.rpc(session, method);
        assert.equal(reply.json?.error?.code, -32603);
        assert.equal(reply.json?.error?.data?.code, "upstream_timeout");
      } finally {
        await h.close();
      }
    });
  }
});
