#!/usr/bin/env node
// Checks the Dockerfile without a Docker engine (make deploy-lint; none runs on the development machines):
//   1. its shape: a "build" stage with the dev dependencies, a runtime stage with `npm ci --omit=dev`, a
//      numeric non-root USER, a declared VOLUME owned by that user, no opa, nothing of test/, bench/, demo/,
//      the ENTRYPOINT and CMD of docs/deployment.md, and a .dockerignore that lets in exactly what is copied;
//   2. the stages replayed in a temporary folder, one sub-folder per stage as its root file system: every
//      COPY as written, the RUN steps this script knows (any other RUN is an error, so a new step cannot go
//      unchecked), then the image's ENTRYPOINT + CMD started as the image's USER, with --help and with a
//      minimal config on a free 127.0.0.1 port: /healthz answers, an unauthenticated call is refused and
//      audited into the volume, SIGTERM exits 0. The runtime tree holds no dev dependency and is not
//      writable by that user, as in the image.
// Needs the signed development bundle (make bundle) and node_modules (make node_modules). Usage:
//   node scripts/check-dockerfile.mjs [--keep]   (--keep leaves the temporary folder for a look)
import { spawn, spawnSync } from "node:child_process";
import { chmodSync, chownSync, copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const DOCKERFILE = join(ROOT, "Dockerfile");
const DOCKERIGNORE = join(ROOT, ".dockerignore");
const TOOLS_DIR = process.env.TOOLS_DIR ?? join(ROOT, ".tools");
const BUNDLE = join(ROOT, "bundles/build/mcp-authz.tar.gz");
const BUNDLE_KEY = join(TOOLS_DIR, "dev/bundle-signing.pub.pem");
const EXPECTED_ENTRYPOINT = ["node", "dist/gateway/cli/main.js"];
const EXPECTED_CMD = ["serve", "--config", "/etc/portcullis/gateway.yaml"];
/** Folders of the checkout that have no business in the runtime image. */
const NOT_IN_IMAGE = ["test", "bench", "demo", ".tools", "node_modules", "policies", "bundles", "var", ".git"];

const problems = [];
let passed = 0;
const ok = (what) => {
  passed++;
  console.log(`check-dockerfile: ok   ${what}`);
};
const bad = (what) => {
  problems.push(what);
  console.log(`check-dockerfile: FAIL ${what}`);
};
const check = (cond, what, why) => (cond ? ok(what) : bad(why ? `${what}: ${why}` : what));
function fatal(msg) {
  console.error(`check-dockerfile: error: ${msg}`);
  process.exit(1);
}

// ------------------------------------------------------------------------------------------- parsing

/** Instructions with their line numbers; continuation lines joined, comments and blank lines dropped. */
function parseDockerfile(text) {
  const out = [];
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const first = i + 1;
    let line = lines[i];
    if (/^\s*(#|$)/.test(line)) continue;
    while (/\\\s*$/.test(line) && i + 1 < lines.length) {
      line = line.replace(/\\\s*$/, " ");
      i++;
      if (!/^\s*#/.test(lines[i])) line += lines[i].trim();
    }
    const m = /^\s*([A-Za-z]+)\s+(.*?)\s*$/.exec(line);
    if (!m) fatal(`Dockerfile:${first}: cannot read "${line}"`);
    out.push({ op: m[1].toUpperCase(), args: m[2], line: first });
  }
  return out;
}

/** Splits instructions into stages ({name, from, steps}); what precedes the first FROM is dropped (ARG). */
function stagesOf(instructions) {
  const stages = [];
  for (const ins of instructions) {
    if (ins.op === "FROM") {
      const m = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(ins.args);
      if (!m) fatal(`Dockerfile:${ins.line}: cannot read FROM ${ins.args}`);
      stages.push({ from: m[1], name: m[2] ?? null, line: ins.line, steps: [] });
    } else if (stages.length > 0) {
      stages[stages.length - 1].steps.push(ins);
    }
  }
  return stages;
}

/** The exec (JSON) form of ENTRYPOINT/CMD/VOLUME, or null for the shell form. */
function execForm(args) {
  try {
    const v = JSON.parse(args);
    return Array.isArray(v) && v.every((s) => typeof s === "string") ? v : null;
  } catch {
    return null;
  }
}

/** COPY [--from=X] [--chown=..] src... dest */
function parseCopy(step) {
  const words = step.args.split(/\s+/);
  const flags = {};
  while (words[0]?.startsWith("--")) {
    const [k, v] = words.shift().slice(2).split("=");
    flags[k] = v;
  }
  if (words.length < 2) fatal(`Dockerfile:${step.line}: COPY needs a source and a destination`);
  const dest = words.pop();
  return { from: flags.from ?? null, chown: flags.chown ?? null, sources: words, dest };
}

const stripSlash = (p) => p.replace(/^\.\//, "").replace(/\/+$/, "");

// ------------------------------------------------------------------------------------------- 1. shape

const stages = stagesOf(parseDockerfile(readFileSync(DOCKERFILE, "utf8")));
const build = stages.find((s) => s.name === "build");
const runtime = stages[stages.length - 1];
check(stages.length >= 2 && build !== undefined && runtime !== build, "multi-stage: a 'build' stage and a separate runtime stage", `stages: ${stages.map((s) => s.name ?? "(unnamed)").join(", ")}`);
if (!build || runtime === build) process.exit(1);

const runsOf = (stage) => stage.steps.filter((s) => s.op === "RUN").map((s) => s.args);
const buildRuns = runsOf(build);
check(buildRuns.some((r) => /\bnpm ci\b/.test(r) && !/--omit=dev|--production/.test(r)), "build stage: npm ci with the dev dependencies");
check(buildRuns.some((r) => /\btsc\b/.test(r)), "build stage: compiles with tsc");

const rtRuns = runsOf(runtime);
const rtNpm = rtRuns.flatMap((r) => r.split("&&").map((c) => c.trim())).filter((c) => /^npm (ci|install|i)\b/.test(c));
check(rtNpm.length === 1 && /^npm ci\b/.test(rtNpm[0]) && /--omit=dev\b/.test(rtNpm[0]), "runtime stage: production dependencies only (npm ci --omit=dev)", `npm commands: ${JSON.stringify(rtNpm)}`);

const users = runtime.steps.filter((s) => s.op === "USER");
const user = /^(\d+)(?::(\d+))?$/.exec(users[users.length - 1]?.args ?? "");
const uid = user ? Number(user[1]) : NaN;
const gid = user ? Number(user[2] ?? user[1]) : NaN;
check(user !== null && uid !== 0 && gid !== 0, "runtime stage: numeric non-root USER", `USER ${users[users.length - 1]?.args ?? "(none)"}`);

const opaSteps = runtime.steps.filter((s) => /\bopa\b/i.test(s.args));
check(opaSteps.length === 0, "runtime stage: no opa CLI", opaSteps.map((s) => `line ${s.line}`).join(", "));

const copies = runtime.steps.filter((s) => s.op === "COPY" || s.op === "ADD");
const buildWorkdir = build.steps.filter((s) => s.op === "WORKDIR").reduce((wd, s) => resolve(wd, s.args), "/");
// A source is stray when it names one of those folders, all of dist/ (dist/test, dist/demo), or a stage's root.
const isStray = (c, src) => {
  const segments = src.split("/").filter((x) => x && x !== ".");
  return segments.some((x) => NOT_IN_IMAGE.includes(x)) || segments[segments.length - 1] === "dist" || segments.length === 0 || (c.from !== null && resolve(buildWorkdir, src) === buildWorkdir);
};
const stray = copies.flatMap((s) => {
  const c = parseCopy(s);
  return c.sources.filter((src) => isStray(c, src)).map((src) => `line ${s.line}: ${src}`);
});
check(stray.length === 0 && copies.every((s) => s.op === "COPY"), "runtime stage: copies nothing of test/, bench/, demo/, .tools/, node_modules/, all of dist/ (and no ADD)", stray.join(", "));

const lastOf = (stage, op) => stage.steps.filter((s) => s.op === op).pop();
const entrypoint = execForm(lastOf(runtime, "ENTRYPOINT")?.args ?? "");
const cmd = execForm(lastOf(runtime, "CMD")?.args ?? "");
check(JSON.stringify(entrypoint) === JSON.stringify(EXPECTED_ENTRYPOINT), `ENTRYPOINT ${JSON.stringify(EXPECTED_ENTRYPOINT)}`, `found ${JSON.stringify(entrypoint)}`);
check(JSON.stringify(cmd) === JSON.stringify(EXPECTED_CMD), `CMD ${JSON.stringify(EXPECTED_CMD)}`, `found ${JSON.stringify(cmd)}`);
check(runtime.steps.some((s) => s.op === "EXPOSE" && /^8080(\/tcp)?$/.test(s.args)), "EXPOSE 8080");
const volumes = runtime.steps.filter((s) => s.op === "VOLUME").flatMap((s) => execForm(s.args) ?? s.args.split(/\s+/));
check(volumes.length > 0, "runtime stage: declares a VOLUME for what the gateway writes", "none declared");

// .dockerignore: an allow-list ('*', then '!path' per copied path), so nothing else reaches the context.
const ignoreRules = existsSync(DOCKERIGNORE)
  ? readFileSync(DOCKERIGNORE, "utf8").split("\n").map((l) => l.trim()).filter((l) => l && !l.startsWith("#"))
  : [];
const allowed = new Set(ignoreRules.filter((r) => r.startsWith("!")).map((r) => stripSlash(r.slice(1))));
const contextSources = stages.flatMap((st) => st.steps.filter((s) => s.op === "COPY").map(parseCopy).filter((c) => !c.from).flatMap((c) => c.sources.map(stripSlash)));
const notAllowed = contextSources.filter((src) => !allowed.has(src));
check(ignoreRules[0] === "*" && notAllowed.length === 0, ".dockerignore: an allow-list ('*' first) naming every COPY source", ignoreRules[0] !== "*" ? "first rule is not '*'" : `not let in: ${notAllowed.join(", ")}`);
const leaks = [...allowed].filter((a) => NOT_IN_IMAGE.some((d) => a === d || a.startsWith(`${d}/`)) || a === "dist");
check(leaks.length === 0, ".dockerignore: lets in none of node_modules/, dist/, .tools/, .git/, var/, bundles/, test/", leaks.join(", "));

// ------------------------------------------------------------------------------------------- 2. replay

// The replay only means something for a Dockerfile of the right shape.
if (problems.length > 0) {
  console.log(`check-dockerfile: ${problems.length} problem(s) in the Dockerfile's shape; not replaying it`);
  process.exit(1);
}

for (const [file, hint] of [
  [BUNDLE, "make bundle"],
  [BUNDLE_KEY, "make bundle"],
  [join(ROOT, "node_modules/.package-lock.json"), "make node_modules"],
]) {
  if (!existsSync(file)) fatal(`${file} is missing: run '${hint}' first`);
}

const keep = process.argv.includes("--keep");
const work = mkdtempSync(join(tmpdir(), "portcullis-image-"));
chmodSync(work, 0o755); // the image's user must be able to reach the runtime root inside it
// Node looks for packages in every parent folder: one above the temporary folder would hide a missing one.
for (let d = dirname(work); ; d = dirname(d)) {
  if (existsSync(join(d, "node_modules"))) fatal(`${join(d, "node_modules")} exists: it would mask missing packages; remove it or set TMPDIR`);
  if (dirname(d) === d) break;
}
const rootOf = new Map(); // stage -> folder standing for its root file system
const inRoot = (stage, abs) => join(rootOf.get(stage), abs);

let child = null;
const cleanup = () => {
  if (child && child.exitCode === null) child.kill("SIGKILL");
  if (keep) console.log(`check-dockerfile: kept ${work}`);
  else rmSync(work, { recursive: true, force: true });
};
process.on("exit", cleanup);
process.on("SIGINT", () => process.exit(130));

function run(cmd, args, opts) {
  const r = spawnSync(cmd, args, { stdio: ["ignore", "pipe", "pipe"], encoding: "utf8", ...opts });
  if (r.status !== 0) fatal(`${cmd} ${args.join(" ")} (in ${opts.cwd}) failed with ${r.status ?? r.signal}:\n${(r.stderr || r.stdout).slice(-2000)}`);
  return r;
}

/** Replays one stage; the RUN steps are matched against what this script knows how to do faithfully. */
function replay(stage, label) {
  const root = join(work, label);
  mkdirSync(root, { recursive: true });
  chmodSync(root, 0o755);
  rootOf.set(stage, root);
  let workdir = "/";
  const env = {};
  const t0 = Date.now();
  for (const step of stage.steps) {
    const here = () => inRoot(stage, workdir);
    switch (step.op) {
      case "WORKDIR":
        workdir = resolve(workdir, step.args);
        mkdirSync(here(), { recursive: true });
        break;
      case "ENV":
        for (const m of step.args.matchAll(/(\w+)=("[^"]*"|\S+)/g)) env[m[1]] = m[2].replace(/^"|"$/g, "");
        break;
      case "COPY": {
        const c = parseCopy(step);
        const fromStage = c.from ? stages.find((s) => s.name === c.from) : null;
        if (c.from && !rootOf.has(fromStage)) fatal(`Dockerfile:${step.line}: COPY --from=${c.from}: no such stage replayed before`);
        for (const src of c.sources) {
          const from = fromStage ? inRoot(fromStage, resolve("/", src)) : join(ROOT, src);
          if (!existsSync(from)) fatal(`Dockerfile:${step.line}: COPY source ${src} does not exist (${from})`);
          const destAbs = resolve(workdir, c.dest);
          const into = c.dest.endsWith("/") || c.sources.length > 1 ? join(inRoot(stage, destAbs), src.split("/").pop()) : inRoot(stage, destAbs);
          mkdirSync(dirname(into), { recursive: true });
          // Docker copies a folder's contents to the destination and dereferences nothing but the source.
          cpSync(from, into, { recursive: true, dereference: false, verbatimSymlinks: true });
        }
        break;
      }
      case "RUN":
        for (const command of step.args.split("&&").map((c) => c.trim())) replayRun(stage, label, command, here(), step.line);
        break;
      case "ARG":
      case "USER":
      case "VOLUME":
      case "EXPOSE":
      case "HEALTHCHECK":
      case "ENTRYPOINT":
      case "CMD":
      case "LABEL":
        break; // image metadata, checked above or used below
      default:
        fatal(`Dockerfile:${step.line}: ${step.op} is not replayed by this script: teach scripts/check-dockerfile.mjs`);
    }
  }
  console.log(`check-dockerfile: replayed stage ${label} in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  return { root, workdir, env };
}

function replayRun(stage, label, command, cwd, line) {
  let m;
  if (/^npm ci\b/.test(command) && !/--omit=dev/.test(command)) {
    // The build stage's full install: node_modules of this checkout, installed by `make node_modules` from the
    // very package-lock.json the stage copied (compared here), is that tree.
    const lock = join(cwd, "package-lock.json");
    if (!existsSync(lock) || readFileSync(lock, "utf8") !== readFileSync(join(ROOT, "package-lock.json"), "utf8")) {
      fatal(`Dockerfile:${line}: ${command} runs without the checkout's package-lock.json beside it`);
    }
    symlinkSync(join(ROOT, "node_modules"), join(cwd, "node_modules"));
  } else if (/^npm ci\b/.test(command)) {
    // Run as written; --prefer-offline only lets npm take the packages from its cache when it has them.
    const args = command.split(/\s+/).slice(1);
    run("npm", [...args, "--prefer-offline"], { cwd, env: { ...process.env, NODE_ENV: "production" } });
  } else if (/^npm cache clean\b/.test(command)) {
    // Only makes the image smaller; run here it would empty this machine's npm cache.
  } else if (/^npx (--no )?(-- )?tsc\b/.test(command)) {
    run("sh", ["-c", command], { cwd });
  } else if ((m = /^install -d((?:\s+-[ogm]\s+\S+)*)\s+(\/\S+)$/.exec(command))) {
    const opt = Object.fromEntries([...m[1].matchAll(/-([ogm])\s+(\S+)/g)].map((x) => [x[1], x[2]]));
    const dir = inRoot(stage, m[2]);
    mkdirSync(dir, { recursive: true });
    if (opt.m) chmodSync(dir, parseInt(opt.m, 8));
    if (process.getuid?.() === 0 && (opt.o || opt.g)) chownSync(dir, Number(opt.o ?? 0), Number(opt.g ?? 0));
  } else {
    fatal(`Dockerfile:${line}: stage ${label}: RUN ${command} is not replayed by this script: teach scripts/check-dockerfile.mjs`);
  }
}

const built = replay(build, "build");
if (!existsSync(join(built.root, built.workdir, "dist/gateway/cli/main.js"))) fatal("the build stage produced no dist/gateway/cli/main.js");
const image = replay(runtime, "runtime");
const appDir = join(image.root, image.workdir);

// No dev dependency in the runtime tree: every package the lockfile marks dev is absent.
const lock = JSON.parse(readFileSync(join(ROOT, "package-lock.json"), "utf8"));
const devOnly = Object.entries(lock.packages).filter(([p, v]) => p.startsWith("node_modules/") && v.dev === true).map(([p]) => p);
const present = devOnly.filter((p) => existsSync(join(appDir, p)));
check(devOnly.length > 0 && present.length === 0, `runtime node_modules: none of the ${devOnly.length} dev-only packages (typescript, mocha, …)`, present.slice(0, 5).join(", "));
check(!existsSync(join(appDir, "dist/test")) && !existsSync(join(appDir, "dist/demo")) && !existsSync(join(appDir, "dist/bench")), "runtime tree: dist/gateway only");

// The volume exists in the image and belongs to USER, so a fresh named volume (which copies it) is writable.
const asRoot = process.getuid?.() === 0;
for (const v of volumes) {
  const dir = inRoot(runtime, v);
  const st = existsSync(dir) ? statSync(dir) : null;
  check(st !== null && (!asRoot || (st.uid === uid && st.gid === gid)), `VOLUME ${v}: created in the image, owned by ${uid}:${gid}`, st ? `owned by ${st.uid}:${st.gid}` : "not created by the runtime stage");
}

// ------------------------------------------------------------------------------------------- 3. start it

// Everything the image holds belongs to root; the gateway runs as USER and can write only to the volume.
// Without root here, the runtime tree is made read-only instead and the gateway runs as this user.
if (!asRoot) {
  spawnSync("chmod", ["-R", "a-w", appDir]);
  console.log("check-dockerfile: note: not root, so the gateway runs as this user with the runtime tree made read-only");
}
const runAs = asRoot ? { uid, gid } : {};
const runEnv = { PATH: process.env.PATH, HOME: "/", ...image.env };

/** Starts ENTRYPOINT + args the way the image would, in its WORKDIR, as its USER. */
function start(args) {
  return spawn(entrypoint[0] === "node" ? process.execPath : entrypoint[0], [...entrypoint.slice(1), ...args], {
    cwd: appDir,
    env: runEnv,
    stdio: ["ignore", "pipe", "pipe"],
    ...runAs,
  });
}

function collect(proc) {
  const out = { stdout: "", stderr: "" };
  proc.stdout.on("data", (d) => (out.stdout += d));
  proc.stderr.on("data", (d) => (out.stderr += d));
  return out;
}

async function exitOf(proc, ms) {
  if (proc.exitCode !== null) return proc.exitCode;
  return new Promise((res) => {
    const t = setTimeout(() => res("timeout"), ms);
    proc.on("exit", (code, signal) => {
      clearTimeout(t);
      res(code ?? signal);
    });
  });
}

async function freePort() {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once("error", rej);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => res(port));
    });
  });
}

