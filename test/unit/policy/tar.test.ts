import assert from "node:assert/strict";
import { gzipSync } from "node:zlib";
import { BundleError, readTarGz } from "../../../gateway/policy/index.js";
import { writeTarGz } from "../../support/bundles.js";

interface EntrySpec {
  name: string;
  body?: Buffer | string;
  type?: string;
  prefix?: string;
  magic?: "ustar" | "gnu" | "none";
  base256Size?: boolean;
  corruptChecksum?: boolean;
}

/** Builds one tar entry with full control over the header, for the cases OPA's writer never makes. */
function entry(spec: EntrySpec): Buffer {
  const body = typeof spec.body === "string" ? Buffer.from(spec.body) : (spec.body ?? Buffer.alloc(0));
  const h = Buffer.alloc(512);
  h.write(spec.name, 0, "utf8");
  h.write("0000644\0", 100, "latin1");
  if (spec.base256Size) {
    h[124] = 0x80;
    h.writeUIntBE(body.length, 136 - 6, 6);
  } else {
    h.write(`${body.length.toString(8).padStart(11, "0")}\0`, 124, "latin1");
  }
  h.write(spec.type ?? "0", 156, "latin1");
  const magic = spec.magic ?? "ustar";
  if (magic === "ustar") h.write("ustar\u000000", 257, "latin1");
  if (magic === "gnu") h.write("ustar  \0", 257, "latin1");
  if (spec.prefix !== undefined) h.write(spec.prefix, 345, "utf8");
  h.fill(0x20, 148, 156);
  let sum = 0;
  for (const b of h) sum += b;
  if (spec.corruptChecksum) sum += 1;
  h.write(`${sum.toString(8).padStart(6, "0")}\0 `, 148, "latin1");
  const padded = Buffer.alloc(Math.ceil(body.length / 512) * 512);
  body.copy(padded);
  return Buffer.concat([h, padded]);
}

function archive(entries: EntrySpec[], end = true): Buffer {
  return gzipSync(Buffer.concat([...entries.map(entry), end ? Buffer.alloc(1024) : Buffer.alloc(0)]));
}

function pax(records: Record<string, string>): string {
  return Object.entries(records)
    .map(([k, v]) => {
      const text = ` ${k}=${v}\n`;
      let len = Buffer.byteLength(text);
      while (Buffer.byteLength(text) + String(len).length !== len) len = Buffer.byteLength(text) + String(len).length;
      return `${len}${text}`;
    })
    .join("");
}

function assertBundleError(fn: () => unknown, code: string, pattern?: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof BundleError, `expected BundleError, got ${String(err)}`);
    assert.equal(err.code, code);
    if (pattern !== undefined) assert.match(err.message, pattern);
    return true;
  });
}

