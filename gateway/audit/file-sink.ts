import * as fs from "node:fs";
import { dirname } from "node:path";
import { systemClock, type Clock } from "../shared/clock.js";
import { jsonLine, type EncodedEvent } from "./jsonl.js";
import { stderrAuditLogger, type AuditLogger } from "./logger.js";
import type { AuditEvent, AuditSink } from "./types.js";

/**
 * The file operations the sink uses, node:fs by default. A seam for tests (a full disk, a
 * failing write), not a configuration.
 */
export interface FileSinkIo {
  mkdirSync(path: string, options: { recursive: true }): unknown;
  openSync(path: string, flags: string, mode: number): number;
  fstatSync(fd: number): { size: number };
  readSync(fd: number, buffer: Buffer, offset: number, length: number, position: number): number;
  writeSync(fd: number, buffer: Buffer, offset: number, length: number): number;
  /** Asynchronous write (the fsync mode): resolves with the bytes written. */
  write(fd: number, buffer: Buffer, offset: number, length: number): Promise<number>;
  fsync(fd: number): Promise<void>;
  ftruncateSync(fd: number, length: number): void;
  closeSync(fd: number): void;
  /** Free space of the file system holding `path` (node's fs.statfs). */
  statfs(path: string): Promise<{ bavail: number | bigint; bsize: number | bigint }>;
}

const nodeIo: FileSinkIo = {
  mkdirSync: (path, options) => fs.mkdirSync(path, options),
  openSync: (path, flags, mode) => fs.openSync(path, flags, mode),
  fstatSync: (fd) => fs.fstatSync(fd),
  readSync: (fd, buffer, offset, length, position) => fs.readSync(fd, buffer, offset, length, position),
  writeSync: (fd, buffer, offset, length) => fs.writeSync(fd, buffer, offset, length),
  write: (fd, buffer, offset, length) =>
    new Promise((resolve, reject) => fs.write(fd, buffer, offset, length, null, (err, n) => (err ? reject(err) : resolve(n)))),
  fsync: (fd) => new Promise((resolve, reject) => fs.fsync(fd, (err) => (err ? reject(err) : resolve()))),
  ftruncateSync: (fd, length) => fs.ftruncateSync(fd, length),
  closeSync: (fd) => fs.closeSync(fd),
  statfs: (path) => fs.promises.statfs(path),
};

export interface JsonlFileSinkOptions {
  /** fsync after each coalesced write: survives power loss, costs one sync per batch. */
  fsync?: boolean;
  /** audit.fileMinFreeBytes: `admit` refuses below this much free space (default 64 MiB; 0: no check). */
  minFreeBytes?: number;
  logger?: AuditLogger;
  clock?: Clock;
  io?: Partial<FileSinkIo>;
}

/** Thrown by `admit` when the file cannot take the event of a request about to be decided. */
export class AuditUnavailableError extends Error {
  readonly code = "audit_unavailable";
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "AuditUnavailableError";
  }
}

export const DEFAULT_FILE_MIN_FREE_BYTES = 64 * 1024 * 1024;
/** The free-space sample is refreshed in the background once it is this old. */
const SPACE_FRESH_MS = 1_000;
/** An older sample (an idle gateway) is not trusted: admit waits for a new one. */
const SPACE_STALE_MS = 10_000;
const TAIL_CHUNK = 64 * 1024;
const NEWLINE = 0x0a;

interface Pending {
  line: string;
  resolve: () => void;
  reject: (err: Error) => void;
}

const asError = (err: unknown): Error => (err instanceof Error ? err : new Error(String(err)));
const errorCode = (err: unknown): string => (err as NodeJS.ErrnoException | null)?.code ?? asError(err).message;

/**
 * Appends one JSON line per event. Events written in the same tick (and while a write is in
 * flight) share one `write` call and, with `fsync`, one sync: group commit, so the cost per event
 * stays flat under load. `write()` resolves only after its bytes reached the file and rejects on
 * any I/O error: nothing is dropped silently (STYLE.md "patterns to avoid" 1).
 *
 * The file stays valid JSONL: a torn last line found on open is cut, and a failed append is cut
 * back to the size before it. One gateway writes a file (with two writers, a cut could remove
 * the other's line). `admit` refuses new requests (`audit_unavailable`) while the last append
 * failed and the file still cannot be written, or while the file system is below
 * `minFreeBytes`: that reserve is for the events of requests already forwarded.
 */
