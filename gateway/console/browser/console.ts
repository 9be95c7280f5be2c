/// <reference lib="dom" />
/**
 * The console page's script, compiled by the project's tsc run and served as /console/console.js
 * (a module: the page's CSP allows no inline script). It holds no credential of its own: the
 * operator pastes a bearer token, kept in sessionStorage only, and every API call sends it.
 *
 * Everything the API returns is agent-controlled text (tool names, arguments, reasons). It reaches
 * the page only through textContent and attributes set one by one: this file never assigns
 * innerHTML, outerHTML or insertAdjacentHTML and never calls document.write
 * (test/unit/console/page.test.ts checks that).
 */
import type { Summary } from "../summary.js";
import type { ConsoleBundleInfo, ConsoleEntry, DriftedTool, PendingApproval } from "../types.js";

interface SummaryResponse extends Summary {
  bundle: ConsoleBundleInfo;
  integrity: { available: boolean; drifted: DriftedTool[]; approvals: PendingApproval[] };
}

const TOKEN_KEY = "portcullis.console.token";
const API = "/console/api";
/** Rows the live table keeps (the oldest go first). */
const MAX_ROWS = 500;
const SUMMARY_EVERY_MS = 10_000;
/** After a live event, the summary is refreshed this much later (many events share one refresh). */
const SUMMARY_AFTER_EVENT_MS = 1_000;
const RECONNECT_MS = 3_000;
const SVG_NS = "http://www.w3.org/2000/svg";

/** A 401 or 403 from the API: the token is dropped and the operator asked for another. */
class AuthRefused extends Error {}

const state = {
  token: null as string | null,
  filter: new URLSearchParams(),
  lastSeq: 0,
  stream: null as AbortController | null,
  summaryTimer: undefined as number | undefined,
  summarySoon: undefined as number | undefined,
  /** Bumped on every (re)connect and disconnect, so a late answer of an older one is ignored. */
  generation: 0,
};

// ---------------------------------------------------------------------------------------- DOM helpers

function byId<T extends Element = HTMLElement>(id: string): T {
  const found = document.getElementById(id);
  if (!found) throw new Error(`console page: #${id} is missing`);
  return found as unknown as T;
}

/** An element whose only content is `text`, as a text node. */
function el<K extends keyof HTMLElementTagNameMap>(tag: K, text = "", className = ""): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  node.textContent = text;
  if (className) node.className = className;
  return node;
}

function svg<K extends keyof SVGElementTagNameMap>(tag: K, attrs: Record<string, string | number>, text?: string): SVGElementTagNameMap[K] {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value));
  if (text !== undefined) node.textContent = text;
  return node;
}

function row(cells: Array<string | Node>, className = ""): HTMLTableRowElement {
  const tr = el("tr", "", className);
  for (const c of cells) {
    const td = el("td");
    if (typeof c === "string") td.textContent = c;
    else td.append(c);
    tr.append(td);
  }
  return tr;
}

function numCell(n: number): HTMLTableCellElement {
  return el("td", String(n), "num");
}

