/**
 * Perch itself, on Deno (`deno run -A src/main.ts`, broker name `perch`) or on Bun
 * (`bun src/main.ts`, broker name `perch-bun`), configured through `PERCH_*` environment
 * variables, on an OS-chosen port read back from its "listener started" log line. These run the
 * memory backbone; `perch-sqlite` and `perch-sqlite-batched` run Perch on Deno on the SQLite
 * backbone with `sync: full` and `sync: batched` (50 ms window), on a fresh database file in a
 * temporary folder per measurement.
 *
 * @module
 */

import { pinnedBrokerCommand } from "../cpu_pinning.ts";
import { REPO_ROOT } from "../paths.ts";
import { taskV8Flags } from "../../deno_tasks.ts";
import type { BrokerLauncher, BrokerStartOptions, PrepareResult, RunningBroker } from "./broker.ts";

const ENTRY = "src/main.ts";
const LISTENER_LINE = /listener started .*transport=tcp .*address=\S*:(\d+)/;

/**
 * The runtime, backbone settings (`PERCH_BACKBONE__*` variables) and other variables of each
 * Perch variant. `perch-handle` is Perch on Deno with `listeners.tcp.nativeHandle: true` (the
 * default since it recovers from running out of descriptors), `perch-conn` with `false` (reading
 * through `Deno.Conn`).
 */
const VARIANTS = {
  "perch": { runtime: "deno", backbone: {}, env: {} },
  "perch-bun": { runtime: "bun", backbone: {}, env: {} },
  "perch-handle": {
    runtime: "deno",
    backbone: {},
    env: { PERCH_LISTENERS__TCP__NATIVE_HANDLE: "true" },
  },
  "perch-conn": {
    runtime: "deno",
    backbone: {},
    env: { PERCH_LISTENERS__TCP__NATIVE_HANDLE: "false" },
  },
  "perch-sqlite": { runtime: "deno", backbone: { KIND: "sqlite", SYNC: "full" }, env: {} },
  "perch-sqlite-batched": {
    runtime: "deno",
    backbone: { KIND: "sqlite", SYNC: "batched", SYNC_WINDOW: "50ms" },
    env: {},
  },
} as const;

/** A Perch variant: its name as given to `--brokers`. */
export type PerchVariant = keyof typeof VARIANTS;

/** The runtimes Perch runs on. */
export type PerchRuntime = typeof VARIANTS[PerchVariant]["runtime"];

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
  readonly name: PerchVariant;
  #runtime: PerchRuntime;
  #denoFlags: string[];

  /**
   * @param variant Which runtime and backbone it runs.
   * @param denoFlags Extra `deno run` flags (profiling, V8 options); Deno only.
   */
  constructor(variant: PerchVariant, denoFlags: string[] = []) {
    this.name = variant;
    this.#runtime = VARIANTS[variant].runtime;
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
    // `deno task start` carries the V8 options Perch is meant to run with; --perch-flags with its
    // own --v8-flags replaces them.
    const ownV8Flags = this.#denoFlags.some((flag) => flag.startsWith("--v8-flags="));
    if (!ownV8Flags) this.#denoFlags = [...await taskV8Flags("start"), ...this.#denoFlags];
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
    const backbone: Record<string, string> = { ...VARIANTS[this.name].backbone };
    const dir = backbone.KIND === "sqlite"
      ? await Deno.makeTempDir({ prefix: "perch-bench-sqlite-" })
      : undefined;
    if (dir !== undefined) backbone.PATH = `${dir}/perch.db`;
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
        ...Object.fromEntries(
          Object.entries(backbone).map(([key, value]) => [`PERCH_BACKBONE__${key}`, value]),
        ),
        ...VARIANTS[this.name].env,
      },
    });
    if (dir !== undefined) {
      process.status.finally(() => Deno.remove(dir, { recursive: true }).catch(() => {}));
    }
    try {
      const match = await process.waitForLine(LISTENER_LINE, 30_000);
      return { name: this.name, process, hosts: options.hosts, port: Number(match[1]) };
    } catch (error) {
      await process.stop();
      throw error;
    }
  }
}
