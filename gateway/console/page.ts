/**
 * The console's static page: markup, style sheet and icon, shipped as strings so they travel with
 * the compiled package (tsc copies no other files). The script is browser/console.ts, compiled by
 * the same tsc run. Nothing here varies per request and nothing here holds data: every value the
 * page shows arrives through the authorized API and is written with textContent.
 */

/**
 * The page's Content-Security-Policy: its own files only, no inline script or style, no frames, no
 * forms posting anywhere, no plugins. An injected handler or <script> could not run even if markup
 * ever slipped through.
 */
export const PAGE_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join("; ");

export const PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>portcullis console</title>
<link rel="icon" href="/console/favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="/console/console.css">
<script type="module" src="/console/console.js"></script>
</head>
<body>
<header>
  <h1>portcullis console</h1>
  <p id="bundle" class="muted">bundle: unknown</p>
  <p id="status" role="status" class="status">not connected</p>
</header>

<section id="connect" aria-labelledby="connect-title">
  <h2 id="connect-title">Operator token</h2>
  <form id="token-form" autocomplete="off">
    <label for="token">Bearer token (kept in this tab's session storage only)</label>
    <input id="token" name="token" type="password" spellcheck="false" required>
    <button type="submit">Connect</button>
  </form>
  <p id="auth-message" class="message" role="alert"></p>
</section>

<main id="main" hidden>
  <section id="filters" aria-labelledby="filters-title">
    <h2 id="filters-title">Filters <span class="muted">(the live table; the summary covers everything)</span></h2>
    <form id="filter-form" autocomplete="off">
      <label>agent <input name="agent" list="agents-known" spellcheck="false"></label>
      <label>server <input name="server" list="servers-known" spellcheck="false"></label>
      <label>tool <input name="tool" list="tools-known" spellcheck="false"></label>
      <label>outcome
        <select name="outcome">
          <option value="">any</option>
          <option>allowed</option>
          <option>denied</option>
          <option>rate_limited</option>
          <option>unauthenticated</option>
          <option>invalid</option>
          <option>error</option>
        </select>
      </label>
      <button type="submit">Apply</button>
      <button type="reset">Clear</button>
      <button type="button" id="forget">Forget token</button>
    </form>
    <datalist id="agents-known"></datalist>
    <datalist id="servers-known"></datalist>
    <datalist id="tools-known"></datalist>
  </section>

  <section id="live" aria-labelledby="live-title">
    <h2 id="live-title">Live decisions <span id="live-count" class="muted"></span></h2>
    <div class="scroll">
      <table id="stream-table">
        <thead><tr><th>time</th><th>outcome</th><th>agent</th><th>server</th><th>method</th><th>tool</th><th>reasons / error</th><th>arguments</th><th>ms</th></tr></thead>
        <tbody></tbody>
      </table>
    </div>
  </section>

  <section id="charts" aria-labelledby="charts-title">
    <h2 id="charts-title">Last hour</h2>
    <p id="window" class="muted"></p>
    <div class="charts">
      <figure><figcaption>Calls per agent</figcaption><svg id="chart-agents" role="img" aria-label="calls per agent"></svg></figure>
      <figure><figcaption>Calls per tool</figcaption><svg id="chart-tools" role="img" aria-label="calls per tool"></svg></figure>
    </div>
    <p class="legend"><span class="swatch allowed"></span>allowed <span class="swatch refused"></span>refused</p>
  </section>

  <section id="summary" aria-labelledby="summary-title">
    <h2 id="summary-title">Who called what</h2>
    <div class="scroll">
      <table id="calls-table">
        <thead><tr><th>agent</th><th>server</th><th>method</th><th>tool</th><th>calls</th><th>allowed</th><th>refused</th></tr></thead>
        <tbody></tbody>
      </table>
    </div>
    <h2>Denials</h2>
    <div class="scroll">
      <table id="denials-table">
        <thead><tr><th>time</th><th>outcome</th><th>agent</th><th>server</th><th>tool</th><th>reasons / error</th></tr></thead>
        <tbody></tbody>
      </table>
    </div>
    <h2>Denial reasons</h2>
    <table id="reasons-table">
      <thead><tr><th>reason</th><th>count</th></tr></thead>
      <tbody></tbody>
    </table>
  </section>

  <section id="integrity" aria-labelledby="integrity-title" hidden>
    <h2 id="integrity-title">Drifted tools</h2>
    <table id="drifted-table">
      <thead><tr><th>server</th><th>tool</th><th>pinned</th><th>now</th><th>since</th></tr></thead>
      <tbody></tbody>
    </table>
    <h2>Pending approvals</h2>
    <table id="approvals-table">
      <thead><tr><th>id</th><th>agent</th><th>server</th><th>tool</th><th>reason</th><th>requested</th><th>expires</th><th></th></tr></thead>
      <tbody></tbody>
    </table>
  </section>
</main>
</body>
</html>
`;

export const PAGE_CSS = `:root { color-scheme: light dark; --ok: #2e7d32; --bad: #c62828; --warn: #ef6c00; --muted: #777; --line: #8884; }
* { box-sizing: border-box; }
body { font: 14px/1.4 system-ui, sans-serif; margin: 0 auto; padding: 0 1rem 2rem; max-width: 1400px; }
header { display: flex; align-items: baseline; gap: 1.5rem; flex-wrap: wrap; border-bottom: 1px solid var(--line); }
h1 { font-size: 1.3rem; margin: .8rem 0; }
h2 { font-size: 1.05rem; margin: 1.2rem 0 .4rem; }
.muted { color: var(--muted); font-weight: normal; }
.status { margin-left: auto; }
.status.live { color: var(--ok); }
.status.down { color: var(--bad); }
.message { color: var(--bad); min-height: 1.4em; }
form { display: flex; gap: .6rem; flex-wrap: wrap; align-items: end; }
#token-form { flex-direction: column; align-items: start; }
#token { width: min(40rem, 100%); font-family: ui-monospace, monospace; }
label { display: flex; flex-direction: column; gap: .15rem; font-size: .85rem; }
input, select, button { font: inherit; padding: .25rem .45rem; }
.scroll { max-height: 28rem; overflow: auto; border: 1px solid var(--line); }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: .2rem .45rem; border-bottom: 1px solid var(--line); vertical-align: top; }
th { position: sticky; top: 0; background: Canvas; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td code { font-size: .8rem; word-break: break-all; }
td.wrap { max-width: 28rem; overflow-wrap: anywhere; }
tr.fresh { animation: fresh 2s ease-out; }
@keyframes fresh { from { background: #ffeb3b55; } to { background: transparent; } }
.outcome-allowed { color: var(--ok); }
.outcome-denied, .outcome-error, .outcome-invalid { color: var(--bad); }
.outcome-rate_limited, .outcome-unauthenticated { color: var(--warn); }
.charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(22rem, 1fr)); gap: 1rem; }
figure { margin: 0; }
figcaption { font-weight: 600; margin-bottom: .3rem; }
svg { width: 100%; height: auto; display: block; }
svg text { font-size: 11px; fill: currentColor; }
svg .bar-allowed, .swatch.allowed { fill: var(--ok); background: var(--ok); }
svg .bar-refused, .swatch.refused { fill: var(--bad); background: var(--bad); }
svg .empty { fill: var(--muted); }
.swatch { display: inline-block; width: .8rem; height: .8rem; margin: 0 .25rem 0 .8rem; vertical-align: middle; }
`;

export const FAVICON_SVG = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><rect width="16" height="16" rx="2" fill="#37474f"/><path d="M3 3h10M3 3v11M6.5 3v11M9.5 3v11M13 3v11M3 7h10M3 11h10" stroke="#eceff1" stroke-width="1.4" fill="none"/></svg>
`;
