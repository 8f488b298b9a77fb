/**
 * Latency: one publisher paced at a fixed rate, one subscriber, both in one worker so the send time in
 * the payload and the receive time come from the same `performance.now()` clock.
 *
 * @module
 */

import { loadTarget, runLoad } from "../load/run_load.ts";
import { percentiles } from "../stats.ts";
import type { BenchCase, CaseContext, Measurement, MetricSpec } from "./bench_case.ts";

const PERCENTILES = [50, 90, 99, 100] as const;

const METRICS: MetricSpec[] = [
  ...PERCENTILES.map((rank) => ({
    key: rank === 100 ? "max" : `p${rank}`,
    label: rank === 100 ? "max" : `p${rank}`,
    unit: "ms",
    higherIsBetter: false,
    // The tail figure varies most between rounds: its min-max is shown next to its median.
    ...(rank === 99 ? { spread: true } : {}),
  })),
  { key: "delivered", label: "delivered", unit: "msg/s", higherIsBetter: true },
];

/**
 * Latency cases at QoS 0 and 1, 16 B payloads.
 *
 * @param rate Messages per second.
 * @returns The cases.
 */
export function latencyCases(rate: number): BenchCase[] {
  return [0, 1].map((qos) => ({
    id: `latency/qos${qos}`,
    scenario: "latency",
    params: { qos, payloadBytes: 16, rate },
    metrics: METRICS,
    hostCount: 1,
    async run({ broker, timing }: CaseContext): Promise<Measurement> {
      const target = loadTarget(broker);
      const result = await runLoad({
        publishers: [{
          index: 0,
          clientId: "lat-pub",
          topic: "bench/latency",
          qos,
          payloadSize: 16,
          window: 1000,
          rate,
        }],
        subscribers: [{
          index: 0,
          clientId: "lat-sub",
          filter: "bench/latency",
          qos,
          recordLatency: true,
          coalesce: false,
        }],
        groups: [[0]],
        workers: [{ publishers: [0], subscribers: [0] }],
      }, { target, timing: { warmupMs: timing.latencyWarmupMs, durationMs: timing.durationMs } });
      const values = percentiles(result.latencies, [...PERCENTILES]);
      const metrics: Record<string, number> = { delivered: result.deliveredPerSecond };
      values.forEach((value, i) => metrics[METRICS[i].key] = value);
      return {
        metrics,
        integrity: result.integrity,
        cpu: result.cpu,
        notes: [`${result.latencies.length} latency samples`],
      };
    },
  }));
}
