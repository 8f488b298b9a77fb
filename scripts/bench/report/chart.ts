/**
 * The chart of a run (`chart.svg`), drawn with Vega-Lite and rendered to SVG by Vega in plain
 * JavaScript: no browser, DOM or native canvas. One panel per kind of figure (throughput, latency
 * p99, memory per connection, connect rate), in each one group of bars per case with every broker
 * of the run side by side in its own colour; the p99 has its min-max over the rounds as a whisker.
 * Each bar is labelled with its value, and in red with the share of messages lost or duplicated
 * when there were any, and the load generator's CPU use when it may have limited the figure. The title names the date, the machine (CPU model, kernel), the command and
 * the load generator's largest CPU use.
 *
 * @module
 */

import * as vega from "vega";
import { compile, type TopLevelSpec } from "vega-lite";
import { formatValue } from "./format.ts";
import {
  type BenchResults,
  type BrokerCaseResult,
  type CaseResult,
  GENERATOR_SATURATED_PERCENT,
} from "./results.ts";
import { generatorCpuPeak, runHeader } from "./text_table.ts";
import type { MetricSpec } from "../scenarios/bench_case.ts";

/** One colour per known broker, so a broker keeps its colour from run to run. */
export const COLORS: Readonly<Record<string, string>> = {
  perch: "#e4572e",
  "perch-bun": "#f2a541",
  "perch-handle": "#f07f5c",
  "perch-conn": "#c2452a",
  "perch-nats": "#b83b5e",
  "perch-nats3": "#6a2c70",
  "perch-sqlite": "#9d755d",
  "perch-sqlite-batched": "#c9a27e",
  "nats-mqtt": "#27aeb9",
  mosquitto: "#4c78a8",
  "mosquitto-nodelay": "#9ecae9",
  aedes: "#54a24b",
  sink: "#999999",
  floor: "#666666",
};
const FALLBACK_COLORS = ["#b279a2", "#72b7b2", "#ff9da6"];

/** What the chart calls each known broker, in the order brokers stand side by side. */
export const BROKER_LABELS: Readonly<Record<string, string>> = {
  perch: "Perch on Deno",
  "perch-bun": "Perch on Bun",
  "perch-handle": "Perch on Deno, native handle",
  "perch-conn": "Perch on Deno, Deno.Conn",
  "nats-mqtt": "NATS MQTT",
  mosquitto: "Mosquitto",
  "mosquitto-nodelay": "Mosquitto, TCP_NODELAY",
  aedes: "Aedes",
  "perch-nats": "Perch on NATS",
  "perch-nats3": "Perch on NATS, 3 front-ends",
  "perch-sqlite": "Perch on SQLite",
  "perch-sqlite-batched": "Perch on SQLite, batched sync",
  sink: "sink (generator ceiling)",
  floor: "floor (bare Deno server)",
};

/** Height of one bar in pixels. */
const BAR_STEP = 13;
/** Width of every panel's plot area in pixels. */
const PLOT_WIDTH = 560;
/** How far past the longest bar a whisker may reach before it is cut (its label stays true). */
const WHISKER_ROOM = 1.3;

/** One kind of figure: a panel of the chart. */
interface Panel {
  /** Its title. */
  title: string;
  /** Whether a case's metric belongs in it. */
  holds(entry: CaseResult, metric: MetricSpec): boolean;
  /** Whether its bars get the min-max over the rounds as a whisker. */
  whiskers?: boolean;
}

const PANELS: Panel[] = [
  {
    title: "Throughput, delivered msg/s (higher is better)",
    holds: (entry, metric) => entry.scenario !== "latency" && metric.unit === "msg/s",
  },
  {
    title: "Latency p99, ms: median, whisker min-max of the rounds (lower is better)",
    // By key: results of runs before the spread was recorded have no `spread` on their metrics.
    holds: (entry, metric) => entry.scenario === "latency" && metric.key === "p99",
    whiskers: true,
  },
  {
    title: "Memory per idle connection, KiB of broker RSS (lower is better)",
    holds: (_entry, metric) => metric.unit === "KiB",
  },
  {
    title: "Connect rate, conn/s (higher is better)",
    holds: (_entry, metric) => metric.unit === "conn/s",
  },
];

/** One bar of a panel, as the chart's data. */
interface Bar {
  /** The case (and metric, when the case has several in the panel): one group of bars. */
  group: string;
  /** The broker's label. */
  broker: string;
  /** The median, or null when there is none. */
  value: number | null;
  /** Whisker start (the least round), or null. */
  low: number | null;
  /** Whisker end (the largest round, cut at the case's limit), or null. */
  high: number | null;
  /** Where the value label starts. */
  labelAt: number;
  /** The value label. */
  label: string;
  /** Whether messages were lost or duplicated or the generator was busy (a red label). */
  warn: boolean;
}

