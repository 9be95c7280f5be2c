/** Plain HTTP MCP calls for tests that count answers (no SDK client state in the way). */
export interface CallAnswer {
  status: number;
  body: { id?: unknown; result?: any; error?: { code: number; message: string; data?: any } };
}

const HEADERS = { "content-type": "application/json", accept: "application/json, text/event-stream" };

export async function mcpInitialize(endpoint: string, token: string): Promise<string> {
  const res = await fetch(endpoint, {
    method: "POST",
    headers: { ...HEADERS, authorization: `Bearer ${token}` },
    body: JSON.stringify({ jsonrpc: "2.0", id: 0, method: "initialize", params: { protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: "it", version: "1" } } }),
  });
  const sid = res.headers.get("mcp-session-id");
  await res.text();
  if (res.status !== 200 || !sid) throw new Error(`initialize failed: HTTP ${res.status}`);
  return sid;
}

let nextId = 1;
export async function mcpRequest(endpoint: string, token: string, session: string, method: string, params: Record<string, unknown>): Promise<CallAnswer> {
  const res = await fetch(endpoint, {
    method: "POST",
    headers: { ...HEADERS, authorization: `Bearer ${token}`, "mcp-session-id": session },
    body: JSON.stringify({ jsonrpc: "2.0", id: nextId++, method, params }),
  });
  const text = await res.text();
  const type = res.headers.get("content-type") ?? "";
  const body = type.startsWith("text/event-stream")
    ? JSON.parse(text.split("\n").filter((l) => l.startsWith("data:")).pop()!.slice(5))
    : text
      ? JSON.parse(text)
      : {};
  return { status: res.status, body };
}

export const mcpCall = (endpoint: string, token: string, session: string, name: string, args: Record<string, unknown>) =>
  mcpRequest(endpoint, token, session, "tools/call", { name, arguments: args });
