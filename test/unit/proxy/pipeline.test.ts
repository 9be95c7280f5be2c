import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import type { DecisionErrorCode, PolicyInput } from "../../../gateway/policy/index.js";
import { ERRORS } from "../../../gateway/proxy/index.js";
import { UpstreamError } from "../../../gateway/proxy/upstream.js";
import { allow, deny, FAKE_REVISION, policyFailure, type DecideFn } from "../../fakes/policy.js";
import { progress, type UpstreamScript } from "../../fakes/upstream.js";
import { DELETE_RECORD, ECHO, Harness, READ_FILE, UPSTREAM_TIMEOUT_MS, type Reply } from "./pipeline-harness.js";

/** What every list filtered per principal carries (contract 5): no shared cache may keep it. */
const PER_PRINCIPAL = { ttlMs: 0, cacheScope: "private" };

const DECISION_META = "dev.portcullis/decision";
const RESULT = { content: [{ type: "text", text: "region,total\nnorth,120" }], structuredContent: { rows: 1 } };
const READ_ARGS = { path: "/data/q3.csv" };

/** delete_record is hidden (denied when listed and when called); everything else is allowed. */
const hideDeleteRecord: DecideFn = (input) => (input.request.tool === "delete_record" ? deny("admins only") : allow());

const SCRIPT: UpstreamScript = {
  toolPages: [[READ_FILE, ECHO, DELETE_RECORD]],
  methods: { "tools/call": { result: RESULT }, ping: { result: {} } },
};

const sha256 = (s: string) => createHash("sha256").update(s, "utf8").digest("hex");