function shorten(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

function clock(timestamp: string): string {
  const d = new Date(timestamp);
  return Number.isNaN(d.getTime()) ? timestamp : d.toLocaleTimeString(undefined, { hour12: false });
}

function agentName(agent: string | null): string {
  return agent ?? "(no token)";
}

function why(entry: { reasons: string[]; error: { code: string; message: string } | null; message?: string | null }): string {
  if (entry.reasons.length > 0) return entry.reasons.join("; ");
  if (entry.error) return `${entry.error.code}: ${entry.error.message}`;
  return entry.message ?? "";
}

function setStatus(text: string, kind: "live" | "down" | "" = ""): void {
  const status = byId("status");
  status.textContent = text;
  status.className = `status ${kind}`.trim();
}

// ------------------------------------------------------------------------------------------------ API

async function api<T>(path: string, init: RequestInit = {}): Promise<T> {
  const res = await fetch(`${API}${path}`, { ...init, headers: { ...authHeader(), Accept: "application/json" }, cache: "no-store" });
  if (res.status === 401 || res.status === 403) throw new AuthRefused(await refusalText(res));
  if (!res.ok) throw new Error(`${path}: HTTP ${res.status}`);
  return (await res.json()) as T;
}

function authHeader(): Record<string, string> {
  return state.token ? { Authorization: `Bearer ${state.token}` } : {};
}

async function refusalText(res: Response): Promise<string> {
  const body = (await res.json().catch(() => ({}))) as { error_description?: unknown };
  const detail = typeof body.error_description === "string" ? body.error_description : `HTTP ${res.status}`;
  return res.status === 403 ? `Refused: ${detail}.` : `Token refused: ${detail}.`;
}

// ------------------------------------------------------------------------------------ connect / token

function start(): void {
  byId<HTMLFormElement>("token-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const input = byId<HTMLInputElement>("token");
    const token = input.value.trim().replace(/^Bearer\s+/i, "");
    input.value = "";
    if (!token) return;
    sessionStorage.setItem(TOKEN_KEY, token);
    void connect();
  });
  byId("forget").addEventListener("click", () => disconnect("Token forgotten."));
  const filters = byId<HTMLFormElement>("filter-form");
  filters.addEventListener("submit", (ev) => {
    ev.preventDefault();
    applyFilters(filters);
  });
  // The fields are cleared after the reset event, so read them on the next turn.
  filters.addEventListener("reset", () => setTimeout(() => applyFilters(filters), 0));
  if (sessionStorage.getItem(TOKEN_KEY)) void connect();
}

async function connect(): Promise<void> {
  state.token = sessionStorage.getItem(TOKEN_KEY);
  const generation = ++state.generation;
  byId("auth-message").textContent = "";
  setStatus("connecting…");
  try {
    await loadEvents(generation);
  } catch (err) {
    return void failed(err);
  }
  if (generation !== state.generation) return;
  byId("connect").hidden = true;
  byId("main").hidden = false;
  void openStream(generation);
  void loadSummary();
  clearInterval(state.summaryTimer);
  state.summaryTimer = window.setInterval(() => void loadSummary(), SUMMARY_EVERY_MS);
}

function disconnect(message: string): void {
  state.generation++;
  state.token = null;
  sessionStorage.removeItem(TOKEN_KEY);
  state.stream?.abort();
  state.stream = null;
  clearInterval(state.summaryTimer);
  clearTimeout(state.summarySoon);
  byId("main").hidden = true;
  byId("connect").hidden = false;
  byId("auth-message").textContent = message;
  setStatus("not connected", "down");
}

function failed(err: unknown): void {
  if (err instanceof AuthRefused) return disconnect(err.message);
  if (err instanceof DOMException && err.name === "AbortError") return;
  setStatus(`error: ${err instanceof Error ? err.message : String(err)}`, "down");
}

// ------------------------------------------------------------------------------- live decision table

function applyFilters(form: HTMLFormElement): void {
  const filter = new URLSearchParams();
  new FormData(form).forEach((value, key) => {
    if (typeof value === "string" && value.trim() !== "") filter.set(key, value.trim());
  });
  state.filter = filter;
  void connect();
}

async function loadEvents(generation: number): Promise<void> {
  const query = new URLSearchParams(state.filter);
  query.set("limit", String(MAX_ROWS));
  const { events } = await api<{ events: ConsoleEntry[] }>(`/events?${query}`);
  if (generation !== state.generation) return;
  const body = byId("stream-table").querySelector("tbody") as HTMLTableSectionElement;
  body.replaceChildren(...events.reverse().map((e) => decisionRow(e, false)));
  state.lastSeq = events.reduce((max, e) => Math.max(max, e.seq), 0);
  countRows();
}

function decisionRow(entry: ConsoleEntry, fresh: boolean): HTMLTableRowElement {
  const args = el("code", shorten(entry.arguments ?? "", 160));
  if (entry.arguments) args.title = entry.arguments;
  const tr = row(
    [clock(entry.timestamp), entry.outcome, agentName(entry.agent), entry.server, entry.method, entry.tool ?? entry.target ?? "", why(entry), args],
    fresh ? "fresh" : "",
  );
  tr.append(numCell(entry.latency_ms));
  tr.dataset["decisionId"] = entry.decision_id;
  tr.dataset["outcome"] = entry.outcome;
  const outcomeCell = tr.children[1] as HTMLElement;
  outcomeCell.className = `outcome-${entry.outcome}`;
  (tr.children[0] as HTMLElement).title = entry.timestamp;
  (tr.children[6] as HTMLElement).className = "wrap";
  return tr;
}

