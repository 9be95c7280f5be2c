#!/usr/bin/env node
// What kubeconform cannot see in the rendered Helm chart (scripts/check-chart.sh runs this on each render):
//   - gateway.yaml from the ConfigMap passes the gateway's own config loader (dist/gateway/config), with
//     exactly the environment variables the container gets, so a ${VAR} the pod does not set fails here;
//   - every file the config reads is an item of the pod's read-only config volume, every path it writes is
//     on the writable data volume (the root file system is read-only), the port is the probes' and Service's;
//   - the pod runs as the Dockerfile's USER with the data volume at the Dockerfile's VOLUME, non-root,
//     read-only root, no privilege escalation, no capabilities, seccomp RuntimeDefault;
//   - the Service, PDB, HPA and both NetworkPolicies select the gateway's pods (the upstream policy admits
//     them), and each seal key's variable comes from the Secret entry named by its id.
// Usage: node scripts/check-chart.mjs RENDERED.yaml LABEL   (needs make build: it imports dist/gateway)
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, posix, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseAllDocuments } from "yaml";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const { loadConfig, parseConfig, ConfigError } = await import(join(ROOT, "dist/gateway/config/index.js"));

const [file, label = file] = process.argv.slice(2);
if (!file) {
  console.error("usage: node scripts/check-chart.mjs RENDERED.yaml [LABEL]");
  process.exit(2);
}
const problems = [];
const expect = (cond, what) => {
  if (!cond) problems.push(what);
};

const docs = parseAllDocuments(readFileSync(file, "utf8"))
  .map((d) => d.toJS())
  .filter((d) => d !== null);
const all = (kind) => docs.filter((d) => d.kind === kind);
const one = (kind) => {
  const found = all(kind);
  if (found.length !== 1) throw new Error(`${label}: expected one ${kind}, found ${found.length}`);
  return found[0];
};
const workload = docs.find((d) => d.kind === "Deployment" || d.kind === "StatefulSet");
if (!workload) throw new Error(`${label}: no Deployment or StatefulSet`);
const pod = workload.spec.template.spec;
const podLabels = workload.spec.template.metadata.labels;
const container = pod.containers.find((c) => c.name === "gateway");
if (!container) throw new Error(`${label}: no container named gateway`);
/** A selector (matchLabels) picks the gateway's pods. */
const selectsGateway = (matchLabels) =>
  matchLabels !== undefined && Object.keys(matchLabels).length > 0 && Object.entries(matchLabels).every(([k, v]) => podLabels[k] === v);

// ---------------------------------------------------------------- image and pod security, against the Dockerfile
const dockerfile = readFileSync(join(ROOT, "Dockerfile"), "utf8");
const runtimeStage = dockerfile.slice(dockerfile.lastIndexOf("\nFROM "));
const imageUser = /^USER\s+(\d+)(?::(\d+))?\s*$/m.exec(runtimeStage);
const imageVolume = /^VOLUME\s+\["([^"]+)"\]/m.exec(runtimeStage)?.[1];
const podSc = pod.securityContext ?? {};
const sc = container.securityContext ?? {};
expect(imageUser && (podSc.runAsUser ?? sc.runAsUser) === Number(imageUser[1]), `pod runs as the Dockerfile's USER ${imageUser?.[1]}, not ${podSc.runAsUser ?? sc.runAsUser}`);
expect(podSc.runAsNonRoot === true || sc.runAsNonRoot === true, "runAsNonRoot is not set");
expect(sc.readOnlyRootFilesystem === true, "container securityContext.readOnlyRootFilesystem is not true");
expect(sc.allowPrivilegeEscalation === false, "container securityContext.allowPrivilegeEscalation is not false");
expect((sc.capabilities?.drop ?? []).includes("ALL"), "container capabilities do not drop ALL");
expect((sc.seccompProfile ?? podSc.seccompProfile)?.type === "RuntimeDefault", "seccompProfile is not RuntimeDefault");
expect(pod.automountServiceAccountToken === false, "the pod mounts a service account token it never uses");

