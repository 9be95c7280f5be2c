import type { LoadedPolicy } from "@open-policy-agent/opa-wasm";
import { checkInputShape, isObject, partJson } from "./serialize.js";
import type { PolicyInput, PolicyListItem, PolicyRequest } from "./types.js";

/**
 * DirectEvaluator evaluates an entrypoint through the module's own exports (OPA's wasm ABI 1.2+)
 * instead of the SDK's `evaluate`, doing per call only what the call needs:
 *
 * - The input's JSON is encoded straight into wasm memory (no intermediate buffer) and parsed
 *   with `opa_value_parse`, the parser the SDK's `opa_eval` fast path uses, so the policy sees
 *   exactly the values it would see through the SDK.
 * - The frozen agent and tool views (`buildPolicyInput` shares one per identity and per tool
 *   definition) are parsed once and *pinned*: kept in a region between the bundle data and the
 *   per-evaluation heap, and linked into each input with `opa_value_add_path`. Only the request
 *   (and a result, for mcp/authz/result) is parsed per call: a third of the input's bytes.
 * - The heap is reset to the end of the pinned region before every evaluation, as the SDK resets
 *   it to the end of the data, so memory stays flat however many evaluations run.
 *
 * Pinning rests on one assumption: an evaluation writes only to memory it allocated itself. OPA's
 * values are immutable and nothing in a compiled policy frees its input, but rather than trust
 * that, every pinned value an evaluation reads is compared with a copy of its bytes after the
 * evaluation (~0.3 µs per decision). A difference throws PinnedValueChanged, and the engine
 * discards the instance and decides again without pins: an answer computed on a changed value is
 * never used. (The bundle data, which the SDK parses once and shares between evaluations too,
 * rests on the same assumption unchecked.)
 */
export class DirectEvaluator {
  private readonly abi: OpaAbi;
  private readonly memory: WasmMemory;
  private readonly dataAddr: number;
  /** The end of the bundle data: the pinned region starts here. */
  private readonly floor: number;
  /** The end of the pinned region: each evaluation's input and heap start here. */
  private top: number;
  private pins = new WeakMap<object, Pin>();
  /** How often the pinned region was emptied to stay within its budget. */
  private resetCount = 0;
  private agentPath!: Pin;
  private toolPath!: Pin;
  /** Both paths, pinned one after the other: checked with one comparison. */
  private paths!: Pin;
  private view: Buffer;

  private constructor(
    policy: LoadedPolicy,
    abi: OpaAbi,
    private readonly pinnedBudget: number,
  ) {
    const internals = policy as unknown as PolicyInternals;
    this.abi = abi;
    this.memory = internals.mem;
    this.dataAddr = internals.dataAddr;
    this.floor = internals.dataHeapPtr;
    this.top = this.floor;
    this.view = Buffer.from(this.memory.buffer);
    this.pinPaths();
  }

  /**
   * Attaches to a loaded policy whose data is set, or returns undefined when the module lacks an
   * export this path needs (an ABI before 1.2): the caller then keeps the SDK's evaluate.
   * After this, the SDK's evaluate must not be used on the instance: it writes its input where
   * the pinned values live.
   */
  static attach(policy: LoadedPolicy, opts: { pinnedBudgetBytes: number }): DirectEvaluator | undefined {
    const abi = opaAbi(policy);
    return abi === undefined ? undefined : new DirectEvaluator(policy, abi, opts.pinnedBudgetBytes);
  }

  /** Bytes the pinned region holds now (for tests and the bench). */
  get pinnedBytes(): number {
    return this.top - this.floor;
  }

  /** How often the pinned region was emptied because it reached its budget. */
  get resets(): number {
    return this.resetCount;
  }

  /**
   * Evaluates `entrypoint` (an id) with `input` (plus `result` for mcp/authz/result) and returns
   * the result set exactly as the SDK's evaluate would: the parsed JSON of `opa_json_dump`.
   * With `pin: false` the whole input is parsed per call (what a fallback uses).
   * Throws what the evaluation throws (strings from opa_abort, builtin errors, RangeError when
   * memory cannot grow) and PinnedValueChanged.
   */
  evaluate(entrypoint: number, input: PolicyInput, result: Record<string, unknown> | undefined, pin: boolean): unknown {
    checkInputShape(input, result);
    const pinned = pin ? this.pinsFor(input.agent, input.tool) : NO_PINS;
    const text = inputText(JSON.stringify(input.request), pinned.agent === undefined ? input.agent : undefined, pinned.tool === undefined ? input.tool : undefined, result);
    return this.run(entrypoint, text, pinned);
  }

