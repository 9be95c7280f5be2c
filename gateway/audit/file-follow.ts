import { open, stat, type FileHandle } from "node:fs/promises";
import type { StoredRecord } from "./verify.js";

/**
 * Follows a JSONL file as `tail -F` does, for `audit tail --file … --follow`: every complete line
 * appended after the start (or from the first line), until `signal` aborts. Polls rather than
 * watches (file-system events are not delivered on every mount), and starts over when the file
 * is replaced (new inode) or truncated, so a rotated audit file keeps being followed. A line is
 * delivered once its newline is written: the gateway writes whole lines, but a reader can see
 * one half-written.
 */
export async function followJsonlFile(
  path: string,
  fromBeginning: boolean,
  signal: AbortSignal,
  onRecord: (r: StoredRecord) => void,
  opts: { pollMs?: number; onRestart?: (why: string) => void } = {},
): Promise<void> {
  const pollMs = opts.pollMs ?? 250;
  let file: { fh: FileHandle; ino: number; offset: number; pending: Buffer } | null = null;
  let first = true;
  try {
    while (!signal.aborted) {
      const now = await stat(path).catch(() => null);
      if (file !== null && (now === null || now.ino !== file.ino || now.size < file.offset)) {
        opts.onRestart?.(now === null ? `${path} was removed: waiting for it` : now.ino !== file.ino ? `${path} was replaced: reading the new file from its start` : `${path} was truncated: reading it from its start`);
        await file.fh.close();
        file = null;
      }
      if (file === null && now !== null) {
        // The file that is there when following starts is read from its end unless asked; any later one from its start.
        file = { fh: await open(path, "r"), ino: now.ino, offset: first && !fromBeginning ? now.size : 0, pending: Buffer.alloc(0) };
      }
      first = false;
      if (file !== null && now !== null && now.size > file.offset) await readNew(file, now.size, path, onRecord);
      else await sleep(pollMs, signal);
    }
  } finally {
    await file?.fh.close();
  }
}

async function readNew(file: { fh: FileHandle; offset: number; pending: Buffer }, size: number, path: string, onRecord: (r: StoredRecord) => void): Promise<void> {
  const chunk = Buffer.alloc(Math.min(size - file.offset, 1024 * 1024));
  const { bytesRead } = await file.fh.read(chunk, 0, chunk.length, file.offset);
  let data = Buffer.concat([file.pending, chunk.subarray(0, bytesRead)]);
  let start = file.offset - file.pending.length;
  file.offset += bytesRead;
  for (let nl = data.indexOf(0x0a); nl !== -1; nl = data.indexOf(0x0a)) {
    const text = data.subarray(0, nl).toString("utf8");
    if (text.trim().length > 0) onRecord({ where: `${path} byte ${start}`, lane: path, text });
    start += nl + 1;
    data = data.subarray(nl + 1);
  }
  file.pending = Buffer.from(data);
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
  });
}
