import { gunzipSync } from "node:zlib";
import { BundleError } from "./errors.js";

/**
 * A minimal reader for the gzip'd tar archives `opa build` writes (Go archive/tar: ustar plus PAX
 * records for long names). Only regular files are returned, keyed by their stored names (OPA keeps
 * the leading `/`), because OPA's own bundle reader ignores every other entry type.
 */

export interface TarLimits {
  /** Largest uncompressed archive accepted; OPA caps bundle reads at 1 GiB. */
  maxBytes?: number;
  /** Most regular files accepted. */
  maxFiles?: number;
}

const BLOCK = 512;
const DEFAULT_MAX_BYTES = 1 << 30;
const DEFAULT_MAX_FILES = 10_000;

/** readTarGz gunzips `buf` and returns its regular files; a malformed archive is a BundleError. */
export function readTarGz(buf: Buffer, limits: TarLimits = {}): Map<string, Buffer> {
  const maxBytes = limits.maxBytes ?? DEFAULT_MAX_BYTES;
  let tar: Buffer;
  try {
    tar = gunzipSync(buf, { maxOutputLength: maxBytes });
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    if (code === "ERR_BUFFER_TOO_LARGE" || err instanceof RangeError) {
      throw new BundleError("bundle_too_large", `archive expands beyond ${maxBytes} bytes`);
    }
    throw new BundleError("bundle_malformed", `not a gzip archive (${(err as Error).message})`);
  }
  return readTar(tar, limits.maxFiles ?? DEFAULT_MAX_FILES);
}

/** readTar walks an uncompressed tar archive; exported for tests. */
export function readTar(tar: Buffer, maxFiles = DEFAULT_MAX_FILES): Map<string, Buffer> {
  const files = new Map<string, Buffer>();
  // Overrides carried by a PAX 'x' or GNU 'L' entry for the entry that follows it.
  let nextName: string | undefined;
  let nextSize: number | undefined;
  let offset = 0;

  for (;;) {
    // Like Go's reader, a clean end at a block boundary is accepted without the zero blocks.
    if (offset === tar.length) break;
    if (offset + BLOCK > tar.length) throw malformed(`partial header at offset ${offset}`);
    const header = tar.subarray(offset, offset + BLOCK);
    if (isZeroBlock(header)) break;
    checkChecksum(header, offset);

    const type = String.fromCharCode(header[156] ?? 0);
    const size = nextSize ?? parseSize(header, offset);
    const bodyStart = offset + BLOCK;
    const bodyEnd = bodyStart + size;
    if (bodyEnd > tar.length) throw malformed(`entry at offset ${offset} is truncated`);
    const body = tar.subarray(bodyStart, bodyEnd);
    offset = bodyStart + Math.ceil(size / BLOCK) * BLOCK;

    if (type === "x") {
      const records = parsePax(body, bodyStart);
      nextName = records.get("path") ?? nextName;
      const paxSize = records.get("size");
      if (paxSize !== undefined) nextSize = parseDecimal(paxSize, bodyStart);
      continue;
    }
    if (type === "L") {
      nextName = cString(body);
      continue;
    }
    if (type === "g" || type === "K") continue; // global PAX records and long link names: not needed

    const name = nextName ?? headerName(header);
    nextName = undefined;
    nextSize = undefined;
    // '\0' is the pre-POSIX regular type; Go reads it as a directory when the name ends in '/'.
    const regular = type === "0" || (type === "\0" && !name.endsWith("/"));
    if (!regular) continue;
    if (name === "") throw malformed(`entry at offset ${offset} has an empty name`);
    if (files.has(name)) {
      // Two entries with one name would let a verified copy hide an unverified one.
      throw new BundleError("bundle_malformed", "duplicate archive entry", { file: name });
    }
    if (files.size >= maxFiles) {
      throw new BundleError("bundle_too_large", `archive holds more than ${maxFiles} files`);
    }
    files.set(name, Buffer.from(body)); // copy: detach from the large gunzip buffer
  }
  return files;
}

