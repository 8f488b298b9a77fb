/**
 * Runs one load measurement against a running broker: workers connect and subscribe, publishers start,
 * the coordinator waits out the warm-up, samples the shared counters and CPU time over the measuring
 * window, stops the publishers, waits for the last deliveries, and computes integrity from the
 * subscribers' sequence reports.
 *
 * @module
 */

import type { RunningBroker } from "../brokers/broker.ts";
import { readCpuSeconds } from "../proc_stats.ts";
import { LoadCounters } from "./counters.ts";
import { computeIntegrity, type Integrity } from "./integrity.ts";
import type { PublisherSpec, SubscriberSpec } from "./protocol.ts";
import type { SequenceReport } from "./sequence_tracker.ts";
import { WorkerLink } from "./worker_link.ts";

/** Clients of a run and how they are spread over workers. */
export interface LoadPlan {
  /** All publishers; `index` equals the position. */
  publishers: PublisherSpec[];
  /** All subscribers; `index` equals the position. */
  subscribers: SubscriberSpec[];
  /** Subscriber indices per delivery group (each group must get every message exactly once). */
  groups: number[][];
  /** Publisher and subscriber indices per worker. */
  workers: { publishers: number[]; subscribers: number[] }[];
}

/** The broker under load. */
export interface LoadTarget {
  /** Address. */
  hostname: string;
  /** Ports: one, or a cluster's front-ends, which clients connect to round robin. */
  ports: number[];
  /** Its process ids (a cluster: every front-end and the NATS server), for their CPU time. */
  pids: number[];
}

/** Where the clients of a case go: the broker's address and every port it serves on. */
export function loadTarget(broker: RunningBroker): LoadTarget {
  return {
    hostname: broker.hosts[0],
    ports: broker.ports ?? [broker.port],
    pids: [broker.process, ...broker.companions ?? []].map((process) => process.pid),
  };
}

/** Phase lengths. */
export interface LoadTiming {
  /** Load before the measuring window opens. */
  warmupMs: number;
  /** The measuring window. */
  durationMs: number;
}

/** CPU use while measuring, in percent of one core. */
export interface CpuUse {
  /** The broker process. */
  broker: number;
  /** The load generator: this process with its workers, or the connection generator processes. */
  generator: number;
}

/** What one load run measured. */
export interface LoadResult {
  /** Length of the measuring window in seconds. */
  windowSeconds: number;
  /** Deliveries per second at the subscribers (all of them) in the window. */
  deliveredPerSecond: number;
  /** Messages written per second by all publishers in the window. */
  publishedPerSecond: number;
  /** Loss, duplicates and order over the whole run. */
  integrity: Integrity;
  /** CPU use in the window. */
  cpu: CpuUse;
  /** Latency samples in ms (only subscribers with `recordLatency`). */
  latencies: number[];
}

const READY_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 15_000;
const FINISH_TIMEOUT_MS = 15_000;
const QUIET_MS = 1000;
const MAX_DRAIN_MS = 20_000;

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

interface Sample {
  at: number;
  delivered: number;
  published: number;
  brokerCpu: number;
  generatorCpu: number;
}

function sample(counters: LoadCounters, brokerPids: number[]): Sample {
  return {
    at: performance.now(),
    delivered: counters.totalReceived(),
    published: counters.totalPublished(),
    brokerCpu: brokerPids.reduce((sum, pid) => sum + readCpuSeconds(pid), 0),
    generatorCpu: readCpuSeconds("self"),
  };
}

async function waitForDeliveries(counters: LoadCounters, expected: number): Promise<void> {
  const deadline = performance.now() + MAX_DRAIN_MS;
  let last = -1;
  let lastChange = performance.now();
  while (performance.now() < deadline) {
    const delivered = counters.totalReceived();
    if (delivered >= expected) return;
    if (delivered !== last) {
      last = delivered;
      lastChange = performance.now();
    } else if (performance.now() - lastChange > QUIET_MS) {
      return;
    }
    await delay(20);
  }
}

async function within<T>(links: WorkerLink[], work: Promise<T>): Promise<T> {
  return await Promise.race([work, ...links.map((link) => link.failed)]);
}

/** Where and how long to run a plan. */
export interface RunLoadOptions {
  /** The broker. */
  target: LoadTarget;
  /** Warm-up and window length. */
  timing: LoadTiming;
}

/**
 * Runs one measurement.
 *
 * @param plan The clients.
 * @param options The broker and the timing.
 * @returns The measurement.
 */
export async function runLoad(plan: LoadPlan, options: RunLoadOptions): Promise<LoadResult> {
  const { target, timing } = options;
  const counters = new LoadCounters(plan.publishers.length, plan.subscribers.length);
  const links = plan.workers.map(() => new WorkerLink());
  const all = <T>(fn: (link: WorkerLink, i: number) => Promise<T>) =>
    within(links, Promise.all(links.map(fn)));
  try {
    await all((link, i) =>
      link.request(
        {
          kind: "init",
          spec: {
            hostname: target.hostname,
            ports: target.ports,
            publisherCount: plan.publishers.length,
            subscriberCount: plan.subscribers.length,
            groups: plan.groups,
            publishers: plan.workers[i].publishers.map((index) => plan.publishers[index]),
            subscribers: plan.workers[i].subscribers.map((index) => plan.subscribers[index]),
            counters: counters.buffer,
          },
        },
        { reply: "ready", timeoutMs: READY_TIMEOUT_MS },
      )
    );
    for (const link of links) link.send({ kind: "start" });
    await within(links, delay(timing.warmupMs));
    for (const link of links) link.send({ kind: "mark-start" });
    const first = sample(counters, target.pids);
    await within(links, delay(timing.durationMs));
    const last = sample(counters, target.pids);
    for (const link of links) link.send({ kind: "mark-end" });

    const stopped = await all((link) =>
      link.request({ kind: "stop" }, { reply: "stopped", timeoutMs: STOP_TIMEOUT_MS })
    );
    const published = plan.publishers.map(() => 0);
    for (const reply of stopped) {
      for (const { index, count } of reply.published) published[index] = count;
    }
    const expected = published.reduce((sum, count) => sum + count, 0) * plan.groups.length;
    await within(links, waitForDeliveries(counters, expected));

    const finished = await all((link) =>
      link.request({ kind: "finish" }, { reply: "finished", timeoutMs: FINISH_TIMEOUT_MS })
    );
    const reports: SequenceReport[] = new Array(plan.subscribers.length);
    for (const reply of finished) {
      for (const { index, report } of reply.reports) reports[index] = report;
    }
    const seconds = (last.at - first.at) / 1000;
    return {
      windowSeconds: seconds,
      deliveredPerSecond: (last.delivered - first.delivered) / seconds,
      publishedPerSecond: (last.published - first.published) / seconds,
      integrity: computeIntegrity(reports, {
        groups: plan.groups,
        published,
        unacked: stopped.reduce((sum, reply) => sum + reply.unacked, 0),
      }),
      cpu: {
        broker: (100 * (last.brokerCpu - first.brokerCpu)) / seconds,
        generator: (100 * (last.generatorCpu - first.generatorCpu)) / seconds,
      },
      latencies: finished.flatMap((reply) => reply.latencies),
    };
  } finally {
    for (const link of links) link.terminate();
  }
}