/**
 * What may be wrong with a figure: loss and duplicates as shares of the messages sent, and a load
 * generator busy enough to limit it, e.g. "72% lost, generator 99%"; empty when nothing is.
 *
 * @param result A broker's result for a case.
 * @returns The text.
 */
function warningNote(result: BrokerCaseResult | undefined): string {
  const integrity = result?.integrity;
  const share = (count: number) => {
    const percent = (100 * count) / Math.max(1, integrity?.expected ?? 1);
    return `${percent < 1 ? percent.toFixed(1) : percent.toFixed(0)}%`;
  };
  const generator = result?.cpu?.generator ?? 0;
  return [
    integrity && integrity.lost > 0 ? `${share(integrity.lost)} lost` : "",
    integrity && integrity.duplicated > 0 ? `${share(integrity.duplicated)} duplicated` : "",
    generator > GENERATOR_SATURATED_PERCENT ? `generator ${generator.toFixed(0)}%` : "",
  ].filter(Boolean).join(", ");
}

/**
 * The brokers that ran, in chart order: the known ones as in {@link BROKER_LABELS}, then others.
 *
 * @param results The results.
 * @returns Broker names.
 */
function chartBrokers(results: BenchResults): string[] {
  const ran = results.brokers.filter((broker) => broker.status === "ok").map((b) => b.name);
  const known = Object.keys(BROKER_LABELS);
  const rank = (name: string) => known.includes(name) ? known.indexOf(name) : known.length;
  return ran.map((name, i) => ({ name, i })).sort((a, b) =>
    rank(a.name) - rank(b.name) || a.i - b.i
  ).map(({ name }) => name);
}

function panelBars(results: BenchResults, panel: Panel, brokers: string[]): Bar[] {
  const picked = results.cases.flatMap((entry) =>
    entry.metrics.filter((metric) => panel.holds(entry, metric)).map((metric, _, all) => ({
      entry,
      metric,
      group: all.length > 1 ? `${entry.id}, ${metric.label}` : entry.id,
    }))
  );
  return picked.flatMap(({ entry, metric, group }) => {
    // Each case is scaled to its largest median, so one wild round cannot shrink every bar of it:
    // its whisker is cut at the limit (its label stays true).
    const medians = brokers.map((broker) => entry.results[broker]?.median[metric.key])
      .filter((value): value is number => Number.isFinite(value));
    const limit = Math.max(0, ...medians) * WHISKER_ROOM;
    return brokers.flatMap((broker): Bar[] => {
      const result = entry.results[broker];
      if (result === undefined) return [];
      const median = result.median[metric.key];
      const value = Number.isFinite(median) ? median : null;
      const spread = panel.whiskers ? result.spread?.[metric.key] : undefined;
      const hasSpread = spread !== undefined && Number.isFinite(spread.min) &&
        Number.isFinite(spread.max);
      const note = metric === entry.metrics[0] ? warningNote(result) : "";
      const text = result.unsupported !== undefined
        ? `n/a: ${result.unsupported}`
        : hasSpread
        ? `${formatValue(value ?? NaN)} (${formatValue(spread.min)}-${formatValue(spread.max)})`
        : formatValue(value ?? NaN);
      return [{
        group,
        broker: BROKER_LABELS[broker] ?? broker,
        value,
        low: hasSpread ? Math.min(spread.min, limit) : null,
        high: hasSpread ? Math.min(spread.max, limit) : null,
        labelAt: Math.min(limit, Math.max(value ?? 0, hasSpread ? spread.max : 0)),
        label: note === "" ? text : `${text}, ${note}`,
        warn: note !== "",
      }];
    });
  });
}

/**
 * The Vega-Lite specification of the chart.
 *
 * @param results The results.
 * @returns The specification.
 */
