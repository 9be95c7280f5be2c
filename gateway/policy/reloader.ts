import { createHash } from "node:crypto";
import { watch, type FSWatcher } from "node:fs";
import { readFile, stat } from "node:fs/promises";
import { basename, dirname } from "node:path";
import type { Logger } from "../shared/log.js";
import { parseBundle, type LoadBundleOptions, type LoadedBundle } from "./bundle.js";
import { NO_DATA_PINS, toolPinsOf, type ToolPinsFromData } from "./tool-pins.js";
import { WasmPolicyEngine } from "./engine.js";
import { BundleError } from "./errors.js";
import { RevisionHistory, rollbackReason } from "./revision.js";
import type { PolicyEngine } from "./types.js";

/**
 * BundleReloader keeps the active policy current (STYLE.md pattern 8): it watches a bundle file
 * (fs.watch for promptness, a stat poll as the safety net) or polls a bundle URL with
 * If-None-Match, and reloads on demand (SIGHUP). A candidate is read, verified and compiled off
 * the request path; only a fully built engine replaces the active one, in one assignment, so a
 * decision is made by exactly one revision. A refused candidate is reported once (log + callback)
 * and the last good bundle keeps serving. A validly signed candidate that would roll the revision
 * back (revision.ts) is refused too, as bundle_rollback, unless `allowRollback`.
 */

const WATCH_DEBOUNCE_MS = 100;

export type ReloadTrigger = "start" | "poll" | "watch" | "signal" | "manual";

export interface ReloadRefusal {
  source: string;
  trigger: ReloadTrigger;
  code: string;
  message: string;
  /** The revision that keeps serving ("" before the first good bundle). */
  activeRevision: string;
}

export interface ReloaderStatus {
  /** not_ready: no good bundle yet; ok: the last check succeeded; error: serving the last good bundle. */
  state: "not_ready" | "ok" | "error";
  source: string;
  revision: string;
  sha256: string;
  swaps: number;
  consecutiveFailures: number;
  lastError?: { code: string; message: string; atMs: number };
  lastCheckMs?: number;
  /**
   * When a check last confirmed the active bundle (loaded it, or found the source unchanged),
   * epoch ms. Failed checks leave it, so its age is how long this replica has not seen its policy
   * source (`portcullis_bundle_age_seconds`).
   */
  confirmedAtMs?: number;
}

export interface BundleReloaderOptions {
  /** File path or http(s) URL. */
  source: string;
  verification: LoadBundleOptions;
  /** Poll interval (file stat or URL), ms. 0 disables polling (SIGHUP/reload() only). */
  intervalMs: number;
  /** Cap on the poll delay after failures (doubling from intervalMs), ms. */
  maxBackoffMs: number;
  log: Logger;
  now?: () => number;
  random?: () => number;
  /** Builds the engine of a verified bundle (tests inject fakes). */
  createEngine?: (bundle: LoadedBundle) => Promise<PolicyEngine>;
  fetch?: typeof fetch;
  /** Watch a bundle file's folder for changes (default true); the poll runs either way. */
  watch?: boolean;
  onRefused?: (refusal: ReloadRefusal) => void;
  onSwapped?: (from: string, to: string) => void;
  /** Label for log lines ("policy" or "shadow policy"). */
  name?: string;
  /**
   * Accept a candidate whose revision was served before the current one or is lower than it
   * (policy.allowRollback; default false: refused as bundle_rollback). See revision.ts.
   */
  allowRollback?: boolean;
}

export type ReloadResult = "swapped" | "unchanged" | "refused" | "unavailable";

export class BundleReloader {
  private active: { engine: PolicyEngine; sha256: string; toolPins: ToolPinsFromData } | undefined;
  private readonly opts: BundleReloaderOptions;
  private readonly isUrl: boolean;
  private statSig = "";
  private etag: string | undefined;
  private refusedSha: string | undefined;
  private swaps = 0;
  private failures = 0;
  private lastError: ReloaderStatus["lastError"];
  private lastCheckMs: number | undefined;
  private confirmedAtMs: number | undefined;
  /** The error behind lastError, rethrown by a failed start. */
  private lastFailure: Error | undefined;
  private timer: NodeJS.Timeout | undefined;
  private watcher: FSWatcher | undefined;
  private debounce: NodeJS.Timeout | undefined;
  private running: Promise<ReloadResult> | undefined;
  private again: ReloadTrigger | undefined;
  private stopped = true;
  private required = true;
  /** Revisions that served before the active one (rollback detection). */
  private readonly history = new RevisionHistory();

  constructor(opts: BundleReloaderOptions) {
    this.opts = opts;
    this.isUrl = /^https?:\/\//i.test(opts.source);
  }

  /** The active engine; throws before the first good bundle (use `engineOrUndefined` to probe). */
  get engine(): PolicyEngine {
    if (this.active === undefined) throw new Error(`${this.name}: no bundle loaded from ${this.opts.source}`);
    return this.active.engine;
  }

