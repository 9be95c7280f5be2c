import type { Clock } from "../shared/clock.js";
import type { SharedRedis } from "../shared/redis.js";
import {
  bindingKey,
  checkActor,
  checkRequestArgs,
  DECIDED_RETENTION_MS,
  expiredError,
  MAX_APPROVAL_TTL_SECONDS,
  newApprovalId,
  notFoundError,
  notPendingError,
  selfApprovalError,
} from "./binding.js";
import { IntegrityError } from "./errors.js";
import { foldName } from "./names.js";
import { parseJson, readRequest, readTransition } from "./records.js";
import { ask, fieldPairs } from "./redis-pins.js";
import type { ApprovalBinding, ApprovalRequest, ApprovalState, ApprovalStore, ApprovalTransition } from "./types.js";

/**
 * Keys under the prefix: `ap:req:ID` (hash: the request's fields, plus bindingKey, subFold and
 * expiresAtMs), `ap:bind:KEY` (the live request of a binding), `ap:due` (zset of live requests by
 * expiry), `ap:all` (zset of every request by creation, for listing) and `ap:tx` (list of
 * transitions not yet claimed, as JSON). Each step is one Lua script, so it is atomic on the server.
 */
const PRELUDE = `
local P = ARGV[1]
local NOW = ARGV[2]
local NOW_MS = tonumber(ARGV[3])
local KEEP_MS = tonumber(ARGV[4])
local function rkey(id) return P .. 'ap:req:' .. id end
local function fields(k)
  local flat = redis.call('HGETALL', k)
  local t = {}
  for i = 1, #flat, 2 do t[flat[i]] = flat[i + 1] end
  return t
end
local function record(k, event, actor, note)
  local r = fields(k)
  local tx = { id = r.id .. ':' .. event, event = event, approvalId = r.id, at = NOW, request = r }
  if actor then tx.actor = actor end
  if note then tx.note = note end
  redis.call('RPUSH', P .. 'ap:tx', cjson.encode(tx))
  return r
end
local function leaveLive(k, id, state)
  redis.call('HSET', k, 'state', state)
  redis.call('ZREM', P .. 'ap:due', id)
  local b = P .. 'ap:bind:' .. redis.call('HGET', k, 'bindingKey')
  if redis.call('GET', b) == id then redis.call('DEL', b) end
  local left = tonumber(redis.call('HGET', k, 'expiresAtMs')) + KEEP_MS - NOW_MS
  redis.call('PEXPIRE', k, math.floor(math.max(left, 1000)))
end
local function expire(k, id)
  leaveLive(k, id, 'expired')
  return record(k, 'expired')
end
`;

// ARGV 5 id, 6 binding key, 7 expiresAtMs, 8 TTL of the binding index (ms), 9.. field/value pairs.
const REQUEST = `${PRELUDE}
local bkey = P .. 'ap:bind:' .. ARGV[6]
local existing = redis.call('GET', bkey)
if existing then
  local ek = rkey(existing)
  local st = redis.call('HMGET', ek, 'state', 'expiresAtMs')
  if st[1] == 'pending' or st[1] == 'approved' then
    if tonumber(st[2]) > NOW_MS then return cjson.encode(fields(ek)) end
    expire(ek, existing)
  end
end
local k = rkey(ARGV[5])
local kv = {}
for i = 9, #ARGV do kv[#kv + 1] = ARGV[i] end
redis.call('HSET', k, unpack(kv))
redis.call('PEXPIRE', k, ARGV[8])
redis.call('SET', bkey, ARGV[5], 'PX', ARGV[8])
redis.call('ZADD', P .. 'ap:due', ARGV[7], ARGV[5])
redis.call('ZADD', P .. 'ap:all', ARGV[3], ARGV[5])
return cjson.encode(record(k, 'approval_required'))
`;

// ARGV 5 id, 6 new state, 7 approver, 8 approver folded, 9 note ('' for none). {outcome, request JSON}.
const DECIDE = `${PRELUDE}
local id = ARGV[5]
local k = rkey(id)
if redis.call('EXISTS', k) == 0 then return {'not_found'} end
local st = redis.call('HMGET', k, 'state', 'expiresAtMs', 'subFold')
if st[3] == ARGV[8] then return {'self_approval', cjson.encode(fields(k))} end
if st[1] ~= 'pending' then return {'not_pending', cjson.encode(fields(k))} end
if tonumber(st[2]) <= NOW_MS then return {'expired', cjson.encode(expire(k, id))} end
redis.call('HSET', k, 'state', ARGV[6], 'approver', ARGV[7], 'decidedAt', NOW)
local note = nil
if ARGV[9] ~= '' then
  redis.call('HSET', k, 'note', ARGV[9])
  note = ARGV[9]
end
if ARGV[6] == 'denied' then leaveLive(k, id, 'denied') end
return {'ok', cjson.encode(record(k, ARGV[6], ARGV[7], note))}
`;

