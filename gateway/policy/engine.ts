import { createRequire } from "node:module";
import { loadPolicy } from "@open-policy-agent/opa-wasm";
import type * as OpaWasm from "@open-policy-agent/opa-wasm";
import type { LoadedPolicy } from "@open-policy-agent/opa-wasm";
import { systemClock, type Clock } from "../shared/clock.js";
import type { LoadedBundle } from "./bundle.js";
import { createHostBuiltins, DecisionTime, type HostBuiltin } from "./builtins.js";
import { DECISION_ENTRYPOINT, RESULT_ENTRYPOINT } from "./bundle.js";
import { failure, toDecision, type ConvertedDecision } from "./decision.js";
import { BundleError } from "./errors.js";
import { itemInput } from "./list.js";
import { noResultPolicy, resultFailure, toResultDecision, type ConvertedResultDecision } from "./result-decision.js";
import { serializeInput } from "./serialize.js";
import type { DecisionOutcome, PolicyEngine, PolicyInput, PolicyListItem, ResultDecisionOutcome } from "./types.js";
import { DirectEvaluator, listing, PinnedValueChanged, type Listing } from "./wasm-direct.js";

// The ESM entry exports only loadPolicy; the synchronous loader (needed to rebuild an instance
// inside decide(), which is synchronous) exists only on the CommonJS entry.
const { loadPolicySync } = createRequire(import.meta.url)("@open-policy-agent/opa-wasm") as Pick<
  typeof OpaWasm,
  "loadPolicySync"
>;

// The slice of the WebAssembly global used here: tsconfig's lib (ES2023, no DOM) declares none.
type WasmModule = object;
declare const WebAssembly: {
  compile(bytes: Uint8Array): Promise<WasmModule>;
  RuntimeError: new (message?: string) => Error;
};

export interface WasmMemoryLimits {
  /** Initial size in 64 KiB pages (SDK default 5). */
  initial: number;
  /** Growth cap in pages; memory never shrinks, so an uncapped instance grows with the largest input. */
  maximum?: number;
}

export interface WasmPolicyEngineOptions {
  memory?: WasmMemoryLimits;
  /** Monotonic time for latency measurement. */
  clock?: Pick<Clock, "monotonicNs">;
  /** Wall time for time.now_ns() when an input carries no request.time (normally it does). */
  wallClock?: Pick<Clock, "now">;
  /**
   * "direct" (default): through the module's own exports, the agent and tool views parsed once
   * and pinned in wasm memory (wasm-direct.ts). "sdk": the SDK's evaluate, the reference path,
   * kept for the bench and the equivalence tests. A module that lacks an export "direct" needs
   * is evaluated with the SDK whatever this says.
   */
  evaluation?: EvaluationPath;
  /** Bytes the pinned views may take before they are dropped and pinned afresh (default 8 MiB, at most an eighth of `memory.maximum`). */
  pinnedBudgetBytes?: number;
}

export type EvaluationPath = "direct" | "sdk";

const DEFAULT_MEMORY: WasmMemoryLimits = { initial: 5, maximum: 2048 }; // 320 KiB, capped at 128 MiB
const DEFAULT_PINNED_BUDGET = 8 * 1024 * 1024;
const WASM_PAGE = 65_536;
/** After this many pinned values found changed, the engine stops pinning (each one cost a rebuild). */
const MAX_PIN_CHANGES = 3;
const defaultClock = { monotonicNs: () => process.hrtime.bigint() };

/**
 * WasmPolicyEngine evaluates mcp/authz/decision (and mcp/authz/result, when the bundle exports it)
 * from a verified bundle in-process.
 *
 * One instance is reused for every decision: the SDK resets the wasm heap per evaluation, so this
 * is safe and avoids ~0.5 ms of instantiation per call. The module is compiled once, so rebuilding
 * the instance (after an allocation failure, which can leave it inconsistent) is cheap and
 * synchronous. decide() and decideResult() never throw: every failure is a deny (or a blocked
 * result) with an error code (fail closed).
 */
export class WasmPolicyEngine implements PolicyEngine {
  readonly revision: string;
  /** The module exports mcp/authz/result: results are decided by decideResult. */
  readonly hasResultPolicy: boolean;
  private policy: LoadedPolicy | undefined;
  /** The direct path on `policy`; undefined on the SDK path. */
  private direct: DirectEvaluator | undefined;
  private rebuildCount = 0;
  private pinChangeCount = 0;
  private readonly pinnedBudget: number;
  // time.now_ns() and the other host builtins (builtins.ts); begin() is called per decision.
  private readonly time: DecisionTime;
  private readonly builtins: Record<string, HostBuiltin>;

