/**
 * Did-you-mean suggestions for refused names. The distance costs |a|·|b| steps, so the name is bounded
 * first: a typo of a HAP name is short, and a 60 KB name from a device must cost nothing. [P-4]
 */

/** Names longer than this get no suggestion (no HAP name comes close to it). */
export const MAX_SUGGEST_LENGTH = 64;
/** At most this many candidates are compared (HAP has some 250 characteristics). */
const MAX_CANDIDATES = 1000;

/** Levenshtein distance, case-insensitive: misspellings differ by a letter or two and often by case. */
export function editDistance(a: string, b: string): number {
  const s = a.toLowerCase();
  const t = b.toLowerCase();
  let previous = Array.from({ length: t.length + 1 }, (_, i) => i);
  for (let i = 1; i <= s.length; i++) {
    const current = [i];
    for (let j = 1; j <= t.length; j++) {
      const cost = s[i - 1] === t[j - 1] ? 0 : 1;
      current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + cost);
    }
    previous = current;
  }
  return previous[t.length]!;
}

/**
 * The closest candidate to `name`, or undefined when nothing is close enough to be a plausible typo
 * (more than a third of the letters wrong). A case-only difference always matches.
 */
export function closestName(name: string, candidates: Iterable<string>): string | undefined {
  if (name.length === 0 || name.length > MAX_SUGGEST_LENGTH) return undefined;
  const allowed = Math.max(2, Math.ceil(name.length / 3));
  let best: string | undefined;
  let bestDistance = Infinity;
  let compared = 0;
  for (const candidate of candidates) {
    if (++compared > MAX_CANDIDATES) break;
    // The distance is at least the difference in length: skip the candidates that cannot be close.
    if (candidate.length > MAX_SUGGEST_LENGTH || Math.abs(candidate.length - name.length) > Math.min(allowed, bestDistance)) continue;
    const distance = editDistance(name, candidate);
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return bestDistance <= allowed ? best : undefined;
}

/** "; did you mean 'X'?" or "" — appended to refusal messages. */
export function didYouMean(name: string, candidates: Iterable<string>): string {
  const suggestion = closestName(name, candidates);
  return suggestion === undefined ? '' : `; did you mean '${suggestion}'?`;
}