describe("proxy pipeline: decision points, forwarding and audit", () => {
  let h: Harness;
  let session: string;

  async function start(script: UpstreamScript = SCRIPT, decide: DecideFn = hideDeleteRecord): Promise<void> {
    h = await Harness.start({ script, decide });
    session = await h.initialize();
  }
  afterEach(async () => {
    await h?.close();
  });

  const callTool = (name: string, args: Record<string, unknown> = READ_ARGS) => h.rpc(session, "tools/call", { name, arguments: args });

  describe("tools/call", () => {
    it("forwards an allowed call once with the client's params and relays the result unchanged", async () => {
      await start({
        ...SCRIPT,
        methods: {
          "tools/call": () => {
            h.clock.advanceMs(7); // the upstream takes 7 ms
            return { result: RESULT };
          },
        },
      });
      const params = { name: "read_file", arguments: READ_ARGS, _meta: { progressToken: "p-1" } };
      const sent = h.request("tools/call", params);
      const reply = await h.send(sent, { session });

      assert.equal(reply.status, 200);
      assert.equal(reply.headers.get("content-type"), "application/json");
      assert.deepEqual(reply.json, { jsonrpc: "2.0", id: sent.id, result: RESULT });

      const forwarded = h.upstream.requests("tools/call");
      assert.equal(forwarded.length, 1);
      assert.deepEqual(forwarded[0], sent);
      assert.equal(h.upstream.optionsFor("tools/call")[0]!.timeoutMs, UPSTREAM_TIMEOUT_MS);

      const event = h.audit.only();
      assert.equal(event.outcome, "allowed");
      assert.equal(event.error, undefined);
      assert.deepEqual(event.agent, { sub: "alice", client_id: "alice-client" });
      assert.deepEqual(
        { server: event.mcp.server, method: event.mcp.method, tool: event.mcp.tool, session_id: event.mcp.session_id, request_id: event.mcp.request_id },
        { server: "files", method: "tools/call", tool: "read_file", session_id: h.handleOf(session), request_id: sent.id },
      );
      const serialized = JSON.stringify(RESULT);
      assert.equal(event.tool_result?.is_error, false);
      assert.equal(event.tool_result?.bytes, Buffer.byteLength(serialized));
      assert.equal(event.tool_result?.sha256, sha256(serialized));
      assert.equal(event.latency_ms.upstream, 7);
      assert.deepEqual(event.bundles, { "mcp-authz": { revision: FAKE_REVISION } });
      assert.deepEqual(event.result, { allow: true, reasons: [] });
    });

    it("result policy: sees the decided input and the result; withholds it when it says no or fails (fail closed)", async () => {
      await start({ ...SCRIPT, methods: { "tools/call": { result: RESULT } } });
      h.engine.resultFn = () => ({ decision: { allow: false, reasons: ["private key"], message: "withheld: a private key", redact: [] }, revision: FAKE_REVISION, elapsedMs: 0 });
      const withheld = await callTool("read_file");
      assert.deepEqual(withheld.json?.result?.content, [{ type: "text", text: "withheld: a private key" }]);
      assert.equal(withheld.json?.result?.isError, true);
      assert.deepEqual(h.engine.resultInputs[0]!.result, RESULT);
      assert.equal(h.engine.resultInputs[0]!.input.request.tool, "read_file");
      assert.deepEqual(h.audit.only().result_policy, { allow: false, reasons: ["private key"], redacted: [], unresolved: [] });
      assert.doesNotMatch(JSON.stringify(h.audit.only().tool_result), /north,120/, "the audited result is the withheld one");
      h.audit.clear();
      h.engine.resultFn = () => ({ decision: { allow: false, reasons: [], redact: [] }, error: { code: "policy_eval_error", message: "boom" }, revision: FAKE_REVISION, elapsedMs: 0 });
      const failed = await callTool("read_file");
      assert.equal(failed.json?.result?.isError, true);
      assert.match(String(h.audit.only().result_policy?.error), /policy_eval_error/);
      h.audit.clear();
      h.engine.resultFn = () => ({ decision: { allow: true, reasons: [], redact: [{ pointer: "/structuredContent/rows" }, { pointer: "/nope" }] }, revision: FAKE_REVISION, elapsedMs: 0 });
      const redacted = await callTool("read_file");
      assert.deepEqual(redacted.json?.result?.structuredContent, { rows: "[REDACTED]" });
      assert.deepEqual(h.audit.only().result_policy?.unresolved, [{ pointer: "/nope" }]);
    });

    it("gives policy the contract 3 input for the call, with the tool's listed definition", async () => {
      await start();
      await callTool("read_file");
      const inputs = h.engine.inputsFor("tools/call");
      assert.equal(inputs.length, 1);
      const input = inputs[0]!;
      assert.deepEqual(input.request, {
        method: "tools/call",
        server: "files",
        tool: "read_file",
        arguments: READ_ARGS,
        resource: null,
        prompt: null,
        session_id: h.handleOf(session),
        protocol_version: "2025-11-25",
        source_ip: "127.0.0.1",
        time: new Date(h.clock.now()).toISOString(),
      });
      assert.deepEqual([input.agent.sub, input.agent.iss, input.agent.roles], ["alice", "https://idp.test/", ["analyst"]]);
      assert.equal(input.tool?.name, "read_file");
      assert.deepEqual(input.tool?.input_schema, READ_FILE.inputSchema);
      assert.match(input.tool?.digest ?? "", /^sha256:[0-9a-f]{64}$/);
      // The audited input is the one policy saw.
      assert.deepEqual(h.audit.only().input, JSON.parse(JSON.stringify(input)));
    });

    it("streams the upstream's related notifications before the response as SSE", async () => {
      await start({
        ...SCRIPT,
        methods: { "tools/call": (req) => ({ result: RESULT, related: [progress(req, 1, 2), progress(req, 2, 2)] }) },
      });
      const sent = h.request("tools/call", { name: "read_file", arguments: READ_ARGS, _meta: { progressToken: "tok-9" } });
      const reply = await h.send(sent, { session });

      assert.equal(reply.status, 200);
      assert.match(reply.headers.get("content-type") ?? "", /^text\/event-stream/);
      assert.deepEqual(reply.events, [
        { jsonrpc: "2.0", method: "notifications/progress", params: { progressToken: "tok-9", progress: 1, total: 2 } },
        { jsonrpc: "2.0", method: "notifications/progress", params: { progressToken: "tok-9", progress: 2, total: 2 } },
        { jsonrpc: "2.0", id: sent.id, result: RESULT },
      ]);
      assert.equal(h.audit.only().outcome, "allowed");
    });

    const denials: Array<{ note: string; message?: string; text: string }> = [
      { note: "with the decision's message", message: "read_file is limited to /data", text: "read_file is limited to /data" },
      { note: "with the generic text when the decision has no message", text: "Tool 'read_file' was denied by policy." },
    ];
    for (const c of denials) {
      it(`answers a denied visible tool with an isError result ${c.note}`, async () => {
        await start(SCRIPT, (input) => (input.request.method === "tools/call" ? deny(c.message, ["secret reason"]) : allow()));
        const reply = await callTool("read_file", { path: "/etc/passwd" });

        assert.equal(reply.status, 200);
        const result = reply.json?.result;
        assert.equal(result?.isError, true);
        assert.deepEqual(result?.content, [{ type: "text", text: c.text }]);
        assert.match(c.text, /denied by policy|limited to/);
        assert.ok(!reply.text.includes("secret reason"), "reasons are audited, never shown to the agent");
        assert.deepEqual(h.upstream.requests("tools/call"), []);

        const event = h.audit.only();
        assert.equal(event.outcome, "denied");
        assert.equal(event.error, undefined);
        assert.equal(result?._meta?.[DECISION_META]?.decision_id, event.decision_id);
        assert.deepEqual((event.result as { reasons: string[] }).reasons, ["secret reason"]);
      });
    }

    const failures: Array<{ note: string; code: DecisionErrorCode; everywhere: boolean }> = [];
    for (const code of ["policy_eval_error", "policy_undefined", "policy_malformed"] as const) {
      failures.push({ note: `${code} on the call only: a generic isError denial`, code, everywhere: false });
      failures.push({ note: `${code} on every decision: the tool is hidden, so it is unknown`, code, everywhere: true });
    }
    for (const c of failures) {
      it(`fails closed on a decision the policy did not make (${c.note}), audited with its code`, async () => {
        await start(SCRIPT, (input) => (c.everywhere || input.request.method === "tools/call" ? policyFailure(c.code) : allow()));
        const reply = await callTool("read_file");

        assert.equal(reply.status, 200);
        if (c.everywhere) {
          assert.deepEqual(reply.json?.error, { code: -32602, message: "Unknown tool: read_file" });
        } else {
          assert.equal(reply.json?.result?.isError, true);
          assert.match(reply.json?.result?.content?.[0]?.text ?? "", /denied by policy/);
        }
        assert.deepEqual(h.upstream.requests("tools/call"), [], "never forwarded");
        const event = h.audit.only();
        assert.equal(event.outcome, "denied");
        assert.equal(event.error?.code, c.code);
      });
    }

    it("answers a tool hidden from the list exactly like a tool the upstream does not have", async () => {
      await start();
      const ask = async (name: string) => {
        const reply = await h.send({ jsonrpc: "2.0", id: 77, method: "tools/call", params: { name, arguments: { id: "1" } } }, { session });
        return { status: reply.status, type: reply.headers.get("content-type"), body: reply.text.replace(name, "<name>") };
      };
      const hidden = await ask("delete_record");
      const missing = await ask("no_such_tool");

      assert.deepEqual(hidden, missing);
      assert.equal(hidden.status, 200);
      assert.deepEqual(JSON.parse(hidden.body), { jsonrpc: "2.0", id: 77, error: { code: -32602, message: "Unknown tool: <name>" } });
      assert.deepEqual(h.upstream.requests("tools/call"), []);
      // The audit log tells them apart; the agent cannot.
      assert.deepEqual(
        h.audit.events.map((e) => [e.mcp.tool, e.outcome, e.error?.code ?? null]),
        [["delete_record", "denied", null], ["no_such_tool", "denied", "unknown_tool"]],
      );
    });

    for (const code of ["upstream_timeout", "upstream_unreachable", "upstream_bad_response"] as const) {
      it(`answers an upstream that fails with ${code} as -32603 naming the code, audited as an error`, async () => {
        await start({
          ...SCRIPT,
          methods: {
            "tools/call": () => {
              h.clock.advanceMs(30);
              return { throws: new UpstreamError(code, "fake failure") };
            },
          },
        });
        const reply = await callTool("read_file");

        assert.equal(reply.status, 200);
        assert.equal(reply.json?.error?.code, -32603);
        assert.deepEqual(reply.json?.error?.data, { code });
        assert.equal(h.upstream.requests("tools/call").length, 1);
        const event = h.audit.only();
        assert.equal(event.outcome, "error");
        assert.equal(event.error?.code, code);
        assert.equal(event.latency_ms.upstream, 30, "the time spent waiting for the upstream is audited");
        assert.equal(event.tool_result, undefined);
      });
    }
  });

  describe("an audit log that refuses the event", () => {
    const cases: Array<{ note: string; ask: () => Promise<Reply>; forwarded: string | null }> = [
      { note: "an allowed call (already executed upstream)", ask: () => callTool("read_file"), forwarded: "tools/call" },
      { note: "a denied call", ask: () => callTool("delete_record"), forwarded: null },
      { note: "a tools/list", ask: () => h.rpc(session, "tools/list"), forwarded: "tools/list" },
      { note: "a denied resources/read", ask: () => h.rpc(session, "resources/read", { uri: "file:///secret" }), forwarded: null },
    ];
    for (const c of cases) {
      it(`answers audit_unavailable instead of the answer for ${c.note}`, async () => {
        await start(SCRIPT, (input) => (input.request.tool === "delete_record" || input.request.resource !== null ? deny("no") : allow()));
        h.audit.failing = true;
        const reply = await c.ask();

        assert.equal(reply.status, 200);
        assert.equal(reply.json?.result, undefined);
        assert.deepEqual(reply.json?.error, { code: -32603, message: ERRORS.audit_unavailable.message });
        assert.ok(!reply.text.includes("north,120") && !reply.text.includes("read_file") && !reply.text.includes("\"no\""));
        assert.ok(h.audit.refused.length >= 1);
        assert.deepEqual(h.audit.events, []);
        if (c.forwarded) assert.ok(h.upstream.requests(c.forwarded).some((r) => typeof r.id === "number"));
        else assert.deepEqual(h.upstream.requests("resources/read").concat(h.upstream.requests("tools/call")), []);
      });
    }
  });

  describe("listing", () => {
    it("returns only the tools policy allows, with one event for the list naming what was shown and hidden", async () => {
      await start();
      const reply = await h.rpc(session, "tools/list");

      assert.equal(reply.status, 200);
      assert.deepEqual(reply.json?.result, { tools: [READ_FILE, ECHO], ...PER_PRINCIPAL });
      const event = h.audit.only();
      assert.deepEqual([event.mcp.method, event.mcp.tool, event.outcome], ["tools/list", null, "allowed"]);
      assert.deepEqual(event.list, { visible: ["read_file", "echo"], hidden: ["delete_record"] });
      assert.deepEqual(event.bundles, { "mcp-authz": { revision: FAKE_REVISION } });

      const inputs = h.engine.inputsFor("tools/list");
      assert.deepEqual(inputs.map((i) => i.request.tool), ["read_file", "echo", "delete_record"]);
      for (const i of inputs) {
        assert.equal(i.request.arguments, null);
        assert.equal(i.tool?.name, i.request.tool);
        assert.match(i.tool?.digest ?? "", /^sha256:[0-9a-f]{64}$/);
      }
      assert.equal(new Set(inputs.map((i) => i.tool?.digest)).size, 3, "each definition has its own digest");
    });

    it("filters each page of a paged tools/list and passes the cursor on", async () => {
      await start({ ...SCRIPT, toolPages: [[READ_FILE, DELETE_RECORD], [ECHO]] });
      const first = await h.rpc(session, "tools/list");
      assert.deepEqual(first.json?.result, { tools: [READ_FILE], nextCursor: "page-1", ...PER_PRINCIPAL });
      const second = await h.rpc(session, "tools/list", { cursor: "page-1" });
      assert.deepEqual(second.json?.result, { tools: [ECHO], ...PER_PRINCIPAL });
      assert.deepEqual(h.upstream.requests("tools/list").map((r) => r.params?.cursor), [undefined, "page-1"]);
      assert.deepEqual(h.audit.events.map((e) => e.list), [{ visible: ["read_file"], hidden: ["delete_record"] }, { visible: ["echo"], hidden: [] }]);
    });

    const lists: Array<{ note: string; method: string; field: string; items: object[]; key: "resource" | "prompt"; targets: string[] }> = [
      { note: "resources by uri", method: "resources/list", field: "resources", items: [{ uri: "file:///a", name: "a" }, { uri: "file:///secret", name: "s" }], key: "resource", targets: ["file:///a", "file:///secret"] },
      { note: "prompts by name", method: "prompts/list", field: "prompts", items: [{ name: "greet" }, { name: "secret" }], key: "prompt", targets: ["greet", "secret"] },
    ];
    for (const c of lists) {
      it(`filters ${c.note} through the same policy`, async () => {
        await start({ methods: { [c.method]: { result: { [c.field]: c.items } } } }, (input) => {
          const target = input.request.resource ?? input.request.prompt ?? "";
          return target.includes("secret") ? deny() : allow();
        });
        const reply = await h.rpc(session, c.method);
        assert.deepEqual(reply.json?.result, { [c.field]: [c.items[0]], ...PER_PRINCIPAL });
        assert.deepEqual(
          h.engine.inputs.map((i) => [i.request.method, i.request[c.key], i.tool]),
          c.targets.map((t) => [c.method, t, null]),
        );
        assert.deepEqual(h.audit.only().list, { visible: [c.targets[0]], hidden: [c.targets[1]] });
      });
    }
  });

  describe("resources/read and prompts/get", () => {
    const cases: Array<{ note: string; method: string; params: Record<string, unknown>; field: "resource" | "prompt"; target: string; message?: string }> = [
      { note: "a resource with the decision's message", method: "resources/read", params: { uri: "file:///etc/passwd" }, field: "resource", target: "file:///etc/passwd", message: "only /data" },
      { note: "a resource with the generic text", method: "resources/read", params: { uri: "file:///etc/passwd" }, field: "resource", target: "file:///etc/passwd" },
      { note: "a prompt with the decision's message", method: "prompts/get", params: { name: "leak", arguments: { who: "x" } }, field: "prompt", target: "leak", message: "not for you" },
    ];
    for (const c of cases) {
      it(`refuses ${c.note} as -32602, never forwarded`, async () => {
        await start(SCRIPT, () => deny(c.message));
        const sent = h.request(c.method, c.params);
        const reply = await h.send(sent, { session });

        assert.equal(reply.status, 200);
        assert.equal(reply.json?.id, sent.id);
        assert.equal(reply.json?.error?.code, -32602);
        assert.equal(reply.json?.error?.message, c.message ?? "denied by policy");
        assert.deepEqual(h.upstream.requests(c.method), []);
        const event = h.audit.only();
        assert.equal(event.outcome, "denied");
        assert.equal(event.mcp[c.field], c.target);
        assert.equal(reply.json?.error?.data?.[DECISION_META]?.decision_id, event.decision_id);
      });
    }

    it("forwards an allowed resources/read and relays its contents", async () => {
      const contents = { contents: [{ uri: "file:///data/a.txt", text: "hello" }] };
      await start({ methods: { "resources/read": { result: contents } } });
      const reply = await h.rpc(session, "resources/read", { uri: "file:///data/a.txt" });
      assert.deepEqual(reply.json?.result, contents);
      assert.equal(h.upstream.requests("resources/read").length, 1);
      const input = h.engine.inputs[0] as PolicyInput;
      assert.deepEqual([input.request.method, input.request.resource, input.request.arguments, input.tool], ["resources/read", "file:///data/a.txt", null, null]);
      assert.equal(h.audit.only().outcome, "allowed");
    });
  });

  describe("notifications, responses and protocol plumbing: decided and on record too", () => {
    const messages: Array<{ note: string; message: Record<string, unknown> }> = [
      { note: "notifications/initialized", message: { jsonrpc: "2.0", method: "notifications/initialized" } },
      { note: "a cancellation", message: { jsonrpc: "2.0", method: "notifications/cancelled", params: { requestId: 3, reason: "user" } } },
    ];
    for (const c of messages) {
      it(`accepts ${c.note} with 202 once the policy allows it, and passes it to the upstream unchanged`, async () => {
        await start();
        const reply = await h.send(c.message, { session });
        assert.equal(reply.status, 202);
        assert.equal(reply.text, "");
        assert.deepEqual(h.upstream.sent, [c.message]);
        assert.deepEqual(h.engine.inputs.map((i) => i.request.method), [c.message.method]);
        assert.deepEqual(h.audit.events.map((e) => [e.mcp.method, e.outcome]), [[c.message.method, "allowed"]]);
      });
    }

    it("passes on a response to a server→client request the gateway relayed, once", async () => {
      await start({
        ...SCRIPT,
        methods: { "tools/call": { result: RESULT, related: [{ jsonrpc: "2.0", id: "srv-1", method: "roots/list" }] } },
      });
      const call = await callTool("read_file");
      h.audit.clear();
      // The agent sees a sealed id (any replica can take the answer); the upstream gets its own back.
      const asked = call.events.find((e) => (e as { method?: unknown }).method === "roots/list")!;
      assert.match(String(asked.id), /^portcullis:r:/);
      const answer = { jsonrpc: "2.0", id: asked.id, result: { roots: [] } };
      const unasked = await h.send({ jsonrpc: "2.0", id: "srv-1", result: { roots: [] } }, { session });
      assert.equal(unasked.status, 400, "the upstream's own id was never asked of the agent");
      h.audit.clear();
      const reply = await h.send(answer, { session });
      assert.equal(reply.status, 202);
      assert.deepEqual(h.upstream.sent, [{ ...answer, id: "srv-1" }]);
      assert.deepEqual(h.audit.events.map((e) => [e.mcp.method, e.mcp.request_id, e.outcome]), [["roots/list", asked.id, "allowed"]]);
      const again = await h.send(answer, { session });
      assert.equal(again.status, 400, "a second answer to the same request is not passed on");
      assert.equal(h.upstream.sent.length, 1);
      const otherSession = await h.initialize();
      assert.equal((await h.send(answer, { session: otherSession })).status, 400, "another session's request");
    });

    it("decides protocol plumbing (ping) and relays the answer", async () => {
      await start();
      const sent = h.request("ping");
      const reply = await h.send(sent, { session });
      assert.deepEqual(reply.json, { jsonrpc: "2.0", id: sent.id, result: {} });
      assert.deepEqual(h.upstream.requests("ping"), [sent]);
      assert.deepEqual(h.engine.inputs.map((i) => [i.request.method, i.request.tool]), [["ping", null]]);
      assert.equal(h.audit.only().outcome, "allowed");
    });
  });
});
