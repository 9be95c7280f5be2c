import type { Clock } from "../shared/clock.js";
import { RedisUnavailable, type SharedRedis } from "../shared/redis.js";
import { checkActor } from "./binding.js";
import { checkPin, driftOf } from "./definition.js";
import { IntegrityError } from "./errors.js";
import { definitionDigest, driftChangedError, noDriftError } from "./local-pins.js";
import { parseJson, readDrift, readPin } from "./records.js";
import type { DriftRecord, PinStore, ToolDefinition, ToolPin } from "./types.js";

// KEYS[1] pins hash of the server, KEYS[2] the servers set; ARGV tool, pin JSON, server.
const PIN_FIRST_SEEN = `
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 1 then
  redis.call('SADD', KEYS[2], ARGV[3])
  return ARGV[2]
end
return redis.call('HGET', KEYS[1], ARGV[1])
`;

// KEYS pins, drifts, servers; ARGV tool, digest approved, pin JSON, server. {1} done, {0, seen digest or ''}.
const APPROVE = `
local d = redis.call('HGET', KEYS[2], ARGV[1])
if not d then return {0, ''} end
local seen = cjson.decode(d).digest
if seen ~= ARGV[2] then return {0, seen} end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('SADD', KEYS[3], ARGV[4])
return {1, ''}
`;

// KEYS pins, drifts; ARGV tool. The number of records removed.
const REVOKE = `
return redis.call('HDEL', KEYS[1], ARGV[1]) + redis.call('HDEL', KEYS[2], ARGV[1])
`;

// KEYS pins, drifts, servers; ARGV tool, drifted digest, pin digest it was diffed against, drift JSON, server.
// {0} nothing drifted (unpinned, or the pinned digest), {1, drift JSON on record}, {2} the pin changed meanwhile.
const NOTE_DRIFT = `
local p = redis.call('HGET', KEYS[1], ARGV[1])
if not p then return {0} end
local pinned = cjson.decode(p).digest
if pinned == ARGV[2] then return {0} end
if pinned ~= ARGV[3] then return {2} end
local d = redis.call('HGET', KEYS[2], ARGV[1])
if d and cjson.decode(d).digest == ARGV[2] then return {1, d} end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[4])
redis.call('SADD', KEYS[3], ARGV[5])
return {1, ARGV[4]}
`;

/**
 * Pins every replica shares, in the Redis of the rate limits: a hash of pins and one of drifts
 * per server (`PREFIXpins:SERVER`, `PREFIXdrifts:SERVER`, field = tool, value = JSON) and the set
 * of servers (`PREFIXservers`). First-seen pinning is one HSETNX, so when replicas race, one pin
 * wins and all of them return it. While Redis cannot be asked, every call fails with
 * `store_unavailable` (the gateway fails closed).
 */
export class RedisPinStore implements PinStore {
  readonly shared = true;

  constructor(
    private readonly redis: SharedRedis,
    private readonly prefix: string,
    private readonly clock: Pick<Clock, "now">,
  ) {}

  async get(server: string, tool: string): Promise<ToolPin | null> {
    const reply = await ask(this.redis, ["HGET", this.pinsKey(server), tool]);
    return typeof reply === "string" ? readPin(parseJson(reply, this.where(server, tool)), this.where(server, tool)) : null;
  }

  async pinFirstSeen(pin: ToolPin): Promise<ToolPin> {
    checkPin(pin);
    const reply = await ask(this.redis, ["EVAL", PIN_FIRST_SEEN, "2", this.pinsKey(pin.server), this.serversKey(), pin.tool, JSON.stringify(pin), pin.server]);
    if (typeof reply !== "string") throw new IntegrityError("store_corrupt", `${this.where(pin.server, pin.tool)}: unexpected reply to the pin script`);
    return readPin(parseJson(reply, this.where(pin.server, pin.tool)), this.where(pin.server, pin.tool));
  }

  /** Each pin is its own atomic HSETNX script (another replica may win any of them); sent together, answered together. */
  async pinAllFirstSeen(pins: readonly ToolPin[]): Promise<ToolPin[]> {
    return Promise.all(pins.map((pin) => this.pinFirstSeen(pin)));
  }

  async approve(server: string, tool: string, definition: ToolDefinition, operator: string): Promise<ToolPin> {
    const name = checkActor(operator, "operator");
    const digest = definitionDigest(tool, definition);
    const pin: ToolPin = { server, tool, digest, definition, pinnedAt: new Date(this.clock.now()).toISOString(), pinnedBy: `operator:${name}` };
    const reply = await ask(this.redis, ["EVAL", APPROVE, "3", this.pinsKey(server), this.driftsKey(server), this.serversKey(), tool, digest, JSON.stringify(pin), server]);
    const [done, seen] = Array.isArray(reply) ? reply : [];
    if (done === 1) return pin;
    if (typeof seen === "string" && seen.length > 0) throw driftChangedError(server, tool, digest, seen);
    throw noDriftError(server, tool);
  }

