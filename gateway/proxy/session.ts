import { randomBytes } from "node:crypto";
import { Refusal } from "./errors.js";
import type { JsonRpcId } from "./jsonrpc.js";
import type { UpstreamConnection } from "./upstream.js";

/** An MCP tool definition as an upstream lists it (only the fields policy and pinning use). */
export interface ToolDefinition {
  name: string;
  title?: string;
  description?: string;
  inputSchema?: Record<string, unknown>;
  outputSchema?: Record<string, unknown>;
  annotations?: Record<string, unknown>;
}

/**
 * A gateway-minted session: bound to the subject that created it and mapped to its own upstream
 * session, whose id never leaves the gateway.
 */
export interface GatewaySession {
  readonly id: string;
  readonly server: string;
  /** `iss` + `sub` of the creator: any other subject presenting the id gets 404. */
  readonly owner: string;
  readonly upstream: UpstreamConnection;
  protocolVersion: string | null;
  /** The upstream's InitializeResult (for a 2026 upstream, built from server/discover). */
  readonly initResult: Record<string, unknown>;
  lastSeenMs: number;
  /** Tool definitions last listed by the upstream (policy input `tool`). */
  catalog: Map<string, ToolDefinition> | null;
  catalogFetchedMs: number;
  /** Closes the server→client stream, if one is open. */
  closeStream: (() => void) | null;
  /**
   * Server→client requests relayed to the agent and not yet answered (id → method). Only a
   * response to one of these is passed upstream: an agent cannot inject answers nobody asked for.
   */
  readonly serverRequests: Map<JsonRpcId, string>;
  /** Tasks created by allowed tools/call requests (taskId → the call), for deciding tasks/*. */
  readonly tasks: Map<string, { tool: string; arguments: Record<string, unknown> }>;
  /** The slot this session holds in the store's bounds. */
  readonly slot: SessionSlot;
}

/** A place in the session bounds, taken before the upstream is contacted and given back once. */
export interface SessionSlot {
  readonly owner: string;
  readonly stdio: boolean;
  release(): void;
}

export interface SessionBounds {
  idleTimeoutMs: number;
  /** All sessions of this gateway. */
  maxSessions: number;
  /** Sessions of one subject (iss + sub): one agent cannot take every slot. */
  maxPerAgent: number;
  /** Sessions whose upstream is a stdio process (each one is a child process). */
  maxStdio: number;
  now: () => number;
}

export const ownerOf = (iss: string, sub: string) => `${iss}\u0000${sub}`;

/** 192 random bits, base64url: visible ASCII as the spec requires, unguessable. */
export const newSessionId = () => randomBytes(24).toString("base64url");

export class SessionStore {
  private readonly sessions = new Map<string, GatewaySession>();
  private sweeper: NodeJS.Timeout | null = null;
  // Slots are counted when reserved, not when the session is added: the bound must hold while
  // many initializes are waiting on their upstreams at once.
  private reserved = 0;
  private reservedStdio = 0;
  private readonly reservedByOwner = new Map<string, number>();

  constructor(private readonly opts: SessionBounds) {}

  get size(): number {
    return this.sessions.size;
  }

  /** Reserves a slot synchronously (no await between check and count), or throws the refusal. */
  reserve(owner: string, stdio: boolean): SessionSlot {
    const mine = this.reservedByOwner.get(owner) ?? 0;
    if (this.reserved >= this.opts.maxSessions) throw new Refusal("session_limit");
    if (stdio && this.reservedStdio >= this.opts.maxStdio) throw new Refusal("session_limit", "stdio upstream sessions are at sessions.maxStdio");
    if (mine >= this.opts.maxPerAgent) throw new Refusal("session_quota", `at most ${this.opts.maxPerAgent} (sessions.maxPerAgent)`);
    this.reserved++;
    if (stdio) this.reservedStdio++;
    this.reservedByOwner.set(owner, mine + 1);
    let released = false;
    return {
      owner,
      stdio,
      release: () => {
        if (released) return;
        released = true;
        this.reserved--;
        if (stdio) this.reservedStdio--;
        const left = (this.reservedByOwner.get(owner) ?? 1) - 1;
        if (left === 0) this.reservedByOwner.delete(owner);
        else this.reservedByOwner.set(owner, left);
      },
    };
  }

  /** Slots held, for status and tests. */
  get reservations(): { total: number; stdio: number } {
    return { total: this.reserved, stdio: this.reservedStdio };
  }

  add(session: GatewaySession): void {
    this.sessions.set(session.id, session);
  }

  /** The session if it exists and belongs to `owner`; otherwise undefined (callers answer 404). */
  lookup(id: string, owner: string): GatewaySession | undefined {
    const s = this.sessions.get(id);
    if (!s || s.owner !== owner) return undefined;
    s.lastSeenMs = this.opts.now();
    return s;
  }

  async end(id: string): Promise<void> {
    const s = this.sessions.get(id);
    if (!s) return;
    this.sessions.delete(id);
    s.slot.release();
    // Ending a session must never take the gateway down: the upstream side is best effort.
    try {
      s.closeStream?.();
    } catch {
      // the client stream is already gone
    }
    await s.upstream.close().catch(() => undefined);
  }

  /** Ends sessions idle for longer than the timeout; runs on an unref'd timer. */
  startSweeping(intervalMs = 15_000): void {
    this.sweeper = setInterval(() => void this.sweep().catch(() => undefined), intervalMs);
    this.sweeper.unref();
  }

  async sweep(): Promise<number> {
    const cutoff = this.opts.now() - this.opts.idleTimeoutMs;
    const idle = [...this.sessions.values()].filter((s) => s.lastSeenMs < cutoff);
    await Promise.all(idle.map((s) => this.end(s.id)));
    return idle.length;
  }

  async closeAll(): Promise<void> {
    if (this.sweeper) clearInterval(this.sweeper);
    await Promise.all([...this.sessions.keys()].map((id) => this.end(id)));
  }
}