// ARGV 5 binding key. The used request's JSON, or nil.
const CONSUME = `${PRELUDE}
local id = redis.call('GET', P .. 'ap:bind:' .. ARGV[5])
if not id then return false end
local k = rkey(id)
local st = redis.call('HMGET', k, 'state', 'expiresAtMs')
if st[1] ~= 'pending' and st[1] ~= 'approved' then return false end
if tonumber(st[2]) <= NOW_MS then
  expire(k, id)
  return false
end
if st[1] ~= 'approved' then return false end
redis.call('HSET', k, 'usedAt', NOW)
leaveLive(k, id, 'used')
return cjson.encode(record(k, 'used'))
`;

// ARGV 5 most to expire, 6 listing index entries created before this (ms) are dropped.
const EXPIRE_DUE = `${PRELUDE}
local ids = redis.call('ZRANGEBYSCORE', P .. 'ap:due', '-inf', ARGV[3], 'LIMIT', 0, tonumber(ARGV[5]))
local out = {}
for _, id in ipairs(ids) do
  local k = rkey(id)
  local s = redis.call('HGET', k, 'state')
  if s == 'pending' or s == 'approved' then
    out[#out + 1] = cjson.encode(expire(k, id))
  else
    redis.call('ZREM', P .. 'ap:due', id)
  end
end
redis.call('ZREMRANGEBYSCORE', P .. 'ap:all', '-inf', '(' .. ARGV[6])
return out
`;

// ARGV 1 prefix, 2 most to list. Request JSONs, newest first; entries whose request is gone are dropped.
const LIST = `
local P = ARGV[1]
local ids = redis.call('ZREVRANGE', P .. 'ap:all', 0, tonumber(ARGV[2]) - 1)
local out = {}
for _, id in ipairs(ids) do
  local k = P .. 'ap:req:' .. id
  local flat = redis.call('HGETALL', k)
  if #flat == 0 then
    redis.call('ZREM', P .. 'ap:all', id)
  else
    local t = {}
    for i = 1, #flat, 2 do t[flat[i]] = flat[i + 1] end
    out[#out + 1] = cjson.encode(t)
  end
end
return out
`;

// ARGV 1 prefix, 2 most to claim. The claimed transitions' JSON, oldest first; they leave the list.
const CLAIM = `
local key = ARGV[1] .. 'ap:tx'
local items = redis.call('LRANGE', key, 0, tonumber(ARGV[2]) - 1)
if #items > 0 then redis.call('LTRIM', key, #items, -1) end
return items
`;

/** Requests `list` returns at most (newest first). */
const LIST_LIMIT = 10_000;
/** Requests one `expireDue` expires at most (the timer comes back for the rest). */
const EXPIRE_BATCH = 500;

/** Approvals every replica shares, in the Redis of the rate limits (keys above). */
export class RedisApprovalStore implements ApprovalStore {
  readonly shared = true;

  constructor(
    private readonly redis: SharedRedis,
    private readonly prefix: string,
    private readonly clock: Pick<Clock, "now">,
    private readonly newId: () => string = newApprovalId,
  ) {}

  async request(binding: ApprovalBinding, reason: string, ttlSeconds: number): Promise<ApprovalRequest> {
    const storedReason = checkRequestArgs(binding, reason, ttlSeconds);
    const now = this.clock.now();
    const id = this.newId();
    const expiresAtMs = now + ttlSeconds * 1000;
    const fields: Record<string, string> = {
      id,
      iss: binding.agent.iss,
      sub: binding.agent.sub,
      subFold: foldName(binding.agent.sub),
      server: binding.server,
      tool: binding.tool,
      argumentsDigest: binding.argumentsDigest,
      bindingKey: bindingKey(binding),
      reason: storedReason,
      ttlSeconds: String(ttlSeconds),
      createdAt: iso(now),
      expiresAt: iso(expiresAtMs),
      expiresAtMs: String(expiresAtMs),
      state: "pending",
    };
    const keepMs = ttlSeconds * 1000 + DECIDED_RETENTION_MS;
    const reply = await this.script(REQUEST, now, [id, fields.bindingKey!, String(expiresAtMs), String(keepMs), ...Object.entries(fields).flat()]);
    return this.parsed(reply, id);
  }

  async get(id: string): Promise<ApprovalRequest | null> {
    const pairs = fieldPairs(await ask(this.redis, ["HGETALL", `${this.prefix}ap:req:${id}`]));
    return pairs.length === 0 ? null : fromFields(Object.fromEntries(pairs), this.where(id));
  }

