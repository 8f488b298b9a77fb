/**
 * A dependency-free SVG bar chart of the medians: one group of horizontal bars per case and metric,
 * every broker of the run side by side in its own colour, each group scaled to its own largest
 * value, with the value printed at the end of each bar (and for a metric with a spread, such as
 * the latency p99, the min-max over the rounds as a whisker and in the label). The header names
 * the date, the machine (CPU model, kernel) and the command.
 *
 * @module
 */

import { formatValue } from "./format.ts";
import type { BenchResults, BrokerCaseResult } from "./results.ts";
import { runHeader } from "./text_table.ts";

/** One colour per known broker, so a broker keeps its colour from run to run. */
export const COLORS: Readonly<Record<string, string>> = {
  perch: "#e4572e",
  "perch-bun": "#f2a541",
  "perch-nats": "#b83b5e",
  "perch-nats3": "#6a2c70",
  "perch-sqlite": "#9d755d",
  "perch-sqlite-batched": "#c9a27e",
  mosquitto: "#4c78a8",
  aedes: "#54a24b",
  "nats-mqtt": "#27aeb9",
  sink: "#999999",
  floor: "#666666",
};
const FALLBACK_COLORS = ["#b279a2", "#72b7b2", "#ff9da6"];
const LEGEND_ITEM_WIDTH = 150;
/** How far past the longest bar a whisker may reach before it is clipped. */
const WHISKER_OVERFLOW = 30;
const WIDTH = 980;
const LABEL_WIDTH = 330;
const BAR_AREA = 520;
const BAR_HEIGHT = 12;
const GROUP_GAP = 10;
/** Height of one header line. */
const LINE = 16;
/** Approximate width of one character of a value label (10px sans-serif). */
const CHAR_WIDTH = 6;

function escapeXml(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;");
}

/** Loss and duplicates next to a headline value, so a fast but lossy bar never looks clean. */
function integrityWarning(result: BrokerCaseResult | undefined): string {
  const integrity = result?.integrity;
  if (!integrity || (integrity.lost === 0 && integrity.duplicated === 0)) return "";
  const share = (count: number) =>
    `${((100 * count) / Math.max(1, integrity.expected)).toFixed(1)}%`;
  const parts = [
    integrity.lost > 0 ? `lost ${share(integrity.lost)}` : "",
    integrity.duplicated > 0 ? `duplicated ${share(integrity.duplicated)}` : "",
  ].filter(Boolean);
  return parts.join(", ");
}

/**
 * Renders the chart.
 *
 * @param results The results.
 * @returns SVG text.
 */