describe("readTarGz", () => {
  it("returns regular files keyed by their stored names, leading slash kept", () => {
    const files = readTarGz(
      writeTarGz(
        new Map<string, Buffer | string>([
          ["/data.json", "{}"],
          ["/policy.wasm", Buffer.from([0, 97, 115, 109])],
        ]),
      ),
    );
    assert.deepEqual([...files.keys()], ["/data.json", "/policy.wasm"]);
    assert.equal(files.get("/data.json")?.toString(), "{}");
    assert.deepEqual([...(files.get("/policy.wasm") ?? [])], [0, 97, 115, 109]);
  });

  const naming: Array<{ note: string; entries: EntrySpec[]; want: string[] }> = [
    {
      note: "PAX path record overrides the header name",
      entries: [{ name: "PaxHeaders/x", type: "x", body: pax({ path: `/${"d/".repeat(60)}data.json`, mtime: "0" }) }, { name: "short", body: "{}" }],
      want: [`/${"d/".repeat(60)}data.json`],
    },
    {
      note: "GNU long name entry overrides the header name",
      entries: [{ name: "././@LongLink", type: "L", body: `/${"x".repeat(120)}.rego\0` }, { name: "trunc", body: "p" }],
      want: [`/${"x".repeat(120)}.rego`],
    },
    {
      note: "ustar prefix is joined with a slash",
      entries: [{ name: "data.json", prefix: "/deep/dir", body: "{}" }],
      want: ["/deep/dir/data.json"],
    },
    {
      note: "GNU headers have no prefix field",
      entries: [{ name: "/a.rego", prefix: "ignored", magic: "gnu", body: "p" }],
      want: ["/a.rego"],
    },
    {
      note: "non-regular entries are skipped, as OPA does",
      entries: [
        { name: "/dir/", type: "5" },
        { name: "/link", type: "2" },
        { name: "/old-dir/", type: "\0" },
        { name: "/old-file", type: "\0", body: "x" },
        { name: "/global", type: "g", body: pax({ comment: "x" }) },
      ],
      want: ["/old-file"],
    },
  ];
  for (const c of naming) {
    it(`names entries like Go's reader: ${c.note}`, () => {
      assert.deepEqual([...readTarGz(archive(c.entries)).keys()], c.want);
    });
  }

  it("reads base-256 (binary) sizes", () => {
    const body = Buffer.alloc(700, 7);
    const files = readTarGz(archive([{ name: "/big", body, base256Size: true }]));
    assert.equal(files.get("/big")?.length, 700);
  });

  it("honours a PAX size record", () => {
    const files = readTarGz(archive([{ name: "p", type: "x", body: pax({ size: "3" }) }, { name: "/s", body: "abc" }]));
    assert.equal(files.get("/s")?.toString(), "abc");
  });

  it("accepts an archive that ends at a block boundary without zero blocks", () => {
    assert.deepEqual([...readTarGz(archive([{ name: "/a", body: "x" }], false)).keys()], ["/a"]);
  });

  const broken: Array<{ note: string; buf: () => Buffer; code: string; pattern: RegExp }> = [
    { note: "not gzip", buf: () => Buffer.from("plain text"), code: "bundle_malformed", pattern: /not a gzip archive/ },
    {
      note: "bad checksum",
      buf: () => archive([{ name: "/a", body: "x", corruptChecksum: true }]),
      code: "bundle_malformed",
      pattern: /checksum/,
    },
    {
      note: "truncated body",
      buf: () => gzipSync(entry({ name: "/a", body: "x".repeat(600) }).subarray(0, 700)),
      code: "bundle_malformed",
      pattern: /truncated/,
    },
    {
      note: "partial header",
      buf: () => gzipSync(Buffer.concat([entry({ name: "/a", body: "x" }), Buffer.alloc(100, 1)])),
      code: "bundle_malformed",
      pattern: /partial header/,
    },
    {
      note: "duplicate names",
      buf: () => archive([{ name: "/a", body: "1" }, { name: "/a", body: "2" }]),
      code: "bundle_malformed",
      pattern: /\/a: duplicate archive entry/,
    },
    {
      note: "bad PAX record",
      buf: () => archive([{ name: "p", type: "x", body: "99 path=x\n" }, { name: "/a", body: "1" }]),
      code: "bundle_malformed",
      pattern: /PAX/,
    },
  ];
  for (const c of broken) {
    it(`refuses a malformed archive: ${c.note}`, () => {
      assertBundleError(() => readTarGz(c.buf()), c.code, c.pattern);
    });
  }

  it("refuses an archive that expands beyond maxBytes (gzip bomb)", () => {
    const bomb = archive([{ name: "/zeros", body: Buffer.alloc(1 << 20) }]);
    assertBundleError(() => readTarGz(bomb, { maxBytes: 64 * 1024 }), "bundle_too_large", /expands beyond/);
  });

  it("refuses more files than maxFiles", () => {
    const many = archive(Array.from({ length: 5 }, (_, i) => ({ name: `/f${i}`, body: "x" })));
    assertBundleError(() => readTarGz(many, { maxFiles: 4 }), "bundle_too_large", /more than 4 files/);
  });
});
