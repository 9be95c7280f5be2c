/**
 * Names that look alike to a person or a model: a listing where two tools share one, or where
 * one shadows another after normalisation, lets a server slip a second definition in beside the
 * approved one ("read_file" and "ｒｅａｄ_file"). The gateway refuses such a listing.
 */

export interface CatalogProblem {
  /** duplicate_name: the same name twice; normalized_collision: different names, one folded form. */
  kind: "duplicate_name" | "normalized_collision";
  /** The names involved, sorted (a duplicate's name once). */
  names: string[];
}

const DEFAULT_IGNORABLE = /\p{Default_Ignorable_Code_Point}/gu;

/**
 * A name's folded form: NFKC, invisible (default-ignorable) code points removed, case folded
 * (upper then lower, so "ß" meets "SS" and "ǅ" meets "dž"), NFKC again. This approximates
 * Unicode's NFKC_Casefold; it does not map cross-script confusables (Cyrillic "а" vs Latin "a").
 */
export function foldName(name: string): string {
  return name.normalize("NFKC").replace(DEFAULT_IGNORABLE, "").toUpperCase().toLowerCase().normalize("NFKC");
}

/** Duplicate names and folded collisions of one listing, sorted by the first name of each. */
export function catalogProblems(tools: ReadonlyArray<{ name: string }>): CatalogProblem[] {
  const problems: CatalogProblem[] = [];
  const counts = new Map<string, number>();
  for (const t of tools) counts.set(t.name, (counts.get(t.name) ?? 0) + 1);
  const byFold = new Map<string, string[]>();
  for (const [name, count] of counts) {
    if (count > 1) problems.push({ kind: "duplicate_name", names: [name] });
    const fold = foldName(name);
    const same = byFold.get(fold);
    if (same) same.push(name);
    else byFold.set(fold, [name]);
  }
  for (const names of byFold.values()) {
    if (names.length > 1) problems.push({ kind: "normalized_collision", names: names.sort() });
  }
  return problems.sort((a, b) => (a.names[0]! < b.names[0]! ? -1 : a.names[0]! > b.names[0]! ? 1 : a.kind < b.kind ? -1 : 1));
}