  get engineOrUndefined(): PolicyEngine | undefined {
    return this.active?.engine;
  }

  get revision(): string {
    return this.active?.engine.revision ?? "";
  }

  /** Tool pins the active bundle's data names (tool-pins.ts); none before the first bundle. */
  get toolPins(): ToolPinsFromData {
    return this.active?.toolPins ?? NO_DATA_PINS;
  }

  /**
   * Loads the first bundle and starts watching. With `required` (the live policy) a bundle that
   * cannot be loaded is fatal; otherwise (a shadow) the reloader keeps trying in the background.
   */
  async start(options: { required: boolean } = { required: true }): Promise<void> {
    this.stopped = false;
    this.required = options.required;
    const result = await this.reload("start");
    if (this.active === undefined && options.required) {
      this.stopped = true;
      throw this.lastFailure ?? new Error(`${this.opts.source}: cannot load the bundle (${result})`);
    }
    if (!this.isUrl && this.opts.watch !== false) this.startWatcher();
    this.schedule();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.watcher?.close();
    this.watcher = undefined;
    if (this.debounce !== undefined) clearTimeout(this.debounce);
    this.debounce = undefined;
  }

  status(): ReloaderStatus {
    const state = this.active === undefined ? "not_ready" : this.failures > 0 ? "error" : "ok";
    return {
      state,
      source: this.opts.source,
      revision: this.revision,
      sha256: this.active?.sha256 ?? "",
      swaps: this.swaps,
      consecutiveFailures: this.failures,
      ...(this.lastError ? { lastError: { ...this.lastError } } : {}),
      ...(this.lastCheckMs !== undefined ? { lastCheckMs: this.lastCheckMs } : {}),
      ...(this.confirmedAtMs !== undefined ? { confirmedAtMs: this.confirmedAtMs } : {}),
    };
  }

  /** Checks the source now; concurrent calls share one check, and a call during a check queues one more. */
  reload(trigger: ReloadTrigger = "manual"): Promise<ReloadResult> {
    if (this.running !== undefined) {
      this.again = trigger;
      return this.running;
    }
    this.running = this.check(trigger)
      .catch((err: unknown): ReloadResult => {
        // check() reports its own failures; this is a bug or a throwing callback, never a crash.
        this.opts.log("error", `${this.name} reload failed`, { source: this.opts.source, trigger, error: String(err) });
        return "unavailable";
      })
      .finally(() => {
      this.running = undefined;
      const next = this.again;
      this.again = undefined;
      if (next !== undefined && !this.stopped) void this.reload(next);
    });
    return this.running;
  }

  private get name(): string {
    return this.opts.name ?? "policy";
  }

  private async check(trigger: ReloadTrigger): Promise<ReloadResult> {
    this.lastCheckMs = (this.opts.now ?? Date.now)();
    let bytes: Buffer | undefined;
    try {
      bytes = this.isUrl ? await this.fetchBundle(trigger) : await this.readFileIfChanged(trigger);
    } catch (err) {
      // Unreachable source: not a bad bundle, so not an audit event; back off and keep serving.
      const failure = unavailable(err, this.opts.source);
      this.fail(failure);
      this.opts.log("warn", `${this.name} bundle unavailable`, { source: this.opts.source, trigger, error: failure.message, revision: this.revision });
      return "unavailable";
    }
    if (bytes === undefined) return this.settle("unchanged");
    const sha256 = createHash("sha256").update(bytes).digest("hex");
    if (sha256 === this.active?.sha256) return this.settle("unchanged");
    if (sha256 === this.refusedSha) {
      // Reported (logged and audited) when first seen: the same bytes are not reported again.
      if (trigger === "signal" || trigger === "manual") this.opts.log("warn", `${this.name} bundle is still the refused one`, { source: this.opts.source, code: this.lastError?.code, revision: this.revision });
      return "refused";
    }

    let engine: PolicyEngine;
    let toolPins: ToolPinsFromData;
    try {
      const bundle = parseBundle(bytes, this.opts.source, this.opts.verification);
      toolPins = toolPinsOf(bundle.data, this.opts.source);
      // After verification (an unsigned or tampered bundle keeps its own code), before compiling.
      this.refuseRollback(bundle.revision);
      engine = await (this.opts.createEngine ?? ((b) => WasmPolicyEngine.create(b)))(bundle);
    } catch (err) {
      const failure = err instanceof BundleError ? err : new BundleError("bundle_malformed", String((err as Error).message), { bundle: this.opts.source });
      const { code, message } = failure;
      this.refusedSha = sha256;
      this.fail(failure);
      const consequence = this.active === undefined ? "no good bundle is loaded yet" : "the last good bundle stays active";
      // A required first load that fails is thrown by start(); logging it here too would say it twice.
      if (!(trigger === "start" && this.required)) this.opts.log("error", `${this.name} bundle refused; ${consequence}`, { source: this.opts.source, trigger, code, error: message, revision: this.revision });
      this.opts.onRefused?.({ source: this.opts.source, trigger, code, message, activeRevision: this.revision });
      return "refused";
    }
    const from = this.revision;
    const previous = this.active;
    // The swap: one assignment. Decisions already running finish on the engine they read.
    this.active = { engine, sha256, toolPins };
    // Remember what stopped serving (not the empty "before the first bundle", not a same-revision swap).
    if (previous !== undefined && previous.engine.revision !== engine.revision) this.history.record(previous.engine.revision);
    this.refusedSha = undefined;
    if (trigger !== "start") this.swaps++;
    this.opts.log("info", trigger === "start" ? `${this.name} bundle loaded` : `${this.name} bundle swapped`, { source: this.opts.source, trigger, from, revision: engine.revision });
    if (trigger !== "start") this.opts.onSwapped?.(from, engine.revision);
    return this.settle("swapped");
  }

