import { randomBytes } from "node:crypto";
import { Refusal } from "./errors.js";
import type { SessionLedger } from "./session-ledger.js";
import type { SealedSession, SessionSealer } from "./session-seal.js";
import type { UpstreamConnection, UpstreamState } from "./upstream.js";

/** An MCP tool definition as an upstream lists it (only the fields policy and pinning use). */
export interface ToolDefinition {
  name: string;
  title?: string;
  description?: string;
  inputSchema?: Record<string, unknown>;
  outputSchema?: Record<string, unknown>;
  annotations?: Record<string, unknown>;
}

/** What pinning says of one tool definition (contract 7). */
export type ToolVerdict =
  | { state: "pinned"; digest: string }
  /** Differs from its pin: hidden from lists and refused on call until approved. `changes` says what changed. */
  | { state: "drifted"; digest: string; pinnedDigest: string; changes: string };

/** Tool pinning (gateway/integrity/ behind it); absent: no pinning. */
export interface ToolPinning {
  /** A tools/list page: a verdict per tool, and the names refused outright (collisions) with why. */
  listing(server: string, tools: readonly ToolDefinition[]): Promise<{ verdicts: Map<string, ToolVerdict>; refused: Map<string, string> }>;
  /** The tool a call names. */
  tool(server: string, tool: ToolDefinition): Promise<ToolVerdict>;
}

/** The call a human approval is bound to (contract 7): the same agent's identical call. */
export interface CallBinding {
  iss: string;
  sub: string;
  server: string;
  tool: string;
  arguments: Record<string, unknown>;
}

/** Approvals (gateway/integrity/ behind it); absent: a decision that requires one is refused. */
export interface CallApprovals {
  /** The approved request for exactly this call, now used (once); null when there is none. */
  consume(call: CallBinding): Promise<{ id: string } | null>;
  /** The live request for this call: the pending (or approved) one, or a new pending one. */
  request(call: CallBinding, reason: string, ttlSeconds: number): Promise<{ id: string; expiresAt: string; state: string }>;
}

/**
 * A gateway session as this replica holds it. The session itself travels in its id (sealed:
 * session-seal.ts), so any replica with the keys rebuilds this from the id alone; what replicas
 * must agree on beyond that (ended or not, its tasks) is in the ledger (session-ledger.ts).
 */
export interface GatewaySession {
  /** What the client presents (Mcp-Session-Id): the sealed session. Held 2026 contexts: a local key. */
  readonly id: string;
  /** Stable and short: the session's name in the audit, policy input and the ledger. */
  readonly handle: string;
  readonly server: string;
  /** `iss` + `sub` of the creator: any other subject presenting the id gets 404. */
  readonly owner: string;
  readonly upstream: UpstreamConnection;
  protocolVersion: string | null;
  /** The upstream's InitializeResult (for a 2026 upstream, built from server/discover); {} when resumed. */
  readonly initResult: Record<string, unknown>;
  /** No replica serves the session after this (sealed). */
  readonly expiresMs: number;
  lastSeenMs: number;
  /** Tool definitions last listed by the upstream (policy input `tool`): this replica's cache. */
  catalog: Map<string, ToolDefinition> | null;
  catalogFetchedMs: number;
  /** Tool names the last listing refused (two tools of one name, or names equal once normalised): calls to them are refused too. */
  refusedTools: ReadonlyMap<string, string> | null;
  /** Closes the server→client stream, if one is open on this replica. */
  closeStream: (() => void) | null;
  /**
   * A stdio session resumed here: the process this replica starts for it is initialized with the
   * client's original parameters before the session's first request on this replica goes on.
   */
  pendingInit: Record<string, unknown> | null;
  /** That initialization, once started (concurrent requests wait on the one). */
  starting: Promise<void> | null;
  /** The slot this session holds in this replica's bounds. */
  readonly slot: SessionSlot;
  /** A 2026 client's upstream context: this replica's own, never sealed, never shown. */
  readonly held: boolean;
}

/** A place in the session bounds, taken before the upstream is contacted and given back once. */
export interface SessionSlot {
  readonly owner: string;
  readonly stdio: boolean;
  release(): void;
}

export interface SessionBounds {
  idleTimeoutMs: number;
  /** Sessions of a stdio upstream: each idle one holds a process, so they end sooner. */
  stdioIdleTimeoutMs: number;
  /** Sessions this replica holds. */
  maxSessions: number;
  /** Sessions of one subject (iss + sub) on this replica: one agent cannot take every slot. */
  maxPerAgent: number;
  /** Sessions whose upstream is a stdio process (each one is a child process). */
  maxStdio: number;
  now: () => number;
}

export interface SessionStoreOptions extends SessionBounds {
  /** sessions.maxLifetimeSeconds: sealed into the id, so every replica stops serving it then. */
  maxLifetimeMs: number;
  sealer: SessionSealer;
  ledger: SessionLedger;
  /** A connection to the upstream session a sealed id names (pipeline deps.connectUpstream). */
  resume: (server: string, state: UpstreamState) => UpstreamConnection;
  /** Whether `server`'s upstream is a stdio process. */
  isStdio: (server: string) => boolean;
  /** The seal keys are configured (other replicas, or this one restarted, can open the ids). */
  durable: boolean;
}

