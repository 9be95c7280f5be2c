import { createHash, randomBytes } from "node:crypto";
import { canonicalJsonOfValue } from "../policy/index.js";
import type { JsonRpcId, JsonRpcMessage, JsonRpcRequest, JsonRpcResponse } from "./jsonrpc.js";

/**
 * A 2026 client in front of a 2025 upstream. A 2025 server asks the client for input (sampling,
 * elicitation, roots) with a server→client request in the middle of a call; a 2026 client can
 * only receive that as an `input_required` result, answered by retrying the call with
 * `inputResponses` and the `requestState` it was given. So the gateway keeps the upstream call
 * running, answers the client `input_required`, and when the retry comes (decided like any call)
 * hands the answers to the upstream and waits for what it does next.
 */
export const INPUT_METHODS: ReadonlySet<string> = new Set(["sampling/createMessage", "elicitation/create", "roots/list"]);

export type CallStep = { kind: "answer"; answer: JsonRpcResponse } | { kind: "input"; request: JsonRpcRequest & { id: JsonRpcId } } | { kind: "failed"; error: unknown };

/** One upstream call whose server→client input requests come out one step at a time. */
export class PausableCall {
  private readonly steps: CallStep[] = [];
  private waiter: ((s: CallStep) => void) | null = null;
  readonly abort = new AbortController();

  /** `run` starts the upstream call; its input requests become steps, its other messages go to `relay`. */
  constructor(run: (onMessage: (m: JsonRpcMessage) => void, signal: AbortSignal) => Promise<JsonRpcResponse>, private relay: (m: JsonRpcMessage) => void) {
    run((m) => {
      if ("method" in m && "id" in m && INPUT_METHODS.has(m.method)) this.push({ kind: "input", request: m as JsonRpcRequest });
      else this.relay(m);
    }, this.abort.signal).then(
      (answer) => this.push({ kind: "answer", answer }),
      (error: unknown) => this.push({ kind: "failed", error }),
    );
  }

  /** Where messages of the call go while the client is between rounds (nowhere: it has no stream then). */
  relayTo(relay: (m: JsonRpcMessage) => void): void {
    this.relay = relay;
  }

  next(): Promise<CallStep> {
    const s = this.steps.shift();
    if (s) return Promise.resolve(s);
    return new Promise((resolve) => (this.waiter = resolve));
  }

  private push(s: CallStep): void {
    const w = this.waiter;
    this.waiter = null;
    if (w) w(s);
    else this.steps.push(s);
  }
}

/** A call paused on input: found again by the `requestState` the client echoes. */
export interface ParkedCall {
  readonly owner: string;
  readonly server: string;
  /** Method, name and arguments of the call: the retry must be the same call. */
  readonly callDigest: string;
  readonly call: PausableCall;
  /** The input request the client was asked, by its key in `inputRequests`. */
  readonly asked: { key: string; upstreamId: JsonRpcId };
  /** Where the answer goes: the session that holds the upstream call. */
  readonly answer: (message: JsonRpcResponse) => Promise<void>;
  readonly expires: NodeJS.Timeout;
}

const MAX_PARKED = 4096;
/** One agent's paused calls: past this its oldest is abandoned, never another agent's. */
const MAX_PARKED_PER_OWNER = 64;

/** The calls waiting for a 2026 client's retry, bounded; each expires with its upstream timeout. */
export class ParkedCalls {
  private readonly calls = new Map<string, ParkedCall>();

  park(entry: Omit<ParkedCall, "expires">, ttlMs: number): string {
    const mine = [...this.calls].filter(([, c]) => c.owner === entry.owner);
    if (mine.length >= MAX_PARKED_PER_OWNER) this.expire(mine[0]![0]);
    else if (this.calls.size >= MAX_PARKED) this.expire(this.calls.keys().next().value as string);
    const token = `pc1.${randomBytes(24).toString("base64url")}`;
    const expires = setTimeout(() => this.expire(token), ttlMs);
    expires.unref();
    this.calls.set(token, { ...entry, expires });
    return token;
  }

  /** Takes the parked call out (a requestState is good for one retry), or undefined if it is not the caller's. */
  take(token: string, owner: string, server: string): ParkedCall | undefined {
    const c = this.calls.get(token);
    if (!c || c.owner !== owner || c.server !== server) return undefined;
    this.calls.delete(token);
    clearTimeout(c.expires);
    return c;
  }

  get size(): number {
    return this.calls.size;
  }

  closeAll(): void {
    for (const token of [...this.calls.keys()]) this.expire(token);
  }

  /** Nobody came back: the upstream call is abandoned (cancelled upstream through its signal). */
  private expire(token: string): void {
    const c = this.calls.get(token);
    if (!c) return;
    this.calls.delete(token);
    clearTimeout(c.expires);
    c.call.abort.abort();
  }
}

/** What makes two requests the same call: method, item and arguments (canonical JSON, SHA-256). */
export function callDigest(method: string, item: string | null, args: unknown): string {
  return createHash("sha256").update(canonicalJsonOfValue({ method, item, args: args ?? null })).digest("base64url");
}
