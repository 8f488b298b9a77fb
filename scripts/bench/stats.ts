/**
 * Small statistics helpers.
 *
 * @module
 */

/**
 * The median (mean of the middle two for an even count).
 *
 * @param values The values (not modified).
 * @returns The median, or `NaN` for no values.
 */
export function median(values: number[]): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

/**
 * Nearest-rank percentiles.
 *
 * @param values The samples (not modified).
 * @param ranks Percentiles in (0, 100].
 * @returns One value per rank (`NaN` for no samples).
 */
export function percentiles(values: number[], ranks: number[]): number[] {
  const sorted = Float64Array.from(values).sort();
  return ranks.map((rank) =>
    sorted.length === 0 ? NaN : sorted[Math.max(0, Math.ceil((rank / 100) * sorted.length) - 1)]
  );
}
