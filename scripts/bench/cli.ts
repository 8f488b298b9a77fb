/**
 * Command-line options of `deno task bench`.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { BROKER_NAMES, type BrokerName, DEFAULT_BROKERS } from "./brokers/launchers.ts";
import { RESULTS_DIR } from "./paths.ts";
import { SCENARIO_NAMES, type ScenarioName } from "./scenarios/bench_case.ts";

/** Default least number of latency rounds: single runs of a p99 vary 25-300% on a shared machine. */
export const MIN_LATENCY_ROUNDS = 5;

/** Parsed options. */
export interface BenchOptions {
  /** Rounds; every case runs once per broker per round, brokers interleaved. */
  rounds: number;
  /**
   * Rounds of the latency cases: tail latency varies a lot between single runs, so they run at
   * least 5 rounds (interleaved with the other cases' rounds while those last) unless told.
   */
  latencyRounds: number;
  /** Measuring window per measurement, in seconds. */
  durationSeconds: number;
  /** Warm-up before each window, in seconds. */
  warmupSeconds: number;
  /** Warm-up before each latency window, in seconds (tail latency is the most start-up sensitive). */
  latencyWarmupSeconds: number;
  /** Scenarios to run. */
  scenarios: ScenarioName[];
  /** Case id prefixes to keep (e.g. "fan-in/qos1"), or `undefined` for every case. */
  cases: string[] | undefined;
  /** Brokers to compare. */
  brokers: BrokerName[];
  /** Publishers for fan-in and shared subscription. */
  publishers: number;
  /** Subscribers for fan-out. */
  fanOutSubscribers: number;
  /** Members of the shared subscription group. */
  sharedSubscribers: number;
  /** Paced rate of the latency scenario, messages per second. */
  latencyRate: number;
  /** Connection counts, or `undefined` for the default (10,000 and the largest the fd limit allows). */
  connections: number[] | undefined;
  /** Parent folder of the results. */
  outDir: string;
  /** Extra `deno run` flags for Perch, e.g. `--cpu-prof` or `--v8-flags=...` (profiling). */
  perchFlags: string[];
  /** The CPU nats-server is pinned to in the perch-nats cases: the brokers' or the generator's. */
  natsCpu: "broker" | "generator";
  /** Pin broker and generator to separate CPUs. */
  pin: boolean;
  /** Smoke-run settings. */
  quick: boolean;
}

/** Usage text. */
export const USAGE = `Usage: deno task bench [options]

Runs every scenario against every broker (interleaved, several rounds) and reports medians.

Options:
  --rounds N          rounds (default 3; --quick: 1)
  --latency-rounds N  rounds of the latency cases (default: --rounds, at least 5; --quick: 1);
                      their p99 is reported as the median with the min-max over the rounds
  --duration S        measuring window per measurement in seconds (default 5; --quick: 1)
  --warmup S          warm-up before each window in seconds (default 1; --quick: 0.5)
  --latency-warmup S  warm-up before each latency window (default 5; --quick: 0.5): a fresh
                      JIT runtime (Perch, Aedes) compiles hot code and runs its first full GC
                      in its first seconds, which would otherwise land in the p99
  --scenarios LIST    comma-separated: ${SCENARIO_NAMES.join(",")} (default: all)
  --cases LIST        comma-separated case id prefixes to keep, e.g. fan-in/qos1/16B,latency/qos1
                      (default: every case of the selected scenarios)
  --brokers LIST      comma-separated: ${BROKER_NAMES.join(",")} (default: ${
  DEFAULT_BROKERS.join(",")
});
                      "sink" is no broker but a zero-work forwarder that shows the generator's ceiling;
                      "floor" a bare Deno server holding idle connections (connection scenario only)
  --publishers N      publishers for fan-in and shared (default 4)
  --subscribers N     subscribers for fan-out (default 50)
  --rate N            latency scenario messages per second (default 5000)
  --connections LIST  idle connection counts, e.g. 10000,100000 (default: 10000 and the largest
                      the open-file limit allows; --quick: 1000)
  --out DIR           results folder (default bench-results/)
  --perch-flags=F     extra "deno run" flags for Perch on Deno, space-separated, e.g. "--cpu-prof
                      --cpu-prof-dir=/tmp/prof" (profiles are written when Perch stops)
  --nats-cpu WHERE    perch-nats, perch-nats3: nats-server on the "broker" CPU with the front-ends
                      (default), or on the "generator" CPU, as NATS on machines of its own
  --no-pin            do not pin broker and generator to separate CPUs with taskset
  --quick             smoke run: 1 round, short windows, 1000 connections
  -h, --help          show this help

deno task bench --render DIR/results.json
  redraws DIR/chart.svg and DIR/table.txt from a run's results, without running anything`;

