import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { toolPinning } from "../../../gateway/compose/integrity.js";
import { createIntegrityStores, INTEGRITY_DEFAULTS, pinOf, type PinStore } from "../../../gateway/integrity/index.js";
import { readFile, readFileRugPulled, TestClock } from "../../support/integrity-contract.js";

describe("tool pinning: a listing's verdicts", () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), "pc-pinning-"))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  /** The local store, counting the writes a listing asks of it. */
  function countingStore(clock: TestClock): { pins: PinStore; writes: { one: number; batches: number[] } } {
    const { pins } = createIntegrityStores({ ...INTEGRITY_DEFAULTS, pinning: { ...INTEGRITY_DEFAULTS.pinning }, store: "local", file: join(dir, "integrity.json") }, { clock, file: { refreshMs: 0 } });
    const writes = { one: 0, batches: [] as number[] };
    const counted: PinStore = Object.create(pins) as PinStore;
    counted.pinFirstSeen = (pin) => (writes.one++, pins.pinFirstSeen(pin));
    counted.pinAllFirstSeen = (batch) => (writes.batches.push(batch.length), pins.pinAllFirstSeen(batch));
    return { pins: counted, writes };
  }

  it("pins every tool seen for the first time in one store write, and judges the known ones against their pins", async () => {
    const clock = new TestClock();
    const { pins, writes } = countingStore(clock);
    await pins.pinFirstSeen(pinOf("files", readFile, "first_seen", clock.now()));
    writes.one = 0;
    const pinning = toolPinning(pins, clock, () => undefined);
    const tools = [readFileRugPulled, ...Array.from({ length: 300 }, (_, i) => ({ ...readFile, name: `tool_${i}` }))] as unknown as Parameters<ReturnType<typeof toolPinning>["listing"]>[1];
    const first = await pinning.listing("files", tools);
    assert.deepEqual(writes, { one: 0, batches: [300] }, "one write for the 300 new tools, none for the known one");
    assert.equal(first.verdicts.get("read_file")?.state, "drifted", "the known tool is judged against its pin");
    assert.equal([...first.verdicts.values()].filter((v) => v.state === "pinned").length, 300);
    const again = await pinning.listing("files", tools);
    assert.deepEqual(writes, { one: 0, batches: [300, 0] }, "a second listing pins nothing");
    assert.deepEqual([...again.verdicts.entries()], [...first.verdicts.entries()]);
  });
});
