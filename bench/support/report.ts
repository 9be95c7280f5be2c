/**
 * Figures and verdicts of a bench run: percentiles, medians, aligned tables, and the PASS/MISS
 * lines of issue 13's targets (collected so the run can repeat them all at the end).
 */

/** The p-th percentile of ascending `sorted` (nearest rank); NaN when empty. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

export function median(values: readonly number[]): number {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  const mid = Math.floor(v.length / 2);
  return v.length % 2 === 1 ? v[mid]! : (v[mid - 1]! + v[mid]!) / 2;
}

export function ascending(values: readonly number[]): number[] {
  return [...values].sort((a, b) => a - b);
}

/** "1.23" for a finite number, "n/a" otherwise. */
export const fixed = (n: number, digits = 2): string => (Number.isFinite(n) ? n.toFixed(digits) : "n/a");
export const ratio = (n: number): string => (Number.isFinite(n) ? `${n.toFixed(2)}x` : "n/a");
/** "0.95–1.10x": the spread of per-round ratios, so the noise is on the page next to the median. */
export const spread = (values: readonly number[]): string => {
  const v = values.filter((x) => Number.isFinite(x));
  return v.length === 0 ? "n/a" : `${Math.min(...v).toFixed(2)}–${Math.max(...v).toFixed(2)}x`;
};

/** Prints rows as a table, the first row as its header; numbers right-aligned, text left-aligned. */
export function printTable(rows: readonly (readonly string[])[]): void {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length)));
  for (const [n, r] of rows.entries()) {
    const cells = r.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!)));
    process.stdout.write(`  ${cells.join("  ")}\n`);
    if (n === 0) process.stdout.write(`  ${widths.map((w) => "-".repeat(w)).join("  ")}\n`);
  }
}

export function heading(text: string): void {
  process.stdout.write(`\n== ${text}\n`);
}

export type Verdict = "PASS" | "MISS" | "SKIP";

export interface TargetLine {
  verdict: Verdict;
  /** Which target of issue 13, e.g. "1 CPU/call". */
  target: string;
  text: string;
}

const lines: TargetLine[] = [];

/** Prints and records one target's verdict. */
export function verdict(target: string, met: boolean | null, text: string): void {
  const v: Verdict = met === null ? "SKIP" : met ? "PASS" : "MISS";
  lines.push({ verdict: v, target, text });
  process.stdout.write(`  ${v}  [${target}] ${text}\n`);
}

export function targetLines(): readonly TargetLine[] {
  return lines;
}

/** The closing summary: every target line of the run again, in one place. */
export function printSummary(title: string): void {
  heading(title);
  for (const l of lines) process.stdout.write(`  ${l.verdict}  [${l.target}] ${l.text}\n`);
  const count = (v: Verdict) => lines.filter((l) => l.verdict === v).length;
  process.stdout.write(`  ${count("PASS")} met, ${count("MISS")} missed, ${count("SKIP")} skipped\n`);
}
