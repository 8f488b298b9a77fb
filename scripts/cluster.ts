/**
 * `deno task cluster`: one nats-server with JetStream in a temporary directory, N broker
 * front-ends (`deno run src/main.ts`, separate processes, each with a generated config on free
 * ports and the `nats` backbone) and haproxy as the TCP load balancer in front of them. Prints the
 * addresses and stops everything on Ctrl-C. The pieces are exported for the cluster tests.
 *
 * Usage: `deno task cluster [--nodes N] [--port P]` (defaults: 3 front-ends, load balancer on a
 * free port).
 *
 * @module
 */

import { join } from "node:path";
import { type NatsServer, startNatsServer } from "../test/helpers/nats.ts";
import { taskV8Flags } from "./deno_tasks.ts";

const HOST = "127.0.0.1";
const ROOT = new URL("..", import.meta.url).pathname;
/** Longest a front-end or haproxy may take to start (a failure guard, never a delay). */
const START_TIMEOUT_MS = 60_000;

/** A running broker front-end process. */
export interface FrontEnd {
  nodeId: string;
  /** The MQTT TCP port. */
  port: number;
  /** The admin API port. */
  adminPort: number;
  /** The OS process id (for its memory, or to signal it). */
  pid: number;
  /** What it was started with, its ports included: start it again with these to restart it. */
  options: FrontEndOptions;
  /** Log lines (JSON) so far. */
  readonly log: string[];
  /** Whether the process has exited. */
  readonly exited: boolean;
  /** SIGTERM, and waits for the exit. */
  stop(): Promise<void>;
  /** SIGKILL: a crash. */
  kill(): Promise<void>;
}

/** `count` free ports on 127.0.0.1 (bound at once, then released). */
export function freePorts(count: number): number[] {
  const listeners = Array.from({ length: count }, () => Deno.listen({ hostname: HOST, port: 0 }));
  const ports = listeners.map((l) => l.addr.port);
  for (const listener of listeners) listener.close();
  return ports;
}

/** Options of one front-end. */
export interface FrontEndOptions {
  nodeId: string;
  natsUrl: string;
  /** Every NATS server URL (a NATS cluster); `natsUrl` alone when absent. */
  natsUrls?: string[];
  /** Stream, bucket and subject prefix shared by the front-ends of one cluster. */
  prefix: string;
  /** More `backbone` keys (`leaseTimeout`, `ackWait`, `replicas`, ...). */
  backbone?: Record<string, unknown>;
  /** More config keys (YAML mapping as an object). */
  extra?: Record<string, unknown>;
  /** The runtime it runs on (default Deno). */
  runtime?: "deno" | "bun";
  /** The MQTT port (a free one when absent). */
  port?: number;
  /** The admin API port (a free one when absent). */
  adminPort?: number;
}

/** Starts a front-end and resolves once its log says the broker started. */
export async function startFrontEnd(options: FrontEndOptions): Promise<FrontEnd> {
  const [freePort, freeAdminPort] = freePorts(2);
  const port = options.port ?? freePort;
  const adminPort = options.adminPort ?? freeAdminPort;
  const config = {
    node: { id: options.nodeId },
    log: { format: "json", level: "info" },
    listeners: { tcp: { host: HOST, port } },
    admin: { host: HOST, port: adminPort },
    sys: { enabled: false },
    backbone: {
      kind: "nats",
      servers: options.natsUrls ?? [options.natsUrl],
      prefix: options.prefix,
      ...options.backbone,
    },
    ...options.extra,
  };
  const dir = await Deno.makeTempDir({ prefix: "perch-front-end-" });
  const file = join(dir, "perch.json");
  // JSON is YAML: the config loader reads it.
  await Deno.writeTextFile(file, JSON.stringify(config));
  const main = [join(ROOT, "src/main.ts"), "-c", file];
  const [command, args] = options.runtime === "bun"
    ? ["bun", main]
    : [Deno.execPath(), ["run", "-A", ...await taskV8Flags("frontend"), ...main]];
  const child = new Deno.Command(command, {
    args,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const log: string[] = [];
  const started = Promise.withResolvers<void>();
  const read = async (stream: ReadableStream<Uint8Array>) => {
    let rest = "";
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      const lines = (rest + chunk).split("\n");
      rest = lines.pop()!;
      for (const line of lines) {
        log.push(line);
        if (log.length > 2000) log.shift();
        if (line.includes('"broker started"')) started.resolve();
      }
    }
  };
  const drained = Promise.all([read(child.stdout), read(child.stderr)]);
  let exited = false;
  const status = child.status.finally(() => exited = true);
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    await Promise.race([
      started.promise,
      status.then(async (s) => {
        await drained;
        throw new Error(`front-end ${options.nodeId} exited (${s.code}):\n${log.join("\n")}`);
      }),
      new Promise((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`front-end ${options.nodeId} did not start:\n${log.join("\n")}`)),
          START_TIMEOUT_MS,
        );
      }),
    ]);
  } catch (error) {
    try {
      child.kill("SIGKILL");
    } catch { /* already gone */ }
    await status;
    await drained;
    await Deno.remove(dir, { recursive: true });
    throw error;
  } finally {
    clearTimeout(timer);
  }
  const end = async (signal: Deno.Signal) => {
    try {
      child.kill(signal);
    } catch { /* already gone */ }
    await status;
    await drained;
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  };
  return {
    nodeId: options.nodeId,
    port,
    adminPort,
    pid: child.pid,
    options: { ...options, port, adminPort },
    log,
    get exited() {
      return exited;
    },
    stop: () => end("SIGTERM"),
    kill: () => end("SIGKILL"),
  };
}

