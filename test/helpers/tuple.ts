// Typed access to the items a test just made, for noUncheckedIndexedAccess:
// a missing item throws here, with the count, instead of a TypeError later.

/** The first two items of `xs`; throws when it has fewer. */
export function pair<T>(xs: readonly T[]): [T, T] {
  const [a, b] = xs;
  if (a === undefined || b === undefined) throw new Error(`expected at least 2 items, got ${xs.length}`);
  return [a, b];
}

/** The first item of `xs`; throws when it is empty. */
export function first<T>(xs: readonly T[]): T {
  const [a] = xs;
  if (a === undefined) throw new Error('expected at least 1 item, got none');
  return a;
}
