/**
 * "Did you mean …?" for a name the user typed: an option, a config key, a shoot or a card.
 * Used by the command-line parser, the config validator and studioctl's filters.
 */

/** Levenshtein distance (small inputs: option names, keys, shoot names). */
function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++)
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length]!;
}

/**
 * The known names closest to `word` (case-insensitive edit distance at most a third of its length,
 * at least 2, or one containing the other), best first, at most `max`. For "did you mean" hints.
 */
export function closeMatches(word: string, known: Iterable<string>, max = 3): string[] {
  const w = word.toLowerCase();
  const limit = Math.max(2, Math.floor(w.length / 3));
  const scored: Array<{ name: string; d: number }> = [];
  for (const name of new Set(known)) {
    const n = name.toLowerCase();
    const d = editDistance(w, n);
    if (d <= limit || (w.length >= 3 && (n.includes(w) || w.includes(n)))) scored.push({ name, d });
  }
  return scored
    .sort((x, y) => x.d - y.d || (x.name < y.name ? -1 : 1))
    .slice(0, max)
    .map((s) => s.name);
}

/** ` (did you mean a or b?)`, or nothing when no known name is close. */
export function didYouMean(word: string, known: Iterable<string>): string {
  const close = closeMatches(word, known);
  return close.length === 0 ? '' : ` (did you mean ${close.join(' or ')}?)`;
}