/** A running haproxy balancing TCP connections over the front-ends. */
export interface LoadBalancer {
  port: number;
  stop(): Promise<void>;
}

/**
 * Starts haproxy on `port` (a free one when 0), round robin over `backends`. A connection to a
 * backend that refuses it is tried again on another (`option redispatch`), so clients of a
 * front-end that died find a survivor before haproxy's health check marks it down.
 */
export async function startLoadBalancer(
  backends: number[],
  port = 0,
  options: { maxconn?: number } = {},
): Promise<LoadBalancer> {
  const listen = port === 0 ? freePorts(1)[0] : port;
  const dir = await Deno.makeTempDir({ prefix: "perch-haproxy-" });
  const file = join(dir, "haproxy.cfg");
  await Deno.writeTextFile(
    file,
    [
      "global",
      `  maxconn ${options.maxconn ?? 4096}`,
      "defaults",
      "  mode tcp",
      `  maxconn ${options.maxconn ?? 4096}`,
      "  option redispatch",
      "  retries 3",
      "  timeout connect 5s",
      "  timeout client 1h",
      "  timeout server 1h",
      "frontend mqtt",
      `  bind ${HOST}:${listen}`,
      "  default_backend brokers",
      "backend brokers",
      "  balance roundrobin",
      ...backends.map((backend, i) => `  server node${i + 1} ${HOST}:${backend} check inter 1s`),
      "",
    ].join("\n"),
  );
  const child = new Deno.Command("haproxy", {
    args: ["-db", "-f", file],
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const errors = new Response(child.stderr).text();
  let exited = false;
  child.status.then(() => exited = true);
  // Ready when it accepts connections.
  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    try {
      const probe = await Deno.connect({ hostname: HOST, port: listen });
      probe.close();
      break;
    } catch {
      if (Date.now() > deadline || exited) {
        if (!exited) child.kill("SIGKILL");
        throw new Error(`haproxy did not start: ${await errors}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }
  return {
    port: listen,
    stop: async () => {
      try {
        child.kill("SIGTERM");
      } catch { /* already gone */ }
      await child.status;
      await errors;
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}

/** A whole local cluster: NATS, front-ends and the load balancer. */
export interface LocalCluster {
  nats: NatsServer;
  frontEnds: FrontEnd[];
  balancer: LoadBalancer | undefined;
  close(): Promise<void>;
}

/** What {@linkcode startLocalCluster} starts. */
export interface LocalClusterOptions {
  /** Front-ends (3). */
  nodes?: number;
  /** haproxy in front of them (true). */
  balancer?: boolean;
  /** haproxy's port (a free one when 0 or absent). */
  port?: number;
  prefix?: string;
  /** Front-end `i` runs on `runtimes[i % runtimes.length]` (default: all on Deno). */
  runtimes?: readonly ("deno" | "bun")[];
  /** More `backbone` keys of every front-end. */
  backbone?: Record<string, unknown>;
  /** More config keys of every front-end. */
  extra?: Record<string, unknown>;
}

/** Starts NATS, `nodes` front-ends and (unless `balancer` is false) haproxy. */
export async function startLocalCluster(options: LocalClusterOptions = {}): Promise<LocalCluster> {
  const nats = await startNatsServer();
  const frontEnds: FrontEnd[] = [];
  let balancer: LoadBalancer | undefined;
  const close = async () => {
    await balancer?.stop();
    await Promise.all(frontEnds.map((frontEnd) => frontEnd.stop()));
    await nats.close();
  };
  try {
    const prefix = options.prefix ?? "perch";
    const count = options.nodes ?? 3;
    const runtimes = options.runtimes ?? ["deno"];
    for (let i = 1; i <= count; i++) {
      frontEnds.push(
        await startFrontEnd({
          nodeId: `node${i}`,
          natsUrl: nats.url,
          prefix,
          runtime: runtimes[(i - 1) % runtimes.length],
          backbone: options.backbone,
          extra: options.extra,
        }),
      );
    }
    if (options.balancer !== false) {
      balancer = await startLoadBalancer(frontEnds.map((f) => f.port), options.port);
    }
  } catch (error) {
    await close();
    throw error;
  }
  return { nats, frontEnds, balancer, close };
}

async function main(args: string[]): Promise<number> {
  const flag = (name: string) => {
    const i = args.indexOf(name);
    return i === -1 ? undefined : Number(args[i + 1]);
  };
  const nodes = flag("--nodes") ?? 3;
  const port = flag("--port") ?? 0;
  if (!Number.isInteger(nodes) || nodes < 1 || !Number.isInteger(port) || port < 0) {
    console.error("usage: deno task cluster [--nodes N] [--port P]");
    return 2;
  }
  console.log(`starting nats-server, ${nodes} front-ends and haproxy ...`);
  const cluster = await startLocalCluster({ nodes, port });
  console.log(`NATS:           ${cluster.nats.url} (monitoring ${cluster.nats.monitorUrl})`);
  for (const frontEnd of cluster.frontEnds) {
    console.log(
      `front-end ${frontEnd.nodeId}: mqtt://${HOST}:${frontEnd.port}  admin http://${HOST}:${frontEnd.adminPort}`,
    );
  }
  console.log(`load balancer:  mqtt://${HOST}:${cluster.balancer!.port}  (haproxy, round robin)`);
  console.log("Ctrl-C stops everything.");
  const stopped = Promise.withResolvers<void>();
  const stop = () => stopped.resolve();
  Deno.addSignalListener("SIGINT", stop);
  Deno.addSignalListener("SIGTERM", stop);
  await stopped.promise;
  console.log("stopping ...");
  await cluster.close();
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
