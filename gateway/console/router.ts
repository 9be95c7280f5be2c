import { readFileSync } from "node:fs";
import express, { type NextFunction, type Request, type Response, type Router } from "express";
import { AuthError, publicErrorDescription } from "../auth/index.js";
import { createLogger, type Logger } from "../shared/log.js";
import { matches } from "./entry.js";
import type { ConsoleFeed } from "./feed.js";
import { FAVICON_SVG, PAGE_CSP, PAGE_CSS, PAGE_HTML } from "./page.js";
import { ConsoleQueryError, parseQuery } from "./query.js";
import { summarize } from "./summary.js";
import type { ConsoleBundleInfo, ConsoleEntry, ConsoleIntegrity, ConsoleOperator } from "./types.js";

export interface ConsoleRouterOptions {
  feed: ConsoleFeed;
  /**
   * Decides who may use the API, from the request's Authorization header (never called without
   * one). Resolve the operator for a verified token that holds the console role; resolve null for
   * a verified token without it (403); reject with AuthError for a missing, malformed or invalid
   * token (401, or 503 for jwks_unavailable). Any other rejection is a 500 and is logged.
   */
  authorize: (authorizationHeader: string | undefined) => Promise<ConsoleOperator | null>;
  /** The active bundle, read on every summary. */
  bundle: () => ConsoleBundleInfo;
  /** EXTENSION POINT (tool integrity): drifted tools and pending approvals; absent: empty sections. */
  integrity?: ConsoleIntegrity;
  /** Epoch milliseconds. Default Date.now. */
  now?: () => number;
  /** The summary's window. Default one hour. */
  summaryWindowMs?: number;
  /** At most this many live streams at once; more are refused with 503. Default 16. */
  maxStreams?: number;
  /**
   * This often, every open stream gets a comment line (so proxies keep it open) and its token is
   * authorized again: a stream ends once its token expires or loses the role. Default 15 s.
   */
  heartbeatMs?: number;
  log?: Logger;
}

/** Mounted at the root of the gateway's app: it answers `/console` and `/console/…` only. */
export const CONSOLE_PATH = "/console";
const REALM = 'realm="portcullis console"';
const DEFAULT_WINDOW_MS = 60 * 60 * 1000;
/** Bytes a stream may have queued for a slow reader before it is ended. */
const MAX_STREAM_BACKLOG_BYTES = 4 * 1024 * 1024;
/** Entries a resuming stream is sent at most (an entry is a few KiB: well under the backlog cap). */
const REPLAY_MAX = 500;

/**
 * The operator's console: the page and its assets (public, they hold no data) and the JSON/SSE
 * API under /console/api (every route behind `authorize`). Mount with `app.use(consoleRouter(…))`
 * before the app's catch-all 404.
 */
