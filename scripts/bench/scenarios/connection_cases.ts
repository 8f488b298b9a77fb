/**
 * Connections: open N idle MQTT connections (from several generator processes, over loopback addresses
 * 127.0.0.1..N when N exceeds what one address's ephemeral ports allow), measuring the connect rate
 * (CONNECT -> CONNACK per second over all of them) and the broker's RSS growth per connection: overall,
 * over the second half alone, and as the least-squares slope of the RSS read after each quarter (the
 * RSS at each step is in the results as `rssAtStep<i>Bytes` at `connectedAtStep<i>` connections), for
 * planning counts this machine cannot open. The growth is read twice: a second after the last
 * connection, and settled, once every connection has been idle for {@link SETTLED_MS} (a runtime with a
 * garbage collector returns the garbage of the connection burst by then; that is what idle connections
 * hold for good).
 *
 * @module
 */

import type { IdleJob, IdleReport } from "../load/idle_connections.ts";
import type { ManagedProcess } from "../process_group.ts";
import { readCpuSeconds, readOpenFileLimit, readRssBytes } from "../proc_stats.ts";
import type { BenchCase, CaseContext, Measurement, MetricSpec } from "./bench_case.ts";

/** Connections per generator process (each has its own open-file limit). */
const PER_PROCESS = 10_000;
/**
 * Clients per broker address. Linux picks the ephemeral port of a connect() by probing for one unused
 * towards the same destination; past ~14,000 connections to one address:port (of the default 28,232
 * ports, 32768-60999) that probing costs the generator ~1 ms of kernel time per connect.
 */
const PER_ADDRESS = 10_000;
/** Open files a broker needs besides its client sockets (listeners, logs, runtime). */
const FD_RESERVE = 200;
/**
 * Connection attempts in flight, over all generator processes: below the smallest listen backlog of the
 * brokers (Mosquitto: 100), since a full SYN queue costs a 1 s SYN retransmission and would measure the
 * kernel's timer instead of the broker.
 */
const CONCURRENCY = 64;
const SETTLE_MS = 1000;
/**
 * How long every connection is left idle before the settled reading: V8's memory reducer collects
 * 8 s after the activity stops, and its incremental marking takes a few seconds more at 10,000
 * connections.
 */
const SETTLED_MS = 20_000;
const CONNECT_TIMEOUT_MS = 600_000;
const IDLE_SCRIPT = new URL("../load/idle_connections.ts", import.meta.url).pathname;

const METRICS: MetricSpec[] = [
  { key: "connectRate", label: "connect rate", unit: "conn/s", higherIsBetter: true },
  { key: "rssPerConnection", label: "RSS per connection", unit: "KiB", higherIsBetter: false },
  {
    key: "settledRssPerConnection",
    label: "RSS per connection, settled",
    unit: "KiB",
    higherIsBetter: false,
  },
  {
    key: "marginalRssPerConnection",
    label: "RSS per connection, second half",
    unit: "KiB",
    higherIsBetter: false,
  },
  {
    key: "rssSlopePerConnection",
    label: "RSS per connection, fitted slope",
    unit: "KiB",
    higherIsBetter: false,
  },
  { key: "connected", label: "connected", unit: "conn", higherIsBetter: true },
];

/** Connection counts to measure, with anything worth telling about how they were chosen. */
export interface ConnectionPlan {
  /** The counts. */
  counts: number[];
  /** Notes for the log and the results. */
  notes: string[];
}

/**
 * Chooses the connection counts: the requested ones capped to what the open-file limit allows a broker
 * process, or by default 10,000 and the largest count the limit allows.
 *
 * @param requested Counts from `--connections`, if given.
 * @returns The plan.
 */
