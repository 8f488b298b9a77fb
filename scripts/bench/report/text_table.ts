/**
 * The text tables printed at the end of a run (and saved as `table.txt`): medians per case with the
 * Perch/peer ratios, then integrity (loss, duplicates, order) and CPU use per case and broker.
 *
 * @module
 */

import { formatCount, formatValue } from "./format.ts";
import type { BenchResults } from "./results.ts";

const BASELINE = "perch";

function align(rows: string[][], leftColumns: number): string {
  const widths = rows[0].map((_, column) => Math.max(...rows.map((row) => row[column].length)));
  return rows.map((row) =>
    row.map((cell, column) =>
      column < leftColumns ? cell.padEnd(widths[column]) : cell.padStart(widths[column])
    ).join("  ").trimEnd()
  ).join("\n");
}

function ratio(value: number | undefined, peer: number | undefined): string {
  if (value === undefined || peer === undefined || !Number.isFinite(value) || !peer) return "n/a";
  return `${(value / peer).toFixed(2)}x`;
}

/**
 * Renders the medians table.
 *
 * @param results The results.
 * @returns The table text.
 */
export function renderMedians(results: BenchResults): string {
  const brokers = results.brokers.filter((broker) => broker.status === "ok").map((b) => b.name);
  const peers = brokers.includes(BASELINE) ? brokers.filter((name) => name !== BASELINE) : [];
  const rows = [["case", "metric", ...brokers, ...peers.map((peer) => `${BASELINE}/${peer}`)]];
  for (const entry of results.cases) {
    entry.metrics.forEach((metric, i) => {
      const values = brokers.map((broker) => entry.results[broker]?.median[metric.key]);
      const own = entry.results[BASELINE]?.median[metric.key];
      rows.push([
        i === 0 ? entry.id : "",
        `${metric.label} ${metric.unit}${metric.higherIsBetter ? "" : " (lower is better)"}`,
        ...values.map(formatValue),
        ...peers.map((peer) => ratio(own, entry.results[peer]?.median[metric.key])),
      ]);
    });
  }
  return align(rows, 2);
}

/**
 * Renders the integrity and CPU table (message scenarios), plus failed rounds.
 *
 * @param results The results.
 * @returns The table text.
 */
export function renderIntegrity(results: BenchResults): string {
  const rows = [[
    "case",
    "broker",
    "expected",
    "lost",
    "duplicated",
    "out of order",
    "unacked",
    "cpu broker",
    "cpu generator",
    "failed rounds",
  ]];
  for (const entry of results.cases) {
    for (const [broker, result] of Object.entries(entry.results)) {
      const integrity = result.integrity;
      const failed = result.rounds.filter((round) => round.error).length;
      if (!integrity && !result.cpu && failed === 0) continue;
      const lostShare = integrity && integrity.expected > 0
        ? ` (${((100 * integrity.lost) / integrity.expected).toFixed(1)}%)`
        : "";
      rows.push([
        entry.id,
        broker,
        integrity ? formatCount(integrity.expected) : "",
        integrity ? `${formatCount(integrity.lost)}${lostShare}` : "",
        integrity ? formatCount(integrity.duplicated) : "",
        integrity ? formatCount(integrity.outOfOrder) : "",
        integrity ? formatCount(integrity.unacked) : "",
        result.cpu ? `${result.cpu.broker.toFixed(0)}%` : "",
        result.cpu ? `${result.cpu.generator.toFixed(0)}%` : "",
        `${failed}/${result.rounds.length}`,
      ]);
    }
  }
  const errors = results.cases.flatMap((entry) =>
    Object.entries(entry.results).flatMap(([broker, result]) =>
      result.rounds.flatMap((round) =>
        round.error ? [`${entry.id} ${broker} round ${round.round}: ${round.error}`] : []
      )
    )
  );
  return [align(rows, 2), ...errors.map((error) => `failed: ${error.split("\n")[0]}`)].join("\n");
}
