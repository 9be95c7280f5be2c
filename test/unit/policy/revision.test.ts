import assert from "node:assert/strict";
import { compareRevisions, REVISION_HISTORY_LIMIT, RevisionHistory, rollbackReason } from "../../../gateway/policy/index.js";

describe("bundle revisions (rollback detection)", () => {
  describe("compareRevisions", () => {
    const cases: Array<{ note: string; a: string; b: string; kind?: string; order?: number }> = [
      { note: "integers", a: "41", b: "42", kind: "integer", order: -1 },
      { note: "integers as numbers, not text", a: "9", b: "10", kind: "integer", order: -1 },
      { note: "integers beyond 2^53", a: "9007199254740993", b: "9007199254740992", kind: "integer", order: 1 },
      { note: "leading zeros", a: "007", b: "7", kind: "integer", order: 0 },
      { note: "timestamps", a: "2026-11-24T10:00:00Z", b: "2026-11-24T10:00:01Z", kind: "timestamp", order: -1 },
      { note: "timestamps as instants across offsets", a: "2026-11-24T12:00:00+02:00", b: "2026-11-24T10:00:00Z", kind: "timestamp", order: 0 },
      { note: "an earlier local time that is a later instant", a: "2026-11-24T09:00:00-05:00", b: "2026-11-24T10:00:00Z", kind: "timestamp", order: 1 },
      { note: "nanosecond fractions", a: "2026-11-24T10:00:00.000000001Z", b: "2026-11-24T10:00:00.000000002Z", kind: "timestamp", order: -1 },
      { note: "fractions of different lengths", a: "2026-11-24T10:00:00.5Z", b: "2026-11-24T10:00:00.500Z", kind: "timestamp", order: 0 },
      { note: "a fraction after none", a: "2026-11-24T10:00:00Z", b: "2026-11-24T10:00:00.1Z", kind: "timestamp", order: -1 },
      { note: "years before 100 are not 19xx", a: "0099-01-01T00:00:00Z", b: "1999-01-01T00:00:00Z", kind: "timestamp", order: -1 },
      { note: "dotted versions", a: "1.9.2", b: "1.10.0", kind: "dotted", order: -1 },
      { note: "a v prefix", a: "v2.0", b: "1.99.99", kind: "dotted", order: 1 },
      { note: "a missing part is 0", a: "1.2", b: "1.2.0", kind: "dotted", order: 0 },
      { note: "kinds differ", a: "42", b: "1.2.3" },
      { note: "integer and timestamp", a: "20261124", b: "2026-11-24T10:00:00Z" },
      { note: "git hashes have no order", a: "3f2a9c1", b: "4b0e7d2" },
      { note: "git describe has no order", a: "v1.2.3-4-gabcdef0", b: "v1.2.3" },
      { note: "empty revision", a: "", b: "1" },
      { note: "an impossible date is no timestamp", a: "2026-02-30T10:00:00Z", b: "2026-03-01T10:00:00Z" },
      { note: "an impossible offset is no timestamp", a: "2026-11-24T10:00:00+24:00", b: "2026-11-24T10:00:00Z" },
      { note: "a date alone is no timestamp", a: "2026-11-24", b: "2026-11-25" },
      { note: "signed integers are not integers", a: "-1", b: "1" },
    ];
    for (const c of cases) {
      it(`${c.note}: ${JSON.stringify(c.a)} vs ${JSON.stringify(c.b)}`, () => {
        const got = compareRevisions(c.a, c.b);
        if (c.kind === undefined) assert.equal(got, undefined);
        else assert.deepEqual(got, { kind: c.kind, order: c.order });
      });
    }
  });

  describe("rollbackReason", () => {
    it("refuses a revision served before the current one, whatever its spelling", () => {
      const history = new RevisionHistory();
      history.record("3f2a9c1");
      assert.equal(rollbackReason("3f2a9c1", "4b0e7d2", history), 'revision "3f2a9c1" was served before the active "4b0e7d2"');
    });

    it("refuses a lower ordered revision never served here", () => {
      const history = new RevisionHistory();
      assert.equal(rollbackReason("41", "42", history), 'revision "41" is lower than the active "42" (integers)');
      assert.match(rollbackReason("2026-01-01T00:00:00Z", "2026-06-01T00:00:00Z", history) ?? "", /RFC 3339 timestamps/);
      assert.match(rollbackReason("v1.9.0", "v1.10.0", history) ?? "", /dotted version numbers/);
    });

    it("accepts the current revision, a higher one, and unordered ones never served", () => {
      const history = new RevisionHistory();
      history.record("41");
      assert.equal(rollbackReason("42", "42", history), undefined, "the same revision is not a rollback");
      assert.equal(rollbackReason("43", "42", history), undefined);
      assert.equal(rollbackReason("3f2a9c1", "4b0e7d2", history), undefined);
      assert.equal(rollbackReason("1.0.0", "42", history), undefined, "kinds differ and 1.0.0 was never served");
    });
  });

  describe("RevisionHistory", () => {
    it(`keeps the last ${REVISION_HISTORY_LIMIT} distinct revisions by default`, () => {
      const history = new RevisionHistory();
      for (let i = 0; i <= REVISION_HISTORY_LIMIT; i++) history.record(`r${i}`);
      assert.equal(history.size, REVISION_HISTORY_LIMIT);
      assert.equal(history.has("r0"), false, "the oldest is forgotten");
      assert.equal(history.has("r1"), true);
      assert.equal(history.has(`r${REVISION_HISTORY_LIMIT}`), true);
    });

    it("moves a revision seen again to the recent end", () => {
      const history = new RevisionHistory(2);
      history.record("a");
      history.record("b");
      history.record("a");
      history.record("c");
      assert.deepEqual([history.has("a"), history.has("b"), history.has("c")], [true, false, true]);
    });

    it("refuses a limit that is not a positive integer", () => {
      assert.throws(() => new RevisionHistory(0), /positive integer, got 0/);
      assert.throws(() => new RevisionHistory(1.5), RangeError);
    });
  });
});
