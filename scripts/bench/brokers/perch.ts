/**
 * Perch itself, on Deno (`deno run -A src/main.ts`, broker name `perch`) or on Bun
 * (`bun src/main.ts`, broker name `perch-bun`), configured through `PERCH_*` environment
 * variables, on an OS-chosen port read back from its "listener started" log line.
 *
 * @module
 */

import { pinnedBrokerCommand } from "../cpu_pinning.ts";
import { REPO_ROOT } from "../paths.ts";
import type { BrokerLauncher, BrokerStartOptions, PrepareResult, RunningBroker } from "./broker.ts";

const ENTRY = "src/main.ts";
/** `deno task start` carries the V8 options Perch is meant to run with; the benchmark uses them too. */
const V8_FLAGS = /--v8-flags=\S+/;
const LISTENER_LINE = /listener started .*transport=tcp .*address=\S*:(\d+)/;

/** The `--v8-flags=...` of `deno task start`, as a list of zero or one flag. */
export async function perchV8Flags(): Promise<string[]> {
  const manifest = JSON.parse(await Deno.readTextFile(`${REPO_ROOT}/deno.json`));
  const flag = String(manifest.tasks?.start ?? "").match(V8_FLAGS)?.[0];
  return flag === undefined ? [] : [flag];
}

/** The runtimes Perch runs on. */
export type PerchRuntime = "deno" | "bun";

/** Runs a command to completion; its trimmed output, or undefined when it cannot run or fails. */
async function output(command: string, args: string[]): Promise<string | undefined> {
  try {
    const { success, stdout } = await new Deno.Command(command, {
      args,
      cwd: REPO_ROOT,
      stderr: "null",
    }).output();
    return success ? new TextDecoder().decode(stdout).trim() : undefined;
  } catch {
    return undefined;
  }
}

/** Launches Perch from this repository. */
export class PerchLauncher implements BrokerLauncher {
  /** Name as given to `--brokers`. */
  readonly name: "perch" | "perch-bun";
  #runtime: PerchRuntime;
  #denoFlags: string[];

  /**
   * @param runtime The runtime to run it on.
   * @param denoFlags Extra `deno run` flags (profiling, V8 options); Deno only.
   */
  constructor(runtime: PerchRuntime, denoFlags: string[] = []) {
    this.#runtime = runtime;
    this.name = runtime === "deno" ? "perch" : "perch-bun";
    this.#denoFlags = denoFlags;
  }

  /** Skips Perch (with the reason) while `src/main.ts` does not exist, or Bun when it is missing. */
  async prepare(): Promise<PrepareResult> {
    try {
      await Deno.stat(`${REPO_ROOT}/${ENTRY}`);
    } catch {
      return { ok: false, reason: `${ENTRY} not found: the broker is not runnable yet` };
    }
    const manifest = JSON.parse(await Deno.readTextFile(`${REPO_ROOT}/deno.json`));
    if (this.#runtime === "bun") {
      const version = await output("bun", ["--version"]);
      if (version === undefined) {
        return { ok: false, reason: "bun not found: install it with npm install -g bun" };
      }
      // What bun run start does first: the packages of bun.lock in node_modules/.
      if (await output("bun", ["install", "--frozen-lockfile", "--silent"]) === undefined) {
        return { ok: false, reason: "bun install --frozen-lockfile failed" };
      }
      return { ok: true, version: `${manifest.version ?? "dev"} (bun ${version})` };
    }
    // --perch-flags with its own --v8-flags replaces the start task's.
    const ownV8Flags = this.#denoFlags.some((flag) => flag.startsWith("--v8-flags="));
    if (!ownV8Flags) this.#denoFlags = [...await perchV8Flags(), ...this.#denoFlags];
    const flags = this.#denoFlags.length > 0 ? `, ${this.#denoFlags.join(" ")}` : "";
    return {
      ok: true,
      version: `${manifest.version ?? "dev"} (deno ${Deno.version.deno}${flags})`,
    };
  }

  /** Starts Perch on port 0 and parses the port from its log. */
  async start(options: BrokerStartOptions): Promise<RunningBroker> {
    // Perch has one TCP listener: for several loopback addresses it must take them all (0.0.0.0).
    const host = options.hosts.length === 1 ? options.hosts[0] : "0.0.0.0";
    if (host !== options.hosts[0]) {
      console.log(`perch: listening on ${host} to accept ${options.hosts.join(", ")}`);
    }
    const { command, args } = pinnedBrokerCommand(
      options.pinning,
      this.#runtime === "bun"
        ? ["bun", ENTRY]
        : [Deno.execPath(), "run", "-A", ...this.#denoFlags, ENTRY],
    );
    const process = options.processes.spawn({
      name: this.name,
      command,
      args,
      cwd: REPO_ROOT,
      env: {
        PERCH_LISTENERS__TCP__HOST: host,
        PERCH_LISTENERS__TCP__PORT: "0",
        PERCH_SYS__ENABLED: "false",
        // No admin API: its default port is fixed, and the benchmark does not need it.
        PERCH_ADMIN__ENABLED: "false",
        PERCH_LOG__LEVEL: "info",
      },
    });
    try {
      const match = await process.waitForLine(LISTENER_LINE, 30_000);
      return { name: this.name, process, hosts: options.hosts, port: Number(match[1]) };
    } catch (error) {
      await process.stop();
      throw error;
    }
  }
}
