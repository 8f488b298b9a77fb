/**
 * Real `nats-server` processes with JetStream for tests: one server ({@linkcode startNatsServer})
 * or a JetStream cluster of three ({@linkcode startNatsCluster}), each on free ports of 127.0.0.1
 * with its own temporary store directory. The binary is `scripts/nats_server.ts`'s (>= 2.11).
 *
 * Ports: nats-server reads port 0 as "the default port" (4222), and its "random port" (-1) would
 * not let a cluster name its routes before starting, so every port is picked by binding port 0
 * here, closing it and passing the number; a start that loses the port to another process
 * ("address already in use") is retried on fresh ports.
 *
 * Readiness is event-driven where the server offers an event: the "Server is ready" log line (by
 * then a lone server has recovered its streams). Then the server's monitoring endpoints are polled
 * until `/healthz` answers 200 and, for a cluster member, `/jsz` shows a leader for every stream
 * and consumer it holds a replica of: together, a metadata leader is known and this member is
 * current with it and with those leaders (`/healthz` alone can answer ok before a restarted
 * member has heard from a stream's leader). Readiness says nothing about the other members.
 *
 * `stop()` / `kill()` end the process and keep the store directory, so `restart()` brings the
 * same server back on the same ports with the same data; `close()` (or `await using`) ends the
 * process and deletes the directory.
 *
 * @module
 */

import { join } from "node:path";
import { findNatsServer } from "../../scripts/nats_server.ts";

/** Longest a server may take to become ready and healthy (a failure guard, never a delay). */
const START_TIMEOUT_MS = 60_000;
/** Longest a SIGTERM'd server may take to exit before it is killed (a guard). */
const STOP_TIMEOUT_MS = 10_000;
/** Pause between two polls of the monitoring endpoints. */
const HEALTH_POLL_MS = 25;
/** Attempts at a first start when a picked port was taken meanwhile. */
const PORT_ATTEMPTS = 5;
/** Log lines kept for error messages. */
const LOG_LINES = 200;

const HOST = "127.0.0.1";
const READY_LINE = "Server is ready";
const ADDRESS_IN_USE = "address already in use";

/** The ports a server listens on for clients and for monitoring. */
interface Ports {
  client: number;
  monitor: number;
}

/** How a cluster member joins its cluster. */
interface Membership {
  /** The cluster's name. */
  cluster: string;
  /** This member's `server_name`. */
  serverName: string;
  /** The port this member listens on for routes. */
  port: number;
  /** The other members' route ports. */
  routes: number[];
}

/** The part of nats-server's `/jsz?streams=true&consumers=true` answer that readiness reads. */
interface Jsz {
  account_details?: {
    stream_detail?: {
      name: string;
      cluster?: { leader?: string };
      consumer_detail?: { name: string; cluster?: { leader?: string } }[];
    }[];
  }[];
}

/** A start that failed because a picked port was in use by then. */
class PortTakenError extends Error {}

/** `count` distinct free ports on 127.0.0.1: all bound at once, then released. */
function freePorts(count: number): number[] {
  const listeners = Array.from({ length: count }, () => Deno.listen({ hostname: HOST, port: 0 }));
  const ports = listeners.map((l) => l.addr.port);
  for (const listener of listeners) listener.close();
  return ports;
}

/** One running nats-server process and its log. */
class ServerProcess {
  readonly #child: Deno.ChildProcess;
  readonly #log: string[] = [];
  readonly #ready = Promise.withResolvers<void>();
  readonly #drained: Promise<void>;
  readonly status: Promise<Deno.CommandStatus>;
  exited = false;

  constructor(binary: string, args: string[]) {
    this.#child = new Deno.Command(binary, {
      args,
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    this.status = this.#child.status.then((status) => {
      this.exited = true;
      return status;
    });
    this.#drained = this.#readLog();
  }

  get log(): string {
    return this.#log.join("\n");
  }

  /** Resolves on the "Server is ready" line; rejects if the process exits first. */
  ready(): Promise<void> {
    return Promise.race([
      this.#ready.promise,
      this.status.then(async (status) => {
        await this.#drained;
        const message = `nats-server exited with code ${status.code} before it was ready`;
        throw this.log.includes(ADDRESS_IN_USE) ? new PortTakenError(message) : new Error(message);
      }),
    ]);
  }

  /** Sends `signal` and waits for the exit and the end of the log; SIGKILL after a guard time. */
  async end(signal: "SIGTERM" | "SIGKILL"): Promise<void> {
    if (!this.exited) {
      this.#signal(signal);
      const guard = setTimeout(() => this.#signal("SIGKILL"), STOP_TIMEOUT_MS);
      await this.status.finally(() => clearTimeout(guard));
    }
    await this.#drained;
  }

  #signal(signal: Deno.Signal): void {
    try {
      this.#child.kill(signal);
    } catch (err) {
      // It exited between the check and the signal.
      if (!(err instanceof TypeError)) throw err;
    }
  }

  async #readLog(): Promise<void> {
    let partial = "";
    for await (const chunk of this.#child.stderr.pipeThrough(new TextDecoderStream())) {
      const lines = (partial + chunk).split("\n");
      partial = lines.pop() ?? "";
      for (const line of lines) this.#remember(line);
    }
    if (partial !== "") this.#remember(partial);
  }

  #remember(line: string): void {
    this.#log.push(line);
    if (this.#log.length > LOG_LINES) this.#log.shift();
    if (line.includes(READY_LINE)) this.#ready.resolve();
  }
}