function list<T extends string>(
  value: string | undefined,
  allowed: readonly T[],
  fallback: readonly T[],
  flag: string,
): T[] {
  if (value === undefined) return [...fallback];
  const names = value.split(",").map((name) => name.trim()).filter(Boolean);
  for (const name of names) {
    if (!allowed.includes(name as T)) {
      throw new RangeError(
        `Cannot parse ${flag}: unknown "${name}", expected ${allowed.join(", ")}`,
      );
    }
  }
  return names as T[];
}

function positive(value: string | undefined, fallback: number, flag: string): number {
  if (value === undefined) return fallback;
  const number = Number(value);
  if (!Number.isFinite(number) || number <= 0) {
    throw new RangeError(`Cannot parse ${flag}: expected a positive number, got "${value}"`);
  }
  return number;
}

function integer(value: string | undefined, fallback: number, flag: string): number {
  const number = positive(value, fallback, flag);
  if (!Number.isInteger(number)) {
    throw new RangeError(`Cannot parse ${flag}: expected an integer, got "${value}"`);
  }
  return number;
}

/**
 * Parses the command line.
 *
 * @param args The arguments.
 * @returns The options, or `undefined` when help was asked for.
 */
export function parseBenchArgs(args: string[]): BenchOptions | undefined {
  const { values } = parseArgs({
    args,
    options: {
      rounds: { type: "string" },
      "latency-rounds": { type: "string" },
      duration: { type: "string" },
      warmup: { type: "string" },
      "latency-warmup": { type: "string" },
      scenarios: { type: "string" },
      cases: { type: "string" },
      brokers: { type: "string" },
      publishers: { type: "string" },
      subscribers: { type: "string" },
      rate: { type: "string" },
      connections: { type: "string" },
      out: { type: "string" },
      "perch-flags": { type: "string" },
      "nats-cpu": { type: "string" },
      "no-pin": { type: "boolean" },
      quick: { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) return undefined;
  const quick = values.quick ?? false;
  const rounds = integer(values.rounds, quick ? 1 : 3, "--rounds");
  return {
    rounds,
    latencyRounds: integer(
      values["latency-rounds"],
      quick ? rounds : Math.max(MIN_LATENCY_ROUNDS, rounds),
      "--latency-rounds",
    ),
    durationSeconds: positive(values.duration, quick ? 1 : 5, "--duration"),
    warmupSeconds: positive(values.warmup, quick ? 0.5 : 1, "--warmup"),
    latencyWarmupSeconds: positive(values["latency-warmup"], quick ? 0.5 : 5, "--latency-warmup"),
    scenarios: list(values.scenarios, SCENARIO_NAMES, SCENARIO_NAMES, "--scenarios"),
    cases: values.cases?.split(",").map((prefix) => prefix.trim()).filter(Boolean),
    brokers: list(values.brokers, BROKER_NAMES, DEFAULT_BROKERS, "--brokers"),
    publishers: integer(values.publishers, 4, "--publishers"),
    fanOutSubscribers: integer(values.subscribers, 50, "--subscribers"),
    sharedSubscribers: 5,
    latencyRate: positive(values.rate, 5000, "--rate"),
    connections: values.connections === undefined
      ? (quick ? [1000] : undefined)
      : values.connections.split(",").map((count) => integer(count, 0, "--connections")),
    outDir: values.out ?? RESULTS_DIR,
    perchFlags: values["perch-flags"]?.split(" ").filter(Boolean) ?? [],
    natsCpu: natsCpu(values["nats-cpu"]),
    pin: !values["no-pin"],
    quick,
  };
}

function natsCpu(value: string | undefined): "broker" | "generator" {
  if (value === undefined || value === "broker" || value === "generator") return value ?? "broker";
  throw new RangeError(`Cannot parse --nats-cpu: expected "broker" or "generator", got "${value}"`);
}