function countRows(): void {
  const n = byId("stream-table").querySelectorAll("tbody tr").length;
  byId("live-count").textContent = `(${n} shown${state.filter.size > 0 ? ", filtered" : ""})`;
}

function addLive(entry: ConsoleEntry): void {
  if (entry.seq <= state.lastSeq) return; // a replayed entry the table already has
  state.lastSeq = entry.seq;
  const body = byId("stream-table").querySelector("tbody") as HTMLTableSectionElement;
  body.prepend(decisionRow(entry, true));
  while (body.rows.length > MAX_ROWS) body.lastElementChild?.remove();
  countRows();
  if (state.summarySoon === undefined) {
    state.summarySoon = window.setTimeout(() => {
      state.summarySoon = undefined;
      void loadSummary();
    }, SUMMARY_AFTER_EVENT_MS);
  }
}

/**
 * The live stream, read with fetch (EventSource cannot send an Authorization header). Resumes
 * after the last entry shown (Last-Event-ID), so a reconnect loses nothing the feed still holds.
 */
async function openStream(generation: number): Promise<void> {
  state.stream?.abort();
  const controller = new AbortController();
  state.stream = controller;
  try {
    const res = await fetch(`${API}/stream?${state.filter}`, {
      headers: { ...authHeader(), Accept: "text/event-stream", "Last-Event-ID": String(state.lastSeq) },
      cache: "no-store",
      signal: controller.signal,
    });
    if (res.status === 401 || res.status === 403) throw new AuthRefused(await refusalText(res));
    if (!res.ok || !res.body) throw new Error(`stream: HTTP ${res.status}`);
    setStatus("live", "live");
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      let end: number;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const message = parseEvent(block);
        if (message?.event === "decision" && generation === state.generation) addLive(JSON.parse(message.data) as ConsoleEntry);
      }
    }
  } catch (err) {
    if (controller.signal.aborted) return;
    if (err instanceof AuthRefused) return disconnect(err.message);
  }
  if (controller.signal.aborted || generation !== state.generation) return;
  setStatus("reconnecting…", "down");
  setTimeout(() => {
    if (generation === state.generation) void openStream(generation);
  }, RECONNECT_MS);
}

function parseEvent(block: string): { event: string; data: string } | null {
  let event = "message";
  const data: string[] = [];
  for (const line of block.split("\n")) {
    if (line.startsWith(":")) continue;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
    if (field === "event") event = value;
    else if (field === "data") data.push(value);
  }
  return data.length > 0 ? { event, data: data.join("\n") } : null;
}

// ---------------------------------------------------------------------------------- summary and charts

async function loadSummary(): Promise<void> {
  const generation = state.generation;
  let summary: SummaryResponse;
  try {
    summary = await api<SummaryResponse>("/summary");
  } catch (err) {
    return failed(err);
  }
  if (generation !== state.generation) return;
  const loaded = summary.bundle.loadedAt ? `, loaded ${summary.bundle.loadedAt}` : "";
  byId("bundle").textContent = `bundle ${summary.bundle.revision}${loaded}`;
  const w = summary.window;
  byId("window").textContent = `${w.events} decisions from ${clock(w.from)} to ${clock(w.to)}${w.complete ? "" : " (older ones of this hour were dropped: counts are lower bounds)"}`;

  barChart(byId<SVGSVGElement>("chart-agents"), summary.per_agent.map((a) => ({ label: agentName(a.agent), total: a.total, refused: a.refused })));
  barChart(byId<SVGSVGElement>("chart-tools"), summary.per_tool.map((t) => ({ label: `${t.server}/${t.tool}`, total: t.total, refused: t.refused })));

  fill("calls-table", summary.calls.map((c) => {
    const tr = row([agentName(c.agent), c.server, c.method, c.tool ?? ""]);
    tr.append(numCell(c.total), numCell(c.outcomes.allowed), numCell(c.total - c.outcomes.allowed));
    return tr;
  }));
  fill("denials-table", summary.denials.map((d) => {
    const tr = row([clock(d.timestamp), d.outcome, agentName(d.agent), d.server, d.tool ?? d.method, why(d)]);
    (tr.children[1] as HTMLElement).className = `outcome-${d.outcome}`;
    (tr.children[5] as HTMLElement).className = "wrap";
    return tr;
  }));
  fill("reasons-table", summary.denial_reasons.map((r) => {
    const tr = row([r.reason]);
    tr.append(numCell(r.count));
    return tr;
  }));
  options("agents-known", summary.per_agent.flatMap((a) => (a.agent === null ? [] : [a.agent])));
  options("servers-known", [...new Set(summary.calls.map((c) => c.server))]);
  options("tools-known", [...new Set(summary.per_tool.map((t) => t.tool))]);
  integrity(summary.integrity);
}

