import assert from "node:assert/strict";
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium, type Browser, type Page } from "playwright-core";
import type { AuditEvent } from "../../gateway/audit/index.js";
import { ConsoleFeed } from "../../gateway/console/index.js";
import { operatorIdentity, startConsoleApp, type ConsoleApp } from "../support/console-app.js";
import { auditEvent, type DecisionSpec } from "../support/console-events.js";

/**
 * The console as an operator uses it: Debian's chromium (make tools-chromium) driven by
 * playwright-core, against the console router on a real Express server on 127.0.0.1, with a feed
 * of realistic audit events (built by the gateway's own AuditRecord) and more pushed live.
 * Screenshots go to .tools/artifacts/console/ (gitignored).
 */
const CHROMIUM = "/usr/bin/chromium";
const ARTIFACTS = fileURLToPath(new URL("../../../.tools/artifacts/console/", import.meta.url));
const HOSTILE_TOOL = "<img src=x onerror=alert(1)>";
const MIN = 60_000;

/** Some thirty decisions of the last hour: three agents on three servers, with every kind of refusal. */
function lastHour(now: number): DecisionSpec[] {
  const specs: DecisionSpec[] = [];
  const at = (minutesAgo: number) => now - minutesAgo * MIN;
  for (let i = 0; i < 14; i++) specs.push({ agent: "alice", server: "files", tool: "read_file", outcome: "allowed", arguments: { path: `/data/q${(i % 4) + 1}.csv` }, at: at(58 - i * 4) });
  for (let i = 0; i < 6; i++) specs.push({ agent: "ci-bot", server: "github", tool: "search_code", outcome: "allowed", arguments: { query: `repo:acme/api TODO ${i}` }, at: at(55 - i * 9) });
  for (let i = 0; i < 4; i++) specs.push({ agent: "bob", server: "crm", tool: "lookup_contact", outcome: "allowed", arguments: { email: `c${i}@example.com` }, at: at(50 - i * 10) });
  specs.push({ agent: "bob", server: "crm", tool: "export_contacts", outcome: "denied", reasons: ["bulk export of contacts is not allowed", "outside business hours"], message: "exports need a ticket", arguments: { format: "csv", all: true }, at: at(44) });
  specs.push({ agent: "bob", server: "files", tool: "read_file", outcome: "denied", reasons: ["path outside /data"], message: "read_file is limited to /data", arguments: { path: "/etc/shadow" }, at: at(33) });
  specs.push({ agent: "bob", server: "files", tool: "write_file", outcome: "denied", reasons: ["writes need approval"], arguments: { path: "/data/q1.csv", content: "…" }, at: at(21) });
  for (let i = 0; i < 3; i++) specs.push({ agent: "ci-bot", server: "github", tool: "create_issue", outcome: "rate_limited", arguments: { title: `flaky test ${i}` }, at: at(15 - i) });
  specs.push({ agent: "alice", server: "github", tool: "merge_pull_request", outcome: "error", error: { code: "upstream_timeout", message: "github did not answer within 30 s" }, arguments: { number: 4711 }, at: at(9) });
  specs.push({ agent: "alice", server: "files", method: "tools/list", tool: null, outcome: "allowed", at: at(7) });
  specs.push({ agent: null, server: "files", outcome: "unauthenticated", error: { code: "token_expired", message: "jwt expired" }, at: at(5) });
  return specs;
}

