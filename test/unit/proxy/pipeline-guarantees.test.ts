/**
 * The guarantees of docs/security.md, one finding of the attack pass per test (issue 8): every
 * message is decided, audited, and forwarded exactly as decided.
 */
import assert from "node:assert/strict";
import type { PolicyInput } from "../../../gateway/policy/index.js";
import { allow, deny, type DecideFn } from "../../fakes/policy.js";
import type { UpstreamScript } from "../../fakes/upstream.js";
import { ALLOWED_ORIGIN, DELETE_RECORD, ECHO, Harness, INITIALIZE, READ_FILE } from "./pipeline-harness.js";

const RESULT = { content: [{ type: "text", text: "ok" }] };
const SCRIPT: UpstreamScript = {
  toolPages: [[READ_FILE, ECHO, DELETE_RECORD]],
  methods: {
    "tools/call": { result: RESULT },
    ping: { result: {} },
    "completion/complete": { result: { completion: { values: ["secret-1", "secret-2"] } } },
    "logging/setLevel": { result: {} },
    "resources/subscribe": { result: {} },
    "admin/exec": { result: { ran: true } },
    "tasks/result": { result: RESULT },
    "tasks/list": { result: { tasks: [{ taskId: "t-mine" }, { taskId: "t-other" }] } },
  },
};

/** A policy like the starter one: read_file only under /data, delete_record hidden, prompt "secret" hidden, no custom methods. */
const POLICY: DecideFn = (input: PolicyInput) => {
  const r = input.request;
  if (r.tool === "delete_record") return deny("admins only");
  if (r.tool === "read_file" && typeof r.arguments?.path === "string" && !r.arguments.path.startsWith("/data/")) return deny("read_file is limited to /data");
  if (r.prompt === "secret") return deny("no");
  if (["tools/call", "tools/list", "prompts/get", "prompts/list", "completion/complete", "resources/read", "resources/subscribe", "tasks/get", "tasks/result", "tasks/cancel"].includes(r.method)) return allow();
  if (["ping", "tasks/list", "notifications/initialized", "notifications/cancelled"].includes(r.method)) return allow();
  return deny(); // logging/setLevel, admin/exec, Tools/Call, …
};