export function consoleRouter(opts: ConsoleRouterOptions): Router {
  const now = opts.now ?? Date.now;
  const windowMs = opts.summaryWindowMs ?? DEFAULT_WINDOW_MS;
  const maxStreams = opts.maxStreams ?? 16;
  const heartbeatMs = opts.heartbeatMs ?? 15_000;
  const log = opts.log ?? createLogger();
  const script = browserScript();
  let openStreams = 0;

  const router = express.Router({ caseSensitive: true, strict: false });
  router.use(CONSOLE_PATH, (_req: Request, res: Response, next: NextFunction) => {
    // Every answer: never cached (decisions and tokens are live), never sniffed, never framed.
    res.setHeader("Cache-Control", "no-store");
    res.setHeader("X-Content-Type-Options", "nosniff");
    res.setHeader("Referrer-Policy", "no-referrer");
    res.setHeader("Content-Security-Policy", PAGE_CSP);
    res.setHeader("X-Frame-Options", "DENY"); // frame-ancestors for browsers that predate it
    next();
  });

  const asset = (path: string, type: string, body: string) =>
    router.get(`${CONSOLE_PATH}${path}`, (_req: Request, res: Response) => {
      res.status(200).type(type).send(body);
    });
  asset("", "text/html; charset=utf-8", PAGE_HTML);
  asset("/console.js", "text/javascript; charset=utf-8", script);
  asset("/console.css", "text/css; charset=utf-8", PAGE_CSS);
  asset("/favicon.svg", "image/svg+xml", FAVICON_SVG);

  /** The API's guard: a handler runs only with the operator `authorize` admitted. */
  const operatorOnly =
    (handler: (req: Request, res: Response, operator: ConsoleOperator) => Promise<void> | void) =>
    (req: Request, res: Response): void => {
      void admit(req, res, opts.authorize, log).then(async (operator) => {
        if (operator === null) return;
        try {
          await handler(req, res, operator);
        } catch (err) {
          if (err instanceof ConsoleQueryError) return void res.status(400).json({ error: err.code, error_description: err.message });
          log("error", "console: request failed", { path: req.path, error: err instanceof Error ? err.message : String(err) });
          if (!res.headersSent) res.status(500).json({ error: "server_error", error_description: "the console could not answer" });
          else res.end();
        }
      });
    };

  router.get(`${CONSOLE_PATH}/api/events`, operatorOnly((req, res) => {
    const { filter, limit } = parseQuery(req.query, true);
    const matched = opts.feed.entries(filter);
    res.json({ events: matched.slice(-limit), matched: matched.length });
  }));

  router.get(`${CONSOLE_PATH}/api/summary`, operatorOnly(async (_req, res) => {
    const t = now();
    const integrity = opts.integrity;
    res.json({
      ...summarize(opts.feed.entries(), t, windowMs, opts.feed.stats()),
      bundle: opts.bundle(),
      // EXTENSION POINT (tool integrity): empty until that issue passes `integrity`.
      integrity: {
        available: integrity !== undefined,
        drifted: integrity ? await integrity.drifted() : [],
        approvals: integrity ? await integrity.approvals() : [],
      },
    });
  }));

  router.get(`${CONSOLE_PATH}/api/drifted`, operatorOnly(async (_req, res) => {
    res.json({ available: opts.integrity !== undefined, tools: opts.integrity ? await opts.integrity.drifted() : [] });
  }));

  router.get(`${CONSOLE_PATH}/api/approvals`, operatorOnly(async (_req, res) => {
    res.json({ available: opts.integrity !== undefined, approvals: opts.integrity ? await opts.integrity.approvals() : [] });
  }));

  router.post(`${CONSOLE_PATH}/api/approvals/:id/approve`, operatorOnly(async (req, res, operator) => {
    const id = String(req.params["id"]);
    if (!opts.integrity) return void res.status(404).json({ error: "not_found", error_description: "approvals are not enabled on this gateway" });
    const approved = await opts.integrity.approve(id, operator.sub);
    log("info", "console: approval decided", { approval_id: id, approver: operator.sub, approved });
    if (!approved) return void res.status(404).json({ error: "not_found", error_description: "no pending approval has this id" });
    res.json({ id, approved: true, approver: operator.sub });
  }));

  router.get(`${CONSOLE_PATH}/api/stream`, operatorOnly((req, res) => {
    const { filter } = parseQuery(req.query, false);
    const lastEventId = req.headers["last-event-id"];
    const resumeAfter = typeof lastEventId === "string" && /^\d{1,15}$/.test(lastEventId) ? Number(lastEventId) : null;
    if (openStreams >= maxStreams) {
      return void res.status(503).set("Retry-After", "5").json({ error: "too_many_streams", error_description: `at most ${maxStreams} console streams at once` });
    }
    openStreams++;
    res.writeHead(200, {
      "Content-Type": "text/event-stream; charset=utf-8",
      Connection: "keep-alive",
      "X-Accel-Buffering": "no", // a buffering reverse proxy would hold the live stream back
    });
    let closed = false;
    let unsubscribe = () => {};
    let heartbeat: NodeJS.Timeout | undefined;
    const close = (): void => {
      if (closed) return;
      closed = true;
      openStreams--;
      clearInterval(heartbeat);
      unsubscribe();
    };
    /** Ends the stream from this side (the page reconnects, and learns why if it is refused). */
    const end = (): void => {
      if (closed) return;
      close();
      res.end();
    };
    const send = (entry: ConsoleEntry) => {
      if (closed) return;
      // JSON.stringify escapes every newline, so one data line always carries the whole entry.
      res.write(`id: ${entry.seq}\nevent: decision\ndata: ${JSON.stringify(entry)}\n\n`);
      // A reader that does not keep up is cut off rather than buffered without bound; it comes
      // back with Last-Event-ID and is replayed from the feed.
      if (res.writableLength > MAX_STREAM_BACKLOG_BYTES) end();
    };
    res.write("retry: 3000\n\n");
    // Replay and subscribe in one synchronous step, so no push falls between the two. The replay
    // covers a reconnect's gap, not the history (that is GET /events): its newest REPLAY_MAX only.
    if (resumeAfter !== null) for (const entry of opts.feed.entries(filter, resumeAfter).slice(-REPLAY_MAX)) send(entry);
    if (closed) return;
    unsubscribe = opts.feed.subscribe((entry) => {
      if (matches(entry, filter)) send(entry);
    });
    heartbeat = setInterval(() => {
      res.write(": keep-alive\n\n");
      // Admitted once is not admitted forever: an expired token or a lost role ends the stream.
      Promise.resolve(req.headers.authorization).then(opts.authorize).then(
        (still) => {
          if (still === null) end();
        },
        () => end(),
      );
    }, heartbeatMs);
    heartbeat.unref();
    res.on("close", close);
    res.on("error", close);
  }));

  router.use(`${CONSOLE_PATH}/api`, (_req: Request, res: Response) => {
    res.status(404).json({ error: "not_found" });
  });

  return router;
}

