import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BundleError } from "../../gateway/policy/index.js";
import { parseConfig } from "../../gateway/config/index.js";
import { startGateway } from "../../gateway/compose/index.js";
import { startFakeIdp, type FakeIdp } from "../fakes/jwks.js";
import { buildSignedBundle, buildUnsignedBundle, defaultPolicyDir, generateKeyPair, readBundleFiles, rewriteBundleFile } from "../support/bundles.js";
import { defaultBundle, freePort } from "../support/stack.js";

/** Resolves "refused" when nothing listens on 127.0.0.1:port, "accepted" when something does. */
function probe(port: number): Promise<"refused" | "accepted"> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: "127.0.0.1", port });
    socket.once("connect", () => {
      socket.destroy();
      resolve("accepted");
    });
    socket.once("error", (err: NodeJS.ErrnoException) => (err.code === "ECONNREFUSED" ? resolve("refused") : reject(err)));
  });
}

describe("startGateway refuses a bad policy bundle and never listens", function () {
  this.timeout(60_000);
  let work: string;
  let idp: FakeIdp;
  let good: { bundle: string; key: string };
  const logs: string[] = [];
  const log = (level: string, msg: string, fields?: Record<string, unknown>) => logs.push(`${level} ${msg} ${JSON.stringify(fields ?? {})}`);

  before(async () => {
    work = mkdtempSync(join(tmpdir(), "pc-refusal-"));
    const { bundle, dir } = await defaultBundle();
    good = { bundle, key: join(dir, "pub.pem") };
    idp = await startFakeIdp();
  });
  after(async () => {
    await idp?.close();
  });
  beforeEach(() => {
    logs.length = 0;
  });

  const configFor = (bundle: string, verificationKey: string, port: number) =>
    parseConfig(
      {
        listen: { host: "127.0.0.1", port },
        auth: { issuer: idp.issuer, audience: `http://127.0.0.1:${port}/mcp`, jwksUri: idp.jwksUri, algorithms: ["RS256"] },
        policy: { bundle, verificationKey },
        upstreams: { demo: { url: "http://127.0.0.1:9/mcp" } },
        audit: { file: join(work, `audit-${port}.jsonl`) },
      },
      join(work, "gateway.yaml"),
    );

  /** Starts a gateway on a free port, expects the rejection, then checks that the port is still free. */
  async function expectRefusal(bundle: string, key: string, check: (err: Error) => void): Promise<void> {
    const port = await freePort();
    await assert.rejects(startGateway(configFor(bundle, key, port), { log }), (err: unknown) => {
      assert.ok(err instanceof Error, String(err));
      check(err);
      return true;
    });
    assert.equal(await probe(port), "refused", `something listens on ${port} after the refusal`);
    assert.ok(!logs.some((l) => l.includes("gateway listening")), logs.join("\n"));
  }

  const bundleError = (bundle: string, code: string, reason: RegExp) => (err: Error) => {
    assert.ok(err instanceof BundleError, `${err.name}: ${err.message}`);
    assert.equal(err.code, code, err.message);
    assert.equal(err.bundle, bundle);
    assert.ok(err.message.startsWith(`${bundle}: `), `the message does not name ${bundle}: ${err.message}`);
    assert.match(err.message, reason);
  };

  it("starts and listens with the good bundle and key (control for the refusals below)", async () => {
    const port = await freePort();
    const gateway = await startGateway(configFor(good.bundle, good.key, port), { log });
    try {
      assert.equal(gateway.url, `http://127.0.0.1:${port}`);
      assert.equal(gateway.policy.revision, "test-rev-1");
      assert.equal(await probe(port), "accepted");
    } finally {
      await gateway.close();
    }
    assert.equal(await probe(port), "refused");
  });

  it("refuses a bundle whose policy.wasm bytes were changed", async () => {
    const files = await readBundleFiles(good.bundle);
    const wasm = Buffer.from(files.get("/policy.wasm") ?? assert.fail("no /policy.wasm in the bundle"));
    wasm.writeUInt8(wasm.readUInt8(wasm.length - 1) ^ 0xff, wasm.length - 1);
    const tampered = await rewriteBundleFile(good.bundle, join(work, "tampered.tar.gz"), "/policy.wasm", wasm);
    await expectRefusal(tampered, good.key, bundleError(tampered, "bundle_digest_mismatch", /\/policy\.wasm: digest mismatch/));
  });

  it("refuses an unsigned bundle", async () => {
    const unsigned = await buildUnsignedBundle({ policyDir: defaultPolicyDir(), outFile: join(work, "unsigned.tar.gz"), revision: "test-rev-1" });
    await expectRefusal(unsigned, good.key, bundleError(unsigned, "bundle_unsigned", /no \.signatures\.json file; unsigned bundles are refused/));
  });

  it("refuses a bundle signed by a key other than the configured one", async () => {
    const other = generateKeyPair("rsa");
    const foreign = await buildSignedBundle({
      policyDir: defaultPolicyDir(),
      outFile: join(work, "foreign.tar.gz"),
      privateKeyPem: other.privateKeyPem,
      algorithm: "RS256",
      revision: "test-rev-1",
    });
    await expectRefusal(foreign, good.key, bundleError(foreign, "bundle_signature_invalid", /\.signatures\.json: the signature does not verify/));
  });

  it("refuses a bundle file that does not exist", async () => {
    const missing = join(work, "no-such-bundle.tar.gz");
    await expectRefusal(missing, good.key, bundleError(missing, "bundle_unreadable", /: no such file$/));
  });

  it("refuses when the verification key file does not exist, naming the key file", async () => {
    const missingKey = join(work, "no-such-key.pem");
    await expectRefusal(good.bundle, missingKey, (err) => {
      assert.ok(err.message.includes(missingKey), err.message);
      assert.match(err.message, /cannot read policy\.verificationKey \(ENOENT\)/);
    });
  });

  it("refuses when the verification key file holds something other than a public key", async () => {
    const notAKey = join(work, "not-a-key.pem");
    writeFileSync(notAKey, "this is not a PEM key\n");
    await expectRefusal(good.bundle, notAKey, bundleError(good.bundle, "bundle_key_invalid", /verification key/));
  });
});