  private constructor(
    private readonly bundle: LoadedBundle,
    private readonly module: WasmModule,
    private readonly memory: WasmMemoryLimits,
    private readonly clock: Pick<Clock, "monotonicNs">,
    policy: LoadedPolicy,
    hostBuiltins: { time: DecisionTime; builtins: Record<string, HostBuiltin> },
    private readonly path: EvaluationPath,
    pinnedBudgetBytes: number | undefined,
  ) {
    this.revision = bundle.revision;
    this.hasResultPolicy = exportsEntrypoint(policy, RESULT_ENTRYPOINT);
    this.time = hostBuiltins.time;
    this.builtins = hostBuiltins.builtins;
    const cap = (memory.maximum ?? 65_536) * WASM_PAGE;
    this.pinnedBudget = Math.min(pinnedBudgetBytes ?? DEFAULT_PINNED_BUDGET, Math.floor(cap / 8));
    this.install(policy);
  }

  /** create compiles the bundle's module, instantiates it and loads the bundle data. */
  static async create(bundle: LoadedBundle, opts: WasmPolicyEngineOptions = {}): Promise<WasmPolicyEngine> {
    const memory = opts.memory ?? DEFAULT_MEMORY;
    let module: WasmModule;
    let policy: LoadedPolicy;
    const time = new DecisionTime(opts.wallClock?.now ?? systemClock.now);
    const builtins = createHostBuiltins(time);
    try {
      module = await WebAssembly.compile(bundle.wasm);
      policy = await loadPolicy(module, { ...memory }, builtins);
      // The SDK never reads data.json itself.
      policy.setData(bundle.data as object);
    } catch (err) {
      throw new BundleError("bundle_malformed", `the wasm module cannot be loaded: ${errorText(err)}`, {
        bundle: bundle.path,
        file: "/policy.wasm",
      });
    }
    checkEntrypoints(policy, bundle);
    return new WasmPolicyEngine(bundle, module, memory, opts.clock ?? defaultClock, policy, { time, builtins }, opts.evaluation ?? "direct", opts.pinnedBudgetBytes);
  }

  /** The path decisions take: "sdk" when asked for, or when the module lacks what "direct" needs. */
  get evaluation(): EvaluationPath {
    return this.direct === undefined && this.policy !== undefined ? "sdk" : this.path;
  }

  /** How often a pinned value was found changed after an evaluation (each cost a rebuild and an unpinned re-evaluation). */
  get pinChanges(): number {
    return this.pinChangeCount;
  }

  decide(input: PolicyInput): DecisionOutcome {
    const start = this.clock.monotonicNs();
    let evaluated: Evaluated;
    try {
      evaluated = { resultSet: this.evaluate(input, DECISION_ENTRYPOINT) };
    } catch (error) {
      evaluated = { error };
    }
    return this.decisionOutcome(evaluated, start);
  }

  /**
   * decideItems decides every item of a listing: item i's outcome is what
   * `decide(itemInput(base, items[i]))` returns. On the direct path the shared part of the input
   * is serialised once and the agent parsed once for the whole listing; each item is still its
   * own evaluation (a signed bundle cannot gain an entrypoint that loops over a list), and an
   * item whose evaluation fails is denied on its own (fail closed) while the others go on.
   * Nothing is memoised: see docs/policy-authoring.md, "Lists".
   */
  decideItems(base: PolicyInput, items: readonly PolicyListItem[]): DecisionOutcome[] {
    if (this.direct === undefined) return items.map((item) => this.decide(itemInput(base, item)));
    const outcomes: DecisionOutcome[] = [];
    let prepared: Listing;
    try {
      prepared = listing(base);
    } catch (error) {
      for (let i = 0; i < items.length; i++) outcomes.push(this.decisionOutcome({ error }, this.clock.monotonicNs()));
      return outcomes;
    }
    this.time.begin(base); // one request, one time, for every item
    for (const item of items) {
      const start = this.clock.monotonicNs();
      let evaluated: Evaluated;
      try {
        evaluated = { resultSet: this.evaluateDirect(DECISION_ENTRYPOINT, (direct, id, pin) => direct.evaluateItem(id, prepared, item, pin)) };
      } catch (error) {
        evaluated = { error };
      }
      outcomes.push(this.decisionOutcome(evaluated, start));
    }
    return outcomes;
  }