  approve(id: string, approver: string): Promise<ApprovalRequest> {
    return this.decide(id, approver, "approved");
  }

  deny(id: string, approver: string, note?: string): Promise<ApprovalRequest> {
    return this.decide(id, approver, "denied", note);
  }

  private async decide(id: string, approver: string, state: "approved" | "denied", note = ""): Promise<ApprovalRequest> {
    const name = checkActor(approver, "approver");
    const reply = await this.script(DECIDE, this.clock.now(), [id, state, name, foldName(name), note]);
    const [outcome, text] = Array.isArray(reply) ? reply : [];
    if (outcome === "not_found") throw notFoundError(id);
    const r = this.parsed(text, id);
    if (outcome === "self_approval") throw selfApprovalError(r, name);
    if (outcome === "not_pending") throw notPendingError(r);
    if (outcome === "expired") throw expiredError(r);
    if (outcome !== "ok") throw new IntegrityError("store_corrupt", `${this.where(id)}: unexpected reply to the decision script`);
    return r;
  }

  async consume(binding: ApprovalBinding): Promise<ApprovalRequest | null> {
    const reply = await this.script(CONSUME, this.clock.now(), [bindingKey(binding)]);
    return reply === null || reply === undefined ? null : this.parsed(reply, "(consumed)");
  }

  async list(filter: { state?: readonly ApprovalState[] } = {}): Promise<ApprovalRequest[]> {
    const reply = await ask(this.redis, ["EVAL", LIST, "0", this.prefix, String(LIST_LIMIT)]);
    const all = (Array.isArray(reply) ? reply : []).map((text) => this.parsed(text, "(listed)"));
    return filter.state ? all.filter((r) => filter.state!.includes(r.state)) : all;
  }

  async expireDue(nowMs: number = this.clock.now()): Promise<ApprovalRequest[]> {
    const forgetBefore = nowMs - DECIDED_RETENTION_MS - MAX_APPROVAL_TTL_SECONDS * 1000;
    const reply = await this.script(EXPIRE_DUE, nowMs, [String(EXPIRE_BATCH), String(forgetBefore)]);
    return (Array.isArray(reply) ? reply : []).map((text) => this.parsed(text, "(expired)"));
  }

  async claimTransitions(limit: number): Promise<ApprovalTransition[]> {
    if (limit < 1) return [];
    const reply = await ask(this.redis, ["EVAL", CLAIM, "0", this.prefix, String(limit)]);
    return (Array.isArray(reply) ? reply : []).map((text) => {
      const where = `Redis ${this.prefix}ap:tx`;
      const raw = parseJson(String(text), where) as { request?: unknown } & Record<string, unknown>;
      return readTransition({ ...raw, request: fromFieldsRaw(raw.request), audited: true }, where);
    });
  }

  /** A script of the PRELUDE family: prefix, now, retention, then `args`. */
  private script(body: string, nowMs: number, args: string[]): Promise<unknown> {
    return ask(this.redis, ["EVAL", body, "0", this.prefix, iso(nowMs), String(nowMs), String(DECIDED_RETENTION_MS), ...args]);
  }

  private parsed(text: unknown, id: string): ApprovalRequest {
    const where = this.where(id);
    if (typeof text !== "string") throw new IntegrityError("store_corrupt", `${where}: unexpected reply from Redis`);
    return fromFields(parseJson(text, where), where);
  }

  private where(id: string): string {
    return `Redis ${this.prefix}ap:req:${id}`;
  }
}

const iso = (ms: number): string => new Date(ms).toISOString();

/** The stored hash fields (all strings) in the public shape, before validation. */
function fromFieldsRaw(f: unknown): unknown {
  if (f === null || typeof f !== "object") return f;
  const r = f as Record<string, unknown>;
  const optional = (k: string) => (typeof r[k] === "string" ? { [k]: r[k] } : {});
  return {
    id: r.id,
    agent: { iss: r.iss, sub: r.sub },
    server: r.server,
    tool: r.tool,
    argumentsDigest: r.argumentsDigest,
    reason: r.reason,
    ttlSeconds: typeof r.ttlSeconds === "string" ? Number(r.ttlSeconds) : r.ttlSeconds,
    createdAt: r.createdAt,
    expiresAt: r.expiresAt,
    state: r.state,
    ...optional("approver"),
    ...optional("decidedAt"),
    ...optional("note"),
    ...optional("usedAt"),
  };
}

function fromFields(f: unknown, where: string): ApprovalRequest {
  return readRequest(fromFieldsRaw(f), where);
}