export function renderSvgChart(results: BenchResults): string {
  const brokers = results.brokers.filter((broker) => broker.status === "ok").map((b) => b.name);
  const color = (broker: string, i: number) =>
    COLORS[broker] ?? FALLBACK_COLORS[i % FALLBACK_COLORS.length];
  const header = runHeader(results).split("\n");
  const perRow = Math.max(1, Math.floor((WIDTH - 20) / LEGEND_ITEM_WIDTH));
  const legendTop = 20 + header.length * LINE + 10;
  const legend = brokers.map((broker, i) => {
    const x = 10 + (i % perRow) * LEGEND_ITEM_WIDTH;
    const top = legendTop + Math.floor(i / perRow) * LINE;
    return `<rect x="${x}" y="${top}" width="12" height="12" fill="${color(broker, i)}"/>` +
      `<text x="${x + 18}" y="${top + 10}">${escapeXml(broker)}</text>`;
  });
  const parts: string[] = [];
  let y = legendTop + Math.ceil(brokers.length / perRow) * LINE + 14;
  for (const entry of results.cases) {
    for (const metric of entry.metrics) {
      const values = brokers.map((broker) => entry.results[broker]?.median[metric.key]);
      const spreads = brokers.map((broker) =>
        metric.spread ? entry.results[broker]?.spread?.[metric.key] : undefined
      );
      // Scaled to the medians: one wild round must not shrink every bar; its whisker is clipped.
      const finite = values
        .filter((value): value is number => Number.isFinite(value));
      const largest = finite.length === 0 ? 0 : Math.max(...finite);
      const groupHeight = brokers.length * BAR_HEIGHT;
      const note = metric.higherIsBetter ? "" : ", lower is better";
      parts.push(
        `<text x="${LABEL_WIDTH - 8}" y="${y + groupHeight / 2 + 4}" text-anchor="end">` +
          `${escapeXml(`${entry.id} ${metric.label} (${metric.unit}${note})`)}</text>`,
      );
      values.forEach((value, i) => {
        const barY = y + i * BAR_HEIGHT;
        const width = Number.isFinite(value) && largest > 0 ? (BAR_AREA * value!) / largest : 0;
        const spread = spreads[i];
        const scale = (v: number) =>
          LABEL_WIDTH +
          Math.min(BAR_AREA + WHISKER_OVERFLOW, largest > 0 ? (BAR_AREA * v) / largest : 0);
        const hasSpread = spread !== undefined && Number.isFinite(spread.max);
        const valueX =
          (hasSpread ? Math.max(scale(spread.max), LABEL_WIDTH + width) : LABEL_WIDTH + width) + 4;
        const result = entry.results[brokers[i]];
        const text = result?.unsupported
          ? `n/a: ${result.unsupported}`
          : hasSpread
          ? `${formatValue(value)} (${formatValue(spread.min)}-${formatValue(spread.max)})`
          : formatValue(value);
        const warning = metric === entry.metrics[0] && !result?.unsupported
          ? integrityWarning(result)
          : "";
        parts.push(
          `<rect x="${LABEL_WIDTH}" y="${barY + 1}" width="${width.toFixed(1)}" ` +
            `height="${BAR_HEIGHT - 2}" fill="${color(brokers[i], i)}"/>`,
        );
        if (hasSpread) {
          const middle = barY + BAR_HEIGHT / 2;
          const [from, to] = [scale(spread.min), scale(spread.max)];
          parts.push(
            `<path class="spread" d="M${from.toFixed(1)} ${middle}H${to.toFixed(1)}` +
              `M${from.toFixed(1)} ${barY + 2}V${barY + BAR_HEIGHT - 2}` +
              `M${to.toFixed(1)} ${barY + 2}V${barY + BAR_HEIGHT - 2}"/>`,
          );
        }
        parts.push(
          `<text x="${valueX.toFixed(1)}" y="${barY + BAR_HEIGHT - 2}" class="value">` +
            `${escapeXml(text)}</text>`,
        );
        if (warning) {
          // A separate element at an estimated offset: not every SVG renderer flows a <tspan>.
          parts.push(
            `<text x="${(valueX + text.length * CHAR_WIDTH + 6).toFixed(1)}" ` +
              `y="${barY + BAR_HEIGHT - 2}" class="warning">${escapeXml(warning)}</text>`,
          );
        }
      });
      y += groupHeight + GROUP_GAP;
    }
  }
  const height = y + 20;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" ` +
    `viewBox="0 0 ${WIDTH} ${height}" font-family="sans-serif" font-size="11">`,
    `<style>.value { fill: #333; font-size: 10px; } .warning { fill: #c00; font-size: 10px; } ` +
    `.spread { stroke: #222; stroke-width: 1; fill: none; } .header { fill: #444; }</style>`,
    `<rect width="100%" height="100%" fill="#fff"/>`,
    `<text x="10" y="20" font-size="14" font-weight="bold">Perch benchmarks, medians</text>`,
    ...header.map((line, i) =>
      `<text x="10" y="${20 + (i + 1) * LINE}" class="header">${escapeXml(line)}</text>`
    ),
    ...legend,
    ...parts,
    `</svg>`,
    "",
  ].join("\n");
}
