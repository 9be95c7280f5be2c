import { Refusal } from "./errors.js";
import { isObject } from "./jsonrpc.js";
import { RedisUnavailable, type SharedRedis } from "../shared/redis.js";

/** A task created by an allowed tools/call: what tasks/* requests about it are decided as. */
export interface SessionTask {
  tool: string;
  arguments: Record<string, unknown>;
}

/**
 * What every replica must agree on about a session that the sealed id cannot say: whether it has
 * ended (DELETE, idle expiry) and which tasks it created. A session is alive while its liveness
 * record is: ending it deletes the record, and so does idleness (the record's TTL). A record that
 * is lost (a Redis restart without persistence) ends the session, never revives an ended one.
 */
export interface SessionLedger {
  /** True when other replicas see the same ledger (Redis). */
  readonly shared: boolean;
  start(handle: string, idleMs: number): Promise<void>;
  /** A request of the session: "alive" restarts its idle clock. Throws session_store_unavailable when it cannot tell. */
  touch(handle: string, idleMs: number): Promise<"alive" | "ended">;
  /** Each handle's liveness without touching it (sweeps); null when the ledger cannot be read now. */
  alive(handles: readonly string[]): Promise<boolean[] | null>;
  end(handle: string): Promise<void>;
  putTask(handle: string, taskId: string, task: SessionTask, lifetimeMs: number): Promise<void>;
  getTask(handle: string, taskId: string): Promise<SessionTask | undefined>;
  /** Which of `taskIds` this session created. */
  knownTasks(handle: string, taskIds: readonly string[]): Promise<Set<string>>;
  /** True the first time `token` is claimed within ttlMs, on any replica (an answer passed on once). */
  claim(token: string, ttlMs: number): Promise<boolean>;
}

/** Tasks one session remembers (older ones are forgotten first locally; refused past this in Redis). */
export const MAX_TASKS = 1024;

/**
 * This replica's own ledger. A handle it has never seen (a session sealed by a previous process
 * with the same keys) is alive until this replica sees it end; with several replicas, an end is
 * known only where it happened: use the Redis ledger there.
 */
export class LocalSessionLedger implements SessionLedger {
  readonly shared = false;
  private readonly idleUntil = new Map<string, number>();
  /** Ended handles, until their idle window would have closed anyway. */
  private readonly ended = new Map<string, number>();
  private readonly tasks = new Map<string, Map<string, SessionTask>>();
  /** Claimed tokens until they expire (insertion order is expiry order: one ttl for all). */
  private readonly claimed = new Map<string, number>();

  constructor(
    private readonly now: () => number,
    /** Ended handles are forgotten after this (the sealed expiry bounds them anyway). */
    private readonly forgetAfterMs: number,
  ) {}

  async start(handle: string, idleMs: number): Promise<void> {
    this.refresh(handle, idleMs);
  }

  /** Alive for idleMs from now, whatever this replica knew (the shared ledger said so). */
  refresh(handle: string, idleMs: number): void {
    this.ended.delete(handle);
    this.idleUntil.set(handle, this.now() + idleMs);
  }

  async touch(handle: string, idleMs: number): Promise<"alive" | "ended"> {
    return this.touchSync(handle, idleMs);
  }

  touchSync(handle: string, idleMs: number): "alive" | "ended" {
    const now = this.now();
    this.forgetEnded(now);
    if (this.ended.has(handle)) return "ended";
    const until = this.idleUntil.get(handle);
    if (until !== undefined && until < now) {
      this.endSync(handle);
      return "ended";
    }
    this.idleUntil.set(handle, now + idleMs);
    return "alive";
  }

  async alive(handles: readonly string[]): Promise<boolean[]> {
    const now = this.now();
    return handles.map((h) => !this.ended.has(h) && (this.idleUntil.get(h) ?? Infinity) >= now);
  }

  async end(handle: string): Promise<void> {
    this.endSync(handle);
  }

  endSync(handle: string): void {
    this.idleUntil.delete(handle);
    this.tasks.delete(handle);
    this.ended.set(handle, this.now() + this.forgetAfterMs);
  }

  async putTask(handle: string, taskId: string, task: SessionTask): Promise<void> {
    let mine = this.tasks.get(handle);
    if (!mine) this.tasks.set(handle, (mine = new Map()));
    if (mine.size >= MAX_TASKS) mine.delete(mine.keys().next().value as string);
    mine.set(taskId, task);
  }

  async getTask(handle: string, taskId: string): Promise<SessionTask | undefined> {
    return this.tasks.get(handle)?.get(taskId);
  }

  async knownTasks(handle: string, taskIds: readonly string[]): Promise<Set<string>> {
    const mine = this.tasks.get(handle);
    return new Set(taskIds.filter((t) => mine?.has(t)));
  }

  async claim(token: string, ttlMs: number): Promise<boolean> {
    return this.claimSync(token, ttlMs);
  }

