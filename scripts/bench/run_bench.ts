/**
 * Runs the benchmark: prepares the brokers, then for each round, case and broker (broker order rotated
 * every round, so the brokers are interleaved in time) starts a fresh broker, measures once and stops
 * it. Failures of one measurement are recorded and the run goes on.
 *
 * @module
 */

import type { BrokerLauncher, RunningBroker } from "./brokers/broker.ts";
import { createLauncher } from "./brokers/launchers.ts";
import type { BenchOptions } from "./cli.ts";
import { type CpuPinning, pinGenerator } from "./cpu_pinning.ts";
import { formatCount, formatValue } from "./report/format.ts";
import {
  type BenchResults,
  type BrokerInfo,
  caseResult,
  GENERATOR_SATURATED_PERCENT,
  RESULTS_SCHEMA,
  type RoundResult,
} from "./report/results.ts";
import type { ProcessGroup } from "./process_group.ts";
import { readCpuModel, readOpenFileLimit } from "./proc_stats.ts";
import { buildCases } from "./scenarios/all_cases.ts";
import type { BenchCase, CaseTiming, Measurement } from "./scenarios/bench_case.ts";

function loopbackHosts(count: number): string[] {
  return Array.from({ length: count }, (_, i) => `127.0.0.${i + 1}`);
}

function describe(measurement: Measurement, benchCase: BenchCase): string {
  const parts = benchCase.metrics.map((metric) =>
    `${metric.label} ${formatValue(measurement.metrics[metric.key])} ${metric.unit}`
  );
  const integrity = measurement.integrity;
  if (integrity) {
    parts.push(
      `lost ${formatCount(integrity.lost)} dup ${formatCount(integrity.duplicated)} ` +
        `ooo ${formatCount(integrity.outOfOrder)}`,
    );
  }
  if (measurement.cpu) {
    parts.push(
      `cpu broker ${measurement.cpu.broker.toFixed(0)}% generator ` +
        `${measurement.cpu.generator.toFixed(0)}%`,
    );
  }
  return [parts.join(", "), ...measurement.notes].join("; ");
}

interface MeasureContext {
  processes: ProcessGroup;
  pinning: CpuPinning;
  timing: CaseTiming;
}

async function measureOnce(
  benchCase: BenchCase,
  launcher: BrokerLauncher,
  context: MeasureContext,
): Promise<Measurement> {
  const { processes, pinning, timing } = context;
  let broker: RunningBroker | undefined;
  try {
    broker = await launcher.start({
      hosts: loopbackHosts(benchCase.hostCount),
      processes,
      pinning,
    });
    const measurement = await benchCase.run({ broker, processes, timing });
    const gone = [broker.process, ...broker.companions ?? []].find((process) => process.exited);
    if (gone) throw new Error(`${launcher.name} (${gone.name}) exited during the measurement`);
    const generatorCpu = measurement.cpu?.generator ?? 0;
    if (generatorCpu > GENERATOR_SATURATED_PERCENT) {
      measurement.notes.push(
        `generator CPU ${generatorCpu.toFixed(0)}%: the generator may limit this figure`,
      );
    }
    return measurement;
  } catch (error) {
    const exited = broker && [broker.process, ...broker.companions ?? []].filter((p) => p.exited);
    const tail = (exited ?? []).map((process) => `\n${process.name}:\n${process.tail()}`).join("");
    throw new Error(`${error instanceof Error ? error.message : error}${tail}`, { cause: error });
  } finally {
    // In order: a cluster's front-ends before the NATS server they leave through.
    for (const process of broker ? [broker.process, ...broker.companions ?? []] : []) {
      await process.stop();
    }
    await broker?.cleanup?.();
  }
}

/**
 * The command line as typed, for the results and the chart.
 *
 * @param args The arguments after `deno task bench`.
 * @returns The command.
 */
export function benchCommand(args: string[]): string {
  const quote = (arg: string) =>
    /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, "'\\''")}'`;
  return ["deno task bench", ...args.map(quote)].join(" ");
}

