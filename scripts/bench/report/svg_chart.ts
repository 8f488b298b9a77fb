/**
 * A dependency-free SVG bar chart of the medians: one group of horizontal bars per case and metric,
 * each group scaled to its own largest value, with the value printed at the end of each bar.
 *
 * @module
 */

import { formatValue } from "./format.ts";
import type { BenchResults, BrokerCaseResult } from "./results.ts";

const COLORS: Record<string, string> = {
  perch: "#e4572e",
  "perch-bun": "#f2a541",
  mosquitto: "#4c78a8",
  aedes: "#54a24b",
};
const FALLBACK_COLORS = ["#b279a2", "#72b7b2", "#9d755d"];
const WIDTH = 980;
const LABEL_WIDTH = 330;
const BAR_AREA = 520;
const BAR_HEIGHT = 12;
const GROUP_GAP = 10;
const TOP = 60;
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
  const parts: string[] = [];
  let y = TOP;
  for (const entry of results.cases) {
    for (const metric of entry.metrics) {
      const values = brokers.map((broker) => entry.results[broker]?.median[metric.key]);
      const finite = values.filter((value): value is number => Number.isFinite(value));
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
        const valueX = LABEL_WIDTH + width + 4;
        const text = formatValue(value);
        const warning = metric === entry.metrics[0]
          ? integrityWarning(entry.results[brokers[i]])
          : "";
        parts.push(
          `<rect x="${LABEL_WIDTH}" y="${barY + 1}" width="${width.toFixed(1)}" ` +
            `height="${BAR_HEIGHT - 2}" fill="${color(brokers[i], i)}"/>`,
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
  const legend = brokers.map((broker, i) =>
    `<rect x="${LABEL_WIDTH + i * 140}" y="30" width="12" height="12" fill="${
      color(broker, i)
    }"/>` +
    `<text x="${LABEL_WIDTH + i * 140 + 18}" y="40">${escapeXml(broker)}</text>`
  );
  const height = y + 20;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" ` +
    `viewBox="0 0 ${WIDTH} ${height}" font-family="sans-serif" font-size="11">`,
    `<style>.value { fill: #333; font-size: 10px; } .warning { fill: #c00; font-size: 10px; }</style>`,
    `<rect width="100%" height="100%" fill="#fff"/>`,
    `<text x="10" y="20" font-size="14" font-weight="bold">` +
    `${escapeXml(`Perch benchmarks, medians (${results.startedAt})`)}</text>`,
    ...legend,
    ...parts,
    `</svg>`,
    "",
  ].join("\n");
}