export function chartSpec(results: BenchResults): TopLevelSpec {
  const brokers = chartBrokers(results);
  const labels = brokers.map((broker) => BROKER_LABELS[broker] ?? broker);
  const colors = brokers.map((broker, i) =>
    COLORS[broker] ?? FALLBACK_COLORS[i % FALLBACK_COLORS.length]
  );
  const peak = generatorCpuPeak(results);
  const subtitle = [
    ...runHeader(results).split("\n"),
    peak === undefined
      ? "load generator CPU not recorded"
      : `load generator: at most ${peak.toFixed(0)}% of its core in any case (median per case ` +
        `and broker)`,
    "each case's bars are scaled to its largest median",
    "red label: messages lost or duplicated (share of those sent, summed over the rounds), or a " +
    `load generator above ${GENERATOR_SATURATED_PERCENT}% of its core (it may have limited the figure)`,
  ];
  const panels = PANELS.map((panel) => ({ panel, bars: panelBars(results, panel, brokers) }))
    .filter(({ bars }) => bars.length > 0);
  const empty = {
    data: { values: [{ text: "no figures in this run" }] },
    mark: { type: "text", align: "left" },
    encoding: { text: { field: "text" } },
  };
  return {
    title: {
      text: "Perch benchmarks, medians",
      subtitle,
      anchor: "start",
      fontSize: 15,
      subtitleFontSize: 11,
      subtitleColor: "#444",
    },
    background: "white",
    padding: 10,
    config: { font: "sans-serif", view: { stroke: null }, concat: { spacing: 24 } },
    resolve: { scale: { x: "independent" } },
    vconcat: panels.length === 0 ? [empty] : panels.map(({ panel, bars }) => ({
      title: { text: panel.title, anchor: "start", fontSize: 12, offset: 8 },
      data: { values: bars },
      facet: {
        row: {
          field: "group",
          type: "nominal",
          // In the order of the run's cases (a facet's null sort still sorts).
          sort: [...new Set(bars.map((bar) => bar.group))],
          title: null,
          header: {
            labelOrient: "top",
            labelAnchor: "start",
            labelAngle: 0,
            labelFontSize: 11,
            labelFontWeight: "bold",
            labelPadding: 2,
          },
        },
      },
      spacing: 6,
      // Each case lists the brokers that ran it (the cluster runs two cases only), in chart order.
      resolve: { scale: { x: "independent", y: "independent" } },
      spec: {
        width: PLOT_WIDTH,
        height: { step: BAR_STEP },
        encoding: {
          y: {
            field: "broker",
            type: "nominal",
            title: null,
            sort: labels,
            scale: { paddingInner: 0.15 },
            axis: { ticks: false, domain: false, labelFontSize: 10, labelLimit: 260 },
          },
          color: {
            field: "broker",
            type: "nominal",
            scale: { domain: labels, range: colors },
            legend: { title: null, orient: "top", direction: "horizontal", columns: 6 },
          },
        },
        layer: [
          {
            mark: { type: "bar" },
            encoding: {
              x: { field: "value", type: "quantitative", scale: { nice: false }, axis: null },
            },
          },
          {
            mark: { type: "rule", color: "#222" },
            transform: [{ filter: "datum.low != null" }],
            encoding: {
              x: { field: "low", type: "quantitative" },
              x2: { field: "high" },
              color: { value: "#222" },
            },
          },
          {
            mark: { type: "text", align: "left", baseline: "middle", dx: 3, fontSize: 9 },
            encoding: {
              x: { field: "labelAt", type: "quantitative" },
              text: { field: "label" },
              color: { condition: { test: "datum.warn", value: "#c00" }, value: "#333" },
            },
          },
        ],
      },
    })),
  } as TopLevelSpec;
}

/**
 * Vega's text width without a canvas is 0.8 em per character, about 1.5 times what sans-serif
 * text takes, so every label and the title would get that much empty room: 0.6 em is closer
 * (digits are 0.56 em in the common sans-serif faces) and still errs on the wide side.
 */
const EM_PER_CHARACTER = 0.6;

/** Vega's text measure (exported by `vega`, missing from its type declarations). */
interface TextMetrics {
  /** Font size of a text item. */
  height(item: object): number;
  /** Width of a text item's text (or of `text`), in pixels. */
  width(item: object, text?: unknown): number;
}
const textMetrics = (vega as unknown as { textMetrics: TextMetrics }).textMetrics;

function estimateTextWidth(item: object, text?: unknown): number {
  const value = text ?? (item as { text?: unknown }).text ?? "";
  const longest = Array.isArray(value)
    ? Math.max(0, ...value.map((line) => String(line).length))
    : String(value).length;
  return Math.ceil(EM_PER_CHARACTER * longest * textMetrics.height(item));
}

/**
 * Renders the chart.
 *
 * @param results The results.
 * @returns SVG text.
 */
export async function renderChart(results: BenchResults): Promise<string> {
  const view = new vega.View(vega.parse(compile(chartSpec(results)).spec), { renderer: "none" });
  // Vega keeps its text measure in a shared object: swapped for this render only.
  const measure = textMetrics.width;
  textMetrics.width = estimateTextWidth;
  try {
    return `${await view.toSVG()}\n`;
  } finally {
    textMetrics.width = measure;
    view.finalize();
  }
}
