/**
 * Unit tests of the benchmark's report side: the spread (min-max over rounds) next to the latency
 * p99 median, cases a broker cannot run reported as n/a, the run header (date, machine, command)
 * of the tables and the chart, every broker's colour, the latency rounds default, and the NATS
 * MQTT gateway's generated config. No broker is started.
 */

import assert from "node:assert/strict";
import { parseBenchArgs } from "../../scripts/bench/cli.ts";
import { DEFAULT_BROKERS } from "../../scripts/bench/brokers/launchers.ts";
import { NATS_MQTT_UNSUPPORTED, natsMqttConfig } from "../../scripts/bench/brokers/nats_mqtt.ts";
import { benchCommand } from "../../scripts/bench/run_bench.ts";
import {
  type BenchResults,
  type RoundResult,
  summarizeRounds,
} from "../../scripts/bench/report/results.ts";
import { COLORS, renderSvgChart } from "../../scripts/bench/report/svg_chart.ts";
import {
  renderIntegrity,
  renderMedians,
  renderTables,
  renderVariantShares,
} from "../../scripts/bench/report/text_table.ts";
import type { MetricSpec } from "../../scripts/bench/scenarios/bench_case.ts";

const P99: MetricSpec = {
  key: "p99",
  label: "p99",
  unit: "ms",
  higherIsBetter: false,
  spread: true,
};

function latencyRounds(p99s: number[]): RoundResult[] {
  return p99s.map((p99, i) => ({ round: i + 1, measurement: { metrics: { p99 }, notes: [] } }));
}

function results(): BenchResults {
  return {
    schema: 1,
    startedAt: "2026-12-06T22:00:00.000Z",
    finishedAt: "2026-12-06T22:10:00.000Z",
    args: ["--brokers", "mosquitto,nats-mqtt,perch,perch-bun"],
    command: "deno task bench --brokers mosquitto,nats-mqtt,perch,perch-bun",
    settings: { rounds: 3, latencyRounds: 5 },
    machine: { cpus: 2, cpuModel: "AMD EPYC", os: "linux 6.18.44", deno: "2.9.6" },
    notes: [],
    brokers: ["mosquitto", "nats-mqtt", "perch", "perch-bun"].map((name) => ({
      name,
      status: "ok" as const,
    })),
    cases: [
      {
        id: "shared/qos0/16B",
        scenario: "shared",
        params: {},
        metrics: [{ key: "delivered", label: "delivered", unit: "msg/s", higherIsBetter: true }],
        results: {
          mosquitto: summarizeRounds([{
            round: 1,
            measurement: { metrics: { delivered: 1e4 }, notes: [] },
          }]),
          "nats-mqtt": summarizeRounds([{ round: 1, unsupported: "no $share" }]),
          perch: summarizeRounds([{
            round: 1,
            measurement: { metrics: { delivered: 4e4 }, notes: [] },
          }]),
        },
      },
      {
        id: "latency/qos1",
        scenario: "latency",
        params: {},
        metrics: [P99],
        results: {
          mosquitto: summarizeRounds(latencyRounds([4, 2, 9, 3, 5])),
          "nats-mqtt": summarizeRounds(latencyRounds([1, 2, 3, 4, 5])),
          perch: summarizeRounds(latencyRounds([6, 12, 8, 7, 30])),
          "perch-bun": summarizeRounds(latencyRounds([3, 3, 3, 3, 3])),
        },
      },
    ],
  };
}

Deno.test("summarizeRounds gives the median of the rounds and their min-max", () => {
  const summary = summarizeRounds([...latencyRounds([6, 12, 8, 7, 30]), { round: 6, error: "x" }]);
  assert.equal(summary.median.p99, 8);
  assert.deepEqual(summary.spread?.p99, { min: 6, max: 30, rounds: 5 });
  assert.equal(summary.unsupported, undefined);
});

Deno.test("the medians table shows the latency p99 with its min-max and a perch/nats-mqtt ratio", () => {
  const table = renderMedians(results());
  const header = table.split("\n")[0];
  assert.match(
    header,
    /mosquitto\s+nats-mqtt\s+perch\s+perch-bun\s+perch\/mosquitto\s+perch\/nats-mqtt$/,
  );
  const p99 = table.split("\n").find((line) => line.startsWith("latency/qos1"))!;
  assert.match(p99, /median \(min-max of rounds\)/);
  assert.match(p99, /4\.00 \(2\.00-9\.00\)\s+3\.00 \(1\.00-5\.00\)\s+8\.00 \(6\.00-30\.0\)/);
  // Ratios of the medians: 8 / 4 and 8 / 3.
  assert.match(p99, /2\.00x\s+2\.67x$/);
});