  /**
   * Evaluates `entrypoint` for one listed item: `listing`'s base input with the item's naming
   * fields and tool view put in. The shared part of the request was serialised once (listing()),
   * and the agent is pinned once for the whole listing.
   */
  evaluateItem(entrypoint: number, listing: Listing, item: PolicyListItem, pin: boolean): unknown {
    if (!(item.tool === null || isObject(item.tool)) || !isObject(item.fields)) throw new TypeError("a listed item needs fields and a tool object or null");
    const agent = listing.base.agent;
    const pinned = pin ? this.pinsFor(agent, item.tool) : NO_PINS;
    const text = inputText(itemRequestJson(listing.sharedRequest, item.fields), pinned.agent === undefined ? agent : undefined, pinned.tool === undefined ? item.tool : undefined, undefined);
    return this.run(entrypoint, text, pinned);
  }

  private run(entrypoint: number, text: string, pinned: Pins): unknown {
    const abi = this.abi;
    const at = this.top;
    const length = this.write(text, at);
    abi.opa_heap_ptr_set(at + length);
    const inputAddr = abi.opa_value_parse(at, length);
    // The SDK's opa_eval would evaluate with input undefined here; deciding on no input is not
    // deciding on this one, so this fails (closed) instead.
    if (inputAddr === 0) throw new Error("the policy input could not be parsed");
    let out: number;
    try {
      if (pinned.agent !== undefined) this.link(inputAddr, this.agentPath, pinned.agent);
      if (pinned.tool !== undefined) this.link(inputAddr, this.toolPath, pinned.tool);
      const ctx = abi.opa_eval_ctx_new();
      abi.opa_eval_ctx_set_input(ctx, inputAddr);
      abi.opa_eval_ctx_set_data(ctx, this.dataAddr);
      abi.opa_eval_ctx_set_entrypoint(ctx, entrypoint);
      if (abi.eval(ctx) !== 0) throw "eval failed"; // as opa_eval aborts
      out = abi.opa_json_dump(abi.opa_eval_ctx_get_result(ctx));
    } catch (err) {
      // A changed value can make an evaluation fail as well as answer wrongly: that failure is
      // the changed value's, not the input's, so it is reported as such (and re-evaluated).
      this.verify(pinned);
      throw err;
    }
    // After, not before: a pinned value changed by anything before or during this evaluation
    // differs now, so no answer computed on a changed value is ever used.
    this.verify(pinned);
    return JSON.parse(this.cString(out));
  }

  /** `input[key] = value` for a key the parsed input lacks (add_path frees a replaced value). */
  private link(inputAddr: number, path: Pin, value: Pin): void {
    const errc = this.abi.opa_value_add_path(inputAddr, path.value, value.value);
    if (errc !== 0) throw new Error(`opa_value_add_path failed (${errc})`);
  }

  /** The pins for one input's agent and tool; frozen views only (anything else may change). */
  private pinsFor(agent: object, tool: object | null): Pins {
    const resets = this.resetCount;
    let agentPin = this.pin(agent, true);
    const toolPin = tool === null ? undefined : this.pin(tool, true);
    // Pinning the tool emptied the region: pin the agent again, without emptying it twice.
    if (this.resetCount !== resets) agentPin = this.pin(agent, false);
    return { agent: agentPin, tool: toolPin };
  }

  private pin(part: object, mayReset: boolean): Pin | undefined {
    if (!Object.isFrozen(part)) return undefined;
    const known = this.pins.get(part);
    if (known !== undefined) return known;
    if (mayReset && this.top - this.floor > this.pinnedBudget) this.reset();
    const pin = this.pinText(partJson(part));
    if (pin !== undefined) this.pins.set(part, pin);
    return pin;
  }

