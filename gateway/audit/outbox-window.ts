/**
 * The newest outbox records kept in memory (bounded by bytes), so a sender that keeps up never
 * re-reads what was just written. Oldest records fall out first: after an outage spills past the
 * bound, the sender reads the segment files until it catches up with the window again.
 * Sequence numbers in the window are contiguous (one process appends them in order).
 */
export interface WindowRecord {
  seq: number;
  bytes: number;
}

export class RecentWindow<R extends WindowRecord> {
  private items: R[] = [];
  private head = 0;
  private bytes = 0;

  constructor(private readonly maxBytes: number) {}

  push(r: R): void {
    this.items.push(r);
    this.bytes += r.bytes;
    while (this.bytes > this.maxBytes && this.head < this.items.length) this.dropOldest();
  }

  /** Forgets records before `seq` (acknowledged). */
  dropBefore(seq: number): void {
    while (this.head < this.items.length && (this.items[this.head] as R).seq < seq) this.dropOldest();
  }

  at(seq: number): R | undefined {
    const i = this.index(seq);
    return i < 0 ? undefined : this.items[i];
  }

  /** Records from `seq` on while `take` accepts them, or null when `seq` is not in the window. */
  from(seq: number, take: (r: R, taken: number) => boolean): R[] | null {
    const start = this.index(seq);
    if (start < 0) return null;
    const out: R[] = [];
    for (let i = start; i < this.items.length && take(this.items[i] as R, out.length); i++) out.push(this.items[i] as R);
    return out;
  }

  private index(seq: number): number {
    const first = this.items[this.head];
    if (!first || seq < first.seq) return -1;
    const i = this.head + (seq - first.seq);
    return this.items[i]?.seq === seq ? i : -1;
  }

  private dropOldest(): void {
    this.bytes -= (this.items[this.head] as R).bytes;
    this.head++;
    // Compact now and then so memory is released.
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
  }
}
