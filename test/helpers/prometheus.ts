/**
 * A small reader of the Prometheus text exposition format (version 0.0.4), so tests check the
 * metrics a scraper would see: `# HELP` / `# TYPE` lines and samples with labels.
 *
 * @module
 */

/** One scrape: samples by series, and each metric family's type. */
export interface Exposition {
  /** `name{a="1",b="2"}` (labels sorted) -> value. */
  samples: Map<string, number>;
  /** Metric family name -> counter, gauge, ... */
  types: Map<string, string>;
  /** The value of a series; labels in any order. Throws when the series is missing. */
  value(name: string, labels?: Record<string, string>): number;
}

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

function seriesKey(name: string, labels: Record<string, string>): string {
  const parts = Object.keys(labels).sort().map((key) => `${key}="${labels[key]}"`);
  return parts.length === 0 ? name : `${name}{${parts.join(",")}}`;
}

/** Parses an exposition; throws on a line that is neither a comment nor a valid sample. */
export function parseExposition(text: string): Exposition {
  const samples = new Map<string, number>();
  const types = new Map<string, string>();
  for (const line of text.split("\n")) {
    if (line.trim() === "") continue;
    if (line.startsWith("# TYPE ")) {
      const [, , name, type] = line.split(" ");
      types.set(name, type);
      continue;
    }
    if (line.startsWith("#")) continue;
    const match = SAMPLE.exec(line);
    if (!match) throw new Error(`Not a Prometheus sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const [, key, value] of (match[2] ?? "").matchAll(LABEL)) labels[key] = value;
    const value = match[3] === "NaN" ? NaN : Number(match[3]);
    if (Number.isNaN(value) && match[3] !== "NaN") {
      throw new Error(`Not a number in: ${line}`);
    }
    samples.set(seriesKey(match[1], labels), value);
  }
  return {
    samples,
    types,
    value(name, labels = {}) {
      // The node label is on every series; callers need not repeat it.
      for (const [key, value] of samples) {
        if (!key.startsWith(name)) continue;
        const wanted = Object.entries(labels).every(([k, v]) => key.includes(`${k}="${v}"`));
        if (wanted && (key === name || key.startsWith(`${name}{`))) return value;
      }
      throw new Error(`No series ${seriesKey(name, labels)} in the exposition`);
    },
  };
}
