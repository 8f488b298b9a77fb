/**
 * Unit tests of the benchmark's report side: the spread (min-max over rounds) next to the latency
 * p99 median, cases a broker cannot run reported as n/a, the run header (date, machine, command)
 * of the tables and the chart, the chart's panels, cases, brokers and loss marks, the load
 * generator's CPU use per case, the latency rounds default, and the generated configs of the NATS
 * MQTT gateway and of Mosquitto with and without TCP_NODELAY. No broker is started.
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
import { mosquittoConfig } from "../../scripts/bench/brokers/mosquitto.ts";
import { BROKER_LABELS, COLORS, renderChart } from "../../scripts/bench/report/chart.ts";
import {
  generatorCpuPeak,
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
  return p99s.map((p99, i) => ({
    round: i + 1,
    measurement: { metrics: { p99 }, cpu: { broker: 20, generator: 10 + i }, notes: [] },
  }));
}

const DELIVERED: MetricSpec = {
  key: "delivered",
  label: "delivered",
  unit: "msg/s",
  higherIsBetter: true,
};

function delivered(rate: number, lost = 0, generator = 31): RoundResult[] {
  return [{
    round: 1,
    measurement: {
      metrics: { delivered: rate },
      integrity: {
        published: 1000,
        expected: 1000,
        delivered: 1000 - lost,
        lost,
        duplicated: 0,
        outOfOrder: 0,
        unacked: 0,
      },
      cpu: { broker: 90, generator },
      notes: [],
    },
  }];
}

function results(): BenchResults {
  return {
    schema: 1,
    startedAt: "2026-12-06T22:00:00.000Z",
    finishedAt: "2026-12-06T22:10:00.000Z",
    args: ["--brokers", "mosquitto,mosquitto-nodelay,nats-mqtt,perch,perch-bun"],
    command: "deno task bench --brokers mosquitto,mosquitto-nodelay,nats-mqtt,perch,perch-bun",
    settings: { rounds: 3, latencyRounds: 5 },
    machine: { cpus: 2, cpuModel: "AMD EPYC", os: "linux 6.18.44", deno: "2.9.6" },
    notes: [],
    brokers: ["mosquitto", "mosquitto-nodelay", "nats-mqtt", "perch", "perch-bun"].map((name) => ({
      name,
      status: "ok" as const,
    })),
    cases: [
      {
        id: "fan-in/qos1/16B",
        scenario: "fan-in",
        params: {},
        metrics: [DELIVERED],
        results: {
          mosquitto: summarizeRounds(delivered(3500, 720)),
          "mosquitto-nodelay": summarizeRounds(delivered(3600, 700, 95)),
          "nats-mqtt": summarizeRounds(delivered(16e3)),
          perch: summarizeRounds(delivered(20e3)),
          "perch-bun": summarizeRounds(delivered(28e3)),
        },
      },
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
    new RegExp(
      String.raw`mosquitto\s+mosquitto-nodelay\s+nats-mqtt\s+perch\s+perch-bun\s+` +
        String.raw`perch/mosquitto\s+perch/mosquitto-nodelay\s+perch/nats-mqtt$`,
    ),
  );
  const p99 = table.split("\n").find((line) => line.startsWith("latency/qos1"))!;
  assert.match(p99, /median \(min-max of rounds\)/);
  assert.match(p99, /4\.00 \(2\.00-9\.00\)\s+n\/a\s+3\.00 \(1\.00-5\.00\)\s+8\.00 \(6\.00-30\.0\)/);
  // Ratios of the medians: 8 / 4 and 8 / 3.
  assert.match(p99, /2\.00x\s+n\/a\s+2\.67x$/);
});

Deno.test("the medians table gives the load generator's CPU use next to every broker's figures", () => {
  const lines = renderMedians(results()).split("\n");
  const fanIn = lines.findIndex((line) => line.startsWith("fan-in/qos1/16B"));
  // Under the case's figure, in the brokers' columns; above 90% of its core with a "!".
  assert.match(
    lines[fanIn + 1],
    /^\s+load generator cpu \(% of its core\)\s+31%\s+95%!\s+31%\s+31%\s+31%$/,
  );
  const latency = lines.findIndex((line) => line.startsWith("latency/qos1"));
  assert.match(lines[latency + 1], /load generator cpu \(% of its core\)\s+12%\s+12%\s+12%\s+12%$/);
  // The shared case recorded no CPU use: no line, nothing made up.
  const shared = lines.findIndex((line) => line.startsWith("shared/qos0/16B"));
  assert.doesNotMatch(lines[shared + 1], /load generator/);
  assert.equal(generatorCpuPeak(results()), 95);
});

Deno.test("the variants table names each case's headline figure (a latency p99, not a rate)", () => {
  const table = renderVariantShares(results());
  // perch-bun's p99 median is 3 against Perch's 8.
  assert.match(table, /^latency\/qos1\s+p99 ms \(lower is better\)\s+38%$/m);
});

Deno.test("a case a broker cannot run is n/a, with its reason under the integrity table", () => {
  const shared = renderMedians(results()).split("\n").find((line) => line.startsWith("shared"))!;
  assert.match(shared, /10\.0k\s+n\/a\s+n\/a\s+40\.0k\s+n\/a\s+4\.00x\s+n\/a\s+n\/a$/);
  assert.match(renderIntegrity(results()), /^n\/a: shared\/qos0\/16B nats-mqtt: no \$share$/m);
});

Deno.test("the tables and the chart name the date, the machine and the command", async () => {
  const tables = renderTables(results());
  const command = "deno task bench --brokers mosquitto,mosquitto-nodelay,nats-mqtt,perch,perch-bun";
  assert.match(tables, /^2026-12-06 22:00 UTC, 3 rounds \(latency cases 5\), medians$/m);
  assert.match(tables, /^2 x AMD EPYC, Linux 6\.18\.44, deno 2\.9\.6$/m);
  assert.ok(tables.split("\n").includes(command));
  const svg = await renderChart(results());
  assert.match(svg, /^<svg /);
  assert.match(svg, /<\/svg>\n$/);
  assert.match(svg, />Perch benchmarks, medians</);
  assert.match(svg, />2 x AMD EPYC, Linux 6\.18\.44, deno 2\.9\.6</);
  assert.ok(svg.includes(`>${command}<`));
  assert.match(svg, />2026-12-06 22:00 UTC/);
  assert.match(svg, />load generator: at most 95% of its core in any case/);
});

/** The texts of an SVG's `<text>` elements. */
function texts(svg: string): string[] {
  return [...svg.matchAll(/<text[^>]*>([^<]*)<\/text>/g)].map((match) => match[1]);
}

