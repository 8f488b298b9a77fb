/**
 * The runtime floor (`--brokers floor`, see `floor/floor_broker.ts`): not an MQTT broker, a reference
 * for what Deno itself costs per idle connection. Runs with the V8 flags Perch runs with, and only
 * the connection scenario; `FLOOR_STRATEGY` (inherited by the floor process) picks how it reads.
 *
 * @module
 */

import { pinnedBrokerCommand } from "../cpu_pinning.ts";
import type { BrokerLauncher, BrokerStartOptions, PrepareResult, RunningBroker } from "./broker.ts";
import { taskV8Flags } from "../../deno_tasks.ts";

const FLOOR_SCRIPT = new URL("../floor/floor_broker.ts", import.meta.url).pathname;

/** Launches the floor server under Deno. */
export class FloorLauncher implements BrokerLauncher {
  /** Name as given to `--brokers`. */
  readonly name = "floor";
  /** It holds idle connections and does nothing else. */
  readonly scenarios = ["connections"] as const;
  #v8Flags: string[] = [];

  /** Reads Perch's V8 flags; nothing to install. */
  async prepare(): Promise<PrepareResult> {
    this.#v8Flags = await taskV8Flags("start");
    const flags = this.#v8Flags.length > 0 ? `, ${this.#v8Flags.join(" ")}` : "";
    const strategy = Deno.env.get("FLOOR_STRATEGY") ?? "read";
    return {
      ok: true,
      version: `runtime floor (deno ${Deno.version.deno}${flags}, FLOOR_STRATEGY=${strategy})`,
    };
  }

  /** Starts the floor server on port 0 and reads the port it prints. */
  async start(options: BrokerStartOptions): Promise<RunningBroker> {
    const { command, args } = pinnedBrokerCommand(options.pinning, [
      Deno.execPath(),
      "run",
      "-A",
      ...this.#v8Flags,
      FLOOR_SCRIPT,
      ...options.hosts,
    ]);
    const process = options.processes.spawn({ name: "floor", command, args });
    try {
      const match = await process.waitForLine(/floor listening port=(\d+)/, 15_000);
      return { name: this.name, process, hosts: options.hosts, port: Number(match[1]) };
    } catch (error) {
      await process.stop();
      throw error;
    }
  }
}