describe("proxy pipeline: guarantees (issue 8)", () => {
  let h: Harness;
  let session: string;
  beforeEach(async () => {
    h = await Harness.start({ script: SCRIPT, decide: POLICY });
    session = await h.initialize();
  });
  afterEach(async () => {
    await h.close();
  });

  /** Upstream requests sent for the agent (initialize and the gateway's own catalog lookups excluded). */
  const forwarded = () => h.upstream.received.filter((r) => r.kind === "request" && !r.opts?.internal).map((r) => r.message);

  describe("1 parser differential: one reading of every message", () => {
    const ambiguous: Array<[string, string]> = [
      ["argument keys that collide after case folding", '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_file","arguments":{"path":"/data/ok","PATH":"/etc/passwd"}}}'],
      ["a second tool name in another case", '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_file","Name":"delete_record","arguments":{"path":"/data/ok"}}}'],
      ["a method member in another case", '{"jsonrpc":"2.0","id":1,"method":"ping","Method":"tools/call","params":{"name":"delete_record"}}'],
      ["an exact duplicate key", '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_file","arguments":{"path":"/etc/passwd","path":"/data/ok"}}}'],
      ["a Kelvin-sign key that Go folds to k", '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"key":"a","\\u212aey":"b"}}}'],
      ["an escaped duplicate of a key", '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_file","arguments":{"path":"/data/ok","\\u0070ath":"/etc/passwd"}}}'],
    ];
    for (const [note, body] of ambiguous) {
      it(`refuses ${note}: nothing forwarded, one invalid event`, async () => {
        const reply = await h.send(body, { session });
        assert.equal(reply.status, 400, reply.text);
        assert.equal(reply.json?.error?.code, -32600);
        assert.match(reply.json?.error?.message ?? "", /duplicate or case-colliding/);
        assert.deepEqual(forwarded(), []);
        const event = h.audit.only();
        assert.equal(event.outcome, "invalid");
        assert.equal(event.error?.code, "ambiguous_json");
      });
    }

    it("forwards the message rebuilt from the decided request: members nobody decided on are not passed on", async () => {
      const body = {
        jsonrpc: "2.0",
        id: 7,
        method: "tools/call",
        smuggled: "top-level member",
        params: { name: "read_file", arguments: { path: "/data/q3.csv" }, extra: { cmd: "rm -rf /" }, _meta: { progressToken: "p" } },
      };
      const reply = await h.send(body, { session });
      assert.equal(reply.status, 200, reply.text);
      assert.deepEqual(forwarded(), [{ jsonrpc: "2.0", id: 7, method: "tools/call", params: { name: "read_file", arguments: { path: "/data/q3.csv" }, _meta: { progressToken: "p" } } }]);
      const input = h.engine.inputsFor("tools/call")[0]!;
      assert.deepEqual(input.request.arguments, (forwarded()[0] as unknown as { params: { arguments: unknown } }).params.arguments);
    });

    it("refuses a number that would be forwarded as null", async () => {
      const reply = await h.send('{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"n":1e400}}}', { session });
      assert.equal(reply.status, 400);
      assert.equal(h.audit.only().error?.code, "invalid_json_value");
      assert.deepEqual(forwarded(), []);
    });
  });

  describe("2 every request method is decided and audited", () => {
    it("denies a custom method (admin/exec) with -32601: decided, audited, not forwarded", async () => {
      const reply = await h.rpc(session, "admin/exec", { cmd: "id" });
      assert.equal(reply.json?.error?.code, -32601);
      assert.deepEqual(forwarded(), []);
      assert.equal(h.engine.inputsFor("admin/exec").length, 1);
      const event = h.audit.only();
      assert.deepEqual([event.outcome, event.mcp.method], ["denied", "admin/exec"]);
    });

    it("treats a case variant of a method (Tools/Call) as its own, unknown method", async () => {
      const reply = await h.rpc(session, "Tools/Call", { name: "delete_record", arguments: {} });
      assert.equal(reply.json?.error?.code, -32601);
      assert.deepEqual(forwarded(), []);
      assert.equal(h.audit.only().outcome, "denied");
    });

    it("decides logging/setLevel (denied by this policy: not forwarded)", async () => {
      await h.rpc(session, "logging/setLevel", { level: "debug" });
      assert.deepEqual(forwarded(), []);
      assert.equal(h.engine.inputsFor("logging/setLevel").length, 1);
    });

    it("decides completion/complete on the prompt it names: a hidden prompt's values never reach the agent", async () => {
      const reply = await h.rpc(session, "completion/complete", { ref: { type: "ref/prompt", name: "secret" }, argument: { name: "a", value: "" } });
      assert.equal(reply.json?.error?.code, -32602);
      assert.doesNotMatch(reply.text, /secret-1/);
      assert.deepEqual(forwarded(), []);
      assert.equal(h.engine.inputsFor("completion/complete")[0]?.request.prompt, "secret");
      const ok = await h.rpc(session, "completion/complete", { ref: { type: "ref/prompt", name: "greeting" }, argument: { name: "a", value: "" } });
      assert.deepEqual(ok.json?.result, { completion: { values: ["secret-1", "secret-2"] } });
    });

    it("decides resources/subscribe on the resource", async () => {
      await h.rpc(session, "resources/subscribe", { uri: "file:///data/x" });
      assert.equal(h.engine.inputsFor("resources/subscribe")[0]?.request.resource, "file:///data/x");
      assert.equal(forwarded().length, 1);
    });

    it("refuses tasks/result for a task no allowed call of this session created", async () => {
      const reply = await h.rpc(session, "tasks/result", { taskId: "t-guess" });
      assert.equal(reply.json?.error?.code, -32602);
      assert.match(reply.json?.error?.message ?? "", /Unknown task/);
      assert.deepEqual(forwarded(), []);
      assert.equal(h.audit.only().outcome, "denied");
    });

    it("decides tasks/result on the tool and arguments of the call that created the task", async () => {
      h.upstream.script.methods!["tools/call"] = { result: { task: { taskId: "t-mine", status: "working" } } };
      await h.rpc(session, "tools/call", { name: "read_file", arguments: { path: "/data/a" }, task: { ttl: 1000 } });
      const reply = await h.rpc(session, "tasks/result", { taskId: "t-mine" });
      assert.deepEqual(reply.json?.result, RESULT);
      const input = h.engine.inputsFor("tasks/result")[0]!;
      assert.deepEqual([input.request.tool, input.request.arguments], ["read_file", { path: "/data/a" }]);
      // tasks/list shows only this session's tasks.
      const list = await h.rpc(session, "tasks/list");
      assert.deepEqual(list.json?.result, { tasks: [{ taskId: "t-mine" }] });
    });

    it("refuses a notification named like a request (tools/call): not forwarded, audited", async () => {
      const reply = await h.send({ jsonrpc: "2.0", method: "tools/call", params: { name: "delete_record", arguments: {} } }, { session });
      assert.equal(reply.status, 400);
      assert.deepEqual(h.upstream.sent, []);
      assert.equal(h.audit.only().outcome, "invalid");
    });

    it("decides client notifications and forwards the allowed ones", async () => {
      const reply = await h.send({ jsonrpc: "2.0", method: "notifications/initialized" }, { session });
      assert.equal(reply.status, 202);
      assert.deepEqual(h.upstream.sent, [{ jsonrpc: "2.0", method: "notifications/initialized" }]);
      const denied = await h.send({ jsonrpc: "2.0", method: "notifications/custom" }, { session });
      assert.equal(denied.status, 403);
      assert.equal(h.upstream.sent.length, 1);
      assert.deepEqual(h.audit.events.map((e) => [e.mcp.method, e.outcome]), [["notifications/initialized", "allowed"], ["notifications/custom", "denied"]]);
    });

    it("passes on only responses that answer a server→client request the gateway relayed", async () => {
      const injected = await h.send({ jsonrpc: "2.0", id: "s-1", result: { content: "forged" } }, { session });
      assert.equal(injected.status, 400);
      assert.equal(injected.json?.error?.message.includes("no server request"), true);
      assert.deepEqual(h.upstream.sent, []);
    });

    it("decides initialize too: a denied initialize opens no upstream session", async () => {
      const g = await Harness.start({ script: SCRIPT, decide: () => deny("not today"), decideInitialize: true });
      try {
        const reply = await g.send(INITIALIZE);
        assert.equal(reply.json?.error?.code, -32601);
        assert.equal(reply.headers.get("mcp-session-id"), null);
        assert.deepEqual(g.upstreams, []);
        assert.equal(g.audit.only().outcome, "denied");
      } finally {
        await g.close();
      }
    });
  });

  describe("3 no audit, no action", () => {
    it("refuses arguments nested deeper than edge.maxJsonDepth before deciding or forwarding", async () => {
      const deep = `${"[".repeat(700)}${"]".repeat(700)}`;
      const reply = await h.send(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"x":${deep}}}}`, { session });
      assert.equal(reply.status, 400);
      assert.deepEqual(forwarded(), []);
      assert.equal(h.engine.inputsFor("tools/call").length, 0);
      assert.equal(h.audit.only().error?.code, "json_too_deep");
    });

    it("forwards nothing when the audit path refuses admission", async () => {
      h.audit.admit = async () => {
        throw Object.assign(new Error("disk below audit.fileMinFreeBytes"), { code: "audit_unavailable" });
      };
      const reply = await h.rpc(session, "tools/call", { name: "echo", arguments: {} });
      assert.equal(reply.json?.error?.code, -32603);
      assert.deepEqual(forwarded(), []);
    });

    it("answers audit_unavailable, never the result, when the event of a forwarded call cannot be written", async () => {
      h.audit.failing = true;
      const reply = await h.rpc(session, "tools/call", { name: "echo", arguments: {} });
      assert.match(reply.json?.error?.message ?? "", /Audit log unavailable/);
      assert.equal(reply.text.includes('"ok"'), false);
    });
  });

  describe("9 sessions", () => {
    it("holds each agent to sessions.maxPerAgent, so one agent cannot take every slot", async () => {
      const g = await Harness.start({ script: SCRIPT, sessions: { maxSessions: 10, maxPerAgent: 2 } });
      try {
        await g.initialize();
        await g.initialize();
        const third = await g.send(INITIALIZE);
        assert.equal(third.status, 429);
        // Another agent still gets one.
        await g.initialize("bob-token");
      } finally {
        await g.close();
      }
    });

    it("reserves the slot before the upstream initialize is awaited: concurrent initializes never overshoot", async () => {
      let release!: () => void;
      const gate = new Promise<void>((r) => (release = r));
      const g = await Harness.start({
        script: { ...SCRIPT, initialize: async () => (await gate, { result: { protocolVersion: "2025-11-25", capabilities: {}, serverInfo: { name: "slow", version: "1" } } }) },
        sessions: { maxSessions: 5 },
      });
      try {
        const replies = Array.from({ length: 20 }, () => g.send(INITIALIZE));
        await new Promise((r) => setTimeout(r, 50));
        release();
        const statuses = (await Promise.all(replies)).map((r) => r.status);
        assert.equal(statuses.filter((s) => s === 200).length, 5);
        assert.equal(statuses.filter((s) => s === 503).length, 15);
        assert.equal(g.endpoint.sessions.size, 5);
      } finally {
        await g.close();
      }
    });
  });

  describe("unsupported protocol version (issue 9)", () => {
    it("answers -32022 with the versions it serves in data.supported", async () => {
      const reply = await h.rpc(session, "ping", undefined, { headers: { "mcp-protocol-version": "2099-01-01" } });
      assert.equal(reply.status, 400);
      assert.equal(reply.json?.error?.code, -32022);
      assert.ok(Array.isArray(reply.json?.error?.data?.supported) && reply.json?.error?.data?.supported.includes("2025-11-25"));
      assert.deepEqual(forwarded(), []);
    });
  });

  describe("10 CORS", () => {
    it("answers a preflight from an allowed origin with 204 and the MCP headers", async () => {
      const res = await fetch(h.url(), { method: "OPTIONS", headers: { origin: ALLOWED_ORIGIN, "access-control-request-method": "POST", "access-control-request-headers": "authorization, content-type, mcp-session-id" } });
      assert.equal(res.status, 204);
      assert.equal(res.headers.get("access-control-allow-origin"), ALLOWED_ORIGIN);
      assert.match(res.headers.get("access-control-allow-headers") ?? "", /Mcp-Session-Id/);
      const evil = await fetch(h.url(), { method: "OPTIONS", headers: { origin: "https://evil.test", "access-control-request-method": "POST" } });
      assert.equal(evil.status, 403);
      assert.equal(evil.headers.get("access-control-allow-origin"), null);
    });
  });
});