Deno.test("the variants table names each case's headline figure (a latency p99, not a rate)", () => {
  const table = renderVariantShares(results());
  // perch-bun's p99 median is 3 against Perch's 8.
  assert.match(table, /^latency\/qos1\s+p99 ms \(lower is better\)\s+38%$/m);
});

Deno.test("a case a broker cannot run is n/a, with its reason under the integrity table", () => {
  const shared = renderMedians(results()).split("\n").find((line) => line.startsWith("shared"))!;
  assert.match(shared, /10\.0k\s+n\/a\s+40\.0k\s+n\/a\s+4\.00x\s+n\/a$/);
  assert.match(renderIntegrity(results()), /^n\/a: shared\/qos0\/16B nats-mqtt: no \$share$/m);
});

Deno.test("the tables and the chart name the date, the machine and the command", () => {
  const tables = renderTables(results());
  assert.match(tables, /^2026-12-06 22:00 UTC, 3 rounds \(latency cases 5\), medians$/m);
  assert.match(tables, /^2 x AMD EPYC, Linux 6\.18\.44, deno 2\.9\.6$/m);
  assert.match(tables, /^deno task bench --brokers mosquitto,nats-mqtt,perch,perch-bun$/m);
  const svg = renderSvgChart(results());
  assert.match(svg, /^<svg /);
  assert.match(svg, />2 x AMD EPYC, Linux 6\.18\.44, deno 2\.9\.6</);
  assert.match(svg, />deno task bench --brokers mosquitto,nats-mqtt,perch,perch-bun</);
  assert.match(svg, />2026-12-06 22:00 UTC/);
});

Deno.test("the chart shows every broker in its own colour, the p99 spread and n/a cases", () => {
  const svg = renderSvgChart(results());
  for (const broker of ["mosquitto", "nats-mqtt", "perch", "perch-bun"]) {
    assert.ok(svg.includes(`fill="${COLORS[broker]}"/><text`), `${broker} in the legend`);
    assert.ok(svg.includes(`>${broker}</text>`), broker);
  }
  const colours = new Set(Object.values(COLORS));
  assert.equal(colours.size, Object.keys(COLORS).length, "one colour per broker");
  // One whisker per broker of the p99 group.
  assert.equal(svg.match(/class="spread"/g)?.length, 4);
  assert.match(svg, />8\.00 \(6\.00-30\.0\)</);
  assert.match(svg, />n\/a: no \$share</);
});

Deno.test("latency cases run at least 5 rounds unless told, 1 with --quick", () => {
  assert.equal(parseBenchArgs([])!.latencyRounds, 5);
  assert.equal(parseBenchArgs(["--rounds", "3"])!.latencyRounds, 5);
  assert.equal(parseBenchArgs(["--rounds", "7"])!.latencyRounds, 7);
  assert.equal(parseBenchArgs(["--latency-rounds", "2"])!.latencyRounds, 2);
  assert.equal(parseBenchArgs(["--quick"])!.latencyRounds, 1);
  assert.throws(() => parseBenchArgs(["--latency-rounds", "0"]), /--latency-rounds/);
});

Deno.test("nats-mqtt is a default broker, configured with MQTT, JetStream and a server name", () => {
  assert.ok((DEFAULT_BROKERS as readonly string[]).includes("nats-mqtt"));
  const config = natsMqttConfig("127.0.0.1", "/tmp/store dir");
  assert.match(config, /^server_name: \S+$/m);
  assert.match(config, /^jetstream \{ store_dir: "\/tmp\/store dir" \}$/m);
  assert.match(config, /^mqtt \{ listen: "127\.0\.0\.1:-1" \}$/m);
  assert.deepEqual(Object.keys(NATS_MQTT_UNSUPPORTED), ["shared/qos0/16B", "shared/qos1/16B"]);
});

Deno.test("benchCommand quotes only what a shell would split", () => {
  assert.equal(
    benchCommand(["--brokers", "perch,nats-mqtt", "--perch-flags=--cpu-prof --x"]),
    "deno task bench --brokers perch,nats-mqtt '--perch-flags=--cpu-prof --x'",
  );
});
