/**
 * MCP sessions spoken directly over an undici keep-alive pool: JSON-RPC bodies built once, no SDK
 * validation. For benches that need many calls fast (memory: a million calls), where an SDK client
 * would spend more CPU than the gateway it measures.
 */
import { Pool } from "undici";

const PROTOCOL = "2025-11-25";

/** The JSON-RPC message of an answer, whether it came as JSON or as one SSE event. */
function message(contentType: string | undefined, body: string): { result?: { isError?: boolean }; error?: unknown } {
  if (contentType?.includes("text/event-stream")) {
    const data = body.split("\n").filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trim()).join("");
    return JSON.parse(data) as { result?: { isError?: boolean }; error?: unknown };
  }
  return JSON.parse(body) as { result?: { isError?: boolean }; error?: unknown };
}

export class RawSession {
  private nextId = 2;

  private constructor(
    private readonly pool: Pool,
    private readonly path: string,
    private readonly headers: Record<string, string>,
  ) {}

  /** initialize + notifications/initialized on `url` through `pool` (which must be for its origin). */
  static async open(pool: Pool, url: string, token: string | undefined): Promise<RawSession> {
    const path = new URL(url).pathname;
    const base: Record<string, string> = { "content-type": "application/json", accept: "application/json, text/event-stream", ...(token && { authorization: `Bearer ${token}` }) };
    const init = await pool.request({
      path,
      method: "POST",
      headers: base,
      body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "initialize", params: { protocolVersion: PROTOCOL, capabilities: {}, clientInfo: { name: "bench-raw", version: "1.0.0" } } }),
    });
    const initBody = await init.body.text();
    const sid = init.headers["mcp-session-id"];
    if (init.statusCode !== 200 || typeof sid !== "string") throw new Error(`initialize on ${url}: HTTP ${init.statusCode} ${initBody.slice(0, 300)}`);
    const headers = { ...base, "mcp-session-id": sid, "mcp-protocol-version": PROTOCOL };
    const ack = await pool.request({ path, method: "POST", headers, body: JSON.stringify({ jsonrpc: "2.0", method: "notifications/initialized" }) });
    await ack.body.dump();
    if (ack.statusCode >= 300) throw new Error(`notifications/initialized on ${url}: HTTP ${ack.statusCode}`);
    return new RawSession(pool, path, headers);
  }

  /** One tools/call; throws unless it was served (HTTP 200, a result, not isError). */
  async call(name: string, args: Record<string, unknown>): Promise<void> {
    const r = await this.pool.request({
      path: this.path,
      method: "POST",
      headers: this.headers,
      body: JSON.stringify({ jsonrpc: "2.0", id: this.nextId++, method: "tools/call", params: { name, arguments: args } }),
    });
    const body = await r.body.text();
    if (r.statusCode !== 200) throw new Error(`tools/call ${name}: HTTP ${r.statusCode} ${body.slice(0, 300)}`);
    const ct = r.headers["content-type"];
    const m = message(typeof ct === "string" ? ct : undefined, body);
    if (!m.result || m.result.isError) throw new Error(`tools/call ${name} not served: ${body.slice(0, 300)}`);
  }
}
