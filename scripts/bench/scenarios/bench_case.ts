/**
 * What a benchmark case is: one scenario with fixed parameters (say fan-in at QoS 1 with 16 B
 * payloads), measured once per broker per round.
 *
 * @module
 */

import type { RunningBroker } from "../brokers/broker.ts";
import type { Integrity } from "../load/integrity.ts";
import type { CpuUse } from "../load/run_load.ts";
import type { ProcessGroup } from "../process_group.ts";

export { SCENARIO_NAMES, type ScenarioName } from "./scenario_names.ts";
import type { ScenarioName } from "./scenario_names.ts";

/** One reported figure of a case. */
export interface MetricSpec {
  /** Key in {@link Measurement.metrics}. */
  key: string;
  /** Label for tables and charts. */
  label: string;
  /** Unit, e.g. "msg/s", "ms", "KiB". */
  unit: string;
  /** Whether a bigger value is better. */
  higherIsBetter: boolean;
  /** Whether tables and the chart show the min-max over the rounds next to the median. */
  spread?: boolean;
}

/** The result of measuring one case on one broker once. */
export interface Measurement {
  /** Values by {@link MetricSpec.key}. */
  metrics: Record<string, number>;
  /** Delivery integrity, for message scenarios. */
  integrity?: Integrity;
  /** CPU use while measuring, in percent of one core. */
  cpu?: CpuUse;
  /** Anything worth knowing about this measurement (capped counts, failures). */
  notes: string[];
}

/** Timing shared by every case of a run. */
export interface CaseTiming {
  /** Warm-up before the measuring window, in ms. */
  warmupMs: number;
  /** Warm-up before a latency window, in ms. */
  latencyWarmupMs: number;
  /** The measuring window, in ms. */
  durationMs: number;
}

/** What a case gets to run with. */
export interface CaseContext {
  /** The freshly started broker. */
  broker: RunningBroker;
  /** Owner of any extra processes (connection generators). */
  processes: ProcessGroup;
  /** Timing. */
  timing: CaseTiming;
}

/** One benchmark case. */
export interface BenchCase {
  /** Stable identifier, e.g. "fan-in/qos1/16B". */
  id: string;
  /** The scenario. */
  scenario: ScenarioName;
  /** Parameters, recorded in the results. */
  params: Record<string, number | string>;
  /** The figures it reports; the first is the headline. */
  metrics: MetricSpec[];
  /** How many loopback addresses the broker must listen on (127.0.0.1 up to 127.0.0.N). */
  hostCount: number;
  /** Measures once. */
  run(context: CaseContext): Promise<Measurement>;
}