/** What initialize gives the store to mint a session from. */
export interface NewSession {
  server: string;
  iss: string;
  sub: string;
  upstream: UpstreamConnection;
  protocolVersion: string | null;
  initResult: Record<string, unknown>;
  slot: SessionSlot;
}

/** A session id longer than this would not fit comfortably in a header through every proxy. */
export const MAX_SESSION_ID_CHARS = 8 * 1024;

export const ownerOf = (iss: string, sub: string) => `${iss}\u0000${sub}`;

/** 128 random bits, base64url: a session's handle. */
const newHandle = () => randomBytes(16).toString("base64url");

/**
 * This replica's sessions: the ones it minted and the ones it resumed from their sealed ids.
 * Ending a session (`end`) is for every replica: the ledger forgets it and the upstream session is
 * closed. Letting go of it here (`evict`, on local idleness) keeps it alive for the others.
 */
export class SessionStore {
  private readonly sessions = new Map<string, GatewaySession>();
  /** Sealed ids being rebuilt: concurrent first requests on this replica share one rebuild. */
  private readonly resuming = new Map<string, Promise<GatewaySession | undefined>>();
  private sweeper: NodeJS.Timeout | null = null;
  // Slots are counted when reserved, not when the session is added: the bound must hold while
  // many initializes are waiting on their upstreams at once.
  private reserved = 0;
  private reservedStdio = 0;
  private readonly reservedByOwner = new Map<string, number>();

  constructor(private readonly opts: SessionStoreOptions) {}

  get size(): number {
    return this.sessions.size;
  }