export class JsonlFileSink implements AuditSink {
  readonly name: string;
  private readonly path: string;
  private readonly fsync: boolean;
  private readonly minFreeBytes: number;
  private readonly log: AuditLogger;
  private readonly clock: Clock;
  private readonly io: FileSinkIo;
  private fd: number | null = null;
  /** Size of the file as this sink wrote it: where a failed append is cut back to. */
  private size = 0;
  private pending: Pending[] = [];
  private scheduled = false;
  private flushing: Promise<void> | null = null;
  private closed = false;
  /** Set by a failed append or probe, cleared by the next success. */
  private lastFailure: Error | null = null;
  private space: { free: number; at: number } | { error: Error; at: number } | null = null;
  private spaceRefresh: Promise<void> | null = null;
  private lowSpace = false;

  constructor(path: string, options: JsonlFileSinkOptions = {}) {
    this.path = path;
    this.fsync = options.fsync ?? false;
    this.minFreeBytes = Math.max(0, options.minFreeBytes ?? DEFAULT_FILE_MIN_FREE_BYTES);
    this.log = options.logger ?? stderrAuditLogger;
    this.clock = options.clock ?? systemClock;
    this.io = { ...nodeIo, ...options.io };
    this.name = `file:${path}`;
  }

  write(event: AuditEvent, encoded?: EncodedEvent): Promise<void> {
    if (this.closed) return Promise.reject(new Error(`${this.name}: sink is closed`));
    let line: string;
    try {
      line = `${encoded ? encoded.line : jsonLine(event)}\n`;
    } catch (err) {
      return Promise.reject(asError(err));
    }
    if (!this.fsync) {
      // Without fsync an append only reaches the page cache: a synchronous write takes a few
      // microseconds, far less than a thread-pool round trip on every request's answer path.
      try {
        this.appendSync(line);
        return Promise.resolve();
      } catch (err) {
        return Promise.reject(asError(err));
      }
    }
    return new Promise<void>((resolve, reject) => {
      this.pending.push({ line, resolve, reject });
      this.schedule();
    });
  }

  /**
   * Asked before a request is decided (AuditLog.admit). Rejects with AuditUnavailableError
   * (`audit_unavailable`) when the file cannot be opened, when the last append failed and a
   * fresh probe fails too, or when the file system has less than `minFreeBytes` free.
   */
  async admit(): Promise<void> {
    if (this.closed) throw new AuditUnavailableError(`${this.name}: sink is closed`);
    if (this.fd === null || this.lastFailure !== null) this.probe();
    if (this.minFreeBytes > 0) await this.checkFreeSpace();
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.drain();
    if (this.fd !== null) this.io.closeSync(this.fd);
    this.fd = null;
  }

  /** Re-opens the file if needed and writes zero bytes: what an append needs, without data. */
  private probe(): void {
    try {
      const fd = this.ensureOpen();
      this.io.writeSync(fd, Buffer.alloc(0), 0, 0);
      this.io.fstatSync(fd);
      if (this.lastFailure !== null) this.log("info", "audit file writable again", { file: this.path });
      this.lastFailure = null;
    } catch (err) {
      this.lastFailure = asError(err);
      this.dropFd();
      throw new AuditUnavailableError(`${this.name}: cannot append (${errorCode(err)})`, { cause: err });
    }
  }

  private async checkFreeSpace(): Promise<void> {
    const age = this.space === null ? Number.POSITIVE_INFINITY : this.clock.now() - this.space.at;
    if (age >= SPACE_STALE_MS) await this.refreshSpace();
    else if (age >= SPACE_FRESH_MS) void this.refreshSpace();
    const space = this.space;
    if (space === null) return; // unreachable: refreshSpace always sets it
    if ("error" in space) {
      throw new AuditUnavailableError(`${this.name}: cannot read the free space (${errorCode(space.error)}); audit.fileMinFreeBytes: 0 turns the check off`, {
        cause: space.error,
      });
    }
    const low = space.free < this.minFreeBytes;
    if (low !== this.lowSpace) {
      this.lowSpace = low;
      if (low) this.log("warn", "audit file system below audit.fileMinFreeBytes: refusing requests", { file: this.path, free: space.free, min: this.minFreeBytes });
      else this.log("info", "audit file system has room again", { file: this.path, free: space.free });
    }
    if (low) throw new AuditUnavailableError(`${this.name}: ${space.free} bytes free, below audit.fileMinFreeBytes (${this.minFreeBytes})`);
  }

  /** One statfs at a time; its result (or error) is the sample until the next one. */
  private refreshSpace(): Promise<void> {
    if (this.spaceRefresh) return this.spaceRefresh;
    this.spaceRefresh = this.io
      .statfs(this.fd === null ? dirname(this.path) : this.path)
      .then(
        (s) => {
          this.space = { free: Number(s.bavail) * Number(s.bsize), at: this.clock.now() };
        },
        (err: unknown) => {
          this.space = { error: asError(err), at: this.clock.now() };
        },
      )
      .finally(() => {
        this.spaceRefresh = null;
      });
    return this.spaceRefresh;
  }

