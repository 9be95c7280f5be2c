import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { parse as parseYaml } from "yaml";
import { GatewayMetrics } from "../../../gateway/metrics/index.js";
import { parseExposition } from "./exposition.js";

/**
 * The deploy artefacts against the module they watch: every metric the Grafana dashboard, the
 * alert rules and docs/operations.md name is one GatewayMetrics exports (a renamed metric breaks
 * here, not silently on an operator's screen), the dashboard shows each of the gateway's own
 * metrics, and both files have the shape their tools load. promtool checks the rules' PromQL
 * (make metrics-lint).
 */
const ROOT = fileURLToPath(new URL("../../../../", import.meta.url));
const read = (path: string) => readFileSync(`${ROOT}${path}`, "utf8");
const DASHBOARD = "deploy/grafana/portcullis-dashboard.json";
const ALERTS = "deploy/prometheus/portcullis-alerts.yaml";
const METRIC_NAME = /\bportcullis_[a-z0-9_]+/g;

/** Names a query may use: every sample name (histograms' _bucket/_sum/_count) and family, process metrics included. */
async function exportedNames(): Promise<{ names: Set<string>; families: Map<string, string> }> {
  const m = new GatewayMetrics({
    upstreams: ["files"],
    clock: { now: () => 0 },
    sources: {
      sessions: () => ({ http: 1, stdio: 1 }),
      outbox: () => ({ unacked: 1, oldestUnackedAgeMs: 1, sendLagMs: 1 }),
      bundle: () => ({ revision: "r", confirmedAtMs: 0 }),
      jwks: () => ({ fetchedAtMs: 0, refreshFailures: 0 }),
    },
  });
  m.recordRequest({ server: "files", method: "tools/call", outcome: "allowed", durationMs: 1 });
  m.recordStage("edge", 1);
  m.recordUpstream({ server: "files", durationMs: 1, errorCode: "upstream_timeout" });
  m.recordRateLimited({ server: "files", reason: "rate_limited" });
  const parsed = parseExposition((await m.exposition()).body);
  return { names: new Set([...parsed.samples.map((s) => s.name), ...parsed.types.keys()]), families: parsed.types };
}

/** The gateway's own families: not Node's process metrics (collectDefaultMetrics). */
const isGatewayFamily = (name: string) => !/^portcullis_(process|nodejs)_/.test(name);

interface Panel {
  id: number;
  type: string;
  title: string;
  gridPos: { h: number; w: number; x: number; y: number };
  datasource?: { type: string; uid: string };
  targets?: Array<{ refId: string; expr: string; datasource?: { uid: string } }>;
  panels?: Panel[];
}
interface Dashboard {
  title: string;
  uid: string;
  schemaVersion: number;
  panels: Panel[];
  templating: { list: Array<{ name: string; type: string; query: string | { query: string } }> };
}

interface AlertRule {
  alert: string;
  expr: string;
  for?: string;
  labels: { severity: string };
  annotations: { summary: string; description: string };
}

function dashboardExpressions(d: Dashboard): Array<{ where: string; expr: string }> {
  const panels = d.panels.flatMap((p) => [p, ...(p.panels ?? [])]);
  return [
    ...panels.flatMap((p) => (p.targets ?? []).map((t) => ({ where: `panel ${p.id} "${p.title}" ${t.refId}`, expr: t.expr }))),
    ...d.templating.list.filter((v) => v.type === "query").map((v) => ({ where: `variable ${v.name}`, expr: typeof v.query === "string" ? v.query : v.query.query })),
  ];
}

function namesIn(expr: string): string[] {
  return [...expr.matchAll(METRIC_NAME)].map((m) => m[0]);
}

