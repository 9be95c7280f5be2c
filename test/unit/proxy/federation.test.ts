import assert from "node:assert/strict";
import fc from "fast-check";
import { parseConfig } from "../../../gateway/config/index.js";
import { decodeFederatedCursor, encodeFederatedCursor, federatedEndpoints, federatedName, matchesUriTemplate, mergedInitResult, splitFederatedName } from "../../../gateway/proxy/federation.js";
import { Refusal } from "../../../gateway/proxy/errors.js";
import { SessionSealer } from "../../../gateway/proxy/session-seal.js";

const MEMBERS = ["files", "everything", "a-b"];

describe("federation: names", () => {
  it("NAME__item when it fits, unchanged", () => {
    assert.equal(federatedName("files", "__", "read_file"), "files__read_file");
  });

  it("over 64 characters: a stable 64-character shortening, different for different items", () => {
    const long = "x".repeat(80);
    const a = federatedName("files", "__", long);
    assert.equal(a.length, 64);
    assert.equal(a, federatedName("files", "__", long), "stable");
    assert.notEqual(a, federatedName("files", "__", long + "y"));
    assert.match(a, /^files__x+-[0-9a-f]{8}$/);
  });

  it("every federated name is at most 64 characters and splits back to its member", () => {
    fc.assert(
      fc.property(fc.constantFrom(...MEMBERS), fc.string({ minLength: 1, maxLength: 200 }), (member, item) => {
        const name = federatedName(member, "__", item);
        assert.ok(name.length <= 64);
        assert.equal(splitFederatedName(name, "__", MEMBERS)?.member, member);
      }),
    );
  });

  it("a name of no member, or with no separator, names nothing", () => {
    assert.equal(splitFederatedName("nowhere__echo", "__", MEMBERS), null);
    assert.equal(splitFederatedName("echo", "__", MEMBERS), null);
    assert.equal(splitFederatedName("__echo", "__", MEMBERS), null);
  });
});

describe("federation: cursors", () => {
  it("round-trips where each member stands; no pending member means no cursor", () => {
    const c = encodeFederatedCursor({ files: "2", "a-b": "opaque==" })!;
    assert.deepEqual(decodeFederatedCursor(c, MEMBERS), { files: "2", "a-b": "opaque==" });
    assert.equal(encodeFederatedCursor({}), undefined);
  });

  it("refuses a cursor it did not give: garbage, a non-member, a non-string, an empty one, a huge one", () => {
    const forged = (v: unknown) => Buffer.from(JSON.stringify(v)).toString("base64url");
    for (const bad of ["not a cursor", forged({ nowhere: "1" }), forged({ files: 2 }), forged({}), forged([1]), forged("x"), "A".repeat(20_000)]) {
      assert.throws(() => decodeFederatedCursor(bad, MEMBERS), (e: unknown) => e instanceof Refusal && e.code === "invalid_params", bad.slice(0, 40));
    }
  });
});

describe("federation: resource templates", () => {
  it("{x} is one segment, {+x} anything, query operators the rest", () => {
    assert.ok(matchesUriTemplate("paging://items/{id}", "paging://items/42"));
    assert.ok(!matchesUriTemplate("paging://items/{id}", "paging://items/4/2"));
    assert.ok(matchesUriTemplate("file:///{+path}", "file:///a/b/c.txt"));
    assert.ok(matchesUriTemplate("search://q{?term}", "search://q?term=x"));
    assert.ok(!matchesUriTemplate("paging://items/{id}", "other://items/42"));
    assert.ok(matchesUriTemplate("a.b://{x}", "a.b://y") && !matchesUriTemplate("a.b://{x}", "aXb://y"), "literal parts are literal");
  });
});

describe("federation: the merged InitializeResult", () => {
  it("has a capability when one member has it, and each member's instructions under its name", () => {
    const joined = new Map<string, Record<string, unknown>>([
      ["files", { capabilities: { tools: { listChanged: false } }, instructions: "Read files." }],
      ["everything", { capabilities: { tools: { listChanged: true }, resources: { subscribe: true }, logging: {} } }],
    ]);
    const r = mergedInitResult({ id: "*", path: "/mcp", members: ["files", "everything"] }, "2025-11-25", joined, "1.2.3");
    assert.deepEqual(r.capabilities, { tools: { listChanged: true }, resources: { subscribe: true }, logging: {} });
    assert.equal(r.instructions, "files: Read files.");
    assert.equal((r.serverInfo as { name: string }).name, "portcullis");
  });
});