  private ensureOpen(): number {
    if (this.fd !== null) return this.fd;
    this.io.mkdirSync(dirname(this.path), { recursive: true });
    // "a+" is O_APPEND (each write lands at the end of the file) and readable, for the tail check.
    const fd = this.io.openSync(this.path, "a+", 0o640);
    try {
      this.size = this.repairTail(fd, this.io.fstatSync(fd).size);
    } catch (err) {
      this.io.closeSync(fd);
      throw err;
    }
    this.fd = fd;
    return fd;
  }

  /**
   * A file that does not end with a newline ends in a line torn by a crash or a failed write:
   * it is cut at the last newline, so every line of the file parses again.
   */
  private repairTail(fd: number, size: number): number {
    if (size === 0) return 0;
    const buf = Buffer.alloc(Math.min(TAIL_CHUNK, size));
    let end = size;
    let cut = 0;
    search: while (end > 0) {
      const start = Math.max(0, end - buf.length);
      const n = this.io.readSync(fd, buf, 0, end - start, start);
      for (let i = n - 1; i >= 0; i--) {
        if (buf[i] === NEWLINE) {
          cut = start + i + 1;
          break search;
        }
      }
      end = start;
    }
    if (cut === size) return size;
    this.io.ftruncateSync(fd, cut);
    this.log("warn", "audit file ended in a torn line: cut it", { file: this.path, bytes: size - cut });
    return cut;
  }

  private appendSync(text: string): void {
    const fd = this.ensureOpen();
    const data = Buffer.from(text, "utf8");
    const before = this.size;
    let off = 0;
    try {
      while (off < data.length) {
        const n = this.io.writeSync(fd, data, off, data.length - off);
        if (n <= 0) throw new Error(`${this.name}: write made no progress`);
        off += n;
      }
    } catch (err) {
      this.afterFailedAppend(fd, before, off, err);
      throw err;
    }
    this.size = before + data.length;
    this.lastFailure = null;
  }

  private async append(text: string): Promise<void> {
    const fd = this.ensureOpen();
    const data = Buffer.from(text, "utf8");
    const before = this.size;
    let off = 0;
    try {
      while (off < data.length) {
        const n = await this.io.write(fd, data, off, data.length - off);
        if (n <= 0) throw new Error(`${this.name}: write made no progress`);
        off += n;
      }
      if (this.fsync) await this.io.fsync(fd);
    } catch (err) {
      // A failed sync leaves the batch's durability unknown: it is cut like a partial write, so
      // the file holds only events whose write() resolved.
      this.afterFailedAppend(fd, before, Math.max(off, 1), err);
      throw err;
    }
    this.size = before + data.length;
    this.lastFailure = null;
  }

  /**
   * Cuts the file back to its size before the append (so no torn line stays) and drops the
   * descriptor: the next write or admit re-opens it, and the re-open cuts a torn tail if the
   * truncate itself failed.
   */
  private afterFailedAppend(fd: number, before: number, written: number, err: unknown): void {
    this.lastFailure = asError(err);
    if (written > 0) {
      try {
        this.io.ftruncateSync(fd, before);
      } catch {
        // The re-open repairs it.
      }
    }
    this.log("error", "audit file append failed", { file: this.path, error: errorCode(err), cut_back_to: before });
    this.dropFd();
  }

  private dropFd(): void {
    const fd = this.fd;
    this.fd = null;
    if (fd === null) return;
    try {
      this.io.closeSync(fd);
    } catch {
      // already unusable
    }
  }

  /** Waits until everything accepted so far has been written (or failed). */
  private async drain(): Promise<void> {
    while (this.flushing || this.pending.length > 0) {
      if (!this.flushing) this.flushing = this.flushLoop();
      await this.flushing;
    }
  }

  private schedule(): void {
    if (this.scheduled || this.flushing) return;
    this.scheduled = true;
    // setImmediate, not a microtask: lets every request finishing in this turn of the event loop
    // join the batch.
    setImmediate(() => {
      this.scheduled = false;
      if (!this.flushing) this.flushing = this.flushLoop();
    });
  }

  private async flushLoop(): Promise<void> {
    try {
      while (this.pending.length > 0) {
        const batch = this.pending;
        this.pending = [];
        try {
          await this.append(batch.map((p) => p.line).join(""));
          for (const p of batch) p.resolve();
        } catch (err) {
          const e = asError(err);
          for (const p of batch) p.reject(e);
        }
      }
    } finally {
      this.flushing = null;
    }
  }
}