describe("deploy artefacts: Grafana dashboard and Prometheus alert rules", () => {
  let exported: Awaited<ReturnType<typeof exportedNames>>;
  const dashboard = JSON.parse(read(DASHBOARD)) as Dashboard;
  const alerts = parseYaml(read(ALERTS)) as { groups: Array<{ name: string; rules: AlertRule[] }> };
  const rules = alerts.groups.flatMap((g) => g.rules);
  before(async () => {
    exported = await exportedNames();
  });

  it("the dashboard and the alert rules query only metrics the gateway exports", () => {
    const uses = [...dashboardExpressions(dashboard), ...rules.map((r) => ({ where: `alert ${r.alert}`, expr: r.expr }))];
    const unknown = uses.flatMap(({ where, expr }) => namesIn(expr).filter((n) => !exported.names.has(n)).map((n) => `${where}: ${n}`));
    assert.deepEqual(unknown, []);
    assert.ok(uses.every(({ expr }) => namesIn(expr).length > 0), "every query names a portcullis metric");
  });

  it("the dashboard shows every metric of the gateway's own", () => {
    const shown = new Set(dashboardExpressions(dashboard).flatMap(({ expr }) => namesIn(expr)).map((n) => n.replace(/_(bucket|sum|count)$/, "")));
    const missing = [...exported.families.keys()].filter(isGatewayFamily).filter((f) => !shown.has(f));
    assert.deepEqual(missing, []);
  });

  it("docs/operations.md describes every metric of the gateway's own", () => {
    const doc = read("docs/operations.md");
    const section = doc.slice(doc.indexOf("## Metrics"));
    const missing = [...exported.families.keys()].filter(isGatewayFamily).filter((f) => !section.includes(`\`${f}`));
    assert.deepEqual(missing, []);
    const unknown = [...new Set(namesIn(section))].filter((n) => !exported.names.has(n) && !n.endsWith("_"));
    assert.deepEqual(unknown, [], "names in the docs the gateway does not export");
  });

  it("the dashboard has the shape Grafana imports: ids, grid, data source variable, targets", () => {
    assert.equal(typeof dashboard.title, "string");
    assert.match(dashboard.uid, /^[a-zA-Z0-9_-]{1,40}$/);
    assert.ok(Number.isInteger(dashboard.schemaVersion) && dashboard.schemaVersion >= 36);
    assert.ok(dashboard.templating.list.some((v) => v.name === "datasource" && v.type === "datasource" && v.query === "prometheus"));
    const panels = dashboard.panels.flatMap((p) => [p, ...(p.panels ?? [])]);
    const ids = panels.map((p) => p.id);
    assert.equal(new Set(ids).size, ids.length, "panel ids are unique");
    const known = new Set(["row", "timeseries", "stat", "table", "gauge", "bargauge", "text"]);
    for (const p of panels) {
      const where = `panel ${p.id} "${p.title}"`;
      assert.ok(known.has(p.type), `${where}: type ${p.type}`);
      assert.ok(typeof p.title === "string" && p.title.length > 0, `${where}: title`);
      const { h, w, x, y } = p.gridPos;
      assert.ok([h, w, x, y].every(Number.isInteger) && h > 0 && w > 0 && x >= 0 && y >= 0 && x + w <= 24, `${where}: gridPos ${JSON.stringify(p.gridPos)}`);
      if (p.type === "row") continue;
      assert.equal(p.datasource?.uid, "${datasource}", `${where}: queries the data source variable`);
      assert.ok(p.targets && p.targets.length > 0, `${where}: has targets`);
      const refIds = p.targets.map((t) => t.refId);
      assert.equal(new Set(refIds).size, refIds.length, `${where}: refIds are unique`);
    }
    // No two panels cover the same cell.
    for (const [i, a] of panels.entries()) {
      for (const b of panels.slice(i + 1)) {
        const overlap = a.gridPos.x < b.gridPos.x + b.gridPos.w && b.gridPos.x < a.gridPos.x + a.gridPos.w && a.gridPos.y < b.gridPos.y + b.gridPos.h && b.gridPos.y < a.gridPos.y + a.gridPos.h;
        assert.ok(!overlap, `panels ${a.id} and ${b.id} overlap`);
      }
    }
  });

  it("every alert rule has a unique name, a severity, a summary and a description", () => {
    assert.ok(alerts.groups.length > 0);
    const names = rules.map((r) => r.alert);
    assert.equal(new Set(names).size, names.length, "alert names are unique");
    for (const r of rules) {
      assert.match(r.alert, /^Portcullis[A-Za-z]+$/, r.alert);
      assert.ok(["critical", "warning", "info"].includes(r.labels.severity), `${r.alert}: severity ${r.labels.severity}`);
      assert.ok(r.annotations.summary && r.annotations.description, `${r.alert}: summary and description`);
      if (r.for !== undefined) assert.match(r.for, /^\d+[smh]$/, `${r.alert}: for`);
    }
    // The alerts issue 12 asks for.
    for (const needed of ["PortcullisAuditStalled", "PortcullisBundleStale", "PortcullisErrorRate", "PortcullisJwksRefreshFailing"]) assert.ok(names.includes(needed), needed);
  });
});
