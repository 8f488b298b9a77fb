/**
 * Durations and sizes as people write them in config files (`"10s"`, `"1MiB"`), normalized to
 * milliseconds and bytes.
 *
 * @module
 */

const DURATION_UNITS: Readonly<Record<string, number>> = {
  ms: 1,
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};

const SIZE_UNITS: Readonly<Record<string, number>> = {
  b: 1,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  tb: 1e12,
  kib: 2 ** 10,
  mib: 2 ** 20,
  gib: 2 ** 30,
  tib: 2 ** 40,
};

const DURATION_PATTERN = /^(\d+(?:\.\d+)?|\.\d+)\s*(ms|s|m|h|d)?$/;
const SIZE_PATTERN = /^(\d+(?:\.\d+)?|\.\d+)\s*([kmgt]i?b|b)?$/i;

function scaled(amount: number, factor: number): number | undefined {
  const result = Math.round(amount * factor);
  return Number.isSafeInteger(result) ? result : undefined;
}

/**
 * Parses a duration: a non-negative number of seconds (`10`, `0.5`), or a string with a unit `ms`,
 * `s`, `m`, `h` or `d` (`"500ms"`, `"10s"`, `"5m"`, `"2h"`, `"1d"`, `"1.5s"`). A string of digits alone
 * means seconds, like a number.
 *
 * @param value The value as written
 * @returns Whole milliseconds (rounded), or `undefined` when `value` is not a duration
 */
export function parseDuration(value: unknown): number | undefined {
  if (typeof value === "number") return value >= 0 ? scaled(value, 1_000) : undefined;
  if (typeof value !== "string") return undefined;
  const match = DURATION_PATTERN.exec(value.trim());
  if (match === null) return undefined;
  return scaled(Number(match[1]), DURATION_UNITS[match[2] ?? "s"]);
}

/**
 * Parses a size: a non-negative integer number of bytes, or a string with a unit, case-insensitive:
 * `B`; SI `kB`, `MB`, `GB`, `TB` (powers of 1000; `"16kb"` is 16000); binary `KiB`, `MiB`, `GiB`, `TiB`
 * (powers of 1024). A string of digits alone means bytes.
 *
 * @param value The value as written
 * @returns Whole bytes (rounded), or `undefined` when `value` is not a size
 */
export function parseSize(value: unknown): number | undefined {
  if (typeof value === "number") {
    return Number.isSafeInteger(value) && value >= 0 ? value : undefined;
  }
  if (typeof value !== "string") return undefined;
  const match = SIZE_PATTERN.exec(value.trim());
  if (match === null) return undefined;
  return scaled(Number(match[1]), SIZE_UNITS[(match[2] ?? "b").toLowerCase()]);
}

/**
 * Writes milliseconds in the largest unit that divides them exactly: `1000` as `"1s"`, `1500` as
 * `"1500ms"`.
 *
 * @param ms Whole milliseconds
 * @returns The duration with a unit, readable back by {@linkcode parseDuration}
 */
export function formatDuration(ms: number): string {
  for (const unit of ["d", "h", "m", "s"]) {
    const factor = DURATION_UNITS[unit];
    if (ms !== 0 && ms % factor === 0) return `${ms / factor}${unit}`;
  }
  return `${ms}ms`;
}

/**
 * Writes bytes in the largest binary unit that divides them exactly: `1048576` as `"1MiB"`, `1000` as
 * `"1000B"`.
 *
 * @param bytes Whole bytes
 * @returns The size with a unit, readable back by {@linkcode parseSize}
 */
export function formatSize(bytes: number): string {
  for (const unit of ["TiB", "GiB", "MiB", "KiB"]) {
    const factor = SIZE_UNITS[unit.toLowerCase()];
    if (bytes !== 0 && bytes % factor === 0) return `${bytes / factor}${unit}`;
  }
  return `${bytes}B`;
}
