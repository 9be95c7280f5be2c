import type { Clock } from "../shared/clock.js";
import {
  bindingKey,
  checkActor,
  checkRequestArgs,
  DECIDED_RETENTION_MS,
  expiredError,
  isSelfDecision,
  newApprovalId,
  notFoundError,
  notPendingError,
  selfApprovalError,
} from "./binding.js";
import { deepFreeze, type IntegrityDoc, type IntegrityFile } from "./file-doc.js";
import type { ApprovalBinding, ApprovalEvent, ApprovalRequest, ApprovalState, ApprovalStore, ApprovalTransition } from "./types.js";

/**
 * Approvals in the local integrity file (file-doc.ts). Each step is one locked read-modify-write
 * of the file, so the gateway and the CLI (or two gateways on one host) see one history: a
 * request is consumed once, and each transition is claimed once.
 */
export class LocalApprovalStore implements ApprovalStore {
  readonly shared = false;

  constructor(
    private readonly file: IntegrityFile,
    private readonly clock: Pick<Clock, "now">,
    private readonly newId: () => string = newApprovalId,
  ) {}

  async request(binding: ApprovalBinding, reason: string, ttlSeconds: number): Promise<ApprovalRequest> {
    const storedReason = checkRequestArgs(binding, reason, ttlSeconds);
    const key = bindingKey(binding);
    return this.file.update((doc) => {
      const now = this.clock.now();
      forgetOld(doc, now);
      const live = liveFor(doc, key);
      if (live && expiresMs(live) > now) return live;
      if (live) expire(doc, live, now);
      const r: ApprovalRequest = {
        id: this.newId(),
        agent: { iss: binding.agent.iss, sub: binding.agent.sub },
        server: binding.server,
        tool: binding.tool,
        argumentsDigest: binding.argumentsDigest,
        reason: storedReason,
        ttlSeconds,
        createdAt: iso(now),
        expiresAt: iso(now + ttlSeconds * 1000),
        state: "pending",
      };
      return transition(doc, r, "approval_required", now);
    });
  }

  async get(id: string): Promise<ApprovalRequest | null> {
    return this.file.read().approvals.get(id) ?? null;
  }

  approve(id: string, approver: string): Promise<ApprovalRequest> {
    return this.decide(id, approver, "approved");
  }

  deny(id: string, approver: string, note?: string): Promise<ApprovalRequest> {
    return this.decide(id, approver, "denied", note);
  }

  private async decide(id: string, approver: string, state: "approved" | "denied", note?: string): Promise<ApprovalRequest> {
    const name = checkActor(approver, "approver");
    return this.file.update((doc) => {
      const now = this.clock.now();
      const r = doc.approvals.get(id);
      if (!r) throw notFoundError(id);
      if (isSelfDecision(r, name)) throw selfApprovalError(r, name);
      if (r.state !== "pending") throw notPendingError(r);
      if (expiresMs(r) <= now) {
        const expired = expire(doc, r, now);
        throw expiredError(expired);
      }
      const decided: ApprovalRequest = { ...r, state, approver: name, decidedAt: iso(now), ...(note !== undefined && note.length > 0 && { note }) };
      return transition(doc, decided, state, now, name, note);
    });
  }

  async consume(binding: ApprovalBinding): Promise<ApprovalRequest | null> {
    const key = bindingKey(binding);
    return this.file.update((doc) => {
      const now = this.clock.now();
      const r = liveFor(doc, key);
      if (!r) return null;
      if (expiresMs(r) <= now) {
        expire(doc, r, now);
        return null;
      }
      if (r.state !== "approved") return null;
      return transition(doc, { ...r, state: "used", usedAt: iso(now) }, "used", now);
    });
  }

  async list(filter: { state?: readonly ApprovalState[] } = {}): Promise<ApprovalRequest[]> {
    const all = [...this.file.read().approvals.values()].reverse();
    return filter.state ? all.filter((r) => filter.state!.includes(r.state)) : all;
  }

  async expireDue(nowMs: number = this.clock.now()): Promise<ApprovalRequest[]> {
    // Runs on a timer: the lock is taken only when there is something to do.
    const due = (doc: IntegrityDoc) => [...doc.approvals.values()].filter((r) => isLive(r.state) && expiresMs(r) <= nowMs);
    const seen = this.file.read();
    if (due(seen).length === 0 && !hasOld(seen, nowMs)) return [];
    return this.file.update((doc) => {
      forgetOld(doc, nowMs);
      return due(doc).map((r) => expire(doc, r, nowMs));
    });
  }

  async claimTransitions(limit: number): Promise<ApprovalTransition[]> {
    if (limit < 1 || this.file.read().transitions.length === 0) return [];
    return this.file.update((doc) => doc.transitions.splice(0, limit).map((t) => ({ ...t, audited: true })));
  }
}

const isLive = (s: ApprovalState): boolean => s === "pending" || s === "approved";
const expiresMs = (r: ApprovalRequest): number => Date.parse(r.expiresAt);
const iso = (ms: number): string => new Date(ms).toISOString();

function liveFor(doc: IntegrityDoc, key: string): ApprovalRequest | undefined {
  for (const r of doc.approvals.values()) if (isLive(r.state) && bindingKey(r) === key) return r;
  return undefined;
}

function expire(doc: IntegrityDoc, r: ApprovalRequest, now: number): ApprovalRequest {
  return transition(doc, { ...r, state: "expired" }, "expired", now);
}

/** Stores the request's new state and appends its transition for the audit. */
function transition(doc: IntegrityDoc, r: ApprovalRequest, event: ApprovalEvent, now: number, actor?: string, note?: string): ApprovalRequest {
  const stored = deepFreeze(r);
  doc.approvals.set(r.id, stored);
  doc.transitions.push(
    deepFreeze({
      id: `${r.id}:${event}`,
      event,
      approvalId: r.id,
      at: iso(now),
      ...(actor !== undefined && { actor }),
      ...(note !== undefined && note.length > 0 && { note }),
      request: stored,
      audited: false,
    }),
  );
  return stored;
}

const isOld = (r: ApprovalRequest, now: number): boolean => !isLive(r.state) && expiresMs(r) + DECIDED_RETENTION_MS < now;

function hasOld(doc: IntegrityDoc, now: number): boolean {
  for (const r of doc.approvals.values()) if (isOld(r, now)) return true;
  return false;
}

/** Decided, used and expired requests leave the file DECIDED_RETENTION_MS after their expiry. */
function forgetOld(doc: IntegrityDoc, now: number): void {
  for (const [id, r] of doc.approvals) if (isOld(r, now)) doc.approvals.delete(id);
}
