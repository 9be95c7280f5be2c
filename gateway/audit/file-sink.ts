import { closeSync, mkdirSync, openSync, writeSync } from "node:fs";
import { mkdir, open, type FileHandle } from "node:fs/promises";
import { dirname } from "node:path";
import type { AuditEvent, AuditSink } from "./types.js";

export interface JsonlFileSinkOptions {
  /** fsync after each coalesced write: survives power loss, costs one sync per batch. */
  fsync?: boolean;
}

interface Pending {
  line: string;
  resolve: () => void;
  reject: (err: Error) => void;
}

/**
 * Appends one JSON line per event. Events written in the same tick (and while a write is in
 * flight) share one `write` call and, with `fsync`, one sync: group commit, so the cost per event
 * stays flat under load. `write()` resolves only after its bytes reached the file and rejects on
 * any I/O error: nothing is dropped silently (STYLE.md "patterns to avoid" 1).
 */
export class JsonlFileSink implements AuditSink {
  readonly name: string;
  private readonly path: string;
  private readonly fsync: boolean;
  private handle: FileHandle | null = null;
  private fd: number | null = null;
  private pending: Pending[] = [];
  private scheduled = false;
  private flushing: Promise<void> | null = null;
  private closed = false;
  // After a failed write the file may end in a torn line; the next write starts on a new line
  // so only the torn line is unreadable, not the event after it.
  private mayBeTorn = false;

  constructor(path: string, options: JsonlFileSinkOptions = {}) {
    this.path = path;
    this.fsync = options.fsync ?? false;
    this.name = `file:${path}`;
  }

  write(event: AuditEvent): Promise<void> {
    if (this.closed) return Promise.reject(new Error(`${this.name}: sink is closed`));
    let line: string;
    try {
      line = `${JSON.stringify(event)}\n`;
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
    if (!this.fsync) {
      // Without fsync an append only reaches the page cache: a synchronous write takes a few
      // microseconds, far less than a thread-pool round trip on every request's answer path.
      try {
        this.appendSync(line);
        return Promise.resolve();
      } catch (err) {
        return Promise.reject(err instanceof Error ? err : new Error(String(err)));
      }
    }
    return new Promise<void>((resolve, reject) => {
      this.pending.push({ line, resolve, reject });
      this.schedule();
    });
  }

  private appendSync(text: string): void {
    if (this.fd === null) {
      mkdirSync(dirname(this.path), { recursive: true });
      this.fd = openSync(this.path, "a", 0o640);
    }
    const fd = this.fd;
    const data = Buffer.from(this.mayBeTorn ? `\n${text}` : text, "utf8");
    try {
      let off = 0;
      while (off < data.length) off += writeSync(fd, data, off, data.length - off);
      this.mayBeTorn = false;
    } catch (err) {
      this.mayBeTorn = true;
      this.fd = null;
      try {
        closeSync(fd);
      } catch {
        // already unusable
      }
      throw err;
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.drain();
    const h = this.handle;
    this.handle = null;
    if (h) await h.close();
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
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
          const e = err instanceof Error ? err : new Error(String(err));
          for (const p of batch) p.reject(e);
        }
      }
    } finally {
      this.flushing = null;
    }
  }

  private async append(text: string): Promise<void> {
    const h = await this.open();
    const data = Buffer.from(this.mayBeTorn ? `\n${text}` : text, "utf8");
    try {
      let off = 0;
      while (off < data.length) {
        const { bytesWritten } = await h.write(data, off, data.length - off);
        off += bytesWritten;
      }
      if (this.fsync) await h.sync();
      this.mayBeTorn = false;
    } catch (err) {
      this.mayBeTorn = true;
      // Reopen on the next write: the handle may be the cause (file system gone read-only, …).
      this.handle = null;
      await h.close().catch(() => undefined);
      throw err;
    }
  }

  private async open(): Promise<FileHandle> {
    if (this.handle) return this.handle;
    await mkdir(dirname(this.path), { recursive: true });
    // "a" is O_APPEND: each write lands at the current end of file, even when another process
    // appends to the same file, so lines are never overwritten.
    this.handle = await open(this.path, "a", 0o640);
    return this.handle;
  }
}