  /** The outcome of one evaluation; rebuilds the instance after a failure that may have left it inconsistent. */
  private decisionOutcome(evaluated: Evaluated, start: bigint): DecisionOutcome {
    let raw: unknown;
    let converted: ConvertedDecision;
    if ("resultSet" in evaluated) {
      const value = resultSetValue(evaluated.resultSet);
      raw = value.ok ? value.value : value.resultSet;
      converted = value.ok ? toDecision(value.value) : failure("policy_malformed", "evaluation returned an unexpected result set");
    } else {
      if (needsRebuild(evaluated.error)) this.rebuild();
      raw = undefined;
      converted = failure("policy_eval_error", errorText(evaluated.error));
    }
    const elapsedNs = this.clock.monotonicNs() - start;
    const outcome: DecisionOutcome = {
      decision: converted.decision,
      raw,
      revision: this.revision,
      elapsedMs: Number(elapsedNs) / 1e6,
    };
    if (converted.error !== undefined) outcome.error = converted.error;
    return outcome;
  }

  /**
   * decideResult evaluates mcp/authz/result with the decision input plus `result` (the tool's
   * CallToolResult as the upstream returned it). Never throws: an undefined, malformed or failed
   * evaluation blocks the result (error set). Without the entrypoint the result passes untouched.
   * Apply `decision.redact` with applyRedactions (redact.ts).
   */
  decideResult(input: PolicyInput, result: Record<string, unknown>): ResultDecisionOutcome {
    if (!this.hasResultPolicy) return noResultPolicy(this.revision);
    const start = this.clock.monotonicNs();
    let converted: ConvertedResultDecision;
    try {
      const value = resultSetValue(this.evaluate(input, RESULT_ENTRYPOINT, result));
      converted = value.ok ? toResultDecision(value.value) : resultFailure("policy_malformed", "evaluation returned an unexpected result set");
    } catch (err) {
      if (needsRebuild(err)) this.rebuild();
      converted = resultFailure("policy_eval_error", errorText(err));
    }
    const outcome: ResultDecisionOutcome = {
      decision: converted.decision,
      revision: this.revision,
      elapsedMs: Number(this.clock.monotonicNs() - start) / 1e6,
    };
    if (converted.error !== undefined) outcome.error = converted.error;
    return outcome;
  }

  /** How often the instance was replaced after a failure (for metrics). */
  get rebuilds(): number {
    return this.rebuildCount;
  }

  private evaluate(input: PolicyInput, entrypoint: string, result?: Record<string, unknown>): unknown {
    // The SDK drops falsy input and stringifies Buffers as {"type":"Buffer",...}: only plain objects
    // pass (on either path), and they go to the SDK pre-serialised as an ArrayBuffer (the one form
    // it takes as raw JSON).
    if (input === null || typeof input !== "object" || Array.isArray(input) || ArrayBuffer.isView(input)) {
      throw new TypeError("policy input must be a plain object");
    }
    const policy = this.policy ?? this.rebuild();
    if (policy === undefined) throw new Error("the policy instance is unavailable after a failed rebuild");
    this.time.begin(input);
    if (this.direct !== undefined) return this.evaluateDirect(entrypoint, (direct, id, pin) => direct.evaluate(id, input, result, pin));
    // By name, never by id: id 0 is merely the first -e given to opa build.
    return policy.evaluate(serializeInput(input, result), entrypoint);
  }

  /**
   * Runs `run` on the direct path. When a pinned value changed under the evaluation, its answer
   * is not used: the instance is replaced and the input evaluated again with nothing pinned.
   */
  private evaluateDirect(entrypoint: string, run: (direct: DirectEvaluator, entrypointId: number, pin: boolean) => unknown): unknown {
    const { direct, id } = this.directInstance(entrypoint);
    try {
      return run(direct, id, this.pinChangeCount < MAX_PIN_CHANGES);
    } catch (err) {
      if (!(err instanceof PinnedValueChanged)) throw err;
      this.pinChangeCount++;
      this.rebuild();
      const fresh = this.directInstance(entrypoint);
      return run(fresh.direct, fresh.id, false);
    }
  }