export function planConnectionCounts(requested: number[] | undefined): ConnectionPlan {
  const limit = readOpenFileLimit();
  const largest = limit - FD_RESERVE;
  const notes: string[] = [];
  const wanted = requested ?? [10_000, largest];
  const counts = [
    ...new Set(wanted.map((count) => {
      if (count <= largest) return count;
      notes.push(
        `connections: ${count} capped to ${largest}: a broker process may open ${limit} files ` +
          `(RLIMIT_NOFILE); ${count} connections need a limit of at least ${count + FD_RESERVE}`,
      );
      return largest;
    })),
  ];
  return { counts, notes };
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function jobs(count: number, hosts: string[], port: number): IdleJob[] {
  const processes = Math.ceil(count / PER_PROCESS);
  return Array.from({ length: processes }, (_, i) => ({
    hosts,
    port,
    count: Math.min(PER_PROCESS, count - i * PER_PROCESS),
    firstId: i * PER_PROCESS,
    concurrency: Math.ceil(CONCURRENCY / processes),
  }));
}

function cpuSeconds(pids: number[]): number {
  return pids.reduce((sum, pid) => sum + readCpuSeconds(pid), 0);
}

/** What one phase of connecting (every generator opening its next share) reported. */
interface Phase {
  seconds: number;
  connected: number;
  failed: number;
  firstError: string | undefined;
}

async function connectPhase(generators: ManagedProcess[], shares: number[]): Promise<Phase> {
  const startedAt = performance.now();
  await Promise.all(generators.map((generator, i) => generator.writeLine(`connect ${shares[i]}`)));
  const lines = await Promise.all(
    generators.map((generator) => generator.waitForLine(/^connected (.*)$/, CONNECT_TIMEOUT_MS)),
  );
  const seconds = (performance.now() - startedAt) / 1000;
  const reports: IdleReport[] = lines.map((match) => JSON.parse(match[1]));
  return {
    seconds,
    connected: reports.reduce((sum, report) => sum + report.connected, 0),
    failed: reports.reduce((sum, report) => sum + report.failed, 0),
    firstError: reports.find((report) => report.firstError)?.firstError,
  };
}

/** Connecting is done in this many equal steps, with the broker's RSS read after each. */
const STEPS = 4;

/**
 * The least-squares slope of `y` over `x` (bytes per connection), or NaN with fewer than two
 * distinct points.
 *
 * @param points `[x, y]` pairs.
 * @returns The slope.
 */
export function fittedSlope(points: [number, number][]): number {
  const n = points.length;
  if (n < 2) return NaN;
  const meanX = points.reduce((sum, [x]) => sum + x, 0) / n;
  const meanY = points.reduce((sum, [, y]) => sum + y, 0) / n;
  let covariance = 0;
  let variance = 0;
  for (const [x, y] of points) {
    covariance += (x - meanX) * (y - meanY);
    variance += (x - meanX) ** 2;
  }
  return variance === 0 ? NaN : covariance / variance;
}

/** Splits each job's count into `STEPS` shares, so every step opens about as many connections. */
function stepShares(plan: IdleJob[]): number[][] {
  return Array.from(
    { length: STEPS },
    (_, step) =>
      plan.map((job) =>
        Math.floor((job.count * (step + 1)) / STEPS) - Math.floor((job.count * step) / STEPS)
      ),
  );
}

async function measure(count: number, { broker, processes }: CaseContext): Promise<Measurement> {
  const pid = broker.process.pid;
  await delay(SETTLE_MS);
  const rssBefore = readRssBytes(pid);
  const plan = jobs(count, broker.hosts, broker.port);
  const generators = plan.map((job, i) =>
    processes.spawn({
      name: `idle-connections-${i}`,
      command: Deno.execPath(),
      args: ["run", "-A", IDLE_SCRIPT, JSON.stringify(job)],
      stdin: true,
    })
  );
  try {
    await Promise.all(generators.map((generator) => generator.waitForLine(/^ready$/, 30_000)));
    const generatorPids = generators.map((generator) => generator.pid);
    // In steps, with the RSS read (after a settle, outside the timed and CPU-counted part) after
    // each: the RSS at several counts gives a fitted slope, the cost of one more connection apart
    // from what a runtime grows once (a JIT runtime's young generation), and the second half's
    // growth alone.
    let seconds = 0;
    let brokerCpu = 0;
    let generatorCpu = 0;
    let connected = 0;
    let failed = 0;
    let firstError: string | undefined;
    const samples: [number, number][] = [];
    for (const shares of stepShares(plan)) {
      const cpuBefore = { broker: readCpuSeconds(pid), generator: cpuSeconds(generatorPids) };
      const phase = await connectPhase(generators, shares);
      brokerCpu += readCpuSeconds(pid) - cpuBefore.broker;
      generatorCpu += cpuSeconds(generatorPids) - cpuBefore.generator;
      seconds += phase.seconds;
      connected += phase.connected;
      failed += phase.failed;
      firstError ??= phase.firstError;
      await delay(SETTLE_MS);
      samples.push([connected, readRssBytes(pid)]);
    }
    const cpu = { broker: (100 * brokerCpu) / seconds, generator: (100 * generatorCpu) / seconds };
    const rssAfter = samples[samples.length - 1][1];
    await delay(SETTLED_MS - SETTLE_MS);
    const rssSettled = readRssBytes(pid);
    const [midConnected, rssMid] = samples[STEPS / 2 - 1];
    const notes = failed === 0
      ? []
      : [`${failed} of ${count} connections failed, first: ${firstError}`];
    const metrics: Record<string, number> = {
      connectRate: connected / seconds,
      rssPerConnection: connected === 0 ? NaN : (rssAfter - rssBefore) / connected / 1024,
      settledRssPerConnection: connected === 0 ? NaN : (rssSettled - rssBefore) / connected / 1024,
      marginalRssPerConnection: connected === midConnected
        ? NaN
        : (rssAfter - rssMid) / (connected - midConnected) / 1024,
      rssSlopePerConnection: fittedSlope(samples) / 1024,
      connected,
      failed,
      rssBeforeBytes: rssBefore,
      rssMidBytes: rssMid,
      rssAfterBytes: rssAfter,
      rssSettledBytes: rssSettled,
    };
    samples.forEach(([at, rss], i) => {
      metrics[`connectedAtStep${i + 1}`] = at;
      metrics[`rssAtStep${i + 1}Bytes`] = rss;
    });
    return { metrics, cpu, notes };
  } finally {
    await Promise.all(generators.map(async (generator) => {
      await generator.writeLine("close").catch(() => {});
      await Promise.race([generator.status, delay(5000)]);
      await generator.stop();
    }));
  }
}

/**
 * One case per connection count.
 *
 * @param counts Connection counts (already capped, see {@link planConnectionCounts}).
 * @returns The cases.
 */
export function connectionCases(counts: number[]): BenchCase[] {
  return counts.map((count) => ({
    id: `connections/${count}`,
    scenario: "connections",
    params: { connections: count, generatorProcesses: Math.ceil(count / PER_PROCESS) },
    metrics: METRICS,
    hostCount: Math.ceil(count / PER_ADDRESS),
    run: (context: CaseContext) => measure(count, context),
  }));
}