  /** Throws bundle_rollback when a candidate would take the policy back to an older revision. */
  private refuseRollback(candidate: string): void {
    if (this.opts.allowRollback === true || this.active === undefined) return;
    const reason = rollbackReason(candidate, this.revision, this.history);
    if (reason !== undefined) throw new BundleError("bundle_rollback", `${reason}; set policy.allowRollback: true to accept it`, { bundle: this.opts.source, file: "/.manifest" });
  }

  private settle(result: ReloadResult): ReloadResult {
    this.failures = 0;
    if (this.active !== undefined) this.confirmedAtMs = (this.opts.now ?? Date.now)();
    return result;
  }

  private fail(err: BundleError): void {
    this.failures++;
    this.lastFailure = err;
    this.lastError = { code: err.code, message: err.message, atMs: (this.opts.now ?? Date.now)() };
  }

  /** The file's bytes when its stat changed since the last look (or on demand), else undefined. */
  private async readFileIfChanged(trigger: ReloadTrigger): Promise<Buffer | undefined> {
    const info = await stat(this.opts.source);
    const max = this.opts.verification.limits?.maxBytes ?? 1 << 30;
    if (info.size > max) throw new BundleError("bundle_too_large", `file is ${info.size} bytes; the limit is ${max}`, { bundle: this.opts.source });
    const sig = `${info.ino}:${info.size}:${info.mtimeMs}`;
    if (sig === this.statSig && (trigger === "poll" || trigger === "watch")) return undefined;
    const bytes = await readFile(this.opts.source);
    this.statSig = sig;
    return bytes;
  }

  private async fetchBundle(trigger: ReloadTrigger): Promise<Buffer | undefined> {
    const headers: Record<string, string> = { accept: "application/gzip, application/octet-stream" };
    // A signal asks for a fresh look: skip the conditional request.
    if (this.etag !== undefined && trigger !== "signal" && trigger !== "manual") headers["if-none-match"] = this.etag;
    const res = await (this.opts.fetch ?? fetch)(this.opts.source, { headers, signal: AbortSignal.timeout(30_000) });
    if (res.status === 304) return undefined;
    if (!res.ok) throw new Error(`GET ${this.opts.source}: HTTP ${res.status}`);
    const body = Buffer.from(await res.arrayBuffer());
    this.etag = res.headers.get("etag") ?? undefined;
    return body;
  }

  private startWatcher(): void {
    try {
      // Watch the folder: editors and `mv` replace the file, which ends a watch on the file itself.
      const name = basename(this.opts.source);
      this.watcher = watch(dirname(this.opts.source), { persistent: false }, (_event, file) => {
        if (file !== null && file !== name) return;
        // Debounced: a file written in place fires several events, and a half-written file would
        // be refused (and audited) before the complete one is seen.
        if (this.debounce !== undefined) clearTimeout(this.debounce);
        this.debounce = setTimeout(() => {
          this.debounce = undefined;
          if (!this.stopped) void this.reload("watch");
        }, WATCH_DEBOUNCE_MS);
        this.debounce.unref();
      });
      this.watcher.on("error", () => this.watcher?.close());
    } catch {
      // No watch support: the poll still notices changes.
    }
  }

  private schedule(): void {
    if (this.stopped || this.opts.intervalMs <= 0) return;
    const base = this.opts.intervalMs;
    const backoff = this.failures === 0 ? base : Math.min(this.opts.maxBackoffMs, base * 2 ** Math.min(this.failures, 20));
    // ±10% jitter so a fleet does not poll the bundle server in lockstep.
    const delay = Math.round(backoff * (0.9 + 0.2 * (this.opts.random ?? Math.random)()));
    this.timer = setTimeout(() => {
      void this.reload("poll").finally(() => this.schedule());
    }, delay);
    this.timer.unref();
  }
}

/** An unreachable source as a BundleError (bundle_unreadable), naming the source. */
function unavailable(err: unknown, source: string): BundleError {
  if (err instanceof BundleError) return err;
  const code = (err as NodeJS.ErrnoException).code;
  const reason = code === "ENOENT" ? "no such file" : `cannot read (${(err as Error).message})`;
  return new BundleError("bundle_unreadable", reason, { bundle: source });
}
