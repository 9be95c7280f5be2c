import { randomBytes } from "node:crypto";
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, statSync, unlinkSync, writeSync } from "node:fs";
import { dirname } from "node:path";
import { performance } from "node:perf_hooks";
import { z } from "zod";
import { IntegrityError } from "./errors.js";
import { parseJson, readDrift, readPin, readRequest, readTransition } from "./records.js";
import type { ApprovalRequest, ApprovalTransition, DriftRecord, ToolPin } from "./types.js";

/** Pins and drifts by server, then tool (Maps: tool names are an upstream's, "__proto__" included). */
export type ByServer<T> = Map<string, Map<string, T>>;

/** The whole file, in memory. Records are frozen: a change replaces one, never edits it. */
export interface IntegrityDoc {
  pins: ByServer<ToolPin>;
  drifts: ByServer<DriftRecord>;
  /** By id, in creation order. */
  approvals: Map<string, ApprovalRequest>;
  /** Not yet claimed, oldest first. */
  transitions: ApprovalTransition[];
}

export interface IntegrityFileOptions {
  /** How often `read` looks (one stat) for a change another process made; default 1000 ms. */
  refreshMs?: number;
  /** How long an update waits for another process's lock; default 5000 ms. */
  lockTimeoutMs?: number;
  /** A lock older than this is taken over even if its process seems alive (pid reuse); default 30 s. */
  staleLockMs?: number;
  /** Monotonic milliseconds for the refresh and lock timers (tests pin it). */
  monotonicMs?: () => number;
  /** Wall-clock milliseconds, compared with the lock file's mtime only. */
  fileTimeMs?: () => number;
}

const FILE_VERSION = 1;

const fileSchema = z.object({
  version: z.literal(FILE_VERSION),
  pins: z.array(z.unknown()),
  drifts: z.array(z.unknown()),
  approvals: z.array(z.unknown()),
  transitions: z.array(z.unknown()),
});

/**
 * The local store: one JSON file shared by the gateway and the CLI on one host. Reads come from
 * memory, refreshed when the file's identity (inode, size, mtime) changed, looked at no more than
 * once per `refreshMs`. Every change is a read-modify-write under a lock file (`FILE.lock`, created
 * exclusively), written to a temporary file, fsynced and renamed over the old one, so a reader
 * never sees half a file and two writers never lose each other's change.
 */
export class IntegrityFile {
  private doc: IntegrityDoc = emptyDoc();
  private signature = "";
  private checkedAt = -Infinity;
  private queue: Promise<unknown> = Promise.resolve();
  private readonly refreshMs: number;
  private readonly lockTimeoutMs: number;
  private readonly staleLockMs: number;
  private readonly mono: () => number;
  private readonly fileTime: () => number;

  constructor(
    readonly path: string,
    opts: IntegrityFileOptions = {},
  ) {
    this.refreshMs = opts.refreshMs ?? 1000;
    this.lockTimeoutMs = opts.lockTimeoutMs ?? 5000;
    this.staleLockMs = opts.staleLockMs ?? 30_000;
    this.mono = opts.monotonicMs ?? (() => performance.now());
    this.fileTime = opts.fileTimeMs ?? (() => Date.now());
  }

  /** The document as last seen, re-read first when it may have changed. */
  read(): IntegrityDoc {
    const now = this.mono();
    if (now - this.checkedAt >= this.refreshMs) {
      this.checkedAt = now;
      const sig = this.currentSignature();
      if (sig !== this.signature) this.load(sig);
    }
    return this.doc;
  }

