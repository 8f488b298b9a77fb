/**
 * Number formatting for tables, charts and progress lines.
 *
 * @module
 */

/**
 * Formats a figure compactly: 157.2k, 1.23M, 0.123, 12.3; `NaN` as "n/a".
 *
 * @param value The value.
 * @returns The text.
 */
export function formatValue(value: number | undefined): string {
  if (value === undefined || !Number.isFinite(value)) return "n/a";
  const magnitude = Math.abs(value);
  if (magnitude >= 1e6) return `${(value / 1e6).toFixed(2)}M`;
  if (magnitude >= 1e4) return `${(value / 1e3).toFixed(1)}k`;
  if (magnitude >= 100) return value.toFixed(0);
  if (magnitude === 0) return "0";
  return value.toPrecision(3);
}

/**
 * Formats a count with thousands separators.
 *
 * @param value The count.
 * @returns The text.
 */
export function formatCount(value: number): string {
  return value.toLocaleString("en-US");
}
