/**
 * A real HAProxy (Debian package, `make tools` installs it) in front of several gateway replicas
 * on 127.0.0.1: round robin per request, no stickiness, health-checked on /healthz, a failed
 * connection retried on another replica, as a production balancer is set up.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "./stack.js";

export interface TestBalancer {
  url: string;
  stop(): Promise<void>;
}

export function haproxyAvailable(): boolean {
  return spawnSync("haproxy", ["-v"], { stdio: "ignore" }).status === 0;
}

export async function startHaproxy(backends: readonly string[], port?: number): Promise<TestBalancer> {
  port ??= await freePort();
  const servers = backends.map((b, i) => `  server r${i + 1} ${new URL(b).host} check inter 300ms fall 1 rise 2`).join("\n");
  const config = `global
  maxconn 512
defaults
  mode http
  timeout connect 1s
  timeout client 60s
  timeout server 60s
  timeout tunnel 60s
  retries 3
  option redispatch 1
  retry-on conn-failure empty-response response-timeout
frontend agents
  bind 127.0.0.1:${port}
  default_backend gateways
backend gateways
  balance roundrobin
  option httpchk GET /healthz
${servers}
`;
  const dir = mkdtempSync(join(tmpdir(), "pc-haproxy-"));
  const file = join(dir, "haproxy.cfg");
  writeFileSync(file, config);
  const check = spawnSync("haproxy", ["-c", "-f", file], { encoding: "utf8" });
  if (check.status !== 0) throw new Error(`haproxy config refused:\n${check.stdout}${check.stderr}`);
  const child: ChildProcess = spawn("haproxy", ["-db", "-f", file], { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout!.on("data", (c: Buffer) => (out += c.toString()));
  child.stderr!.on("data", (c: Buffer) => (out += c.toString()));
  const url = `http://127.0.0.1:${port}`;
  // Up once it answers and every replica passed its first health checks.
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`haproxy exited ${child.exitCode}:\n${out}`);
    const ok = await fetch(`${url}/healthz`).then((r) => r.ok, () => false);
    if (ok) break;
    if (Date.now() > deadline) throw new Error(`haproxy did not come up:\n${out}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  await new Promise((r) => setTimeout(r, 800));
  return {
    url,
    async stop() {
      if (child.exitCode !== null) return;
      const exited = new Promise((r) => child.once("exit", r));
      child.kill("SIGTERM");
      await exited;
    },
  };
}
