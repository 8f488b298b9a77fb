/**
 * The shape of `results.json` and how per-round measurements become medians. Loss, duplicates and
 * out-of-order deliveries are summed over all rounds, and failed rounds are kept with their error.
 *
 * @module
 */

import type { Integrity } from "../load/integrity.ts";
import type { CpuUse } from "../load/run_load.ts";
import type { BenchCase, Measurement, MetricSpec, ScenarioName } from "../scenarios/bench_case.ts";
import { median } from "../stats.ts";

/** A load generator above this CPU share may itself limit a figure: such figures get a note. */
export const GENERATOR_SATURATED_PERCENT = 90;

/** Version of the results format. */
export const RESULTS_SCHEMA = 1;

/** One measurement of one case on one broker. */
export interface RoundResult {
  /** Round number, from 1. */
  round: number;
  /** The measurement, when it succeeded. */
  measurement?: Measurement;
  /** Why it failed, otherwise. */
  error?: string;
  /** Why the broker cannot run the case (a feature it lacks): not measured, reported as n/a. */
  unsupported?: string;
}

/** The least and largest per-round value of a metric. */
export interface Spread {
  /** Smallest per-round value. */
  min: number;
  /** Largest per-round value. */
  max: number;
  /** How many rounds it is over. */
  rounds: number;
}

/** One case on one broker over all rounds. */
export interface BrokerCaseResult {
  /** Median per metric key over the successful rounds. */
  median: Record<string, number>;
  /** Min and max per metric key over the successful rounds (the spread around the median). */
  spread?: Record<string, Spread>;
  /** Why the broker cannot run the case, when it cannot (then there are no figures). */
  unsupported?: string;
  /** Integrity summed over the successful rounds (message scenarios). */
  integrity?: Integrity;
  /** Median CPU use (message scenarios). */
  cpu?: CpuUse;
  /** Every round, failed ones included. */
  rounds: RoundResult[];
}

/** One case over all brokers. */
export interface CaseResult {
  /** Case id, e.g. "fan-in/qos1/16B". */
  id: string;
  /** Its scenario. */
  scenario: ScenarioName;
  /** Its parameters. */
  params: Record<string, number | string>;
  /** Its figures; the first is the headline. */
  metrics: MetricSpec[];
  /** Results by broker name. */
  results: Record<string, BrokerCaseResult>;
}

/** A broker as seen by this run. */
export interface BrokerInfo {
  /** Broker name. */
  name: string;
  /** Whether it ran. */
  status: "ok" | "skipped";
  /** Version, when known. */
  version?: string;
  /** Why it was skipped. */
  reason?: string;
}

/** The whole `results.json`. */
export interface BenchResults {
  /** {@link RESULTS_SCHEMA}. */
  schema: number;
  /** ISO start time. */
  startedAt: string;
  /** ISO end time. */
  finishedAt: string;
  /** Command-line arguments. */
  args: string[];
  /** The command as typed (`deno task bench ...`); absent in results of older runs. */
  command?: string;
  /** Effective settings. */
  settings: Record<string, unknown>;
  /** Machine facts. */
  machine: Record<string, unknown>;
  /** Notes about the whole run (pinning, capped counts). */
  notes: string[];
  /** Brokers, ran or skipped. */
  brokers: BrokerInfo[];
  /** One entry per case. */
  cases: CaseResult[];
}

function sumIntegrity(values: Integrity[]): Integrity | undefined {
  if (values.length === 0) return undefined;
  const total = { ...values[0] };
  for (const value of values.slice(1)) {
    for (const key of Object.keys(total) as (keyof Integrity)[]) total[key] += value[key];
  }
  return total;
}

/**
 * Summarises one case on one broker.
 *
 * @param rounds The rounds.
 * @returns Medians with their spread, summed integrity, median CPU, and the rounds.
 */
export function summarizeRounds(rounds: RoundResult[]): BrokerCaseResult {
  const measurements = rounds.flatMap((round) => round.measurement ? [round.measurement] : []);
  const keys = new Set(measurements.flatMap((measurement) => Object.keys(measurement.metrics)));
  const medians: Record<string, number> = {};
  const spread: Record<string, Spread> = {};
  for (const key of keys) {
    const values = measurements.flatMap((m) => key in m.metrics ? [m.metrics[key]] : []);
    medians[key] = median(values);
    spread[key] = { min: Math.min(...values), max: Math.max(...values), rounds: values.length };
  }
  const cpus = measurements.flatMap((measurement) => measurement.cpu ? [measurement.cpu] : []);
  const unsupported = rounds.find((round) => round.unsupported !== undefined)?.unsupported;
  return {
    median: medians,
    spread,
    ...(unsupported === undefined ? {} : { unsupported }),
    integrity: sumIntegrity(measurements.flatMap((m) => m.integrity ? [m.integrity] : [])),
    cpu: cpus.length === 0 ? undefined : {
      broker: median(cpus.map((cpu) => cpu.broker)),
      generator: median(cpus.map((cpu) => cpu.generator)),
    },
    rounds,
  };
}

/**
 * Builds a case entry.
 *
 * @param benchCase The case.
 * @param rounds Rounds by broker name.
 * @returns The case result.
 */
export function caseResult(
  benchCase: BenchCase,
  rounds: Map<string, RoundResult[]>,
): CaseResult {
  const results: Record<string, BrokerCaseResult> = {};
  for (const [broker, brokerRounds] of rounds) results[broker] = summarizeRounds(brokerRounds);
  return {
    id: benchCase.id,
    scenario: benchCase.scenario,
    params: benchCase.params,
    metrics: benchCase.metrics,
    results,
  };
}
