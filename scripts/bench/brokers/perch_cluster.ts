/**
 * Perch as a cluster: one nats-server with JetStream and N front-ends (`deno run src/main.ts` with
 * the `nats` backbone, each with a generated config), all started fresh for each measurement and
 * pinned to the broker CPU like any broker, so the cluster gets the same one core that single-node
 * Perch gets. Clients connect to the front-ends round robin, directly (no load balancer process
 * taking CPU of its own). Only the fan-in cases at QoS 0 and 1 run on it: they are compared with
 * single-node Perch in the same run.
 *
 * @module
 */

import { join } from "node:path";
import { findNatsServer } from "../../nats_server.ts";
import { pinnedBrokerCommand } from "../cpu_pinning.ts";
import { REPO_ROOT } from "../paths.ts";
import type { ManagedProcess } from "../process_group.ts";
import type { BrokerLauncher, BrokerStartOptions, PrepareResult, RunningBroker } from "./broker.ts";
import { taskV8Flags } from "../../deno_tasks.ts";

const ENTRY = "src/main.ts";
const LISTENER_LINE = /listener started .*transport=tcp .*address=\S*:(\d+)/;
const NATS_PORT_LINE = /Listening for client connections on \S+:(\d+)/;
const NATS_READY_LINE = /Server is ready/;
/** Longest a process may take to be ready (a failure guard). */
const START_TIMEOUT_MS = 30_000;

/** The cases a cluster runs: fan-in at QoS 0 and 1. */
export const CLUSTER_CASES = ["fan-in/qos0/16B", "fan-in/qos1/16B"] as const;

/** Launches nats-server and `frontEnds` Perch front-ends on it. */
export class PerchClusterLauncher implements BrokerLauncher {
  readonly name: string;
  readonly cases: readonly string[] = CLUSTER_CASES;
  readonly #frontEnds: number;
  #denoFlags: string[];
  readonly #natsCpu: "broker" | "generator";
  #natsServer = "";

  /**
   * @param name Name as given to `--brokers`.
   * @param frontEnds How many front-ends.
   * @param denoFlags Extra `deno run` flags for every front-end (profiling, V8 options).
   * @param natsCpu Where nats-server runs: on the brokers' CPU with the front-ends, or on the
   *   generator's.
   */
  constructor(
    name: string,
    frontEnds: number,
    denoFlags: string[] = [],
    natsCpu: "broker" | "generator" = "broker",
  ) {
    this.name = name;
    this.#frontEnds = frontEnds;
    this.#denoFlags = denoFlags;
    this.#natsCpu = natsCpu;
  }

  /** Finds nats-server (>= 2.11; installed as root when missing) and Perch's V8 flags. */
  async prepare(): Promise<PrepareResult> {
    try {
      await Deno.stat(`${REPO_ROOT}/${ENTRY}`);
      this.#natsServer = await findNatsServer();
    } catch (error) {
      return { ok: false, reason: error instanceof Error ? error.message : String(error) };
    }
    if (!this.#denoFlags.some((flag) => flag.startsWith("--v8-flags="))) {
      this.#denoFlags = [...await taskV8Flags("frontend"), ...this.#denoFlags];
    }
    const version = await new Deno.Command(this.#natsServer, { args: ["--version"] }).output();
    const nats = new TextDecoder().decode(version.stdout).trim();
    return {
      ok: true,
      version: `${this.#frontEnds} front-end${this.#frontEnds > 1 ? "s" : ""} on ${nats} ` +
        `(JetStream file storage${
          this.#natsCpu === "generator" ? ", nats-server on the generator's CPU" : ""
        }; deno ${Deno.version.deno} ${this.#denoFlags.join(" ")})`,
    };
  }

  /** Starts nats-server, then the front-ends one by one (the first creates the streams). */
  async start(options: BrokerStartOptions): Promise<RunningBroker> {
    const host = options.hosts[0];
    const dir = await Deno.makeTempDir({ prefix: "perch-bench-cluster-" });
    const started: ManagedProcess[] = [];
    const natsPinning = this.#natsCpu === "generator" && options.pinning.enabled
      ? { ...options.pinning, brokerCpu: options.pinning.generatorCpu }
      : options.pinning;
    const stopAll = async () => {
      for (const process of started.toReversed()) await process.stop();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    };
    try {
      const nats = options.processes.spawn({
        name: "nats-server",
        ...pinnedBrokerCommand(natsPinning, [
          this.#natsServer,
          ...["--addr", host, "--port", "-1", "--jetstream", "--store_dir", join(dir, "nats")],
        ]),
      });
      started.push(nats);
      const natsPort = Number((await nats.waitForLine(NATS_PORT_LINE, START_TIMEOUT_MS))[1]);
      await nats.waitForLine(NATS_READY_LINE, START_TIMEOUT_MS);
      const frontEnds: ManagedProcess[] = [];
      const ports: number[] = [];
      for (let i = 1; i <= this.#frontEnds; i++) {
        const file = join(dir, `front-end-${i}.json`);
        await Deno.writeTextFile(
          file,
          JSON.stringify({
            node: { id: `bench-${i}` },
            log: { level: "info" },
            listeners: { tcp: { host, port: 0 } },
            admin: { enabled: false },
            sys: { enabled: false },
            backbone: { kind: "nats", servers: [`nats://${host}:${natsPort}`], prefix: "bench" },
          }),
        );
        const frontEnd = options.processes.spawn({
          name: `perch front-end ${i}`,
          ...pinnedBrokerCommand(options.pinning, [
            Deno.execPath(),
            "run",
            "-A",
            ...this.#denoFlags,
            ENTRY,
            "-c",
            file,
          ]),
          cwd: REPO_ROOT,
        });
        started.push(frontEnd);
        frontEnds.push(frontEnd);
        ports.push(Number((await frontEnd.waitForLine(LISTENER_LINE, START_TIMEOUT_MS))[1]));
      }
      return {
        name: this.name,
        process: frontEnds[0],
        // Stopped in this order after the first: the other front-ends, then NATS.
        companions: [...frontEnds.slice(1), nats],
        hosts: options.hosts,
        port: ports[0],
        ports,
        cleanup: () => Deno.remove(dir, { recursive: true }).catch(() => {}),
      };
    } catch (error) {
      await stopAll();
      throw error;
    }
  }
}
