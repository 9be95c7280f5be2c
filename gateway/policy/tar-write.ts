import { gzipSync } from "node:zlib";

/**
 * writeTarGz packs regular files into a gzip'd ustar archive (PAX records for names over 100
 * bytes), the subset `opa build` writes and ./tar.ts reads back. Entries keep the order given, so
 * a re-signed bundle lists its files as the original did; mtimes are zero so the output is
 * reproducible byte for byte.
 */
export function writeTarGz(files: ReadonlyMap<string, Buffer | string>): Buffer {
  const blocks: Buffer[] = [];
  for (const [name, raw] of files) {
    const body = typeof raw === "string" ? Buffer.from(raw, "utf8") : raw;
    if (Buffer.byteLength(name) > 100) {
      const record = paxRecord("path", name);
      blocks.push(header("././@PaxHeader", record.length, "x"), pad(record));
    }
    blocks.push(header(name, body.length, "0"), pad(body));
  }
  blocks.push(Buffer.alloc(1024)); // two zero blocks end the archive
  return gzipSync(Buffer.concat(blocks));
}

function header(name: string, size: number, type: string): Buffer {
  const h = Buffer.alloc(512);
  h.write(name.slice(0, 100), 0, "utf8");
  h.write("0000644\0", 100, "latin1");
  h.write("0000000\0", 108, "latin1");
  h.write("0000000\0", 116, "latin1");
  h.write(`${size.toString(8).padStart(11, "0")}\0`, 124, "latin1");
  h.write("00000000000\0", 136, "latin1");
  h.write(type, 156, "latin1");
  h.write("ustar\0", 257, "latin1");
  h.write("00", 263, "latin1");
  h.fill(0x20, 148, 156); // the checksum is computed with its own field as spaces
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${sum.toString(8).padStart(6, "0")}\0 `, 148, "latin1");
  return h;
}

function paxRecord(key: string, value: string): Buffer {
  const text = ` ${key}=${value}\n`;
  // The length prefix counts its own digits: iterate to the fixed point.
  const textLen = Buffer.byteLength(text);
  let len = textLen;
  while (textLen + String(len).length !== len) len = textLen + String(len).length;
  return Buffer.from(`${len}${text}`, "utf8");
}

function pad(body: Buffer): Buffer {
  const rem = body.length % 512;
  return rem === 0 ? body : Buffer.concat([body, Buffer.alloc(512 - rem)]);
}