  /**
   * Runs `change` on the current file's document under the lock, and writes the result if it
   * differs. A change that throws is written too (an expiry found on the way) before the error
   * goes to the caller.
   */
  update<T>(change: (doc: IntegrityDoc) => T): Promise<T> {
    const run = this.queue.then(() => this.locked(change));
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async locked<T>(change: (doc: IntegrityDoc) => T): Promise<T> {
    const release = await this.lock();
    try {
      // Everything from here is synchronous: nothing else in this process runs in between.
      this.load(this.currentSignature());
      const doc = this.doc;
      const before = serialize(doc);
      let result: { ok: true; value: T } | { ok: false; error: unknown };
      try {
        result = { ok: true, value: change(doc) };
      } catch (error) {
        result = { ok: false, error };
      }
      const after = serialize(doc);
      if (after !== before) {
        try {
          this.write(after);
        } catch (err) {
          // The document in memory holds a change the file does not: read the file again next time.
          this.signature = "";
          this.checkedAt = -Infinity;
          throw err;
        }
      }
      if (!result.ok) throw result.error;
      return result.value;
    } finally {
      release();
    }
  }

  private currentSignature(): string {
    try {
      const s = statSync(this.path, { bigint: true });
      return `${s.ino}:${s.size}:${s.mtimeNs}`;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return "missing";
      throw this.unavailable("cannot stat", err);
    }
  }

  private load(signature: string): void {
    if (signature === this.signature) return;
    if (signature === "missing") {
      this.doc = emptyDoc();
    } else {
      let text: string;
      try {
        text = readFileSync(this.path, "utf8");
      } catch (err) {
        throw this.unavailable("cannot read", err);
      }
      this.doc = parseDoc(text, this.path);
    }
    this.signature = signature;
  }

  private write(text: string): void {
    const tmp = `${this.path}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`;
    try {
      mkdirSync(dirname(this.path), { recursive: true });
      const fd = openSync(tmp, "w", 0o644);
      try {
        writeSync(fd, text);
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      renameSync(tmp, this.path);
      // The rename itself is durable only once the directory is.
      const dir = openSync(dirname(this.path), "r");
      try {
        fsyncSync(dir);
      } finally {
        closeSync(dir);
      }
    } catch (err) {
      try {
        unlinkSync(tmp);
      } catch {
        // never created, or already renamed
      }
      throw this.unavailable("cannot write", err);
    }
    this.signature = this.currentSignature();
    this.checkedAt = this.mono();
  }

  /** Takes FILE.lock (exclusive create); returns its release. */
  private async lock(): Promise<() => void> {
    const lockPath = `${this.path}.lock`;
    const deadline = this.mono() + this.lockTimeoutMs;
    let delayMs = 2;
    let madeDir = false;
    for (;;) {
      try {
        const fd = openSync(lockPath, "wx", 0o600);
        try {
          writeSync(fd, `${process.pid}\n`);
        } finally {
          closeSync(fd);
        }
        return () => {
          try {
            unlinkSync(lockPath);
          } catch {
            // taken over as stale: nothing of ours to remove
          }
        };
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === "ENOENT" && !madeDir) {
          this.makeDir();
          madeDir = true;
          continue;
        }
        if (code !== "EEXIST") throw this.unavailable(`cannot create the lock ${lockPath}`, err);
      }
      if (this.breakStaleLock(lockPath)) continue;
      if (this.mono() >= deadline) {
        throw new IntegrityError("store_unavailable", `${this.path}: locked by another process for over ${this.lockTimeoutMs} ms (${lockPath}, ${lockHolder(lockPath)}); try again, or remove the lock if no portcullis process holds it`);
      }
      await new Promise((r) => setTimeout(r, delayMs));
      delayMs = Math.min(delayMs * 2, 50);
    }
  }

  /** Removes a lock whose process is gone, or that is older than staleLockMs. */
  private breakStaleLock(lockPath: string): boolean {
    let ageMs: number;
    let pid: number;
    try {
      ageMs = this.fileTime() - statSync(lockPath).mtimeMs;
      pid = Number.parseInt(readFileSync(lockPath, "utf8"), 10);
    } catch {
      return true; // released meanwhile: try again at once
    }
    // A lock just created may not hold its pid yet: only its age can make it stale.
    const gone = Number.isSafeInteger(pid) && pid > 0 && !processAlive(pid);
    if (!gone && ageMs < this.staleLockMs) return false;
    try {
      unlinkSync(lockPath);
    } catch {
      // another process broke it first
    }
    return true;
  }

  private makeDir(): void {
    try {
      mkdirSync(dirname(this.path), { recursive: true });
    } catch (err) {
      throw this.unavailable("cannot create the folder of", err);
    }
  }

  private unavailable(what: string, err: unknown): IntegrityError {
    const code = (err as NodeJS.ErrnoException).code ?? String(err);
    return new IntegrityError("store_unavailable", `${what} ${this.path}: ${code}`);
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists, owned by someone else.
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

function lockHolder(lockPath: string): string {
  try {
    const pid = readFileSync(lockPath, "utf8").trim();
    return pid ? `pid ${pid}` : "pid unknown";
  } catch {
    return "released since";
  }
}

function emptyDoc(): IntegrityDoc {
  return { pins: new Map(), drifts: new Map(), approvals: new Map(), transitions: [] };
}

export function setIn<T>(m: ByServer<T>, server: string, tool: string, value: T): void {
  let tools = m.get(server);
  if (!tools) m.set(server, (tools = new Map()));
  tools.set(tool, deepFreeze(value));
}

export function deleteIn<T>(m: ByServer<T>, server: string, tool: string): boolean {
  const tools = m.get(server);
  const had = tools?.delete(tool) ?? false;
  if (tools && tools.size === 0) m.delete(server);
  return had;
}

/** Values sorted by server, then tool; of one server when given. */
export function listIn<T>(m: ByServer<T>, server?: string): T[] {
  const servers = server === undefined ? [...m.keys()].sort() : m.has(server) ? [server] : [];
  return servers.flatMap((s) => {
    const tools = m.get(s)!;
    return [...tools.keys()].sort().map((t) => tools.get(t)!);
  });
}

export function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === "object" && !Object.isFrozen(value)) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

function parseDoc(text: string, path: string): IntegrityDoc {
  const raw = parseJson(text, path);
  const top = fileSchema.safeParse(raw);
  if (!top.success) {
    const version = raw !== null && typeof raw === "object" ? (raw as { version?: unknown }).version : undefined;
    const why = version !== FILE_VERSION ? `version must be ${FILE_VERSION}` : `expected {version, pins, drifts, approvals, transitions}`;
    throw new IntegrityError("store_corrupt", `${path}: not a portcullis integrity file (${why})`);
  }
  const doc = emptyDoc();
  top.data.pins.forEach((v, i) => {
    const p = readPin(v, `${path}: pins[${i}]`);
    setIn(doc.pins, p.server, p.tool, p);
  });
  top.data.drifts.forEach((v, i) => {
    const d = readDrift(v, `${path}: drifts[${i}]`);
    setIn(doc.drifts, d.server, d.tool, d);
  });
  top.data.approvals.forEach((v, i) => {
    const a = readRequest(v, `${path}: approvals[${i}]`);
    doc.approvals.set(a.id, deepFreeze(a));
  });
  doc.transitions = top.data.transitions.map((v, i) => deepFreeze(readTransition(v, `${path}: transitions[${i}]`)));
  return doc;
}

function serialize(doc: IntegrityDoc): string {
  const file = {
    version: FILE_VERSION,
    pins: listIn(doc.pins),
    drifts: listIn(doc.drifts),
    approvals: [...doc.approvals.values()],
    transitions: doc.transitions,
  };
  return `${JSON.stringify(file, null, 2)}\n`;
}
