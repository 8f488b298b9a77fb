/**
 * Mosquitto from the Debian package. Delivery settings stay at Mosquitto's defaults (queue and in-flight
 * limits included, so whatever it drops shows up as loss); only `max_connections -1` is set explicitly,
 * persistence is off and per-connection log lines are silenced. `mosquitto-nodelay` is the same with
 * `set_tcp_nodelay true` (Mosquitto 2.x; off by default, so it ships with Nagle's algorithm on).
 *
 * @module
 */

import { pinnedBrokerCommand } from "../cpu_pinning.ts";
import type { BrokerLauncher, BrokerStartOptions, PrepareResult, RunningBroker } from "./broker.ts";
import { reserveFreePort, waitForPort } from "./readiness.ts";

const CANDIDATES = ["/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto", "mosquitto"];
const INSTALL_COMMAND = "apt-get install -y mosquitto";

async function probeVersion(binary: string): Promise<string | undefined> {
  try {
    const { stdout } = await new Deno.Command(binary, { args: ["-h"], stderr: "null" }).output();
    return new TextDecoder().decode(stdout).match(/mosquitto version (\S+)/)?.[1];
  } catch {
    return undefined;
  }
}

async function aptInstall(): Promise<void> {
  console.log(`mosquitto: not found, running \`${INSTALL_COMMAND}\``);
  const install = () =>
    new Deno.Command("apt-get", { args: ["install", "-y", "mosquitto"] }).output();
  if ((await install()).success) return;
  await new Deno.Command("apt-get", { args: ["update"] }).output();
  const { success, stderr } = await install();
  if (!success) {
    throw new Error(`Cannot install mosquitto: ${new TextDecoder().decode(stderr).trim()}`);
  }
}

/**
 * The generated `mosquitto.conf`.
 *
 * @param hosts Addresses to listen on.
 * @param port The port.
 * @param noDelay Whether to switch `TCP_NODELAY` on for client sockets.
 * @returns The config text.
 */
export function mosquittoConfig(hosts: string[], port: number, noDelay: boolean): string {
  return [
    "per_listener_settings false",
    ...(noDelay ? ["set_tcp_nodelay true"] : []),
    ...hosts.flatMap((host) => [`listener ${port} ${host}`, "max_connections -1"]),
    "allow_anonymous true",
    "persistence false",
    "log_dest stderr",
    "log_type error",
    "log_type warning",
    "connection_messages false",
    "",
  ].join("\n");
}

/**
 * Launches Mosquitto (`mosquitto`, or `mosquitto-nodelay` with `TCP_NODELAY` on), installing it with
 * apt-get when missing and running as root.
 */
export class MosquittoLauncher implements BrokerLauncher {
  /** Name as given to `--brokers`. */
  readonly name: "mosquitto" | "mosquitto-nodelay";
  #binary = "";

  /** @param name `mosquitto-nodelay` sets `set_tcp_nodelay true`. */
  constructor(name: "mosquitto" | "mosquitto-nodelay" = "mosquitto") {
    this.name = name;
  }

  /** Finds (or installs) the binary; throws with the install command when it cannot. */
  async prepare(): Promise<PrepareResult> {
    for (let attempt = 0; attempt < 2; attempt++) {
      for (const binary of CANDIDATES) {
        const version = await probeVersion(binary);
        if (version) {
          this.#binary = binary;
          return { ok: true, version };
        }
      }
      if (attempt > 0 || Deno.uid() !== 0) break;
      await aptInstall();
    }
    throw new Error(`Cannot find mosquitto: install it with \`sudo ${INSTALL_COMMAND}\``);
  }

  /** Writes a config for a free port and starts Mosquitto on it. */
  async start(options: BrokerStartOptions): Promise<RunningBroker> {
    const port = reserveFreePort(options.hosts[0]);
    const dir = await Deno.makeTempDir({ prefix: "perch-bench-mosquitto-" });
    await Deno.chmod(dir, 0o755);
    const config = `${dir}/mosquitto.conf`;
    await Deno.writeTextFile(
      config,
      mosquittoConfig(options.hosts, port, this.name === "mosquitto-nodelay"),
      { mode: 0o644 },
    );
    const { command, args } = pinnedBrokerCommand(options.pinning, [this.#binary, "-c", config]);
    const process = options.processes.spawn({ name: this.name, command, args });
    process.status.finally(() => Deno.remove(dir, { recursive: true }).catch(() => {}));
    try {
      for (const hostname of options.hosts) {
        await waitForPort(process, { hostname, port, timeoutMs: 5000 });
      }
    } catch (error) {
      await process.stop();
      throw error;
    }
    return { name: this.name, process, hosts: options.hosts, port };
  }
}