// ---------------------------------------------------------------- the config, through the gateway's loader
const configMap = all("ConfigMap").find((c) => c.data?.["gateway.yaml"] !== undefined);
if (!configMap) throw new Error(`${label}: no ConfigMap with gateway.yaml`);
const env = {};
for (const e of container.env ?? []) {
  env[e.name] = e.name.startsWith("PORTCULLIS_SEAL_KEY_")
    ? randomBytes(32).toString("base64")
    : e.name === "PORTCULLIS_REDIS_URL"
      ? "redis://:placeholder@redis.example:6379"
      : "placeholder";
}
let text = configMap.data["gateway.yaml"];
const raw = parseAllDocuments(text)[0].toJS();

// The lead's sessions.sealKeys may not be in this checkout's schema yet: validate without it then, and say so.
const sealKeysKnown = (() => {
  const minimal = {
    auth: { issuer: "https://idp.example/", audience: "https://gw.example/mcp", jwksUri: "https://idp.example/jwks" },
    policy: { bundle: "/b.tar.gz", verificationKey: "/k.pem" },
    upstreams: { a: { url: "http://upstream.example/mcp" } },
    sessions: { sealKeys: [{ id: "k1", key: randomBytes(32).toString("base64") }] },
  };
  try {
    parseConfig(minimal, "probe.yaml", {});
    return true;
  } catch (err) {
    if (err instanceof ConfigError && err.problems.every((p) => /sealKeys/.test(p))) return false;
    throw err;
  }
})();
const sealKeys = raw.sessions?.sealKeys ?? [];
if (!sealKeysKnown && raw.sessions?.sealKeys) {
  console.log(`check-chart: note: ${label}: this checkout's config schema has no sessions.sealKeys yet; gateway.yaml validated without it`);
  delete raw.sessions.sealKeys;
  if (Object.keys(raw.sessions).length === 0) delete raw.sessions;
  text = JSON.stringify(raw);
}
const work = mkdtempSync(join(tmpdir(), "portcullis-chart-"));
const args = container.args ?? [];
const configPath = args[args.indexOf("--config") + 1];
let config = null;
try {
  // Written where the pod reads it (as a path only: the loader resolves relative paths against its folder).
  const local = join(work, "gateway.yaml");
  writeFileSync(local, text);
  config = loadConfig(local, env);
} catch (err) {
  const where = `ConfigMap ${configMap.metadata.name} gateway.yaml`;
  problems.push(err instanceof ConfigError ? `gateway.yaml does not load: ${err.message.replace(join(work, "gateway.yaml"), where)}` : String(err));
} finally {
  rmSync(work, { recursive: true, force: true });
}

// Seal keys: ${PORTCULLIS_SEAL_KEY_<ID>} from the Secret entry <id>, first to last as in values.
for (const k of sealKeys) {
  const name = /^\$\{(\w+)\}$/.exec(k.key)?.[1];
  const e = (container.env ?? []).find((x) => x.name === name);
  expect(e?.valueFrom?.secretKeyRef?.key === k.id, `seal key ${k.id}: ${k.key} is not the Secret entry ${k.id}`);
}

// ---------------------------------------------------------------- files: read from the config volume, written to data
const volumes = Object.fromEntries((pod.volumes ?? []).map((v) => [v.name, v]));
const claims = new Set((workload.spec.volumeClaimTemplates ?? []).map((c) => c.metadata.name));
const mounts = container.volumeMounts ?? [];
const mountOf = (path) =>
  mounts.filter((m) => path === m.mountPath || path.startsWith(`${m.mountPath}/`)).sort((a, b) => b.mountPath.length - a.mountPath.length)[0];