{
  const p = start(["--help"]);
  const out = collect(p);
  const code = await exitOf(p, 15_000);
  check(code === 0 && /\bserve\b/.test(out.stdout), "image runs: portcullis --help lists serve", `exit ${code}: ${out.stderr.slice(-500)}`);
}
{
  const p = start([cmd[0], "--help"]);
  const out = collect(p);
  const code = await exitOf(p, 15_000);
  check(code === 0 && out.stdout.includes("--config"), `image runs: portcullis ${cmd[0]} --help takes --config`, `exit ${code}: ${out.stderr.slice(-500)}`);
}

// A minimal config at the CMD's path; every path in it is inside the replayed root.
const configArg = cmd.indexOf("--config");
const configPath = inRoot(runtime, cmd[configArg + 1]);
const etc = dirname(configPath);
mkdirSync(etc, { recursive: true });
copyFileSync(BUNDLE, join(etc, "mcp-authz.tar.gz"));
copyFileSync(BUNDLE_KEY, join(etc, "verification.pub.pem"));
const [port, closedPort] = [await freePort(), await freePort()];
const data = inRoot(runtime, volumes[0]);
// JSON is YAML; nothing listens on closedPort (the issuer and the upstream are never needed to start).
writeFileSync(
  configPath,
  JSON.stringify(
    {
      listen: { host: "127.0.0.1", port },
      auth: { issuer: `http://127.0.0.1:${closedPort}`, audience: `http://127.0.0.1:${port}/mcp`, jwksUri: `http://127.0.0.1:${closedPort}/jwks.json` },
      policy: { bundle: join(etc, "mcp-authz.tar.gz"), verificationKey: join(etc, "verification.pub.pem") },
      upstreams: { demo: { url: `http://127.0.0.1:${closedPort}/mcp` } },
      audit: { file: join(data, "audit.jsonl"), outbox: { dir: join(data, "outbox") } },
      shutdown: { drainTimeoutMs: 1000 },
    },
    null,
    2,
  ),
);
for (const f of [configPath, join(etc, "mcp-authz.tar.gz"), join(etc, "verification.pub.pem")]) chmodSync(f, 0o444);

