/**
 * Aedes (npm) under Node.js with its default options, installed by `npm ci` from the pinned
 * `scripts/bench/aedes/package-lock.json` on first use.
 *
 * @module
 */

import { pinnedBrokerCommand } from "../cpu_pinning.ts";
import { AEDES_DIR } from "../paths.ts";
import type { BrokerLauncher, BrokerStartOptions, PrepareResult, RunningBroker } from "./broker.ts";

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

async function run(command: string, args: string[], cwd?: string): Promise<string> {
  try {
    const { success, stdout, stderr } = await new Deno.Command(command, { args, cwd }).output();
    const text = new TextDecoder().decode(success ? stdout : stderr).trim();
    if (!success) throw new Error(text);
    return text;
  } catch (error) {
    throw new Error(`Cannot run \`${command} ${args.join(" ")}\``, { cause: error });
  }
}

/** Launches `aedes_server.js` under Node.js. */
export class AedesLauncher implements BrokerLauncher {
  /** Name as given to `--brokers`. */
  readonly name = "aedes";

  /** Checks Node.js and runs `npm ci` when the pinned packages are not installed yet. */
  async prepare(): Promise<PrepareResult> {
    const nodeVersion = await run("node", ["--version"]);
    if (!await exists(`${AEDES_DIR}/node_modules/aedes/package.json`)) {
      console.log(`aedes: installing pinned packages (npm ci in ${AEDES_DIR})`);
      await run("npm", ["ci", "--no-audit", "--no-fund"], AEDES_DIR);
    }
    const manifest = JSON.parse(
      await Deno.readTextFile(`${AEDES_DIR}/node_modules/aedes/package.json`),
    );
    return { ok: true, version: `${manifest.version} (node ${nodeVersion})` };
  }

  /** Starts Aedes on port 0 and reads the port it prints. */
  async start(options: BrokerStartOptions): Promise<RunningBroker> {
    const { command, args } = pinnedBrokerCommand(options.pinning, [
      "node",
      `${AEDES_DIR}/aedes_server.js`,
      ...options.hosts,
    ]);
    const process = options.processes.spawn({ name: "aedes", command, args, cwd: AEDES_DIR });
    try {
      const match = await process.waitForLine(/listening port=(\d+)/, 15_000);
      return { name: this.name, process, hosts: options.hosts, port: Number(match[1]) };
    } catch (error) {
      await process.stop();
      throw error;
    }
  }
}