  /** Parses `text` at the end of the pinned region and keeps it there, with a copy of its bytes. */
  private pinText(text: string): Pin | undefined {
    const abi = this.abi;
    const start = this.top;
    abi.opa_heap_ptr_set(start);
    const length = Buffer.byteLength(text, "utf8");
    const raw = abi.opa_malloc(length); // the parsed value may point into its text: it stays pinned too
    this.write(text, raw);
    const value = abi.opa_value_parse(raw, length);
    if (value === 0) return undefined; // the per-call parse fails the same way and fails closed
    const end = abi.opa_heap_ptr_get();
    this.top = end;
    return { value, start, copy: Buffer.from(this.bytes().subarray(start, end)) }; // a copy: Buffer#slice would be a view
  }

  private pinPaths(): void {
    const agent = this.pinText('["agent"]');
    const tool = this.pinText('["tool"]');
    if (agent === undefined || tool === undefined) throw new Error("cannot parse a path in wasm");
    this.agentPath = agent;
    this.toolPath = tool;
    this.paths = { value: 0, start: agent.start, copy: Buffer.concat([agent.copy, tool.copy]) };
  }

  /** Empties the pinned region (its budget is reached); views are pinned again when next used. */
  private reset(): void {
    this.resetCount++;
    this.top = this.floor;
    this.pins = new WeakMap();
    this.pinPaths();
  }

  private verify(pinned: Pins): void {
    if (pinned === NO_PINS) return;
    this.check(this.paths);
    if (pinned.agent !== undefined) this.check(pinned.agent);
    if (pinned.tool !== undefined) this.check(pinned.tool);
  }

  private check(pin: Pin): void {
    const bytes = this.bytes();
    if (bytes.compare(pin.copy, 0, pin.copy.length, pin.start, pin.start + pin.copy.length) !== 0) {
      throw new PinnedValueChanged(pin.start);
    }
  }

  /** Writes `text` as UTF-8 at `at`, growing memory as the SDK does when it does not fit. */
  private write(text: string, at: number): number {
    let bytes = this.bytes();
    const { read, written } = encoder.encodeInto(text, bytes.subarray(at));
    if (read === text.length) return written;
    const length = Buffer.byteLength(text, "utf8");
    this.memory.grow(Math.ceil((at + length - bytes.byteLength) / PAGE_SIZE)); // RangeError past the cap
    bytes = this.bytes();
    return encoder.encodeInto(text, bytes.subarray(at)).written;
  }

  /** The NUL-terminated string at `addr` (what opa_json_dump returns), decoded as the SDK's TextDecoder does. */
  private cString(addr: number): string {
    const bytes = this.bytes();
    const end = bytes.indexOf(0, addr);
    if (end < 0) throw new Error("unterminated string in wasm memory");
    return decoder.decode(bytes.subarray(addr, end));
  }

  /** A view of memory, renewed when the memory grew (growing detaches the old buffer). */
  private bytes(): Buffer {
    if (this.view.buffer !== this.memory.buffer) this.view = Buffer.from(this.memory.buffer);
    return this.view;
  }
}

/** A listing's base input, checked, and its request serialised once without the item fields. */
export interface Listing {
  readonly base: PolicyInput;
  readonly sharedRequest: string;
}

/** Prepares `base` (the input of a listing, no item) for evaluateItem; throws on a bad shape. */
export function listing(base: PolicyInput): Listing {
  if (base === null || typeof base !== "object" || Array.isArray(base)) throw new TypeError("policy input must be a plain object");
  checkInputShape(base);
  return { base, sharedRequest: sharedRequestJson(base.request) };
}

/** A pinned value changed under an evaluation: the instance must be discarded. */
export class PinnedValueChanged extends Error {
  constructor(readonly addr: number) {
    super(`a value pinned in wasm memory at ${addr} changed during evaluation`);
    this.name = "PinnedValueChanged";
  }
}

interface Pin {
  /** Address of the parsed value. */
  value: number;
  /** Its bytes (text, value, allocator headers) from `start`, as parsed. */
  start: number;
  copy: Uint8Array;
}

interface Pins {
  agent: Pin | undefined;
  tool: Pin | undefined;
}