/** Rejects after `ms` unless `work` settles first (a failure guard). */
async function within<T>(ms: number, what: string, work: Promise<T>): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took longer than ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** A nats-server with JetStream; see the module comment for its life cycle. */
export class NatsServer implements AsyncDisposable {
  /** `nats://127.0.0.1:<port>`, for a client's `servers` option. */
  readonly url: string;
  /** `http://127.0.0.1:<port>` of the monitoring endpoints (`/healthz`, `/jsz`, `/varz`, ...). */
  readonly monitorUrl: string;
  /** The JetStream store directory, kept across `stop()`/`kill()` and `restart()`. */
  readonly storeDir: string;
  readonly #binary: string;
  readonly #dir: string;
  readonly #ports: Ports;
  readonly #membership?: Membership;
  readonly #jetstream: boolean;
  #process?: ServerProcess;

  constructor(
    binary: string,
    dir: string,
    ports: Ports,
    membership?: Membership,
    options: { jetstream?: boolean } = {},
  ) {
    this.#binary = binary;
    this.#dir = dir;
    this.#ports = ports;
    this.#membership = membership;
    this.#jetstream = options.jetstream ?? true;
    this.url = `nats://${HOST}:${ports.client}`;
    this.monitorUrl = `http://${HOST}:${ports.monitor}`;
    this.storeDir = join(dir, "store");
  }

  /** The client port. */
  get port(): number {
    return this.#ports.client;
  }

  /** The cluster member name (`server_name`), if a cluster member. */
  get name(): string | undefined {
    return this.#membership?.serverName;
  }

  /** Whether the process is running. */
  get running(): boolean {
    return this.#process !== undefined && !this.#process.exited;
  }