  /** The direct path on a live instance (rebuilt if the last rebuild failed) and the entrypoint's id there. */
  private directInstance(entrypoint: string): { direct: DirectEvaluator; id: number } {
    if (this.policy === undefined) this.rebuild();
    const policy = this.policy;
    const direct = this.direct;
    if (policy === undefined || direct === undefined) throw new Error("the policy instance is unavailable after a failed rebuild");
    return { direct, id: entrypointId(policy, entrypoint) };
  }

  /** Makes `policy` the instance decisions run on, with the direct path attached when asked for. */
  private install(policy: LoadedPolicy): void {
    this.policy = policy;
    this.direct = this.path === "direct" ? DirectEvaluator.attach(policy, { pinnedBudgetBytes: this.pinnedBudget }) : undefined;
  }

  /** Replaces the instance; on failure leaves none, so decisions deny until a rebuild succeeds. */
  private rebuild(): LoadedPolicy | undefined {
    this.policy = undefined;
    this.direct = undefined;
    this.rebuildCount++;
    try {
      const policy = loadPolicySync(this.module, { ...this.memory }, this.builtins);
      policy.setData(this.bundle.data as object);
      this.install(policy);
    } catch {
      // Reported by the caller's deny; the next decide() tries again.
      this.policy = undefined;
      this.direct = undefined;
    }
    return this.policy;
  }
}

/** What one evaluation produced: the result set, or what it threw. */
type Evaluated = { resultSet: unknown } | { error: unknown };

/** The entrypoint's id, as the SDK's evaluate resolves a name (and with its error). */
function entrypointId(policy: LoadedPolicy, name: string): number {
  const entrypoints = policy.entrypoints as Record<string, unknown>;
  const id = Object.hasOwn(entrypoints, name) ? entrypoints[name] : undefined;
  if (typeof id !== "number") throw `entrypoint ${name} is not valid in this instance`;
  return id;
}

/**
 * The SDK returns a result set: [] when the entrypoint is undefined, else one {result}. Anything
 * else is kept whole (`resultSet`) so the audit shows what came back.
 */
function resultSetValue(rs: unknown): { ok: true; value: unknown } | { ok: false; resultSet: unknown } {
  if (Array.isArray(rs) && rs.length === 0) return { ok: true, value: undefined };
  if (Array.isArray(rs) && rs.length === 1) {
    const first: unknown = rs[0];
    if (first !== null && typeof first === "object" && "result" in first) return { ok: true, value: (first as { result: unknown }).result };
  }
  return { ok: false, resultSet: rs };
}

function exportsEntrypoint(policy: LoadedPolicy, name: string): boolean {
  const entrypoints: unknown = policy.entrypoints;
  return entrypoints !== null && typeof entrypoints === "object" && Object.hasOwn(entrypoints, name);
}

/**
 * The module must export mcp/authz/decision, and mcp/authz/result when the manifest declares it:
 * a declared result policy the module cannot run would otherwise pass every result unchecked.
 */
function checkEntrypoints(policy: LoadedPolicy, bundle: LoadedBundle): void {
  const where = { bundle: bundle.path, file: "/policy.wasm" };
  if (!exportsEntrypoint(policy, DECISION_ENTRYPOINT)) {
    throw new BundleError("bundle_entrypoint_missing", `the wasm module does not export "${DECISION_ENTRYPOINT}"`, where);
  }
  if (bundle.entrypoints.includes(RESULT_ENTRYPOINT) && !exportsEntrypoint(policy, RESULT_ENTRYPOINT)) {
    throw new BundleError("bundle_entrypoint_missing", `the manifest declares "${RESULT_ENTRYPOINT}" but the wasm module does not export it`, where);
  }
}

/** The SDK throws strings ("opa_malloc: failed") and plain objects ({message}) as well as Errors. */
export function errorText(err: unknown): string {
  if (typeof err === "string") return err;
  if (err instanceof Error) return err.message;
  if (err !== null && typeof err === "object" && typeof (err as { message?: unknown }).message === "string") {
    return (err as { message: string }).message;
  }
  try {
    return JSON.stringify(err) ?? String(err);
  } catch {
    return String(err);
  }
}

/** Allocation failures and traps can leave the instance inconsistent (see the reference, §2.4). */
function needsRebuild(err: unknown): boolean {
  if (err instanceof WebAssembly.RuntimeError || err instanceof RangeError) return true;
  return typeof err === "string" && err.includes("opa_malloc");
}
