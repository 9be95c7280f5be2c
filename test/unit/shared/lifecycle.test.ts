import assert from "node:assert/strict";
import { Lifecycle } from "../../../gateway/shared/lifecycle.js";
import type { LogLevel } from "../../../gateway/shared/log.js";

describe("Lifecycle: the gateway's long-lived parts", () => {
  const logs: Array<{ level: LogLevel; msg: string }> = [];
  const log = (level: LogLevel, msg: string) => void logs.push({ level, msg });
  beforeEach(() => (logs.length = 0));

  it("stops parts in the reverse of the order they started, each once", async () => {
    const stopped: string[] = [];
    const parts = new Lifecycle(log);
    for (const name of ["policy", "audit", "sessions", "http"]) parts.add({ name, stop: async () => void stopped.push(name), status: () => ({}) });
    await Promise.all([parts.stop(), parts.stop()]);
    await parts.stop();
    assert.deepEqual(stopped, ["http", "sessions", "audit", "policy"]);
  });

  it("keeps stopping the rest when one part fails, and logs the failure", async () => {
    const stopped: string[] = [];
    const parts = new Lifecycle(log);
    parts.add({ name: "audit", stop: async () => void stopped.push("audit"), status: () => ({}) });
    parts.add({ name: "limits", stop: async () => Promise.reject(new Error("redis gone")), status: () => ({}) });
    parts.add({ name: "http", stop: async () => void stopped.push("http"), status: () => ({}) });
    await parts.stop();
    assert.deepEqual(stopped, ["http", "audit"]);
    assert.deepEqual(logs, [{ level: "error", msg: "stopping a part failed" }]);
  });

  it("reports each part's status by name, and a failing status as an error instead of throwing", () => {
    const parts = new Lifecycle(log);
    parts.add({ name: "sessions", stop: async () => undefined, status: () => ({ open: 3 }) });
    parts.add({
      name: "identity",
      stop: async () => undefined,
      status: () => {
        throw new Error("no keys");
      },
    });
    assert.deepEqual(parts.status(), { sessions: { open: 3 }, identity: { error: "Error: no keys" } });
  });

  it("refuses a part added after stopping began", async () => {
    const parts = new Lifecycle(log);
    await parts.stop();
    assert.throws(() => parts.add({ name: "late", stop: async () => undefined, status: () => ({}) }), /added after stop/);
  });
});