/** The file is an item of the mounted volume (projected, configMap or secret items). */
function provides(path) {
  const m = mountOf(path);
  if (!m) return false;
  const v = volumes[m.name];
  const rel = posix.relative(m.mountPath, path);
  const sources = v?.projected?.sources ?? [v];
  return sources.some((s) => (s?.configMap ?? s?.secret)?.items?.some((i) => i.path === rel));
}
function writable(path) {
  const m = mountOf(path);
  return m !== undefined && m.readOnly !== true && (volumes[m.name]?.emptyDir !== undefined || claims.has(m.name));
}
expect(configPath && provides(configPath), `--config ${configPath} is not an item of a mounted volume`);
if (config) {
  if (!/^https?:\/\//.test(config.policy.bundle)) expect(provides(config.policy.bundle), `policy.bundle ${config.policy.bundle} is not mounted`);
  expect(provides(config.policy.verificationKey), `policy.verificationKey ${config.policy.verificationKey} is not mounted`);
  const writes = [
    ["audit.file", config.audit.file],
    ["audit.outbox.dir", config.audit.kafka && config.audit.outbox ? join(config.audit.outbox.dir, "x") : undefined],
    ["audit.kafka.deadLetterFile", config.audit.kafka?.deadLetterFile],
  ];
  for (const [key, path] of writes) if (path) expect(writable(path), `${key} ${path} is not on a writable volume (the root file system is read-only)`);
  const http = (container.ports ?? []).find((p) => p.name === "http");
  expect(http?.containerPort === config.listen.port && config.listen.host === "0.0.0.0", `listen ${config.listen.host}:${config.listen.port} is not the container port http ${http?.containerPort} on every interface`);
}
expect(mountOf(imageVolume ?? "/nonexistent")?.mountPath === imageVolume && writable(join(imageVolume, "x")), `the Dockerfile's VOLUME ${imageVolume} is not a writable mount`);
for (const probe of ["startupProbe", "livenessProbe", "readinessProbe"]) {
  expect(container[probe]?.httpGet?.port === "http", `${probe} does not use the http port`);
}
expect(container.livenessProbe?.httpGet?.path === "/healthz" && container.readinessProbe?.httpGet?.path === "/readyz", "liveness is not /healthz or readiness not /readyz");

// ---------------------------------------------------------------- everything selects the gateway's pods
for (const s of all("Service")) {
  expect(selectsGateway(s.spec.selector), `Service ${s.metadata.name} does not select the gateway's pods`);
  expect(s.spec.ports.every((p) => p.targetPort === "http"), `Service ${s.metadata.name} does not target the http port`);
}
if (workload.kind === "StatefulSet") expect(all("Service").some((s) => s.metadata.name === workload.spec.serviceName && s.spec.clusterIP === "None"), "the StatefulSet's serviceName is not a headless Service");
expect(selectsGateway(workload.spec.selector.matchLabels), "the workload's selector does not match its pod labels");
for (const p of all("PodDisruptionBudget")) expect(selectsGateway(p.spec.selector.matchLabels), `PodDisruptionBudget ${p.metadata.name} does not select the gateway's pods`);
for (const h of all("HorizontalPodAutoscaler")) {
  const t = h.spec.scaleTargetRef;
  expect(t.kind === workload.kind && t.name === workload.metadata.name, `HPA targets ${t.kind}/${t.name}, not ${workload.kind}/${workload.metadata.name}`);
  expect(workload.spec.replicas === undefined, "with an HPA the workload must not set replicas (each upgrade would reset the scale)");
}
for (const np of all("NetworkPolicy")) {
  if (selectsGateway(np.spec.podSelector.matchLabels)) {
    expect(np.spec.ingress?.every((r) => r.ports?.every((p) => p.port === "http")), `NetworkPolicy ${np.metadata.name}: ingress beyond the http port`);
  } else {
    // The upstreams' policy: the only peer is the gateway's pods in the release's namespace.
    const peers = (np.spec.ingress ?? []).flatMap((r) => r.from ?? [{}]);
    expect(peers.length > 0 && peers.every((p) => selectsGateway(p.podSelector?.matchLabels) && p.namespaceSelector?.matchLabels?.["kubernetes.io/metadata.name"]), `NetworkPolicy ${np.metadata.name}: admits more than the gateway's pods`);
  }
}
const kinds = docs.map((d) => d.kind).sort().join(", ");
if (problems.length > 0) {
  for (const p of problems) console.log(`check-chart: FAIL ${label}: ${p}`);
  process.exit(1);
}
console.log(`check-chart: ok   ${label}: gateway.yaml loads; mounts, pod security and selectors agree (${kinds})`);
