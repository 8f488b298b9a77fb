/**
 * The brokers `--brokers` can name.
 *
 * @module
 */

import { AedesLauncher } from "./aedes.ts";
import type { BrokerLauncher } from "./broker.ts";
import { FloorLauncher } from "./floor.ts";
import { MosquittoLauncher } from "./mosquitto.ts";
import { PerchLauncher } from "./perch.ts";
import { SinkLauncher } from "./sink.ts";

/** Brokers compared by default, in order. */
export const DEFAULT_BROKERS = ["mosquitto", "aedes", "perch"] as const;

/**
 * Every name `--brokers` accepts: the brokers plus two references, the generator-ceiling sink and
 * the runtime floor (Deno's own cost per idle connection).
 */
export const BROKER_NAMES = [...DEFAULT_BROKERS, "sink", "floor"] as const;

/** One known broker name. */
export type BrokerName = typeof BROKER_NAMES[number];

/** Settings a launcher may take from the command line. */
export interface LauncherOptions {
  /** Extra `deno run` flags for Perch. */
  perchFlags: string[];
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
      return new MosquittoLauncher();
    case "aedes":
      return new AedesLauncher();
    case "perch":
      return new PerchLauncher(options.perchFlags);
    case "sink":
      return new SinkLauncher();
    case "floor":
      return new FloorLauncher();
  }
}
