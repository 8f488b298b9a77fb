/**
 * The contract every benchmarked broker implements: prepare once (install, check), then start a fresh
 * process per measurement on an OS-chosen loopback port.
 *
 * @module
 */

import type { CpuPinning } from "../cpu_pinning.ts";
import type { ManagedProcess, ProcessGroup } from "../process_group.ts";
import type { ScenarioName } from "../scenarios/scenario_names.ts";

/** A broker process ready for clients. */
export interface RunningBroker {
  /** Broker name as given to `--brokers`. */
  name: string;
  /** Its process (the broker itself, not a wrapper: `taskset` execs it). */
  process: ManagedProcess;
  /** Loopback addresses it listens on, all with {@link port}. */
  hosts: string[];
  /** The TCP port. */
  port: number;
  /**
   * Every port clients may use, when the broker is several front-ends (a cluster): clients
   * connect to them round robin. Default: {@link port} alone.
   */
  ports?: number[];
  /**
   * More processes of the same broker (a cluster's other front-ends and its NATS server): their
   * CPU counts as the broker's, and they are watched and stopped with it.
   */
  companions?: ManagedProcess[];
  /** Removes what the broker left behind, once its processes stopped. */
  cleanup?: () => Promise<void>;
}

/** How to start a broker for one measurement. */
export interface BrokerStartOptions {
  /** Loopback addresses to listen on (more than one only for very large connection counts). */
  hosts: string[];
  /** Owner of the process. */
  processes: ProcessGroup;
  /** CPU pinning in force. */
  pinning: CpuPinning;
}

/** Outcome of {@link BrokerLauncher.prepare}. */
export type PrepareResult = { ok: true; version: string } | { ok: false; reason: string };

/** Starts one kind of broker. */
export interface BrokerLauncher {
  /** Name as given to `--brokers`. */
  readonly name: string;
  /** The scenarios it can run, when not all (a reference server without MQTT routing). */
  readonly scenarios?: readonly ScenarioName[];
  /** The cases it runs, by id, when not every case of its scenarios. */
  readonly cases?: readonly string[];
  /**
   * Cases it cannot run (a feature it lacks), by id, with the reason: reported as n/a with the
   * reason instead of being measured.
   */
  readonly unsupported?: Readonly<Record<string, string>>;
  /** Installs or checks what the broker needs; says why it cannot run otherwise. */
  prepare(): Promise<PrepareResult>;
  /** Starts a fresh broker process and waits until it accepts connections. */
  start(options: BrokerStartOptions): Promise<RunningBroker>;
}
