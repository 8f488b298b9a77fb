/**
 * The text tables printed at the end of a run (and saved as `table.txt`): medians per case with the
 * Perch/peer ratios, Perch's variants (Bun, SQLite, NATS) as a share of Perch on Deno, then
 * integrity (loss, duplicates, order) and CPU use per case and broker.
 *
 * @module
 */

import { formatCount, formatValue } from "./format.ts";
import {
  type BenchResults,
  type BrokerCaseResult,
  GENERATOR_SATURATED_PERCENT,
} from "./results.ts";
import type { MetricSpec } from "../scenarios/bench_case.ts";

const BASELINE = "perch";
/** Perch's own variants (`perch-nats`, ...): compared with Perch, not Perch with them. */
const isVariant = (name: string) => name.startsWith(`${BASELINE}-`);

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
 * One broker's figure for a metric: the median, and for a metric with a spread the min-max over
 * the rounds after it, e.g. "11.8 (8.59-15.2)"; "n/a" when not measured.
 *
 * @param result The broker's result for the case, if any.
 * @param metric The metric.
 * @returns The cell text.
 */
export function formatCell(result: BrokerCaseResult | undefined, metric: MetricSpec): string {
  const value = formatValue(result?.median[metric.key]);
  const spread = result?.spread?.[metric.key];
  if (!metric.spread || spread === undefined || !Number.isFinite(spread.min)) return value;
  return `${value} (${formatValue(spread.min)}-${formatValue(spread.max)})`;
}

/**
 * The load generator's largest CPU use over a whole run: the largest of every case's and broker's
 * median over the rounds, in percent of one core.
 *
 * @param results The results.
 * @returns The percentage, or undefined when none was recorded.
 */
export function generatorCpuPeak(results: BenchResults): number | undefined {
  const values = results.cases.flatMap((entry) =>
    Object.values(entry.results).flatMap((result) => result.cpu ? [result.cpu.generator] : [])
  );
  return values.length === 0 ? undefined : Math.max(...values);
}

/**
 * Renders the medians table. Under each case's figures a line gives the load generator's CPU use
 * next to each broker (median over the rounds, percent of its core): far below 100% shows the
 * generator did not limit that broker's figures; above {@link GENERATOR_SATURATED_PERCENT} it may
 * have, and the figure gets a `!`.
 *
 * @param results The results.
 * @returns The table text.
 */
export function renderMedians(results: BenchResults): string {
  const brokers = results.brokers.filter((broker) => broker.status === "ok").map((b) => b.name);
  const peers = brokers.includes(BASELINE)
    ? brokers.filter((name) => name !== BASELINE && !isVariant(name))
    : [];
  const rows = [["case", "metric", ...brokers, ...peers.map((peer) => `${BASELINE}/${peer}`)]];
  for (const entry of results.cases) {
    entry.metrics.forEach((metric, i) => {
      const own = entry.results[BASELINE]?.median[metric.key];
      rows.push([
        i === 0 ? entry.id : "",
        `${metric.label} ${metric.unit}${metric.higherIsBetter ? "" : " (lower is better)"}${
          metric.spread ? ", median (min-max of rounds)" : ""
        }`,
        ...brokers.map((broker) => formatCell(entry.results[broker], metric)),
        ...peers.map((peer) => ratio(own, entry.results[peer]?.median[metric.key])),
      ]);
    });
    if (brokers.some((broker) => entry.results[broker]?.cpu)) {
      rows.push([
        "",
        "load generator cpu (% of its core)",
        ...brokers.map((broker) => {
          const cpu = entry.results[broker]?.cpu?.generator;
          if (cpu === undefined) return "";
          return `${cpu.toFixed(0)}%${cpu > GENERATOR_SATURATED_PERCENT ? "!" : ""}`;
        }),
        ...peers.map(() => ""),
      ]);
    }
  }
  return align(rows, 2);
}

/**
 * Renders Perch's variants (on Bun, on SQLite, clustered on NATS) as a share of Perch on Deno
 * with the memory backbone in the same run, for the cases they ran; empty when there are none.
 *
 * @param results The results.
 * @returns The table text.
 */
export function renderVariantShares(results: BenchResults): string {
  const variants = results.brokers
    .filter((broker) => broker.status === "ok" && isVariant(broker.name))
    .map((broker) => broker.name);
  const cases = results.cases.filter((entry) =>
    entry.results[BASELINE] && variants.some((variant) => entry.results[variant])
  );
  if (cases.length === 0) return "";
  const rows = [["case", "metric", ...variants.map((variant) => `${variant}/${BASELINE}`)]];
  for (const entry of cases) {
    const metric = entry.metrics[0];
    const own = entry.results[BASELINE]?.median[metric.key];
    rows.push([
      entry.id,
      `${metric.label} ${metric.unit}${metric.higherIsBetter ? "" : " (lower is better)"}`,
      ...variants.map((variant) => {
        const value = entry.results[variant]?.median[metric.key];
        if (value === undefined || !own) return "n/a";
        return `${Math.round((100 * value) / own)}%`;
      }),
    ]);
  }
  return `Perch's variants, as a share of Perch on Deno with the memory backbone (each case's ` +
    `headline figure):\n${align(rows, 2)}`;
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
  const unsupported = results.cases.flatMap((entry) =>
    Object.entries(entry.results).flatMap(([broker, result]) =>
      result.unsupported ? [`${entry.id} ${broker}: ${result.unsupported}`] : []
    )
  );
  return [
    align(rows, 2),
    ...errors.map((error) => `failed: ${error.split("\n")[0]}`),
    ...unsupported.map((line) => `n/a: ${line}`),
  ].join("\n");
}

/**
 * What the run was: when, on what machine, with which command (the chart's header too).
 *
 * @param results The results.
 * @returns One line per fact.
 */
export function runHeader(results: BenchResults): string {
  const machine = results.machine;
  const cpu = machine.cpuModel === undefined
    ? `${machine.cpus} CPUs`
    : `${machine.cpus} x ${machine.cpuModel}`;
  const os = String(machine.os ?? "").replace(/^linux /, "Linux ");
  const pinning = machine.pinning === undefined ? "" : `; ${machine.pinning}`;
  const rounds = results.settings.latencyRounds !== undefined &&
      results.settings.latencyRounds !== results.settings.rounds
    ? `${results.settings.rounds} rounds (latency cases ${results.settings.latencyRounds})`
    : `${results.settings.rounds} round${results.settings.rounds === 1 ? "" : "s"}`;
  return [
    `${results.startedAt.slice(0, 16).replace("T", " ")} UTC, ${rounds}, medians`,
    `${cpu}, ${os}, deno ${machine.deno}${pinning}`,
    results.command ?? `deno task bench ${results.args.join(" ")}`.trimEnd(),
  ].join("\n");
}

/**
 * Every table of a run, as printed and saved: what the run was, medians, Perch's variants,
 * integrity.
 *
 * @param results The results.
 * @returns The text.
 */
export function renderTables(results: BenchResults): string {
  return [
    runHeader(results),
    renderMedians(results),
    renderVariantShares(results),
    renderIntegrity(results),
  ].filter((table) => table !== "").join("\n\n");
}
