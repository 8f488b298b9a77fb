/**
 * Throughput scenarios: fan-in (P publishers -> 1 subscriber), fan-out (1 publisher -> N subscribers)
 * and shared subscription (P publishers -> a `$share` group), all closed loop.
 *
 * @module
 */

import type { PublisherSpec, SubscriberSpec } from "../load/protocol.ts";
import { type LoadPlan, loadTarget, runLoad } from "../load/run_load.ts";
import type {
  BenchCase,
  CaseContext,
  Measurement,
  MetricSpec,
  ScenarioName,
} from "./bench_case.ts";

/** Messages in flight per publisher, by QoS (QoS 0: end to end, see {@link PublisherSpec.window}). */
export const WINDOW_BY_QOS = [1000, 64, 128] as const;

/** Parameters of the message scenarios. */
export interface MessageCaseOptions {
  /** Publishers for fan-in and shared. */
  publishers: number;
  /** Subscribers for fan-out. */
  fanOutSubscribers: number;
  /** Members of the shared subscription group. */
  sharedSubscribers: number;
}

const DELIVERED: MetricSpec = {
  key: "delivered",
  label: "delivered",
  unit: "msg/s",
  higherIsBetter: true,
};

const range = (count: number) => Array.from({ length: count }, (_, i) => i);

/** QoS `qos` publishers to `topic`, each with its QoS's window. */
export function publishers(
  count: number,
  topic: string,
  qos: number,
  payloadSize: number,
): PublisherSpec[] {
  return range(count).map((index) => ({
    index,
    clientId: `pub-${index}`,
    topic,
    qos,
    payloadSize,
    window: WINDOW_BY_QOS[qos],
  }));
}

function subscribers(count: number, filter: string, qos: number): SubscriberSpec[] {
  return range(count).map((index) => ({
    index,
    clientId: `sub-${index}`,
    filter,
    qos,
    recordLatency: false,
    coalesce: qos === 0,
  }));
}

/** Publishers in one worker, subscribers in another: readers never wait behind writers' turns. */
export function twoWorkers(plan: Omit<LoadPlan, "workers">): LoadPlan {
  return {
    ...plan,
    workers: [
      { publishers: range(plan.publishers.length), subscribers: [] },
      { publishers: [], subscribers: range(plan.subscribers.length) },
    ],
  };
}

function messageCase(
  scenario: ScenarioName,
  qos: number,
  payloadSize: number,
  plan: LoadPlan,
): BenchCase {
  return {
    id: `${scenario}/qos${qos}/${payloadSize}B`,
    scenario,
    params: {
      qos,
      payloadBytes: payloadSize,
      publishers: plan.publishers.length,
      subscribers: plan.subscribers.length,
      window: WINDOW_BY_QOS[qos],
    },
    metrics: [DELIVERED],
    hostCount: 1,
    async run({ broker, timing }: CaseContext): Promise<Measurement> {
      const target = loadTarget(broker);
      const result = await runLoad(plan, { target, timing });
      return {
        metrics: { delivered: result.deliveredPerSecond, published: result.publishedPerSecond },
        integrity: result.integrity,
        cpu: result.cpu,
        notes: [],
      };
    },
  };
}

/**
 * Fan-in cases: QoS 0/1/2 x 16 B/1 KiB.
 *
 * @param options Client counts.
 * @returns The cases.
 */
export function fanInCases(options: MessageCaseOptions): BenchCase[] {
  return [0, 1, 2].flatMap((qos) =>
    [16, 1024].map((size) =>
      messageCase(
        "fan-in",
        qos,
        size,
        twoWorkers({
          publishers: publishers(options.publishers, "bench/fan-in", qos, size),
          subscribers: subscribers(1, "bench/fan-in", qos),
          groups: [[0]],
        }),
      )
    )
  );
}

/**
 * Fan-out cases: one publisher, many subscribers, QoS 0 and 1, 16 B.
 *
 * @param options Client counts.
 * @returns The cases.
 */
export function fanOutCases(options: MessageCaseOptions): BenchCase[] {
  return [0, 1].map((qos) =>
    messageCase(
      "fan-out",
      qos,
      16,
      twoWorkers({
        publishers: publishers(1, "bench/fan-out", qos, 16),
        subscribers: subscribers(options.fanOutSubscribers, "bench/fan-out", qos),
        groups: range(options.fanOutSubscribers).map((index) => [index]),
      }),
    )
  );
}

/**
 * Shared subscription cases: publishers into one `$share/g/...` group, QoS 0 and 1, 16 B.
 *
 * @param options Client counts.
 * @returns The cases.
 */
export function sharedCases(options: MessageCaseOptions): BenchCase[] {
  return [0, 1].map((qos) =>
    messageCase(
      "shared",
      qos,
      16,
      twoWorkers({
        publishers: publishers(options.publishers, "bench/shared", qos, 16),
        subscribers: subscribers(options.sharedSubscribers, "$share/g/bench/shared", qos),
        groups: [range(options.sharedSubscribers)],
      }),
    )
  );
}