  async revoke(server: string, tool: string): Promise<boolean> {
    const removed = await ask(this.redis, ["EVAL", REVOKE, "2", this.pinsKey(server), this.driftsKey(server), tool]);
    return typeof removed === "number" && removed > 0;
  }

  async list(server?: string): Promise<ToolPin[]> {
    const out: ToolPin[] = [];
    for (const s of await this.serverNames(server)) {
      for (const [tool, text] of await this.hash(this.pinsKey(s))) out.push(readPin(parseJson(text, this.where(s, tool)), this.where(s, tool)));
    }
    return out;
  }

  async noteDrift(server: string, tool: string, definition: ToolDefinition): Promise<DriftRecord | null> {
    const digest = definitionDigest(tool, definition);
    // Twice at most: a pin that changes between the read and the script is read again once.
    for (let attempt = 0; attempt < 2; attempt++) {
      const pin = await this.get(server, tool);
      if (!pin || pin.digest === digest) return null;
      const known = await this.getDrift(server, tool);
      if (known?.digest === digest) return known;
      const drift = driftOf(pin, digest, definition, this.clock.now());
      const reply = await ask(this.redis, ["EVAL", NOTE_DRIFT, "3", this.pinsKey(server), this.driftsKey(server), this.serversKey(), tool, digest, pin.digest, JSON.stringify(drift), server]);
      const [kind, text] = Array.isArray(reply) ? reply : [];
      if (kind === 0) return null;
      if (kind === 1 && typeof text === "string") return readDrift(parseJson(text, this.where(server, tool, "drifts")), this.where(server, tool, "drifts"));
    }
    throw new IntegrityError("store_unavailable", `${this.where(server, tool)}: the pin kept changing while a drift was recorded`);
  }

  async getDrift(server: string, tool: string): Promise<DriftRecord | null> {
    const where = this.where(server, tool, "drifts");
    const reply = await ask(this.redis, ["HGET", this.driftsKey(server), tool]);
    return typeof reply === "string" ? readDrift(parseJson(reply, where), where) : null;
  }

  async drifts(server?: string): Promise<DriftRecord[]> {
    const out: DriftRecord[] = [];
    for (const s of await this.serverNames(server)) {
      for (const [tool, text] of await this.hash(this.driftsKey(s))) out.push(readDrift(parseJson(text, this.where(s, tool, "drifts")), this.where(s, tool, "drifts")));
    }
    return out;
  }

  async clearDrift(server: string, tool: string): Promise<boolean> {
    return (await ask(this.redis, ["HDEL", this.driftsKey(server), tool])) === 1;
  }

  private async serverNames(server?: string): Promise<string[]> {
    if (server !== undefined) return [server];
    const reply = await ask(this.redis, ["SMEMBERS", this.serversKey()]);
    return (Array.isArray(reply) ? reply.filter((s): s is string => typeof s === "string") : []).sort();
  }

  /** A hash's fields, sorted by name. */
  private async hash(key: string): Promise<Array<[string, string]>> {
    return fieldPairs(await ask(this.redis, ["HGETALL", key])).sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  }

  private pinsKey(server: string): string {
    return `${this.prefix}pins:${server}`;
  }

  private driftsKey(server: string): string {
    return `${this.prefix}drifts:${server}`;
  }

  private serversKey(): string {
    return `${this.prefix}servers`;
  }

  private where(server: string, tool: string, kind: "pins" | "drifts" = "pins"): string {
    return `Redis ${this.prefix}${kind}:${server} field ${JSON.stringify(tool)}`;
  }
}

/** One command; Redis being unreachable is the store being unavailable. */
export async function ask(redis: SharedRedis, args: string[]): Promise<unknown> {
  try {
    return await redis.command(args);
  } catch (err) {
    if (err instanceof RedisUnavailable) throw new IntegrityError("store_unavailable", `the integrity store (Redis) cannot be asked: ${err.message}`);
    throw err;
  }
}

/** An HGETALL reply (a flat array in RESP2, a map in RESP3) as [field, value] pairs. */
export function fieldPairs(reply: unknown): Array<[string, string]> {
  const pairs: Array<[string, string]> = [];
  if (Array.isArray(reply)) {
    for (let i = 0; i + 1 < reply.length; i += 2) {
      const [k, v] = [reply[i], reply[i + 1]];
      if (typeof k === "string" && typeof v === "string") pairs.push([k, v]);
    }
  } else if (reply instanceof Map) {
    for (const [k, v] of reply) if (typeof k === "string" && typeof v === "string") pairs.push([k, v]);
  } else if (reply !== null && typeof reply === "object") {
    for (const [k, v] of Object.entries(reply)) if (typeof v === "string") pairs.push([k, v]);
  }
  return pairs;
}
