/**
 * The generator-ceiling sink (`--brokers sink`, see `sink/sink_broker.ts`): not an MQTT broker, a
 * reference for how fast the load generator can go.
 *
 * @module
 */

import { pinnedBrokerCommand } from "../cpu_pinning.ts";
import type { BrokerLauncher, BrokerStartOptions, PrepareResult, RunningBroker } from "./broker.ts";

const SINK_SCRIPT = new URL("../sink/sink_broker.ts", import.meta.url).pathname;

/** Launches the sink under Deno. */
export class SinkLauncher implements BrokerLauncher {
  /** Name as given to `--brokers`. */
  readonly name = "sink";

  /** Nothing to install. */
  prepare(): Promise<PrepareResult> {
    return Promise.resolve({ ok: true, version: `generator ceiling (deno ${Deno.version.deno})` });
  }

  /** Starts the sink on port 0 and reads the port it prints. */
  async start(options: BrokerStartOptions): Promise<RunningBroker> {
    const { command, args } = pinnedBrokerCommand(options.pinning, [
      Deno.execPath(),
      "run",
      "-A",
      SINK_SCRIPT,
      ...options.hosts,
    ]);
    const process = options.processes.spawn({ name: "sink", command, args });
    try {
      const match = await process.waitForLine(/sink listening port=(\d+)/, 15_000);
      return { name: this.name, process, hosts: options.hosts, port: Number(match[1]) };
    } catch (error) {
      await process.stop();
      throw error;
    }
  }
}
