/**
 * A fake OAuth 2.0 token endpoint (client credentials, RFC 6749 §4.4) on 127.0.0.1, for the
 * gateway's own upstream credentials.
 *
 *   const as = await startFakeTokenEndpoint({ clientId: "gw", clientSecret: "s3cret" });
 *   as.tokenUrl;               // POST here
 *   as.requests;               // every request: headers and parsed form
 *   as.isValid(token);         // what a protected upstream asks
 *   as.revokeAll();            // issued tokens stop being valid (upstream answers 401)
 *   as.setAvailable(false);    // 503 until set back
 */
import { randomBytes } from "node:crypto";
import { createServer, type IncomingHttpHeaders } from "node:http";
import type { AddressInfo } from "node:net";

export interface FakeTokenEndpointOptions {
  clientId: string;
  clientSecret: string;
  /** expires_in of issued tokens; null omits it. Default 3600. */
  expiresIn?: number | null;
}

export interface FakeTokenEndpoint {
  tokenUrl: string;
  requests: Array<{ headers: IncomingHttpHeaders; form: Record<string, string> }>;
  issued: string[];
  isValid(token: string): boolean;
  revokeAll(): void;
  setAvailable(up: boolean): void;
  close(): Promise<void>;
}

export async function startFakeTokenEndpoint(opts: FakeTokenEndpointOptions): Promise<FakeTokenEndpoint> {
  const requests: FakeTokenEndpoint["requests"] = [];
  const issued: string[] = [];
  const valid = new Set<string>();
  let available = true;
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const form = Object.fromEntries(new URLSearchParams(Buffer.concat(chunks).toString("utf8")));
      requests.push({ headers: req.headers, form });
      const json = (status: number, body: unknown) => {
        res.writeHead(status, { "content-type": "application/json", "cache-control": "no-store" }).end(JSON.stringify(body));
      };
      if (!available) return json(503, { error: "temporarily_unavailable" });
      if (req.method !== "POST" || req.url !== "/oauth/token") return json(404, { error: "not_found" });
      if (form.grant_type !== "client_credentials") return json(400, { error: "unsupported_grant_type" });
      let id = form.client_id;
      let secret = form.client_secret;
      const basic = /^Basic (.+)$/.exec(req.headers.authorization ?? "");
      if (basic) {
        const [u = "", p = ""] = Buffer.from(basic[1]!, "base64").toString("utf8").split(":");
        id = decodeURIComponent(u);
        secret = decodeURIComponent(p);
      }
      if (id !== opts.clientId || secret !== opts.clientSecret) return json(401, { error: "invalid_client" });
      const token = `at-${randomBytes(12).toString("hex")}`;
      issued.push(token);
      valid.add(token);
      const expiresIn = opts.expiresIn === undefined ? 3600 : opts.expiresIn;
      json(200, { access_token: token, token_type: "Bearer", ...(expiresIn === null ? {} : { expires_in: expiresIn }) });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    tokenUrl: `http://127.0.0.1:${port}/oauth/token`,
    requests,
    issued,
    isValid: (t) => valid.has(t),
    revokeAll: () => valid.clear(),
    setAvailable: (up) => {
      available = up;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
