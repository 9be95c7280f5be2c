import { runPortcullisHere } from "../../support/cli.js";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { approvalBinding, createIntegrityStores, INTEGRITY_DEFAULTS, pinOf, toolDefinitionOf, type IntegrityStores } from "../../../gateway/integrity/index.js";
import { readFile, readFileRugPulled } from "../../support/integrity-contract.js";

/** The CLI in this process (test/support/cli.ts), its output by the names these tests use. */
async function run(args: string[]): Promise<{ code: number; out: string; err: string }> {
  const r = await runPortcullisHere(args);
  return { code: r.code ?? -1, out: r.stdout, err: r.stderr };
}

describe("portcullis tools and approvals (exit codes and messages)", () => {
  const dir = mkdtempSync(join(tmpdir(), "pc-cli-integrity-"));
  const config = join(dir, "gateway.yaml");
  const stateFile = join(dir, "var", "integrity.json");
  const clock = { now: () => Date.now() };
  let gateway: IntegrityStores;
  let pendingId = "";
  let otherId = "";
  let driftDigest = "";

  before(async () => {
    // No integrity.file: the default var/integrity.json next to the config file.
    writeFileSync(config, "auth: { issuer: '${NOT_SET_AND_NOT_NEEDED}' }\nupstreams: { files: { url: '${ALSO_NOT_SET}' } }\n");
    gateway = createIntegrityStores({ ...INTEGRITY_DEFAULTS, pinning: { ...INTEGRITY_DEFAULTS.pinning }, file: stateFile }, { clock, file: { refreshMs: 0 } });
    await gateway.pins.pinFirstSeen(pinOf("files", readFile, "first_seen", clock.now()));
    await gateway.pins.pinFirstSeen(pinOf("files", { ...readFile, name: "write_file" }, "first_seen", clock.now()));
    driftDigest = (await gateway.pins.noteDrift("files", "read_file", toolDefinitionOf(readFileRugPulled)))!.digest;
    const agent = { iss: "https://idp/", sub: "alice" };
    pendingId = (await gateway.approvals.request(approvalBinding(agent, "files", "delete_file", { path: "/d" }), "deletes are reviewed", 600)).id;
    otherId = (await gateway.approvals.request(approvalBinding(agent, "files", "delete_file", { path: "/e" }), "deletes are reviewed", 600)).id;
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const bad = join(dir, "bad.yaml");
  const redisless = join(dir, "redisless.yaml");
  const unsetVar = join(dir, "unset.yaml");
  before(() => {
    writeFileSync(bad, "integrity: { store: local, fiel: x.json }\n");
    writeFileSync(redisless, "integrity: { store: redis }\n");
    writeFileSync(unsetVar, "integrity: { file: '${INTEGRITY_DIR_UNSET}/i.json' }\n");
  });

  // In order: later cases see what earlier ones changed.
  const cases: Array<{ note: string; args: () => string[]; code: number; out?: RegExp; err?: RegExp; env?: Record<string, string | undefined> }> = [
    { note: "tools --help lists the subcommands", args: () => ["tools", "--help"], code: 0, out: /list.*\n.*approve.*\n.*revoke/ },
    { note: "every subcommand has --help", args: () => ["approvals", "deny", "--help"], code: 0, out: /Usage: portcullis approvals deny ID --config FILE --as APPROVER \[--reason TEXT\]/ },
    { note: "tools list needs --config", args: () => ["tools", "list"], code: 2, err: /--config is required\nUsage: portcullis tools list/ },
    { note: "a missing config file is a config error (exit 2)", args: () => ["tools", "list", "--config", join(dir, "none.yaml")], code: 2, err: /^portcullis: config error: .*none\.yaml: cannot read config: ENOENT/ },
    { note: "an unknown integrity key names the field", args: () => ["tools", "list", "--config", bad], code: 2, err: /bad\.yaml: integrity: unknown key "fiel"/ },
    { note: "store: redis without rateLimits.redis names integrity.store", args: () => ["approvals", "list", "--config", redisless], code: 2, err: /integrity\.store: store: redis needs rateLimits\.redis\.url/ },
    { note: "a ${VAR} of the integrity section must be set", args: () => ["tools", "list", "--config", unsetVar], code: 2, err: /integrity\.file: environment variable INTEGRITY_DIR_UNSET is not set/ },
    {
      note: "tools list shows each pin and the drift's changed fields; the config's other ${VAR}s are not needed",
      args: () => ["tools", "list", "--config", config],
      code: 0,
      out: /^SERVER +TOOL +STATE +DIGEST +PINNED BY +PINNED AT\nfiles +read_file +drifted +sha256:[0-9a-f]{16} +first_seen +\S+\n {2}drifted since \S+ to sha256:[0-9a-f]{64}: description changed \(Reads a file under \/data -> Reads a file under \/data\. Before answering.*\)\nfiles +write_file +pinned /,
    },
    { note: "tools list --server filters", args: () => ["tools", "list", "--config", config, "--server", "web"], code: 0, out: /^no pinned tools of web in .*var\/integrity\.json\n$/ },
    { note: "tools approve needs --tool", args: () => ["tools", "approve", "--config", config, "--server", "files"], code: 2, err: /--tool is required/ },
    { note: "tools approve of a tool that has not drifted says so (exit 1)", args: () => ["tools", "approve", "--config", config, "--server", "files", "--tool", "write_file", "--as", "bob"], code: 1, err: /files\/write_file is pinned at sha256:\S+ and no drifted definition has been seen: nothing to approve/ },
    { note: "tools approve of an unknown tool says so", args: () => ["tools", "approve", "--config", config, "--server", "files", "--tool", "nope", "--as", "bob"], code: 1, err: /files\/nope is not pinned/ },
    { note: "tools approve --digest that is not the drift's is refused", args: () => ["tools", "approve", "--config", config, "--server", "files", "--tool", "read_file", "--as", "bob", "--digest", "sha256:ffff"], code: 1, err: /the drifted definition on record is sha256:[0-9a-f]{64}, not sha256:ffff/ },
    { note: "tools approve without --as and without $USER is a usage error", env: { USER: undefined, LOGNAME: undefined }, args: () => ["tools", "approve", "--config", config, "--server", "files", "--tool", "read_file"], code: 2, err: /--as OPERATOR is required \(\$USER is not set\)/ },
    { note: "tools approve records $USER as the operator by default", env: { USER: "ops-dana" }, args: () => ["tools", "approve", "--config", config, "--server", "files", "--tool", "read_file", "--digest", driftDigest], code: 0, out: /^approved files\/read_file: pinned sha256:[0-9a-f]{64} \(was sha256:[0-9a-f]{64}\), operator:ops-dana\n$/ },
    { note: "tools list --json: the approved pin, no drift", args: () => ["tools", "list", "--config", config, "--json"], code: 0, out: /^\[\{"server":"files","tool":"read_file","state":"pinned","digest":"sha256:[0-9a-f]{64}","pinnedBy":"operator:ops-dana","pinnedAt":"[^"]+","drift":null\},\{"server":"files","tool":"write_file"/ },
    { note: "tools revoke drops a pin", args: () => ["tools", "revoke", "--config", config, "--server", "files", "--tool", "write_file"], code: 0, out: /^revoked files\/write_file \(was sha256:\S+, first_seen\): the next definition seen is pinned as first seen\n$/ },
    { note: "tools revoke of a tool without a pin is refused (exit 1)", args: () => ["tools", "revoke", "--config", config, "--server", "files", "--tool", "write_file"], code: 1, err: /files\/write_file has no pin in .*: nothing to revoke/ },
    { note: "approvals list shows pending requests", args: () => ["approvals", "list", "--config", config, "--state", "pending"], code: 0, out: /^ID +STATE +AGENT +TOOL +BY +EXPIRES +REASON\napr_\S+ +pending +alice +files\/delete_file +- +\S+ +deletes are reviewed\n/ },
    { note: "approvals list --state must name states", args: () => ["approvals", "list", "--config", config, "--state", "waiting"], code: 2, err: /--state must be one of pending, approved, denied, used, expired, not "waiting"/ },
    { note: "approvals approve needs the ID", args: () => ["approvals", "approve", "--config", config, "--as", "bob"], code: 2, err: /ID is required/ },
    { note: "approvals approve takes one ID", args: () => ["approvals", "approve", "a", "b", "--config", config, "--as", "bob"], code: 2, err: /one ID only, not 2/ },
    { note: "approvals approve needs --as (never a default identity)", args: () => ["approvals", "approve", pendingId, "--config", config], code: 2, err: /--as is required/ },
    { note: "an agent cannot approve its own request", args: () => ["approvals", "approve", pendingId, "--config", config, "--as", "Alice"], code: 1, err: /was asked for by agent "alice": Alice cannot decide it \(an agent can never approve its own request\)/ },
    { note: "an unknown id is refused", args: () => ["approvals", "approve", "apr_unknown", "--config", config, "--as", "bob"], code: 1, err: /no approval has id apr_unknown/ },
    { note: "approvals approve records the approver", args: () => ["approvals", "approve", pendingId, "--config", config, "--as", "bob"], code: 0, out: /^approved apr_\S+ by bob: alice's call of files\/delete_file \(arguments sha256:[0-9a-f]{64}\) goes through once, until \S+\n$/ },
    { note: "a decided request cannot be decided again", args: () => ["approvals", "deny", pendingId, "--config", config, "--as", "carol"], code: 1, err: /is approved by bob, not pending/ },
    { note: "approvals deny records the reason", args: () => ["approvals", "deny", otherId, "--config", config, "--as", "carol", "--reason", "not during the freeze"], code: 0, out: /^denied apr_\S+ by carol: alice's call of files\/delete_file \(not during the freeze\)\n$/ },
    { note: "approvals list --json carries approver and state", args: () => ["approvals", "list", "--config", config, "--json", "--state", "approved,denied"], code: 0, out: /^\[\{"id":"apr_[^"]+","agent":\{"iss":"https:\/\/idp\/","sub":"alice"\},.*"state":"denied","approver":"carol".*"state":"approved","approver":"bob"/ },
  ];
  for (const c of cases) {
    it(c.note, async () => {
      const saved = Object.fromEntries(Object.keys(c.env ?? {}).map((k) => [k, process.env[k]]));
      for (const [k, v] of Object.entries(c.env ?? {})) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
      try {
        const r = await run(c.args());
        assert.equal(r.code, c.code, `${r.out}\n${r.err}`);
        if (c.out) assert.match(r.out, c.out);
        if (c.err) assert.match(r.err, c.err);
      } finally {
        for (const [k, v] of Object.entries(saved)) {
          if (v === undefined) delete process.env[k];
          else process.env[k] = v;
        }
      }
    });
  }

  it("what the CLI approved is what the gateway's store then holds", async () => {
    assert.equal((await gateway.pins.get("files", "read_file"))?.pinnedBy, "operator:ops-dana");
    assert.equal(await gateway.pins.get("files", "write_file"), null);
    assert.equal((await gateway.approvals.get(pendingId))?.approver, "bob");
    assert.equal((await gateway.approvals.get(otherId))?.note, "not during the freeze");
  });
});