  get ledger(): SessionLedger {
    return this.opts.ledger;
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

  /**
   * A new session from a successful initialize: sealed (the id is the session), alive in the
   * ledger. Throws a refusal when the sealed state is too large for a header (huge capabilities).
   */
  async mint(n: NewSession): Promise<GatewaySession> {
    const now = this.opts.now();
    const sealed: SealedSession = {
      handle: newHandle(),
      iss: n.iss,
      sub: n.sub,
      server: n.server,
      iat: Math.floor(now / 1000),
      exp: Math.floor((now + this.opts.maxLifetimeMs) / 1000),
      protocolVersion: n.protocolVersion,
      upstream: n.upstream.state(),
    };
    const id = this.opts.sealer.sealSession(sealed);
    if (id.length > MAX_SESSION_ID_CHARS) throw new Refusal("invalid_params", `the session does not fit in a session id of ${MAX_SESSION_ID_CHARS} characters (are the client's capabilities that large?)`);
    await this.opts.ledger.start(sealed.handle, this.idleMs(n.slot.stdio));
    const session = this.build(id, sealed, n.upstream, n.initResult, n.slot, null);
    this.sessions.set(id, session);
    return session;
  }

  /** A 2026 client's upstream context (never sealed: the client never sees it). */
  hold(key: string, parts: Omit<NewSession, "iss" | "sub"> & { owner: string }): GatewaySession {
    const now = this.opts.now();
    const session: GatewaySession = {
      id: key,
      handle: key,
      server: parts.server,
      owner: parts.owner,
      upstream: parts.upstream,
      protocolVersion: parts.protocolVersion,
      initResult: parts.initResult,
      expiresMs: Infinity,
      lastSeenMs: now,
      catalog: null,
      catalogFetchedMs: 0,
      refusedTools: null,
      closeStream: null,
      pendingInit: null,
      starting: null,
      slot: parts.slot,
      held: true,
    };
    this.sessions.set(key, session);
    return session;
  }

  /** A held context of `owner`, if this replica has one. */
  heldBy(key: string, owner: string): GatewaySession | undefined {
    const s = this.sessions.get(key);
    if (!s || !s.held || s.owner !== owner) return undefined;
    s.lastSeenMs = this.opts.now();
    return s;
  }

  /**
   * The session an id names, for `owner` on `server`: this replica's copy, or rebuilt from the
   * sealed id. Undefined (the caller answers 404) for anything not ours, tampered, expired,
   * another subject's or server's, or ended on any replica.
   */
  async find(id: string, owner: string, server: string): Promise<GatewaySession | undefined> {
    const local = this.sessions.get(id);
    if (local) {
      if (local.held || local.owner !== owner || local.server !== server) return undefined;
      return (await this.stillAlive(local)) ? local : undefined;
    }
    const pending = this.resuming.get(id);
    if (pending) {
      const s = await pending;
      return s && s.owner === owner && s.server === server ? s : undefined;
    }
    const rebuilt = this.resume(id, owner, server);
    this.resuming.set(id, rebuilt);
    try {
      return await rebuilt;
    } finally {
      this.resuming.delete(id);
    }
  }

  private async resume(id: string, owner: string, server: string): Promise<GatewaySession | undefined> {
    const sealed = this.opts.sealer.openSession(id);
    if (!sealed || ownerOf(sealed.iss, sealed.sub) !== owner || sealed.server !== server) return undefined;
    if (sealed.exp * 1000 <= this.opts.now()) return undefined;
    if ((await this.opts.ledger.touch(sealed.handle, this.idleMs(this.opts.isStdio(server)))) === "ended") return undefined;
    const slot = this.reserve(owner, this.opts.isStdio(server));
    let upstream: UpstreamConnection;
    try {
      upstream = this.opts.resume(server, sealed.upstream);
    } catch (err) {
      slot.release();
      throw err;
    }
    const pendingInit = sealed.upstream.kind === "stdio" ? sealed.upstream.init : null;
    const session = this.build(id, sealed, upstream, {}, slot, pendingInit);
    this.sessions.set(id, session);
    return session;
  }

  private async stillAlive(s: GatewaySession): Promise<boolean> {
    if (s.expiresMs <= this.opts.now() || (await this.opts.ledger.touch(s.handle, this.idleMs(s.slot.stdio))) === "ended") {
      // Ended on another replica (or expired): let go of what this replica holds for it.
      await this.evict(s.id);
      return false;
    }
    s.lastSeenMs = this.opts.now();
    return true;
  }

  private build(id: string, sealed: SealedSession, upstream: UpstreamConnection, initResult: Record<string, unknown>, slot: SessionSlot, pendingInit: Record<string, unknown> | null): GatewaySession {
    return {
      id,
      handle: sealed.handle,
      server: sealed.server,
      owner: ownerOf(sealed.iss, sealed.sub),
      upstream,
      protocolVersion: sealed.protocolVersion,
      initResult,
      expiresMs: sealed.exp * 1000,
      lastSeenMs: this.opts.now(),
      catalog: null,
      catalogFetchedMs: 0,
      refusedTools: null,
      closeStream: null,
      pendingInit,
      starting: null,
      slot,
      held: false,
    };
  }

  /** Ends the session on every replica: gone from the ledger, closed upstream. False when this replica no longer held it. */
  async end(id: string): Promise<boolean> {
    const s = this.take(id);
    if (!s) return false;
    if (!s.held) await this.opts.ledger.end(s.handle).catch(() => undefined);
    await letGo(s, () => s.upstream.close());
    return true;
  }

  /** Lets go of this replica's copy; the session goes on wherever else it is served. */
  async evict(id: string): Promise<boolean> {
    const s = this.take(id);
    if (!s) return false;
    await letGo(s, () => (s.held ? s.upstream.close() : s.upstream.detach()));
    return true;
  }

  private idleMs(stdio: boolean): number {
    return stdio ? Math.min(this.opts.stdioIdleTimeoutMs, this.opts.idleTimeoutMs) : this.opts.idleTimeoutMs;
  }

  /** Removes the session from this replica at once (no await): concurrent ends release it once. */
  private take(id: string): GatewaySession | undefined {
    const s = this.sessions.get(id);
    if (!s) return undefined;
    this.sessions.delete(id);
    s.slot.release();
    return s;
  }

  /** Sweeps idle and ended sessions on an unref'd timer. */
  startSweeping(intervalMs = 15_000): void {
    this.sweeper = setInterval(() => void this.sweep().catch(() => undefined), intervalMs);
    this.sweeper.unref();
  }

  /**
   * Sessions idle here for the idle timeout, and (with a shared ledger) sessions ended elsewhere:
   * an ended or expired session is ended, one still alive on other replicas only let go of here.
   * Returns how many this replica no longer holds.
   */
  async sweep(): Promise<number> {
    const now = this.opts.now();

    const all = [...this.sessions.values()];
    const sealed = all.filter((s) => !s.held);
    const alive = this.opts.ledger.shared ? await this.opts.ledger.alive(sealed.map((s) => s.handle)) : null;
    const aliveByHandle = new Map(sealed.map((s, i) => [s.handle, alive ? alive[i]! : true]));
    const work: Promise<boolean>[] = [];
    for (const s of all) {
      const idleHere = s.lastSeenMs < now - this.idleMs(s.slot.stdio);
      if (s.held || s.expiresMs <= now) {
        if (idleHere || s.expiresMs <= now) work.push(this.end(s.id));
      } else if (!this.opts.ledger.shared) {
        if (idleHere) work.push(this.end(s.id));
      } else if (alive !== null && aliveByHandle.get(s.handle) === false) {
        // Ended elsewhere or idle everywhere: closing upstream again is harmless, leaking it is not.
        work.push(this.end(s.id));
      } else if (idleHere) work.push(this.evict(s.id));
    }
    return (await Promise.all(work)).filter(Boolean).length;
  }

  async closeAll(): Promise<void> {
    if (this.sweeper) clearInterval(this.sweeper);
    // With configured keys a stopping replica lets go: other replicas (or this one, restarted)
    // serve its sessions on. With a key of its own nobody can, so they end.
    await Promise.all([...this.sessions.keys()].map((id) => (this.opts.durable ? this.evict(id) : this.end(id))));
  }
}

/** Closes what a session held on this replica; ending a session must never take the gateway down. */
async function letGo(s: GatewaySession, upstream: () => Promise<void>): Promise<void> {
  try {
    s.closeStream?.();
  } catch {
    // the client stream is already gone
  }
  await upstream().catch(() => undefined);
}
