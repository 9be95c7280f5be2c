import { randomBytes } from "node:crypto";
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
  lastSeenMs: number;
  /** Tool definitions last listed by the upstream (policy input `tool`). */
  catalog: Map<string, ToolDefinition> | null;
  catalogFetchedMs: number;
  /** Closes the server→client stream, if one is open. */
  closeStream: (() => void) | null;
}

export const ownerOf = (iss: string, sub: string) => `${iss}\u0000${sub}`;

/** 192 random bits, base64url: visible ASCII as the spec requires, unguessable. */
export const newSessionId = () => randomBytes(24).toString("base64url");

export class SessionStore {
  private readonly sessions = new Map<string, GatewaySession>();
  private sweeper: NodeJS.Timeout | null = null;

  constructor(
    private readonly opts: { idleTimeoutMs: number; maxSessions: number; now: () => number },
  ) {}

  get size(): number {
    return this.sessions.size;
  }

  hasRoom(): boolean {
    return this.sessions.size < this.opts.maxSessions;
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
