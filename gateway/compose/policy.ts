import { readFileSync } from "node:fs";
import { bundleRefusedEvent, type AuditContext, type AuditLog } from "../audit/index.js";
import type { GatewayConfig } from "../config/index.js";
import {
  BundleReloader,
  decideItemsWith,
  decideResultWith,
  ShadowingEngine,
  type DecisionOutcome,
  type ResultDecisionOutcome,
  type LoadBundleOptions,
  type PolicyEngine,
  type PolicyInput,
  type PolicyListItem,
  type ReloaderStatus,
  type ReloadRefusal,
  type ReloadResult,
  type ToolPinsFromData,
} from "../policy/index.js";
import type { Logger } from "../shared/log.js";

/**
 * The live policy as the composition root builds it (issue 3, items 5 and 6): a BundleReloader
 * for `policy.bundle`, another for `policy.shadow.bundle` when set, and SIGHUP to reload both.
 * PolicyRuntime is itself a PolicyEngine whose every decide() reads the active engine once, so
 * the endpoint's `policy: () => policy` sees a swap at the next decision, and a decision is made
 * by exactly one revision.
 */
export class PolicyRuntime implements PolicyEngine {
  private refusalSink: ((refusal: ReloadRefusal, role: "policy" | "shadow") => void) | undefined;
  private readonly onSighup = (): void => void this.reloadAll("signal");
  private readonly shadowing: ShadowingEngine | undefined;
  private readonly pending: Array<{ refusal: ReloadRefusal; role: "policy" | "shadow" }> = [];

  constructor(
    readonly live: BundleReloader,
    readonly shadow: BundleReloader | undefined,
  ) {
    if (shadow !== undefined) this.shadowing = new ShadowingEngine(() => live.engine, () => shadow.engineOrUndefined);
  }

  get revision(): string {
    return this.live.revision;
  }

  /** Tool pins named in the live bundle's data (contract 7), read on every verdict. */
  get toolPins(): ToolPinsFromData {
    return this.live.toolPins;
  }

  decide(input: PolicyInput): DecisionOutcome {
    return (this.shadowing ?? this.live.engine).decide(input);
  }

  /** A listing in one pass, by the same engine(s) decide() would use. */
  decideItems(base: PolicyInput, items: readonly PolicyListItem[]): DecisionOutcome[] {
    return decideItemsWith(this.shadowing ?? this.live.engine, base, items);
  }

  /** The live bundle's result policy (a shadow candidate's is not evaluated). */
  get hasResultPolicy(): boolean {
    return this.live.engine.hasResultPolicy;
  }

  decideResult(input: PolicyInput, result: Record<string, unknown>): ResultDecisionOutcome {
    return decideResultWith(this.live.engine, input, result);
  }

  /** Reloads the live (and shadow) bundle now; what SIGHUP does. */
  async reloadAll(trigger: "signal" | "manual" = "manual"): Promise<{ policy: ReloadResult; shadow?: ReloadResult }> {
    const [policy, shadow] = await Promise.all([this.live.reload(trigger), this.shadow?.reload(trigger)]);
    return shadow === undefined ? { policy } : { policy, shadow };
  }

  status(): { policy: ReloaderStatus; shadow?: ReloaderStatus } {
    return this.shadow === undefined ? { policy: this.live.status() } : { policy: this.live.status(), shadow: this.shadow.status() };
  }

  /**
   * Sends each refused bundle to the audit stream (in the decisions' shape) and returns `ctx`
   * unchanged, so the composition root can register it where it builds the endpoint's context.
   */
  auditRefusalsTo(audit: AuditLog, ctx: AuditContext): AuditContext {
    this.refusalSink = (r, role) => {
      audit.record(bundleRefusedEvent(ctx, { source: r.source, code: r.code, message: r.message, activeRevision: this.revision, role })).catch(() => undefined); // AuditLog logs sink failures itself
    };
    // A shadow refused while the gateway was starting is audited now.
    for (const { refusal, role } of this.pending.splice(0)) this.refusalSink(refusal, role);
    return ctx;
  }

  refused(refusal: ReloadRefusal, role: "policy" | "shadow"): void {
    if (this.refusalSink === undefined) this.pending.push({ refusal, role });
    else this.refusalSink(refusal, role);
  }

  listenForSighup(): void {
    process.on("SIGHUP", this.onSighup);
  }

  stop(): void {
    process.off("SIGHUP", this.onSighup);
    this.live.stop();
    this.shadow?.stop();
  }
}

export interface PolicySetupOptions {
  log: Logger;
  now: () => number;
  /** Reload on SIGHUP (default true). */
  sighup?: boolean;
}

/** Loads the live bundle (fatal when bad) and the shadow bundle (never fatal), then watches both. */
export async function startPolicy(config: GatewayConfig, opts: PolicySetupOptions): Promise<PolicyRuntime> {
  const p = config.policy;
  const verification = (keyFile: string): LoadBundleOptions => ({
    verificationKeyPem: readKey(keyFile, keyFile === p.verificationKey ? "policy.verificationKey" : "policy.shadow.verificationKey"),
    ...(p.signingAlgorithm ? { algorithm: p.signingAlgorithm } : {}),
    keyId: p.keyId,
    ...(p.scope !== undefined ? { scope: p.scope } : {}),
  });
  let runtime: PolicyRuntime | undefined;
  const common = { intervalMs: p.reload.intervalSeconds * 1000, maxBackoffMs: p.reload.maxBackoffSeconds * 1000, log: opts.log, now: opts.now };
  const live = new BundleReloader({ ...common, allowRollback: p.allowRollback, source: p.bundle, verification: verification(p.verificationKey), onRefused: (r) => runtime?.refused(r, "policy") });
  const shadow =
    p.shadow === undefined
      ? undefined
      : new BundleReloader({ ...common, allowRollback: true, name: "shadow policy", source: p.shadow.bundle, verification: verification(p.shadow.verificationKey ?? p.verificationKey), onRefused: (r) => runtime?.refused(r, "shadow") });
  runtime = new PolicyRuntime(live, shadow);
  await live.start({ required: true });
  try {
    // The answer never depends on the shadow: a candidate that cannot load yet is retried by its poll.
    await shadow?.start({ required: false });
  } catch (err) {
    live.stop();
    throw err;
  }
  if (opts.sighup !== false) runtime.listenForSighup();
  return runtime;
}

function readKey(path: string, field: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch (err) {
    throw new Error(`${path}: cannot read ${field} (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
  }
}
