/**
 * How numbers, times and MQTT facts are written on the pages. No DOM here: the tests run these
 * under Deno.
 *
 * @module
 */

const PROTOCOLS = { 3: "3.1", 4: "3.1.1", 5: "5.0" };

/** MQTT protocol level to its version: 4 is "3.1.1". */
export function protocolName(level) {
  return PROTOCOLS[level] ?? String(level);
}

/** A count with thousands separators. */
export function formatCount(value) {
  return Math.round(value).toLocaleString("en-US");
}

/** A rate per second: one decimal below 10, whole numbers above. */
export function formatRate(value) {
  if (value === undefined) return "–";
  return value < 10 ? value.toFixed(1) : formatCount(value);
}

const BYTE_UNITS = ["B", "KiB", "MiB", "GiB", "TiB"];

/** Bytes in binary units: 1536 is "1.5 KiB". */
export function formatBytes(bytes) {
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < BYTE_UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${bytes} B` : `${value.toFixed(value < 10 ? 1 : 0)} ${BYTE_UNITS[unit]}`;
}

/** Seconds as the two largest units: "3d 4h", "5m 10s", "12s". */
export function formatDuration(seconds) {
  const units = [["d", 86_400], ["h", 3_600], ["m", 60], ["s", 1]];
  let left = Math.max(0, Math.floor(seconds));
  const parts = [];
  for (const [name, size] of units) {
    if (left >= size || (name === "s" && parts.length === 0)) {
      parts.push(`${Math.floor(left / size)}${name}`);
      left %= size;
    }
    if (parts.length === 2) break;
  }
  return parts.join(" ");
}

/** Milliseconds with a precision that suits them: "0 ms", "0.42 ms", "12 ms". */
export function formatMs(ms) {
  if (ms === 0) return "0 ms";
  return ms < 10 ? `${ms.toFixed(2)} ms` : `${Math.round(ms)} ms`;
}

/** An ISO time as the browser's local date and time. */
export function formatTime(iso) {
  return iso ? new Date(iso).toLocaleString() : "–";
}

/**
 * The retained-message filter for a topic prefix: everything when empty, `a/b/#` for `a/b` (which
 * matches `a/b` itself too), and a filter with wildcards as given.
 */
export function prefixFilter(prefix) {
  const trimmed = prefix.trim();
  if (trimmed === "") return "#";
  if (trimmed.includes("+") || trimmed.includes("#")) return trimmed;
  return trimmed.endsWith("/") ? `${trimmed}#` : `${trimmed}/#`;
}

/** Names from a comma-separated list, blanks dropped; undefined when there are none. */
export function nameList(text) {
  const names = text.split(",").map((name) => name.trim()).filter((name) => name !== "");
  return names.length > 0 ? names : undefined;
}