describe("federation: config", () => {
  const base = (upstreams: Record<string, unknown>, federation: unknown) => ({
    auth: { issuer: "https://idp.example", audience: "a", jwksUri: "https://idp.example/jwks" },
    policy: { bundle: "b.tar.gz", verificationKey: "k.pem" },
    upstreams,
    federation,
  });
  const u = { url: "http://127.0.0.1:1/mcp" };

  it("refuses at start an upstream name holding the separator (two namespaces could meet)", () => {
    assert.throws(() => parseConfig(base({ files: u, files__x: u }, { separator: "__" }), "gw.yaml"), /files__x.*separator/s);
  });

  it("refuses an upstream name that ends with the start of the separator (files_ + __ would split as files)", () => {
    assert.throws(() => parseConfig(base({ files_: u }, { separator: "__" }), "gw.yaml"), /files_.*ends with the start of it/s);
    assert.throws(() => parseConfig(base({ xa: u }, { separator: "aa" }), "gw.yaml"), /xa.*separator/s);
    assert.doesNotThrow(() => parseConfig(base({ "files-": u, f_iles: u }, { separator: "__" }), "gw.yaml"));
  });

  it("any upstream name the config accepts splits back from every federated name of its items", () => {
    const name = fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9_-]{0,20}$/);
    const separator = fc.stringMatching(/^[A-Za-z0-9_.-]{1,3}$/);
    fc.assert(
      fc.property(fc.uniqueArray(name, { minLength: 1, maxLength: 4 }), separator, fc.string({ minLength: 1, maxLength: 80 }), (names, sep, item) => {
        let config;
        try {
          config = parseConfig(base(Object.fromEntries(names.map((n) => [n, u])), { separator: sep }), "gw.yaml");
        } catch {
          return; // refused at start: nothing to route
        }
        for (const member of Object.keys(config.upstreams)) assert.equal(splitFederatedName(federatedName(member, sep, item), sep, names)?.member, member);
      }),
      { numRuns: 2000 },
    );
  });

  it("refuses an upstream name too long to leave room for a shortened item, and members that do not exist", () => {
    assert.throws(() => parseConfig(base({ ["n".repeat(60)]: u }, {}), "gw.yaml"), /too long to federate/);
    assert.throws(() => parseConfig(base({ files: u }, { virtualServers: { pair: ["files", "ghost"] } }), "gw.yaml"), /no upstream named "ghost"/);
    assert.throws(() => parseConfig(base({ files: u }, { separator: "::" }), "gw.yaml"), /separator/);
  });

  it("defines /mcp (all upstreams, or those listed) and each virtual server", () => {
    const c = parseConfig(base({ files: u, everything: u }, { virtualServers: { pair: ["files"] } }), "gw.yaml");
    const e = federatedEndpoints(c.federation, Object.keys(c.upstreams));
    assert.deepEqual([...e.values()].map((x) => [x.id, x.path, x.members]), [["*", "/mcp", ["files", "everything"]], ["v/pair", "/mcp/v/pair", ["files"]]]);
  });
});

describe("federation: sealed sessions", () => {
  it("a federated session's upstream state seals and opens; a nested federated state is refused", () => {
    const sealer = SessionSealer.ephemeral();
    const state = { kind: "federated" as const, members: { files: { kind: "http" as const, era: "legacy" as const, sessionId: "s1", protocolVersion: "2025-11-25" }, local: { kind: "stdio" as const, init: { protocolVersion: "2025-11-25" } } } };
    const sealed = { handle: "h", iss: "i", sub: "s", server: "*", iat: 1, exp: 9_999_999_999, protocolVersion: "2025-11-25", upstream: state };
    assert.deepEqual(sealer.openSession(sealer.sealSession(sealed))?.upstream, state);
    const nested = { ...sealed, upstream: { kind: "federated", members: { x: state } } };
    assert.equal(sealer.openSession(sealer.sealSession(nested as never)), null);
  });
});