Deno.test("the chart has a panel per kind of figure, every case, every broker in its colour", async () => {
  const svg = await renderChart(results());
  const shown = texts(svg);
  for (const panel of ["Throughput, delivered msg/s", "Latency p99, ms"]) {
    assert.ok(shown.some((text) => text.startsWith(panel)), panel);
  }
  assert.ok(!shown.some((text) => text.startsWith("Memory per idle connection")), "no empty panel");
  for (const id of ["fan-in/qos1/16B", "shared/qos0/16B", "latency/qos1"]) {
    assert.ok(shown.includes(id), id);
  }
  for (const broker of ["mosquitto", "mosquitto-nodelay", "nats-mqtt", "perch", "perch-bun"]) {
    assert.ok(shown.includes(BROKER_LABELS[broker]), `${broker} named`);
    assert.ok(
      svg.includes(`broker: ${BROKER_LABELS[broker]}" role="graphics-symbol" `) &&
        new RegExp(`broker: ${BROKER_LABELS[broker]}"[^>]*fill="${COLORS[broker]}"`).test(svg),
      `${broker} drawn in its colour`,
    );
  }
  const colours = new Set(Object.values(COLORS));
  assert.equal(colours.size, Object.keys(COLORS).length, "one colour per broker");
});

Deno.test("the chart shows the p99 spread, n/a cases, lost messages and a busy generator", async () => {
  const svg = await renderChart(results());
  const shown = texts(svg);
  // One whisker per broker with p99 rounds.
  assert.equal(svg.match(/aria-roledescription="rule mark"/g)?.length, 4);
  assert.ok(shown.includes("8.00 (6.00-30.0)"));
  assert.ok(shown.includes("n/a: no $share"));
  // Mosquitto's loss is in its label, in red; the others' labels are plain.
  assert.match(svg, /<text[^>]*fill="#c00"[^>]*>3500, 72% lost<\/text>/);
  // So is a load generator busy enough to have limited the figure.
  assert.match(svg, /<text[^>]*fill="#c00"[^>]*>3600, 70% lost, generator 95%<\/text>/);
  assert.match(svg, /<text[^>]*fill="#333"[^>]*>20\.0k<\/text>/);
});

Deno.test("the chart lists in each case only the brokers that ran it", async () => {
  const shown = texts(await renderChart(results()));
  const count = (text: string) => shown.filter((shownText) => shownText === text).length;
  // The legend, then one row per case run: perch-bun ran no shared case, mosquitto-nodelay only
  // the fan-in case; nats-mqtt has a row (n/a) in the shared case it cannot run.
  assert.equal(count(BROKER_LABELS["perch-bun"]), 1 + 2);
  assert.equal(count(BROKER_LABELS["mosquitto-nodelay"]), 1 + 1);
  assert.equal(count(BROKER_LABELS["nats-mqtt"]), 1 + 3);
});

Deno.test("mosquitto-nodelay switches TCP_NODELAY on; mosquitto stays as it ships", () => {
  assert.match(mosquittoConfig(["127.0.0.1"], 1883, true), /^set_tcp_nodelay true$/m);
  assert.doesNotMatch(mosquittoConfig(["127.0.0.1"], 1883, false), /nodelay/);
  assert.ok((DEFAULT_BROKERS as readonly string[]).includes("mosquitto-nodelay"));
});

Deno.test("latency cases run at least 5 rounds unless told, 1 with --quick", () => {
  assert.equal(parseBenchArgs([])!.latencyRounds, 5);
  assert.equal(parseBenchArgs(["--rounds", "3"])!.latencyRounds, 5);
  assert.equal(parseBenchArgs(["--rounds", "7"])!.latencyRounds, 7);
  assert.equal(parseBenchArgs(["--latency-rounds", "2"])!.latencyRounds, 2);
  assert.equal(parseBenchArgs(["--quick"])!.latencyRounds, 1);
  assert.throws(() => parseBenchArgs(["--latency-rounds", "0"]), /--latency-rounds/);
});

Deno.test("--nats-cpu puts nats-server with the front-ends unless told to use the generator's CPU", () => {
  assert.equal(parseBenchArgs([])!.natsCpu, "broker");
  assert.equal(parseBenchArgs(["--nats-cpu", "generator"])!.natsCpu, "generator");
  assert.throws(() => parseBenchArgs(["--nats-cpu", "cpu1"]), /--nats-cpu.*"cpu1"/);
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