  /** Starts the process and waits until it is ready (see the module comment). */
  async start(): Promise<void> {
    if (this.running) throw new Error(`${this.url} is already running`);
    const process = new ServerProcess(this.#binary, this.#args());
    this.#process = process;
    try {
      await this.#becomeReady(process);
    } catch (err) {
      await process.end("SIGKILL");
      if (err instanceof PortTakenError) throw err;
      throw new Error(`${err instanceof Error ? err.message : err}\n${process.log}`, {
        cause: err,
      });
    }
  }

  /** Stops the process gracefully (SIGTERM) and waits for it to exit; keeps the store. */
  async stop(): Promise<void> {
    await this.#process?.end("SIGTERM");
  }

  /** Kills the process (SIGKILL), as a crash would, and waits for it to exit; keeps the store. */
  async kill(): Promise<void> {
    await this.#process?.end("SIGKILL");
  }

  /** Stops the process if running, then starts it again on the same ports and store. */
  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  /** Stops the process and deletes its directory. */
  async close(): Promise<void> {
    await this.stop();
    await Deno.remove(this.#dir, { recursive: true });
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #args(): string[] {
    const args = [
      "--addr",
      HOST,
      "--port",
      String(this.#ports.client),
      "--http_port",
      String(this.#ports.monitor),
      ...(this.#jetstream ? ["--jetstream", "--store_dir", this.storeDir] : []),
    ];
    const membership = this.#membership;
    if (membership !== undefined) {
      args.push(
        "--server_name",
        membership.serverName,
        "--cluster_name",
        membership.cluster,
        "--cluster",
        `nats://${HOST}:${membership.port}`,
        "--routes",
        membership.routes.map((port) => `nats://${HOST}:${port}`).join(","),
      );
    }
    return args;
  }

  async #becomeReady(process: ServerProcess): Promise<void> {
    const deadline = Date.now() + START_TIMEOUT_MS;
    await within(
      START_TIMEOUT_MS,
      `nats-server ${this.url} logging "${READY_LINE}"`,
      process.ready(),
    );
    while (true) {
      const problem = await this.#notReadyBecause();
      if (problem === undefined) return;
      if (process.exited) throw new Error(`nats-server ${this.url} exited (${problem})`);
      if (Date.now() > deadline) {
        throw new Error(`nats-server ${this.url} not ready in ${START_TIMEOUT_MS} ms: ${problem}`);
      }
      await new Promise((resolve) => setTimeout(resolve, HEALTH_POLL_MS));
    }
  }

  /**
   * Why this server is not ready yet, or undefined once it is. `/healthz` alone can answer ok
   * before a restarted member has heard from a stream's leader (it then checks only its own
   * log), so a member first waits until every stream and consumer it holds a replica of knows
   * its leader; after that `/healthz` also covers catching up with that leader.
   */
  async #notReadyBecause(): Promise<string | undefined> {
    if (this.#membership !== undefined) {
      const response = await fetch(`${this.monitorUrl}/jsz?streams=true&consumers=true`);
      if (!response.ok) return `/jsz: ${response.status} ${await response.text()}`;
      const jsz: Jsz = await response.json();
      for (const account of jsz.account_details ?? []) {
        for (const stream of account.stream_detail ?? []) {
          if (!stream.cluster?.leader) return `stream ${stream.name} has no leader yet`;
          for (const consumer of stream.consumer_detail ?? []) {
            if (!consumer.cluster?.leader) {
              return `consumer ${stream.name} > ${consumer.name} has no leader yet`;
            }
          }
        }
      }
    }
    const response = await fetch(`${this.monitorUrl}/healthz`);
    const body = await response.text();
    return response.ok ? undefined : `/healthz: ${body}`;
  }
}

/**
 * Starts a lone JetStream server on free ports with a fresh store directory; with
 * `jetstream: false`, a server without JetStream (what a backbone must refuse).
 */
export async function startNatsServer(
  options: { jetstream?: boolean } = {},
): Promise<NatsServer> {
  const binary = await findNatsServer();
  for (let attempt = 1;; attempt++) {
    const [client, monitor] = freePorts(2);
    const dir = await Deno.makeTempDir({ prefix: "perch-nats-" });
    const server = new NatsServer(binary, dir, { client, monitor }, undefined, options);
    try {
      await server.start();
      return server;
    } catch (err) {
      await server.close();
      if (!(err instanceof PortTakenError) || attempt === PORT_ATTEMPTS) throw err;
    }
  }
}

/** A JetStream cluster of servers routed to each other; its members are {@linkcode NatsServer}s. */
export class NatsCluster implements AsyncDisposable {
  readonly servers: readonly NatsServer[];

  constructor(servers: NatsServer[]) {
    this.servers = servers;
  }

  /** Every member's client URL, for a client's `servers` option. */
  get urls(): string[] {
    return this.servers.map((server) => server.url);
  }

  /** Stops every member and deletes their directories. */
  async close(): Promise<void> {
    await Promise.all(this.servers.map((server) => server.close()));
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/**
 * Starts a JetStream cluster of `size` servers (`n1`, `n2`, ...; cluster name `perch`), each
 * with routes to all the others, and waits until every member is healthy.
 */
export async function startNatsCluster(size = 3): Promise<NatsCluster> {
  const binary = await findNatsServer();
  for (let attempt = 1;; attempt++) {
    const ports = freePorts(3 * size);
    const servers: NatsServer[] = [];
    for (let i = 0; i < size; i++) {
      const [client, monitor, port] = ports.slice(3 * i, 3 * i + 3);
      const routes = ports.filter((_, j) => j % 3 === 2 && j !== 3 * i + 2);
      const dir = await Deno.makeTempDir({ prefix: `perch-nats-n${i + 1}-` });
      servers.push(
        new NatsServer(binary, dir, { client, monitor }, {
          cluster: "perch",
          serverName: `n${i + 1}`,
          port,
          routes,
        }),
      );
    }
    const cluster = new NatsCluster(servers);
    const starts = servers.map((server) => server.start());
    try {
      await Promise.all(starts);
      return cluster;
    } catch (err) {
      // The members still starting would wait for a quorum that may never come: end them all.
      await cluster.close();
      const results = await Promise.allSettled(starts);
      const portTaken = results.some((result) =>
        result.status === "rejected" && result.reason instanceof PortTakenError
      );
      if (!portTaken || attempt === PORT_ATTEMPTS) throw err;
    }
  }
}
