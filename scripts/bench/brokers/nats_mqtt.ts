/**
 * NATS server's MQTT gateway (`nats-mqtt`): one `nats-server` (>= 2.11, the binary of
 * `scripts/nats_server.ts`) with its MQTT listener and JetStream on (the MQTT listener needs both a
 * `server_name` and JetStream), from a generated config, with a fresh store directory per
 * measurement that is removed when the server exits. Every delivery setting stays at NATS's
 * defaults. The MQTT listener speaks MQTT 3.1.1 only, which is what the load generator speaks.
 *
 * Ports: the config asks for port -1 (an OS-chosen free port) for the MQTT and the NATS client
 * listener and the ports are read back from the "Listening for ..." log lines, so no port is
 * reserved and released beforehand (no race with other processes on the machine).
 *
 * @module
 */

import { join } from "node:path";
import { findNatsServer } from "../../nats_server.ts";
import { pinnedBrokerCommand } from "../cpu_pinning.ts";
import type { BrokerLauncher, BrokerStartOptions, PrepareResult, RunningBroker } from "./broker.ts";

const MQTT_PORT_LINE = /Listening for MQTT clients on mqtt:\/\/\S+:(\d+)/;
const READY_LINE = /Server is ready/;
/** Longest the server may take to be ready (a failure guard). */
const START_TIMEOUT_MS = 30_000;

/**
 * Cases NATS's MQTT gateway cannot run, with the reason, reported as n/a: nats-server 2.x has no
 * MQTT shared subscriptions (an MQTT 5 feature; it speaks 3.1.1 only, nats-io/nats-server#2386):
 * `$share/g/bench/shared` is a plain filter to it and the group receives nothing.
 */
export const NATS_MQTT_UNSUPPORTED: Readonly<Record<string, string>> = {
  "shared/qos0/16B": "nats-server's MQTT gateway has no $share shared subscriptions",
  "shared/qos1/16B": "nats-server's MQTT gateway has no $share shared subscriptions",
};

/**
 * The generated config: NATS clients and MQTT on OS-chosen ports, JetStream storing in `storeDir`.
 *
 * @param host Address to listen on.
 * @param storeDir JetStream's store directory.
 * @returns The config text.
 */
export function natsMqttConfig(host: string, storeDir: string): string {
  return [
    "server_name: perch_bench_nats_mqtt",
    `listen: "${host}:-1"`,
    `jetstream { store_dir: ${JSON.stringify(storeDir)} }`,
    `mqtt { listen: "${host}:-1" }`,
    "",
  ].join("\n");
}

/** Launches nats-server with its MQTT listener. */
export class NatsMqttLauncher implements BrokerLauncher {
  /** Name as given to `--brokers`. */
  readonly name = "nats-mqtt";
  /** Cases reported as n/a, by id, with the reason. */
  readonly unsupported = NATS_MQTT_UNSUPPORTED;
  #binary = "";

  /** Finds nats-server >= 2.11 (unpacked as root when missing). */
  async prepare(): Promise<PrepareResult> {
    try {
      this.#binary = await findNatsServer();
    } catch (error) {
      return { ok: false, reason: error instanceof Error ? error.message : String(error) };
    }
    const { stdout } = await new Deno.Command(this.#binary, { args: ["--version"] }).output();
    const version = new TextDecoder().decode(stdout).trim().replace(/^nats-server:\s*/, "");
    return { ok: true, version: `${version} (MQTT listener, JetStream file storage)` };
  }

  /** Writes a config into a fresh temporary folder and starts nats-server with it. */
  async start(options: BrokerStartOptions): Promise<RunningBroker> {
    // One MQTT listener: for several loopback addresses it must take them all (0.0.0.0).
    const host = options.hosts.length === 1 ? options.hosts[0] : "0.0.0.0";
    const dir = await Deno.makeTempDir({ prefix: "perch-bench-nats-mqtt-" });
    const config = join(dir, "nats.conf");
    await Deno.writeTextFile(config, natsMqttConfig(host, join(dir, "store")));
    const process = options.processes.spawn({
      name: "nats-mqtt",
      ...pinnedBrokerCommand(options.pinning, [this.#binary, "-c", config]),
    });
    const cleanup = () => Deno.remove(dir, { recursive: true }).catch(() => {});
    process.status.finally(cleanup);
    try {
      const port = Number((await process.waitForLine(MQTT_PORT_LINE, START_TIMEOUT_MS))[1]);
      await process.waitForLine(READY_LINE, START_TIMEOUT_MS);
      return { name: this.name, process, hosts: options.hosts, port, cleanup };
    } catch (error) {
      await process.stop();
      throw error;
    }
  }
}
