/**
 * The MCP clients a bench drives, behind one small interface so the load loops do not care which:
 * the SDK v1 client (2025-11-25, what the earlier figures were measured with) and the SDK v2
 * client, in its default 2025 mode or pinned at 2026-07-28.
 */
import { Client as ClientV2, StreamableHTTPClientTransport as TransportV2 } from "@modelcontextprotocol/client";
import { Client as ClientV1 } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport as TransportV1 } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

export interface BenchClient {
  /** The protocol version the session negotiated. */
  readonly version: string | undefined;
  /** One tools/call of server-everything's echo (under the name the path gives it); throws unless it was served. */
  echo(): Promise<void>;
  /** tools/list; resolves with the number of tools returned. */
  listTools(): Promise<number>;
  close(): Promise<void>;
}

export type ClientKind = "v1" | "v2-2025" | "v2-2026";

const headers = (token: string | undefined): RequestInit => (token ? { headers: { Authorization: `Bearer ${token}` } } : {});

interface CallResult {
  isError?: unknown;
  content?: unknown;
}

function served(r: CallResult): void {
  // A bench measures served calls only: a denial or upstream error would make it measure refusals.
  if (r.isError) throw new Error(`tools/call answered isError: ${JSON.stringify(r.content).slice(0, 400)}`);
}

/** `echoTool`: what the path calls server-everything's echo (a peer gateway may rename it). */
export async function connect(kind: ClientKind, url: string, token?: string, echoTool = "echo"): Promise<BenchClient> {
  if (kind === "v1") {
    const transport = new TransportV1(new URL(url), { requestInit: headers(token) });
    const client = new ClientV1({ name: "bench", version: "1.0.0" });
    await client.connect(transport);
    return {
      version: transport.protocolVersion,
      echo: async () => served((await client.callTool({ name: echoTool, arguments: { message: "bench" } })) as CallResult),
      listTools: async () => (await client.listTools()).tools.length,
      close: () => client.close(),
    };
  }
  const client = new ClientV2({ name: "bench", version: "2.0.0" }, kind === "v2-2026" ? { versionNegotiation: { mode: { pin: "2026-07-28" } } } : {});
  await client.connect(new TransportV2(new URL(url), { requestInit: headers(token) }));
  return {
    version: client.getNegotiatedProtocolVersion(),
    echo: async () => served((await client.callTool({ name: echoTool, arguments: { message: "bench" } })) as CallResult),
    listTools: async () => (await client.listTools()).tools.length,
    close: () => client.close(),
  };
}

export async function connectMany(n: number, kind: ClientKind, url: string, token?: string, echoTool = "echo"): Promise<BenchClient[]> {
  const out: BenchClient[] = [];
  // One after the other: a burst of initializes is not what is being measured.
  for (let i = 0; i < n; i++) out.push(await connect(kind, url, token, echoTool));
  return out;
}