/**
 * Runs `authorize` and answers a refusal itself; resolves the operator, or null once refused.
 * A request without credentials never reaches `authorize`: whatever that function does with an
 * absent header, no header means no access.
 */
async function admit(req: Request, res: Response, authorize: ConsoleRouterOptions["authorize"], log: Logger): Promise<ConsoleOperator | null> {
  const header = req.headers.authorization;
  if (header === undefined || header.trim() === "") {
    res.status(401).set("WWW-Authenticate", `Bearer ${REALM}`).json({ error: "invalid_token", error_description: publicErrorDescription("token_missing") });
    return null;
  }
  let operator: ConsoleOperator | null;
  try {
    operator = await authorize(header);
  } catch (err) {
    if (err instanceof AuthError) {
      if (err.code === "jwks_unavailable") {
        res.status(503).set("Retry-After", "30").json({ error: "temporarily_unavailable", error_description: publicErrorDescription(err.code) });
      } else {
        const description = publicErrorDescription(err.code);
        res.status(401).set("WWW-Authenticate", `Bearer ${REALM}, error="invalid_token", error_description="${description}"`).json({ error: "invalid_token", error_description: description });
      }
      return null;
    }
    log("error", "console: authorize failed", { error: err instanceof Error ? err.message : String(err) });
    res.status(500).json({ error: "server_error", error_description: "operator authorization failed" });
    return null;
  }
  if (operator === null) {
    res.status(403).json({ error: "insufficient_role", error_description: "this token does not carry the console role" });
    return null;
  }
  if (typeof operator?.sub !== "string" || operator.sub.length === 0) {
    // A malformed answer is a bug in the caller's authorize; refuse rather than guess.
    log("error", "console: authorize resolved an operator without sub");
    res.status(500).json({ error: "server_error", error_description: "operator authorization failed" });
    return null;
  }
  return operator;
}

/**
 * The compiled page script (browser/console.ts → browser/console.js beside this file). Read once;
 * its source-map comment is dropped because the map's sources are not served.
 */
function browserScript(): string {
  const text = readFileSync(new URL("./browser/console.js", import.meta.url), "utf8");
  return text.replace(/\n\/\/# sourceMappingURL=\S+\s*$/, "\n");
}