/** What a run needs besides its options. */
export interface RunBenchContext {
  /** Owner of every child process. */
  processes: ProcessGroup;
  /** The command line, recorded in the results. */
  args: string[];
}

/**
 * Runs the benchmark.
 *
 * @param options Parsed options.
 * @param context Process owner and command line.
 * @returns The results.
 */
export async function runBench(
  options: BenchOptions,
  context: RunBenchContext,
): Promise<BenchResults> {
  const { processes, args } = context;
  const startedAt = new Date().toISOString();
  const pinning = await pinGenerator(options.pin);
  const notes = [pinning.description];
  console.log(pinning.description);

  const brokers: BrokerInfo[] = [];
  const launchers: BrokerLauncher[] = [];
  for (const name of options.brokers) {
    const launcher = createLauncher(name, options);
    const prepared = await launcher.prepare();
    if (prepared.ok) {
      brokers.push({ name, status: "ok", version: prepared.version });
      launchers.push(launcher);
      console.log(`${name}: ${prepared.version}`);
    } else {
      brokers.push({ name, status: "skipped", reason: prepared.reason });
      console.log(`${name}: skipped: ${prepared.reason}`);
    }
  }
  if (launchers.length === 0) throw new Error("Cannot run the benchmark: no broker is available");

  const { cases, notes: caseNotes } = buildCases(options);
  notes.push(...caseNotes);
  for (const note of caseNotes) console.log(note);
  const timing = {
    warmupMs: options.warmupSeconds * 1000,
    latencyWarmupMs: options.latencyWarmupSeconds * 1000,
    durationMs: options.durationSeconds * 1000,
  };
  const rounds = new Map(cases.map((benchCase) => [benchCase, new Map<string, RoundResult[]>()]));
  const roundsOf = (benchCase: BenchCase) =>
    benchCase.scenario === "latency" ? options.latencyRounds : options.rounds;
  const totalRounds = Math.max(...cases.map(roundsOf));
  for (let round = 1; round <= totalRounds; round++) {
    const shift = (round - 1) % launchers.length;
    const order = [...launchers.slice(shift), ...launchers.slice(0, shift)];
    for (const benchCase of cases) {
      if (round > roundsOf(benchCase)) continue;
      for (const launcher of order) {
        if (launcher.scenarios && !launcher.scenarios.includes(benchCase.scenario)) continue;
        if (launcher.cases && !launcher.cases.includes(benchCase.id)) continue;
        const label = `round ${round}/${roundsOf(benchCase)}  ${benchCase.id}  ${launcher.name}`;
        const result: RoundResult = { round };
        const unsupported = launcher.unsupported?.[benchCase.id];
        if (unsupported !== undefined) {
          result.unsupported = unsupported;
          console.log(`${label}: n/a: ${unsupported}`);
        } else {
          try {
            const context = { processes, pinning, timing };
            result.measurement = await measureOnce(benchCase, launcher, context);
            console.log(`${label}: ${describe(result.measurement, benchCase)}`);
          } catch (error) {
            result.error = error instanceof Error ? error.message : String(error);
            console.log(`${label}: FAILED: ${result.error}`);
          }
        }
        const byBroker = rounds.get(benchCase)!;
        byBroker.set(launcher.name, [...(byBroker.get(launcher.name) ?? []), result]);
      }
    }
  }

  return {
    schema: RESULTS_SCHEMA,
    startedAt,
    finishedAt: new Date().toISOString(),
    args,
    settings: { ...options },
    command: benchCommand(args),
    machine: {
      cpuModel: readCpuModel(),
      cpus: navigator.hardwareConcurrency,
      openFileLimit: readOpenFileLimit(),
      deno: Deno.version.deno,
      os: `${Deno.build.os} ${Deno.osRelease()}`,
      pinning: pinning.description,
    },
    notes,
    brokers,
    cases: cases.map((benchCase) => caseResult(benchCase, rounds.get(benchCase)!)),
  };
}