function malformed(reason: string): BundleError {
  return new BundleError("bundle_malformed", `bad tar archive: ${reason}`);
}

function isZeroBlock(block: Buffer): boolean {
  for (let i = 0; i < block.length; i++) if (block[i] !== 0) return false;
  return true;
}

/** Go accepts the checksum as the unsigned or the signed byte sum, with the field read as spaces. */
function checkChecksum(header: Buffer, offset: number): void {
  const stored = parseOctal(header.subarray(148, 156));
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const b = i >= 148 && i < 156 ? 0x20 : (header[i] ?? 0);
    unsigned += b;
    signed += b > 127 ? b - 256 : b;
  }
  if (stored === undefined || (stored !== unsigned && stored !== signed)) {
    throw malformed(`bad header checksum at offset ${offset}`);
  }
}

function parseSize(header: Buffer, offset: number): number {
  const field = header.subarray(124, 136);
  if (((field[0] ?? 0) & 0x80) !== 0) {
    // GNU base-256: big-endian binary after the marker bit; negative sizes are invalid.
    if (((field[0] ?? 0) & 0x40) !== 0) throw malformed(`negative size at offset ${offset}`);
    let value = (field[0] ?? 0) & 0x7f;
    for (let i = 1; i < field.length; i++) {
      value = value * 256 + (field[i] ?? 0);
      if (value > Number.MAX_SAFE_INTEGER) throw malformed(`size overflow at offset ${offset}`);
    }
    return value;
  }
  const value = parseOctal(field);
  if (value === undefined) throw malformed(`bad size field at offset ${offset}`);
  return value;
}

/** Octal text padded with NULs or spaces; undefined when it holds anything else. */
function parseOctal(field: Buffer): number | undefined {
  const text = field.toString("latin1").replace(/[\0 ]+$/, "").replace(/^[ ]+/, "");
  if (text === "") return 0;
  if (!/^[0-7]+$/.test(text)) return undefined;
  return parseInt(text, 8);
}

function parseDecimal(text: string, offset: number): number {
  if (!/^[0-9]{1,15}$/.test(text)) throw malformed(`bad PAX size at offset ${offset}`);
  return Number(text);
}

function cString(field: Buffer): string {
  const end = field.indexOf(0);
  return field.subarray(0, end === -1 ? field.length : end).toString("utf8");
}

function headerName(header: Buffer): string {
  const name = cString(header.subarray(0, 100));
  // The prefix field exists only in ustar/PAX headers ("ustar\0"); GNU uses those bytes for times.
  const magic = header.subarray(257, 263).toString("latin1");
  if (magic !== "ustar\0") return name;
  const prefix = cString(header.subarray(345, 500));
  return prefix === "" ? name : `${prefix}/${name}`;
}

/** PAX records: "<len> <key>=<value>\n", where len counts the whole record in bytes. */
function parsePax(body: Buffer, offset: number): Map<string, string> {
  const records = new Map<string, string>();
  let pos = 0;
  while (pos < body.length) {
    const space = body.indexOf(0x20, pos);
    if (space === -1) throw malformed(`bad PAX record at offset ${offset + pos}`);
    const len = Number(body.subarray(pos, space).toString("latin1"));
    if (!Number.isInteger(len) || len <= space - pos + 1 || pos + len > body.length) {
      throw malformed(`bad PAX record length at offset ${offset + pos}`);
    }
    const record = body.subarray(space + 1, pos + len);
    if (record[record.length - 1] !== 0x0a) throw malformed(`unterminated PAX record at offset ${offset + pos}`);
    const text = record.subarray(0, record.length - 1).toString("utf8");
    const eq = text.indexOf("=");
    if (eq <= 0) throw malformed(`bad PAX record at offset ${offset + pos}`);
    records.set(text.slice(0, eq), text.slice(eq + 1));
    pos += len;
  }
  return records;
}