const NO_PINS: Pins = Object.freeze({ agent: undefined, tool: undefined });

const PAGE_SIZE = 65_536;
const encoder = new TextEncoder();
const decoder = new TextDecoder(); // what the SDK decodes results with: the same replacement of invalid UTF-8

/**
 * The input text without the pinned parts (they are linked in after parsing). Key order does not
 * matter: an OPA object's layout depends only on its keys, so `{"request":…,"agent":…}` parses to
 * the same object as the SDK's `{"agent":…,"request":…}`.
 */
function inputText(request: string, agent: object | undefined, tool: object | null | undefined, result: Record<string, unknown> | undefined): string {
  let text = `{"request":${request}`;
  if (agent !== undefined) text += `,"agent":${partJson(agent)}`;
  if (tool !== undefined) text += `,"tool":${tool === null ? "null" : partJson(tool)}`;
  if (result !== undefined) text += `,"result":${JSON.stringify(result)}`;
  return `${text}}`;
}

const ITEM_FIELDS = ["tool", "resource", "prompt"] as const;

/** The base request's JSON without the item fields and without its closing brace. */
function sharedRequestJson(request: PolicyRequest): string {
  const rest: Record<string, unknown> = { ...request };
  for (const key of ITEM_FIELDS) delete rest[key];
  const json = JSON.stringify(rest);
  return json.length === 2 ? "{" : `${json.slice(0, -1)},`;
}

function itemRequestJson(shared: string, fields: PolicyListItem["fields"]): string {
  return `${shared}"tool":${JSON.stringify(fields.tool ?? null)},"resource":${JSON.stringify(fields.resource ?? null)},"prompt":${JSON.stringify(fields.prompt ?? null)}}`;
}

/** The exports this path calls (OPA wasm ABI 1.2+, all documented except opa_value_add_path's use here). */
interface OpaAbi {
  opa_malloc(size: number): number;
  opa_heap_ptr_get(): number;
  opa_heap_ptr_set(addr: number): void;
  opa_value_parse(addr: number, length: number): number;
  opa_value_add_path(base: number, path: number, value: number): number;
  opa_eval_ctx_new(): number;
  opa_eval_ctx_set_input(ctx: number, value: number): void;
  opa_eval_ctx_set_data(ctx: number, value: number): void;
  opa_eval_ctx_set_entrypoint(ctx: number, entrypoint: number): void;
  eval(ctx: number): number;
  opa_eval_ctx_get_result(ctx: number): number;
  opa_json_dump(value: number): number;
}

const ABI_FUNCTIONS: readonly (keyof OpaAbi)[] = [
  "opa_malloc",
  "opa_heap_ptr_get",
  "opa_heap_ptr_set",
  "opa_value_parse",
  "opa_value_add_path",
  "opa_eval_ctx_new",
  "opa_eval_ctx_set_input",
  "opa_eval_ctx_set_data",
  "opa_eval_ctx_set_entrypoint",
  "eval",
  "opa_eval_ctx_get_result",
  "opa_json_dump",
];

/** The slice of WebAssembly.Memory used here (tsconfig's lib declares no WebAssembly types). */
interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow(pages: number): number;
}

/** What LoadedPolicy (opa-wasm 1.10.0, src/opa.js) keeps and this path reads. */
interface PolicyInternals {
  mem: WasmMemory;
  wasmInstance: { exports: Record<string, unknown> } | { instance: { exports: Record<string, unknown> } };
  minorVersion: unknown;
  dataAddr: number;
  dataHeapPtr: number;
}

function opaAbi(policy: LoadedPolicy): OpaAbi | undefined {
  const internals = policy as unknown as Partial<PolicyInternals>;
  const instance = internals.wasmInstance;
  if (instance === undefined || typeof internals.minorVersion !== "number" || internals.minorVersion < 2) return undefined;
  if (typeof internals.dataAddr !== "number" || typeof internals.dataHeapPtr !== "number" || internals.mem === undefined) return undefined;
  const exports = "exports" in instance ? instance.exports : instance.instance.exports;
  for (const name of ABI_FUNCTIONS) if (typeof exports[name] !== "function") return undefined;
  return exports as unknown as OpaAbi;
}
