import type { Clock } from "../shared/clock.js";
import { capString } from "./bounds.js";
import type { AuditLogger } from "./logger.js";

/**
 * Warns about mask pointers (a decision's `mask`, `audit.mask.paths`) that matched nothing: a
 * misspelt pointer, or one written in the old `%2F` syntax, masks nothing and leaks what it was
 * meant to hide, so it must not stay silent. Each distinct pointer is logged at most once a
 * minute, and at most MAX_PER_WINDOW pointers a minute in all (a policy that builds pointers
 * from request data cannot flood the log; the next warning says how many were held back).
 */
const WINDOW_MS = 60_000;
const MAX_PER_WINDOW = 100;

interface State {
  lastLogged: Map<string, number>;
  windowStart: number;
  loggedInWindow: number;
  suppressed: number;
}

/** One state per AuditContext: every record of an instance shares it. */
const states = new WeakMap<object, State>();

export interface MaskMissContext {
  clock: Clock;
  log?: AuditLogger;
}

export function reportMaskMisses(ctx: MaskMissContext, pointers: readonly string[], decisionId: string): void {
  const log = ctx.log;
  if (log === undefined || pointers.length === 0) return;
  let state = states.get(ctx);
  if (state === undefined) {
    state = { lastLogged: new Map(), windowStart: Number.NEGATIVE_INFINITY, loggedInWindow: 0, suppressed: 0 };
    states.set(ctx, state);
  }
  const now = ctx.clock.now();
  if (now - state.windowStart >= WINDOW_MS) {
    state.windowStart = now;
    state.loggedInWindow = 0;
    for (const [p, at] of state.lastLogged) if (now - at >= WINDOW_MS) state.lastLogged.delete(p);
  }
  for (const pointer of new Set(pointers)) {
    const last = state.lastLogged.get(pointer);
    if (last !== undefined && now - last < WINDOW_MS) continue;
    if (state.loggedInWindow >= MAX_PER_WINDOW) {
      state.suppressed++;
      continue;
    }
    state.loggedInWindow++;
    state.lastLogged.set(pointer, now);
    const fields: Record<string, unknown> = { pointer: capString(pointer, 256), decision_id: decisionId };
    if (state.suppressed > 0) {
      fields.suppressed = state.suppressed;
      state.suppressed = 0;
    }
    log("warn", "mask pointer matched nothing", fields);
  }
}