  claimSync(token: string, ttlMs: number): boolean {
    const now = this.now();
    for (const [t, until] of this.claimed) {
      if (until >= now) break;
      this.claimed.delete(t);
    }
    if (this.claimed.has(token)) return false;
    this.claimed.set(token, now + ttlMs);
    return true;
  }

  private forgetEnded(now: number): void {
    // Oldest first (insertion order): stop at the first one still remembered.
    for (const [h, until] of this.ended) {
      if (until >= now) break;
      this.ended.delete(h);
    }
  }
}

const PUT_TASK_SCRIPT = `
if redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[3]) and redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1
`;

/**
 * The ledger every replica shares, in the Redis of the rate limits. One key per session
 * (`live:HANDLE`, TTL = the idle timeout, renewed by every request) and one hash of its tasks.
 * While Redis cannot be asked, `onDown` decides: `refuse` answers session requests 503; `local`
 * falls back to this replica's own knowledge (an end elsewhere is not seen until Redis is back).
 */
export class RedisSessionLedger implements SessionLedger {
  readonly shared = true;

  constructor(
    private readonly redis: SharedRedis,
    private readonly keyPrefix: string,
    private readonly onDown: "local" | "refuse",
    private readonly fallback: LocalSessionLedger,
  ) {}

  async start(handle: string, idleMs: number): Promise<void> {
    await this.fallback.start(handle, idleMs);
    await this.ask(["SET", this.live(handle), "1", "PX", String(idleMs)]);
  }

  async touch(handle: string, idleMs: number): Promise<"alive" | "ended"> {
    const reply = await this.ask(["PEXPIRE", this.live(handle), String(idleMs)], () => this.fallback.touchSync(handle, idleMs));
    if (reply === "alive" || reply === "ended") return reply;
    if (reply === 1) {
      this.fallback.refresh(handle, idleMs);
      return "alive";
    }
    this.fallback.endSync(handle);
    return "ended";
  }

  async alive(handles: readonly string[]): Promise<boolean[] | null> {
    if (handles.length === 0) return [];
    try {
      const reply = await this.redis.command(["MGET", ...handles.map((h) => this.live(h))]);
      return Array.isArray(reply) ? reply.map((v) => v !== null) : null;
    } catch (err) {
      if (err instanceof RedisUnavailable) return null;
      throw err;
    }
  }

  async end(handle: string): Promise<void> {
    this.fallback.endSync(handle);
    await this.ask(["DEL", this.live(handle), this.taskKey(handle)], () => 0);
  }

  async putTask(handle: string, taskId: string, task: SessionTask, lifetimeMs: number): Promise<void> {
    await this.fallback.putTask(handle, taskId, task);
    await this.ask(["EVAL", PUT_TASK_SCRIPT, "1", this.taskKey(handle), taskId, JSON.stringify(task), String(MAX_TASKS), String(Math.max(1, Math.round(lifetimeMs)))], () => 0);
  }

  async getTask(handle: string, taskId: string): Promise<SessionTask | undefined> {
    const reply = await this.ask(["HGET", this.taskKey(handle), taskId], () => "local");
    if (reply === "local") return this.fallback.getTask(handle, taskId);
    return typeof reply === "string" ? parseTask(reply) : undefined;
  }

  async knownTasks(handle: string, taskIds: readonly string[]): Promise<Set<string>> {
    if (taskIds.length === 0) return new Set();
    const reply = await this.ask(["HMGET", this.taskKey(handle), ...taskIds], () => "local");
    if (reply === "local") return this.fallback.knownTasks(handle, taskIds);
    return new Set(taskIds.filter((_, i) => Array.isArray(reply) && reply[i] !== null));
  }

  async claim(token: string, ttlMs: number): Promise<boolean> {
    const reply = await this.ask(["SET", `${this.keyPrefix}claim:${token}`, "1", "NX", "PX", String(ttlMs)], () => (this.fallback.claimSync(token, ttlMs) ? "OK" : null));
    return reply === "OK";
  }

  /** One command; while Redis is down: `local` runs the fallback, `refuse` refuses the request. */
  private async ask<T>(args: string[], local?: () => T): Promise<unknown> {
    try {
      return await this.redis.command(args);
    } catch (err) {
      if (!(err instanceof RedisUnavailable)) throw err;
      if (this.onDown === "local" && local) return local();
      if (this.onDown === "local") return null;
      throw new Refusal("session_store_unavailable", "the shared session store (Redis) is unreachable", { retry_after_seconds: 1 }, undefined, { "retry-after": "1" });
    }
  }

  private live(handle: string): string {
    return `${this.keyPrefix}live:${handle}`;
  }

  private taskKey(handle: string): string {
    return `${this.keyPrefix}tasks:${handle}`;
  }
}

function parseTask(text: string): SessionTask | undefined {
  try {
    const v: unknown = JSON.parse(text);
    if (isObject(v) && typeof v.tool === "string" && isObject(v.arguments)) return { tool: v.tool, arguments: v.arguments };
  } catch {
    // not one of ours: unknown
  }
  return undefined;
}
