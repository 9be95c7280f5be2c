/**
 * A bare pass-through hop, for reference only: no identity, no policy, no audit. It parses the
 * JSON body, forwards the bytes over an undici keep-alive pool and streams the answer back, as the
 * hop measured in ../shared/reference/performance-calibration.md. `npm run bench` (bench/gateway-cost.ts)
 * measures it next to the gateway in the same run: the gateway's CPU per call is read against its.
 *   node dist/bench/raw-hop.js PORT UPSTREAM_URL
 */
import { createServer } from "node:http";
import { Pool } from "undici";

const [port, upstream] = process.argv.slice(2);
if (!port || !upstream) throw new Error("usage: raw-hop.js PORT UPSTREAM_URL");
const url = new URL(upstream);
const pool = new Pool(url.origin, { connections: 64 });
const PASS = ["mcp-session-id", "mcp-protocol-version", "accept", "content-type"];

createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on("data", (c: Buffer) => chunks.push(c));
  req.on("end", () => {
    const body = Buffer.concat(chunks).toString("utf8");
    if (req.method === "POST") JSON.parse(body);
    const headers: Record<string, string> = {};
    for (const h of PASS) {
      const v = req.headers[h];
      if (typeof v === "string") headers[h] = v;
    }
    pool
      .request({ path: url.pathname, method: req.method === "DELETE" ? "DELETE" : req.method === "GET" ? "GET" : "POST", headers, body: req.method === "POST" ? body : null })
      .then((r) => {
        const out: Record<string, string> = {};
        for (const h of ["content-type", "mcp-session-id", "cache-control"]) {
          const v = r.headers[h];
          if (typeof v === "string") out[h] = v;
        }
        res.writeHead(r.statusCode, out);
        r.body.pipe(res);
      })
      .catch(() => res.writeHead(502).end());
  });
}).listen(Number(port), "127.0.0.1", () => process.stderr.write("serving raw hop\n"));
