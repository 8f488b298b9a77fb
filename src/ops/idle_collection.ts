/**
 * Idle collection: a full garbage collection once the broker is quiet after a burst of connections
 * opening or closing (`memory.idleCollection`).
 *
 * A burst of CONNECTs leaves garbage that outlived the young generation (the handshakes' packets,
 * promises and log lines) in the old one, and the heap's pages half empty. Nothing collects them
 * while the connections sit idle: the old generation is collected when it grows, and an idle broker
 * does not allocate. V8's memory reducer gets to it some seconds later or not at all (both seen at
 * 10,000 connections). So the broker does it itself, the way a JVM collects when idle to give memory
 * back (G1's periodic collection) and Erlang brokers collect a hibernating connection: once at least
 * `after` connections opened or closed since the last collection, it waits for an interval in which
 * none opened or closed and the process used little CPU, and then collects and compacts once.
 *
 * @module
 */

import process from "node:process";
import v8 from "node:v8";
import vm from "node:vm";
import type { Clock, TimerId } from "../util/clock.ts";
import type { Logger } from "../util/logger.ts";

/** Options of {@linkcode IdleCollector}. */
export interface IdleCollectorOptions {
  /** Runs a full, compacting collection; undefined when the runtime offers none. */
  collect: (() => void) | undefined;
  /** Connections opened plus connections closed since the start. */
  readChurn: () => number;
  clock: Clock;
  logger: Logger;
  /** Connections opened or closed since the last collection that make another worth it. */
  after: number;
  /** Time between checks, ms (default 250); an interval counts as quiet or not as a whole. */
  interval?: number;
  /** Share of one core the process may use over an interval that still counts as quiet. */
  quietCpuShare?: number;
  /** Process CPU time in microseconds (user and system, all threads). */
  readCpuMicros?: () => number;
}

/** What the collector has done, for metrics and tests. */
export interface IdleCollectionStats {
  /** Collections run. */
  collections: number;
  /** Seconds the latest one held the broker up. */
  lastPauseSeconds: number;
}

/**
 * The runtime's full collection that also gives free pages back: `Bun.gc(true)` on Bun; on Deno
 * V8's `gc` (exposed here when the process did not start with `--expose-gc`) in its last-resort
 * flavour, which collects until nothing more is freed and compacts, as V8's memory reducer does.
 *
 * @returns The function, or undefined when the runtime has none
 */
export function runtimeCollector(): (() => void) | undefined {
  const bun = (globalThis as { Bun?: { gc(force: boolean): void } }).Bun;
  if (bun !== undefined) return () => bun.gc(true);
  try {
    let gc = (globalThis as { gc?: (options?: object) => void }).gc;
    if (gc === undefined) {
      v8.setFlagsFromString("--expose-gc");
      gc = vm.runInNewContext("gc") as (options?: object) => void;
    }
    const collect = gc;
    return () => collect({ type: "major", execution: "sync", flavor: "last-resort" });
  } catch {
    return undefined;
  }
}

/** Checks on a timer for quiet after connection churn, and collects then. */
export class IdleCollector {
  readonly stats: IdleCollectionStats = { collections: 0, lastPauseSeconds: 0 };
  #options: IdleCollectorOptions;
  #interval: number;
  #quietCpuMicros: number;
  #readCpuMicros: () => number;
  #timer: TimerId | undefined;
  #collectedAtChurn = 0;
  #lastChurn = 0;
  #lastCpu = 0;
  #check = () => this.#onTimer();

  constructor(options: IdleCollectorOptions) {
    this.#options = options;
    // A quarter second: a burst's memory goes back within half a second of its last connection,
    // and a quarter second without a single connection opening is still a lull in a storm.
    this.#interval = options.interval ?? 250;
    this.#quietCpuMicros = (options.quietCpuShare ?? 0.05) * this.#interval * 1000;
    this.#readCpuMicros = options.readCpuMicros ?? (() => {
      const { user, system } = process.cpuUsage();
      return user + system;
    });
  }

  /** Starts checking; idempotent. Says so in the log when the runtime offers no collection. */
  start(): void {
    if (this.#timer !== undefined) return;
    if (this.#options.collect === undefined) {
      this.#options.logger.warn("idle collection unavailable: the runtime exposes no collector");
      return;
    }
    this.#lastChurn = this.#collectedAtChurn = this.#options.readChurn();
    this.#lastCpu = this.#readCpuMicros();
    this.#timer = this.#options.clock.setTimeout(this.#check, this.#interval);
  }

  /** Stops checking; idempotent. */
  stop(): void {
    if (this.#timer !== undefined) this.#options.clock.clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #onTimer(): void {
    const churn = this.#options.readChurn();
    const cpu = this.#readCpuMicros();
    const quiet = churn === this.#lastChurn && cpu - this.#lastCpu <= this.#quietCpuMicros;
    if (quiet && churn - this.#collectedAtChurn >= this.#options.after) this.#collectNow(churn);
    this.#lastChurn = churn;
    // Read after collecting: the collection's own CPU is not the clients' activity.
    this.#lastCpu = this.#readCpuMicros();
    this.#timer = this.#options.clock.setTimeout(this.#check, this.#interval);
  }

  #collectNow(churn: number): void {
    const startedAt = performance.now();
    this.#options.collect!();
    const pauseMs = performance.now() - startedAt;
    this.stats.collections++;
    this.stats.lastPauseSeconds = pauseMs / 1000;
    this.#options.logger.info("idle collection", {
      connections: churn - this.#collectedAtChurn,
      pauseMs: Math.round(pauseMs),
    });
    this.#collectedAtChurn = churn;
  }
}
