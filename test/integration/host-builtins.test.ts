import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { loadPolicy, type LoadedPolicy } from "@open-policy-agent/opa-wasm";
import { createHostBuiltins, DecisionTime, HOST_BUILTIN_NAMES } from "../../gateway/policy/builtins.js";
import { readTarGz } from "../../gateway/policy/index.js";
import { makeTempDir, opaBin, repoRoot } from "../support/bundles.js";
import { BUILTIN_CASES, type BuiltinCase } from "./host-builtins.cases.js";

const execFileAsync = promisify(execFile);

// One Rego function clause per builtin; json.marshal turns each result into text in both engines, so
// large nanosecond integers are compared digit by digit (a JS number would round them).
function parityPolicy(names: string[]): string {
  const arity: Record<string, number> = {};
  for (const c of BUILTIN_CASES) arity[c.fn] = c.args.length;
  const clauses = names.map((fn) => {
    const args = Array.from({ length: arity[fn] ?? 0 }, (_, i) => `c.args[${i}]`).join(", ");
    return `call(c) := ${fn}(${args}) if c.fn == ${JSON.stringify(fn)}`;
  });
  return [
    "package parity",
    "",
    "results[i] := json.marshal(r) if {",
    "\tsome i, c in input.cases",
    "\tr := call(c)",
    "}",
    "",
    ...clauses.flatMap((c) => [c, ""]),
  ].join("\n");
}

describe("host builtins agree with opa eval (topdown) on the same inputs", function () {
  this.timeout(60_000);
  let dir: string;
  let wasmResults: Record<string, string>;
  let opaResults: Record<string, string>;
  const names = [...new Set(BUILTIN_CASES.map((c) => c.fn))].sort();

  before(async () => {
    dir = await makeTempDir("portcullis-builtins-");
    await writeFile(join(dir, "parity.rego"), parityPolicy(names));
    const input = { cases: BUILTIN_CASES.map(({ fn, args }) => ({ fn, args })) };
    await writeFile(join(dir, "input.json"), JSON.stringify(input));
    // The real wasm build, through the shipped capabilities file: it must admit every host builtin.
    await execFileAsync(opaBin(), [
      "build", "-t", "wasm", "-e", "parity/results", "--capabilities", join(repoRoot(), "bundles/capabilities.json"),
      "-o", join(dir, "bundle.tar.gz"), join(dir, "parity.rego"),
    ]);
    const files = readTarGz(await readFile(join(dir, "bundle.tar.gz")));
    const wasm = files.get("/policy.wasm");
    assert.ok(wasm, "policy.wasm in the bundle");
    const policy: LoadedPolicy = await loadPolicy(wasm, undefined, createHostBuiltins(new DecisionTime(() => 0)));
    const rs = policy.evaluate(input, "parity/results") as Array<{ result: Record<string, string> }>;
    wasmResults = rs[0]?.result ?? {};
    const { stdout } = await execFileAsync(opaBin(), [
      "eval", "--format", "json", "-d", join(dir, "parity.rego"), "-i", join(dir, "input.json"), "data.parity.results",
    ]);
    const out = JSON.parse(stdout) as { result: Array<{ expressions: Array<{ value: Record<string, string> }> }> };
    opaResults = out.result[0]?.expressions[0]?.value ?? {};
  });
  after(async () => rm(dir, { recursive: true, force: true }));

  it("has cases for every host builtin except time.now_ns", () => {
    assert.deepEqual(names, HOST_BUILTIN_NAMES.filter((n) => n !== "time.now_ns"));
  });

  it("covers undefined (error) cases as well as defined ones", () => {
    assert.ok(Object.keys(opaResults).length < BUILTIN_CASES.length, "some cases must be undefined in OPA");
    assert.ok(Object.keys(opaResults).length > BUILTIN_CASES.length / 2, "most cases must be defined in OPA");
  });

  for (const [i, c] of BUILTIN_CASES.entries()) {
    it(`${c.fn}: ${c.note}`, () => {
      const want = goEscapesUndone(opaResults[String(i)]);
      const got = wasmResults[String(i)];
      assert.equal(got, want, `${c.fn}(${c.args.map((a) => JSON.stringify(a)).join(", ")}): wasm ${got ?? "undefined"}, opa ${want ?? "undefined"}`);
      if (c.want !== undefined) assert.equal(want, c.want === null ? undefined : JSON.stringify(c.want), "the case's expectation");
    });
  }
});

/** Go's json.Marshal escapes &, < and > as \u0026, \u003c, \u003e; the wasm encoder does not. */
function goEscapesUndone(text: string | undefined): string | undefined {
  return text?.replace(/\\u00(26|3c|3e)/g, (_, h: string) => String.fromCharCode(parseInt(h, 16)));
}

describe("time.now_ns() is the request's time, one value per decision", function () {
  this.timeout(60_000);
  let dir: string;
  let policy: LoadedPolicy;
  let time: DecisionTime;
  let wall = 5_000;

  before(async () => {
    dir = await makeTempDir("portcullis-now-");
    await writeFile(
      join(dir, "now.rego"),
      "package now\n\nr := [json.marshal(time.now_ns()), json.marshal(time.now_ns())]\n",
    );
    await execFileAsync(opaBin(), [
      "build", "-t", "wasm", "-e", "now/r", "--capabilities", join(repoRoot(), "bundles/capabilities.json"),
      "-o", join(dir, "b.tar.gz"), join(dir, "now.rego"),
    ]);
    const wasm = readTarGz(await readFile(join(dir, "b.tar.gz"))).get("/policy.wasm");
    assert.ok(wasm);
    time = new DecisionTime(() => wall++);
    policy = await loadPolicy(wasm, undefined, createHostBuiltins(time));
  });
  after(async () => rm(dir, { recursive: true, force: true }));

  function nowOf(input: object): string[] {
    time.begin(input);
    return (policy.evaluate(input, "now/r") as Array<{ result: string[] }>)[0]?.result ?? [];
  }

  const cases: Array<{ note: string; time: unknown; want: string }> = [
    { note: "milliseconds, exact beyond 2^53", time: "2026-11-24T10:00:00.123Z", want: "1795514400123000000" },
    { note: "nanoseconds kept", time: "2026-11-24T10:00:00.123456789Z", want: "1795514400123456789" },
    { note: "offset applied", time: "2026-11-24T11:00:00+01:00", want: "1795514400000000000" },
  ];
  for (const c of cases) {
    it(`reads input.request.time: ${c.note}`, () => {
      assert.deepEqual(nowOf({ request: { time: c.time } }), [c.want, c.want]);
    });
  }

  it("falls back to the injected wall clock once per decision when request.time is missing or bad", () => {
    wall = 7_000;
    assert.deepEqual(nowOf({ request: { time: "yesterday" } }), ["7000000000", "7000000000"]);
    assert.deepEqual(nowOf({}), ["7001000000", "7001000000"]);
  });

  it("changes with the next decision's input", () => {
    assert.deepEqual(nowOf({ request: { time: "1970-01-01T00:00:01Z" } }), ["1000000000", "1000000000"]);
    assert.deepEqual(nowOf({ request: { time: "1970-01-01T00:00:02Z" } }), ["2000000000", "2000000000"]);
  });
});

export type { BuiltinCase };