child = start([cmd[0], "--config", configPath]);
const served = collect(child);
const base = `http://127.0.0.1:${port}`;
let health = null;
for (const deadline = Date.now() + 20_000; Date.now() < deadline && child.exitCode === null; ) {
  health = await fetch(`${base}/healthz`).then((r) => r.status, () => null);
  if (health === 200) break;
  await new Promise((r) => setTimeout(r, 200));
}
check(health === 200, `image serves: GET /healthz 200 (${cmd[0]} on 127.0.0.1:${port} as ${asRoot ? `${uid}:${gid}` : "this user"})`, `status ${health}, exit ${child.exitCode}: ${served.stderr.slice(-1500)}`);
if (health === 200) {
  const r = await fetch(`${base}/mcp/demo`, {
    method: "POST",
    headers: { "content-type": "application/json", accept: "application/json, text/event-stream" },
    body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/list" }),
  });
  check(r.status === 401 && /resource_metadata=/.test(r.headers.get("www-authenticate") ?? ""), "image serves: a call without a token gets 401 with the resource_metadata challenge", `status ${r.status}`);
  child.kill("SIGTERM");
  const code = await exitOf(child, 15_000);
  check(code === 0, "image stops: SIGTERM exits 0", `exit ${code}: ${served.stderr.slice(-1000)}`);
  const audit = existsSync(join(data, "audit.jsonl")) ? readFileSync(join(data, "audit.jsonl"), "utf8") : "";
  check(/"outcome":"unauthenticated"/.test(audit), `image writes only to the volume: the refusal is audited in ${volumes[0]}/audit.jsonl`, `${audit ? "no unauthenticated event" : "no audit file"}; gateway stderr: ${served.stderr.slice(-800)}`);
}

if (problems.length > 0) {
  console.log(`check-dockerfile: ${problems.length} problem(s), ${passed} check(s) ok`);
  process.exit(1);
}
console.log(`check-dockerfile: all ${passed} checks ok`);
