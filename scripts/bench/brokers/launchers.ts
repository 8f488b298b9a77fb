/**
 * The brokers `--brokers` can name.
 *
 * @module
 */

import { AedesLauncher } from "./aedes.ts";
import type { BrokerLauncher } from "./broker.ts";
import { FloorLauncher } from "./floor.ts";
import { MosquittoLauncher } from "./mosquitto.ts";
import { NatsMqttLauncher } from "./nats_mqtt.ts";
import { PerchLauncher } from "./perch.ts";
import { PerchClusterLauncher } from "./perch_cluster.ts";
import { SinkLauncher } from "./sink.ts";

/**
 * Brokers compared by default, in order. `mosquitto-nodelay` is Mosquitto with `TCP_NODELAY` on
 * (`set_tcp_nodelay true`), next to Mosquitto as it ships (Nagle's algorithm on). `nats-mqtt` is NATS server's MQTT gateway (a peer, like
 * Mosquitto and Aedes); `perch-bun` is Perch on Bun; `perch-nats` and
 * `perch-nats3` are Perch clustered on one nats-server with one and three front-ends, and run the
 * fan-in cases at QoS 0 and 1 only.
 */
export const DEFAULT_BROKERS = [
  "mosquitto",
  "mosquitto-nodelay",
  "aedes",
  "nats-mqtt",
  "perch",
  "perch-bun",
  "perch-nats",
  "perch-nats3",
] as const;

/**
 * Every name `--brokers` accepts: the brokers, Perch on Deno with `listeners.tcp.nativeHandle`
 * set (`perch-handle`: true, the default; `perch-conn`: false), Perch on the SQLite backbone
 * (`perch-sqlite`, `perch-sqlite-batched`), and two references, the generator-ceiling sink and the runtime floor
 * (Deno's own cost per idle connection).
 */
export const BROKER_NAMES = [
  ...DEFAULT_BROKERS,
  "perch-handle",
  "perch-conn",
  "perch-sqlite",
  "perch-sqlite-batched",
  "sink",
  "floor",
] as const;

/** One known broker name. */
export type BrokerName = typeof BROKER_NAMES[number];

/** Settings a launcher may take from the command line. */
export interface LauncherOptions {
  /** Extra `deno run` flags for Perch. */
  perchFlags: string[];
  /** Where nats-server runs in the perch-nats cases. */
  natsCpu: "broker" | "generator";
}

/**
 * Creates the launcher for a broker name.
 *
 * @param name The broker.
 * @param options Launcher settings.
 * @returns Its launcher.
 */
export function createLauncher(name: BrokerName, options: LauncherOptions): BrokerLauncher {
  switch (name) {
    case "mosquitto":
    case "mosquitto-nodelay":
      return new MosquittoLauncher(name);
    case "aedes":
      return new AedesLauncher();
    case "nats-mqtt":
      return new NatsMqttLauncher();
    case "perch":
    case "perch-bun":
    case "perch-handle":
    case "perch-conn":
    case "perch-sqlite":
    case "perch-sqlite-batched":
      return new PerchLauncher(name, options.perchFlags);
    case "perch-nats":
      return new PerchClusterLauncher(name, 1, options.perchFlags, options.natsCpu);
    case "perch-nats3":
      return new PerchClusterLauncher(name, 3, options.perchFlags, options.natsCpu);
    case "sink":
      return new SinkLauncher();
    case "floor":
      return new FloorLauncher();
  }
}