describe("console in headless Chromium (playwright-core)", function () {
  this.timeout(60_000);
  let browser: Browser;
  let page: Page;
  let app: ConsoleApp;
  let feed: ConsoleFeed;
  let identity: Awaited<ReturnType<typeof operatorIdentity>>;
  const consoleErrors: string[] = [];
  const dialogs: string[] = [];
  const requests: string[] = [];

  const shot = (name: string) => page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
  const push = (spec: Omit<DecisionSpec, "at">): AuditEvent => {
    const event = auditEvent({ ...spec, at: Date.now() });
    feed.push(event);
    return event;
  };
  const streamRows = () => page.locator("#stream-table tbody tr");
  /** [agent, outcome, tool] of every row the live table shows. */
  const shownRows = () =>
    page.$$eval("#stream-table tbody tr", (rows) => rows.map((r) => [r.children[2]?.textContent ?? "", r.children[1]?.textContent ?? "", r.children[5]?.textContent ?? ""]));

  before(async function () {
    if (!existsSync(CHROMIUM)) return this.skip(); // make tools-chromium installs it
    mkdirSync(ARTIFACTS, { recursive: true });
    identity = await operatorIdentity();
    feed = new ConsoleFeed();
    for (const spec of lastHour(Date.now())) feed.push(auditEvent(spec));
    app = await startConsoleApp({ feed, authorize: identity.authorize, bundle: () => ({ revision: "mcp-authz-2026.11.24-7f3a", loadedAt: new Date(Date.now() - 75 * MIN).toISOString() }) });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    });
    page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    page.on("console", (msg) => {
      if (msg.type() === "error") consoleErrors.push(msg.text());
    });
    page.on("pageerror", (err) => consoleErrors.push(`pageerror: ${err.message}`));
    page.on("dialog", (dialog) => {
      dialogs.push(dialog.message());
      void dialog.dismiss();
    });
    page.on("request", (req) => requests.push(req.url()));
  });

  after(async () => {
    await browser?.close();
    await app?.close();
    await identity?.idp.close();
  });

  it("loads with no console errors, asks for a token and shows no data before one is given", async () => {
    await page.goto(`${app.url}/console`);
    await page.locator("#token").waitFor();
    assert.equal(await page.locator("#main").isHidden(), true);
    assert.equal(await page.locator("#status").textContent(), "not connected");
    await page.waitForLoadState("networkidle");
    assert.deepEqual(consoleErrors, []);
    assert.ok(!requests.some((u) => u.includes("/console/api/")), `the page called the API without a token: ${requests.join(", ")}`);
    await shot("01-token-form");
  });

  it("refuses a token without the operator role, and an invalid token, keeping the data hidden", async () => {
    await page.fill("#token", identity.agentToken);
    await page.click("#token-form button[type=submit]");
    await page.locator("#auth-message", { hasText: "Refused" }).waitFor();
    assert.match((await page.locator("#auth-message").textContent()) ?? "", /console role/);
    assert.equal(await page.locator("#main").isHidden(), true);

    await page.fill("#token", identity.idp.mintDefective("tampered"));
    await page.click("#token-form button[type=submit]");
    await page.locator("#auth-message", { hasText: "Token refused" }).waitFor();
    assert.equal(await page.locator("#main").isHidden(), true);
    assert.equal(await page.evaluate(() => sessionStorage.getItem("portcullis.console.token")), null, "a refused token stays stored");
    await shot("02-token-refused");
    // The browser reports each refused call as a failed resource; nothing else may have gone wrong.
    assert.ok(consoleErrors.length > 0 && consoleErrors.every((e) => /status of 40[13]/.test(e)), consoleErrors.join("\n"));
    consoleErrors.length = 0;
  });

  it("shows the decision stream, the summary and the bundle once the operator's token is entered", async () => {
    await page.fill("#token", identity.operatorToken);
    await page.click("#token-form button[type=submit]");
    await page.locator("#status", { hasText: "live" }).waitFor();
    assert.equal(await streamRows().count(), feed.entries().length);
    const newest = await shownRows();
    assert.deepEqual(newest[0], ["(no token)", "unauthenticated", ""], "the newest decision comes first");
    await page.locator("#bundle", { hasText: "mcp-authz-2026.11.24-7f3a" }).waitFor();
    await page.locator("#denials-table tbody tr", { hasText: "bulk export of contacts is not allowed" }).waitFor();
    await page.locator("#calls-table tbody tr").first().waitFor();
    const topCall = await page.$$eval("#calls-table tbody tr:first-child td", (tds) => tds.map((td) => td.textContent));
    assert.deepEqual(topCall, ["alice", "files", "tools/call", "read_file", "14", "14", "0"]);
    assert.equal(await page.locator("#integrity").isHidden(), true, "integrity panels show without an integrity part");
    // The token lives in this tab's session storage only, never in the page or local storage.
    assert.equal(await page.evaluate(() => sessionStorage.getItem("portcullis.console.token")), identity.operatorToken);
    assert.equal(await page.evaluate(() => localStorage.length), 0);
    assert.ok(!(await page.content()).includes(identity.operatorToken), "the token is written into the page");
    await shot("03-connected");
  });

  it("draws the per-agent and per-tool charts", async () => {
    await page.locator("#chart-agents g.bar").first().waitFor();
    const agents = await page.$$eval("#chart-agents g.bar text:first-of-type", (ts) => ts.map((t) => t.textContent));
    assert.deepEqual(agents.slice(0, 3), ["alice", "ci-bot", "bob"]);
    const tools = await page.$$eval("#chart-tools g.bar", (gs) => gs.length);
    assert.ok(tools >= 6, `${tools} tool bars`);
    // alice, ci-bot and bob had calls allowed; the requests without a token (fourth) had none.
    const widths = await page.$$eval("#chart-agents rect.bar-allowed", (rs) => rs.map((r) => Number(r.getAttribute("width"))));
    assert.equal(widths.length, 4);
    assert.ok(widths[0]! > widths[1]! && widths[1]! > widths[2]! && widths[2]! > 0 && widths[3] === 0, `allowed bars ${widths.join(", ")}`);
    const refusedBob = await page.$eval("#chart-agents g.bar:nth-of-type(3) rect.bar-refused", (r) => Number(r.getAttribute("width")));
    assert.ok(refusedBob > 0, "bob's refusals are drawn");
    const box = await page.locator("#chart-agents").boundingBox();
    assert.ok(box && box.height > 40 && box.width > 200, `chart box ${JSON.stringify(box)}`);
    await page.locator("#charts").screenshot({ path: join(ARTIFACTS, "04-charts.png") });
  });

  it("filters the stream by agent, outcome, tool and server", async () => {
    const expectRows = async (expected: number, what: string) => {
      await page.waitForFunction((n) => document.querySelectorAll("#stream-table tbody tr").length === n, expected, { timeout: 5000 }).catch(() => undefined);
      assert.equal(await streamRows().count(), expected, what);
    };
    await page.fill("#filter-form input[name=agent]", "bob");
    await page.selectOption("#filter-form select[name=outcome]", "denied");
    await page.click("#filter-form button[type=submit]");
    await expectRows(feed.entries({ agent: "bob", outcome: "denied" }).length, "bob's denials");
    for (const [agent, outcome] of await shownRows()) assert.deepEqual([agent, outcome], ["bob", "denied"]);
    await shot("05-filtered");

    await page.click("#filter-form button[type=reset]");
    await page.fill("#filter-form input[name=tool]", "search_code");
    await page.click("#filter-form button[type=submit]");
    await expectRows(6, "search_code calls");
    for (const [, , tool] of await shownRows()) assert.equal(tool, "search_code");

    await page.click("#filter-form button[type=reset]");
    await page.fill("#filter-form input[name=server]", "crm");
    await page.click("#filter-form button[type=submit]");
    await expectRows(feed.entries({ server: "crm" }).length, "crm calls");

    await page.click("#filter-form button[type=reset]");
    await expectRows(feed.entries().length, "everything again");
  });

  it("shows a live decision as it is pushed, and only those that match the filter", async () => {
    const before = await streamRows().count();
    const live = push({ agent: "alice", server: "files", tool: "read_file", outcome: "allowed", arguments: { path: "/data/live.csv" } });
    const row = page.locator(`#stream-table tbody tr[data-decision-id="${live.decision_id}"]`);
    await row.waitFor({ timeout: 5000 });
    assert.equal(await streamRows().count(), before + 1);
    assert.equal(await page.$eval("#stream-table tbody tr:first-child", (tr) => (tr as HTMLElement).dataset["decisionId"]), live.decision_id, "the live row goes on top");

    await page.fill("#filter-form input[name=agent]", "bob");
    await page.click("#filter-form button[type=submit]");
    await page.waitForFunction(() => Array.from(document.querySelectorAll("#stream-table tbody tr")).every((r) => r.children[2]?.textContent === "bob"));
    await page.locator("#status", { hasText: "live" }).waitFor();
    const other = push({ agent: "alice", server: "files", tool: "read_file", outcome: "allowed" });
    const bobs = push({ agent: "bob", server: "files", tool: "delete_file", outcome: "denied", reasons: ["deletes are never allowed"] });
    await page.locator(`#stream-table tbody tr[data-decision-id="${bobs.decision_id}"]`).waitFor({ timeout: 5000 });
    assert.equal(await page.locator(`#stream-table tbody tr[data-decision-id="${other.decision_id}"]`).count(), 0, "a live event outside the filter was shown");
    await shot("06-live");
    await page.click("#filter-form button[type=reset]");
    await page.locator(`#stream-table tbody tr[data-decision-id="${other.decision_id}"]`).waitFor();
  });

  it("shows an agent-controlled tool name, arguments and reasons as text: no markup, no dialog", async () => {
    await page.locator("#status", { hasText: "live" }).waitFor();
    const hostile = push({
      agent: "mallory\"><svg onload=alert(3)>",
      server: "files",
      tool: HOSTILE_TOOL,
      outcome: "denied",
      reasons: ["<b onmouseover=alert(4)>bold</b>"],
      arguments: { q: "<script>alert(2)</script>" },
    });
    const row = page.locator(`#stream-table tbody tr[data-decision-id="${hostile.decision_id}"]`);
    await row.waitFor({ timeout: 5000 });
    const cells = await row.locator("td").allTextContents();
    assert.equal(cells[2], "mallory\"><svg onload=alert(3)>");
    assert.equal(cells[5], HOSTILE_TOOL);
    assert.equal(cells[6], "<b onmouseover=alert(4)>bold</b>");
    assert.equal(cells[7], '{"q":"<script>alert(2)</script>"}');
    // The summary refreshes after a live event: the names are in its tables and the agent chart too, as text.
    await page.locator("#calls-table tbody td", { hasText: HOSTILE_TOOL }).first().waitFor({ timeout: 5000 });
    await page.locator("#denials-table tbody td", { hasText: "<b onmouseover=alert(4)>bold</b>" }).first().waitFor({ timeout: 5000 });
    await page.locator("#chart-agents title", { hasText: "mallory\"><svg onload=alert(3)>" }).first().waitFor({ state: "attached", timeout: 5000 });
    await page.hover(`#stream-table tbody tr[data-decision-id="${hostile.decision_id}"] td:nth-child(7)`);
    await page.waitForTimeout(300); // time for an injected handler to fire, were there one
    const injected = await page.$$eval("main img, main script, main b, main svg:not(#chart-agents):not(#chart-tools), main [onerror], main [onload], main [onmouseover]", (els) => els.length);
    assert.equal(injected, 0, "agent text became markup");
    assert.deepEqual(dialogs, []);
    await page.locator("#live").screenshot({ path: join(ARTIFACTS, "07-hostile-as-text.png") });
  });

  it("keeps the token across a reload of the tab and forgets it on request", async () => {
    await page.reload();
    await page.locator("#status", { hasText: "live" }).waitFor();
    assert.equal(await streamRows().count(), feed.entries().length);
    await page.click("#forget");
    await page.locator("#token").waitFor();
    assert.equal(await page.locator("#main").isHidden(), true);
    assert.equal(await page.evaluate(() => sessionStorage.length), 0);
  });

  it("shows drifted tools and pending approvals when the gateway has them, and approves from the page", async () => {
    const pending = [
      { id: "apr-7d1c", agent: "bob", server: "files", tool: "delete_file", reason: "deletes need a second pair of eyes", requested_at: new Date().toISOString(), expires_at: new Date(Date.now() + 15 * MIN).toISOString() },
    ];
    const approved: Array<[string, string]> = [];
    const logged: Array<Record<string, unknown>> = [];
    const withIntegrity = await startConsoleApp({
      log: (level, msg, fields) => void logged.push({ level, msg, ...fields }),
      feed,
      authorize: identity.authorize,
      bundle: () => ({ revision: "mcp-authz-2026.11.24-7f3a" }),
      integrity: {
        drifted: async () => [{ server: "github", tool: "create_issue", pinned_digest: "sha256:1f0c…", current_digest: "sha256:9ab2…", detected_at: new Date().toISOString() }],
        approvals: async () => pending.filter((p) => !approved.some(([id]) => id === p.id)),
        approve: async (id, approver) => {
          approved.push([id, approver]);
          return true;
        },
      },
    });
    try {
      await page.goto(`${withIntegrity.url}/console`);
      await page.fill("#token", identity.operatorToken);
      await page.click("#token-form button[type=submit]");
      await page.locator("#integrity").waitFor();
      assert.deepEqual((await page.locator("#drifted-table tbody td").allTextContents()).slice(0, 4), ["github", "create_issue", "sha256:1f0c…", "sha256:9ab2…"]);
      await page.locator("#approvals-table tbody tr", { hasText: "apr-7d1c" }).waitFor();
      await page.locator("#integrity").screenshot({ path: join(ARTIFACTS, "08-integrity.png") });
      await page.click("#approvals-table tbody tr button");
      await page.locator("#approvals-table tbody tr").waitFor({ state: "detached" });
      assert.deepEqual(approved, [["apr-7d1c", "ops-carol"]], "approved as the operator the token names");
      assert.deepEqual(logged, [{ level: "info", msg: "console: approval decided", approval_id: "apr-7d1c", approver: "ops-carol", approved: true }]);
      await page.click("#forget");
    } finally {
      await withIntegrity.close();
    }
  });

  it("fetched nothing but its own origin, and logged no error along the way", () => {
    const foreign = requests.filter((u) => !/^http:\/\/127\.0\.0\.1:\d+\/console/.test(u));
    assert.deepEqual(foreign, []);
    assert.deepEqual(consoleErrors, []);
    assert.deepEqual(dialogs, []);
  });
});