function fill(tableId: string, rows: HTMLTableRowElement[]): void {
  const body = byId(tableId).querySelector("tbody") as HTMLTableSectionElement;
  body.replaceChildren(...rows);
}

function options(listId: string, values: string[]): void {
  byId(listId).replaceChildren(...values.sort().map((v) => {
    const option = el("option");
    option.value = v;
    return option;
  }));
}

/** Horizontal bars, allowed and refused stacked, the busiest first; drawn as SVG nodes. */
function barChart(target: SVGSVGElement, data: Array<{ label: string; total: number; refused: number }>): void {
  const rows = data.slice(0, 8);
  const width = 480;
  const labelWidth = 150;
  const barSpace = width - labelWidth - 50;
  const rowHeight = 22;
  const height = Math.max(1, rows.length) * rowHeight + 6;
  target.setAttribute("viewBox", `0 0 ${width} ${height}`);
  target.replaceChildren();
  if (rows.length === 0) {
    target.append(svg("text", { x: 0, y: 16, class: "empty" }, "no calls in the last hour"));
    return;
  }
  const max = Math.max(...rows.map((r) => r.total));
  rows.forEach((r, i) => {
    const y = i * rowHeight + 3;
    const group = svg("g", { class: "bar" });
    group.append(svg("title", {}, `${r.label}: ${r.total} calls, ${r.refused} refused`));
    group.append(svg("text", { x: 0, y: y + 14 }, shorten(r.label, 24)));
    const allowedWidth = ((r.total - r.refused) / max) * barSpace;
    const refusedWidth = (r.refused / max) * barSpace;
    group.append(svg("rect", { x: labelWidth, y, width: allowedWidth.toFixed(1), height: rowHeight - 6, class: "bar-allowed" }));
    group.append(svg("rect", { x: (labelWidth + allowedWidth).toFixed(1), y, width: refusedWidth.toFixed(1), height: rowHeight - 6, class: "bar-refused" }));
    group.append(svg("text", { x: (labelWidth + allowedWidth + refusedWidth + 4).toFixed(1), y: y + 14, class: "count" }, String(r.total)));
    target.append(group);
  });
}

// ------------------------------------------------------------- EXTENSION POINT: tool integrity panels

function integrity(section: SummaryResponse["integrity"]): void {
  byId("integrity").hidden = !section.available;
  if (!section.available) return;
  fill("drifted-table", section.drifted.map((t) => row([t.server, t.tool, el("code", t.pinned_digest), el("code", t.current_digest), clock(t.detected_at)])));
  fill("approvals-table", section.approvals.map((a) => {
    const approve = el("button", "Approve");
    approve.type = "button";
    approve.addEventListener("click", () => {
      approve.disabled = true;
      void api(`/approvals/${encodeURIComponent(a.id)}/approve`, { method: "POST" }).then(
        () => loadSummary(),
        (err: unknown) => failed(err),
      );
    });
    return row([el("code", a.id), a.agent, a.server, a.tool, a.reason, clock(a.requested_at), clock(a.expires_at), approve]);
  }));
}

start();
