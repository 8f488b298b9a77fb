/**
 * Socket-level scenarios written once and run against several brokers: the broker in this test
 * process (`startBroker`), and the real broker started as a child process on Deno and on Bun
 * (`broker_process.ts`). A scenario sees only what every target offers: the ports it listens on
 * and what the broker says about a session, which the in-process target reads from the broker
 * and the process targets from the admin API.
 *
 * @module
 */

import { readFile } from "node:fs/promises";
import { proxyProtocolOptions, webSocketOptions } from "../../src/compose.ts";
import { type Config, type ConfigInput, configSchema } from "../../src/config/mod.ts";
import type { ClientInfo } from "../../src/hooks/hooks.ts";
import { denoSockets } from "../../src/transport/deno_sockets.ts";
import type { AcceptHandler, Listener } from "../../src/transport/transport.ts";
import { WebSocketListener } from "../../src/transport/websocket.ts";
import { startBroker, type TestBroker } from "./broker.ts";
import { startSecureBroker } from "./secure_broker.ts";
import {
  type BrokerPorts,
  type BrokerProcess,
  type LogLine,
  type Runtime,
  RUNTIMES,
  startBrokerProcess,
} from "./broker_process.ts";

/** Where a scenario runs. */
export type Target = "in-process" | Runtime;
/** Every target. */
export const TARGETS: readonly Target[] = ["in-process", ...RUNTIMES];

/** A session as the broker reports it. */
export interface SessionView {
  connected: boolean;
  expiryInterval: number;
  subscriptions: number;
  inflight: number;
  queued: number;
}

/** A connected client as the broker reports it. */
export interface ClientView {
  remoteAddress: string;
  remotePort: number;
  transport: string;
  username: string | null;
  /** Bytes written to its connection and not yet sent. */
  bufferedBytes: number;
  /** The broker stopped reading it: its replies passed the write bound unread. */
  readingPaused: boolean;
  certificateCommonName: string | null;
}

/** Counters of the broker. */
export interface Counters {
  connectionsAccepted: number;
  clientsConnected: number;
  droppedSlowConsumer: number;
}

/** A broker under test, reached over sockets. */
export interface BrokerUnderTest {
  readonly target: Target;
  /** MQTT over TCP. */
  readonly port: number;
  /** Every listener's port (the process targets also serve the admin API). */
  readonly ports: BrokerPorts;
  /** Log lines of a process target; empty in process. */
  readonly logs: LogLine[];
  /** A client's session, undefined when it has none. */
  session(clientId: string): Promise<SessionView | undefined>;
  /** A connected client, undefined when it is not connected. */
  client(clientId: string): Promise<ClientView | undefined>;
  counters(): Promise<Counters>;
  /** Resolves once a client's session is offline (its connection closed and released it). */
  offline(clientId: string): Promise<void>;
  /** Resolves once the client has subscribed (the broker's SUBACK is on its way). */
  subscribed(clientId: string): Promise<void>;
  /** Client ids that completed CONNECT, in order. */
  clientIds(): string[];
  /** Resolves with why the TCP listener closed the first connection for its PROXY header. */
  proxyHeaderRefused(): Promise<string>;
  /** Retained messages stored. */
  retainedCount(): Promise<number>;
  close(): Promise<void>;
}

/** Files a broker needs (certificates), made before it starts and removed after it stopped. */
export interface Fixture {
  /** The broker's configuration, naming the files. */
  config: ConfigInput;
  remove(): Promise<void>;
}

/** How to start a broker for a scenario. */
export interface TargetOptions<F extends Fixture = Fixture> {
  /**
   * Broker configuration; listener addresses are set to free loopback ports. With `auth` or
   * `acl`, the in-process broker gets its security parts built from it, as `main.ts` does.
   */
  config?: ConfigInput;
  /** Makes the files for each run; its `config` replaces `config`. */
  fixture?: () => Promise<F>;
  /** The targets to run on (default: every one). */
  targets?: readonly Target[];
}

/** Longest wait for a session to go offline (a guard, never a delay). */
const WAIT_MS = 10_000;
/** Pause between two questions to the admin API while waiting for a session to go offline. */
const POLL_MS = 10;

/**
 * Registers one `Deno.test` per target, each with a fresh broker (and fixture) stopped (and
 * removed) afterwards.
 */
export function targetTest<F extends Fixture = Fixture>(
  name: string,
  options: TargetOptions<F>,
  scenario: (broker: BrokerUnderTest, fixture: F) => Promise<void>,
): void {
  const none = { config: options.config ?? {}, remove: () => Promise.resolve() } as Fixture as F;
  for (const target of options.targets ?? TARGETS) {
    Deno.test(`${name} [${target}]`, async () => {
      const fixture = options.fixture ? await options.fixture() : none;
      try {
        const broker = await startTarget(target, fixture.config);
        try {
          await scenario(broker, fixture);
        } finally {
          await broker.close();
        }
      } finally {
        await fixture.remove();
      }
    });
  }
}

/** Starts a broker on `target`. */
export async function startTarget(
  target: Target,
  config: ConfigInput = {},
): Promise<BrokerUnderTest> {
  return target === "in-process" ? await inProcess(config) : await inChildProcess(target, config);
}

async function inProcess(config: ConfigInput): Promise<BrokerUnderTest> {
  const connected: string[] = [];
  const subscribed = new Set<string>();
  const waiters = new Map<string, () => void>();
  const proxyRefusals = Promise.withResolvers<string>();
  const hooks = {
    onConnect: (client: ClientInfo) => void connected.push(client.clientId),
    onSubscribe: (client: ClientInfo) => {
      subscribed.add(client.clientId);
      waiters.get(client.clientId)?.();
    },
  };
  const server: TestBroker = config.auth !== undefined || config.acl !== undefined
    ? await startSecureBroker({ config, hooks })
    : startBroker({ config, hooks });
  let bound: BoundListeners;
  try {
    // The test broker's own config keeps only its TCP listener: the other listeners come from ours.
    bound = await bindListeners(configSchema.parse(config), server.broker.accept, (reason) => {
      proxyRefusals.resolve(reason);
    });
  } catch (error) {
    await server.close();
    throw error;
  }
  const { ports, listeners } = bound;
  ports.tcp ??= server.port;
  return {
    target: "in-process",
    port: ports.tcp,
    ports,
    logs: [],
    async session(clientId) {
      const info = await server.broker.getSession(clientId);
      return info && { ...info, subscriptions: info.subscriptions.length };
    },
    // deno-lint-ignore require-await -- the same shape as the process targets' answer
    async client(clientId) {
      const info = server.broker.getClient(clientId);
      return info && {
        ...info,
        username: info.username ?? null,
        certificateCommonName: info.peerCertificate?.commonName ?? null,
      };
    },
    // deno-lint-ignore require-await -- likewise
    async counters() {
      const { connectionsAccepted, clientsConnected, droppedSlowConsumer } = server.broker.stats;
      return { connectionsAccepted, clientsConnected, droppedSlowConsumer };
    },
    offline: (clientId) => server.offline(clientId),
    subscribed(clientId) {
      if (subscribed.has(clientId)) return Promise.resolve();
      const { promise, resolve } = Promise.withResolvers<void>();
      waiters.set(clientId, resolve);
      return promise;
    },
    clientIds: () => [...connected],
    proxyHeaderRefused: () => proxyRefusals.promise,
    retainedCount: () => server.backbone.retained.count(),
    async close() {
      for (const listener of listeners) listener.close();
      await server.close();
      await Promise.all(
        listeners.map((l) => l instanceof WebSocketListener ? l.finished : undefined),
      );
    },
  };
}

interface BoundListeners {
  ports: BrokerPorts;
  listeners: Listener[];
}

/**
 * The listeners of `config` beyond the plain TCP one the test broker always has, bound on Deno's
 * sockets as `main.ts` binds them: TCP with the PROXY protocol, TLS (mutual with a CA), ws, wss.
 */
async function bindListeners(
  config: Config,
  accept: AcceptHandler,
  onProxyHeaderError: (reason: string) => void,
): Promise<BoundListeners> {
  const ports: BrokerPorts = {};
  const listeners: Listener[] = [];
  const local = { hostname: "127.0.0.1", port: 0 };
  const read = (path: string | undefined) =>
    path === undefined ? undefined : readFile(path, "utf8");
  try {
    const { tcp, tls, ws, wss } = config.listeners;
    if (tcp.proxyProtocol.enabled) {
      const proxyProtocol = proxyProtocolOptions(config);
      listeners.push(
        denoSockets.listenTcp({ ...local, proxyProtocol, onProxyHeaderError }, accept),
      );
      ports.tcp = listeners.at(-1)!.port;
    }
    if (tls.enabled) {
      const [cert, key, ca] = await Promise.all([read(tls.cert), read(tls.key), read(tls.ca)]);
      const mutual = tls.requestClientCert ? ca : undefined;
      listeners.push(
        await denoSockets.listenTls({ ...local, cert: cert!, key: key!, ca: mutual }, accept),
      );
      ports.tls = listeners.at(-1)!.port;
    }
    for (const [name, listener] of [["ws", ws], ["wss", wss]] as const) {
      if (!listener.enabled) continue;
      const tlsFiles = name === "wss"
        ? { cert: await read(wss.cert), key: await read(wss.key) }
        : {};
      listeners.push(
        WebSocketListener.listen(
          denoSockets,
          { ...local, ...tlsFiles, ...webSocketOptions(listener) },
          accept,
        ),
      );
      ports[name] = listeners.at(-1)!.port;
    }
  } catch (error) {
    for (const listener of listeners) listener.close();
    throw error;
  }
  return { ports, listeners };
}

async function inChildProcess(runtime: Runtime, config: ConfigInput): Promise<BrokerUnderTest> {
  const dir = await Deno.makeTempDir({ prefix: `perch-${runtime}-` });
  const local = { host: "127.0.0.1", port: 0 };
  const listeners = config.listeners ?? {};
  const file = {
    ...config,
    sys: { enabled: false, ...config.sys },
    // Debug: subscribes are logged, so a scenario can wait for one.
    log: { level: "debug", ...config.log },
    listeners: {
      ...listeners,
      tcp: { ...listeners.tcp, ...local },
      tls: { ...listeners.tls, ...local },
      ws: { ...listeners.ws, ...local },
      wss: { ...listeners.wss, ...local },
    },
    admin: { ...config.admin, ...local },
  };
  // JSON is YAML.
  await Deno.writeTextFile(`${dir}/perch.yaml`, JSON.stringify(file));
  let broker: BrokerProcess | undefined;
  try {
    broker = await startBrokerProcess(runtime, { args: ["-c", `${dir}/perch.yaml`] });
    const ports = await broker.started();
    const api = `http://127.0.0.1:${ports.admin}/api/v1`;
    const session = async (clientId: string): Promise<SessionView | undefined> => {
      const response = await fetch(`${api}/sessions/${encodeURIComponent(clientId)}`);
      if (response.status === 404) {
        await response.body?.cancel();
        return undefined;
      }
      if (!response.ok) throw new Error(`GET session ${clientId}: ${await response.text()}`);
      return await response.json();
    };
    const running = broker;
    return {
      target: runtime,
      port: ports.tcp!,
      ports,
      logs: broker.logs,
      session,
      async offline(clientId) {
        const deadline = Date.now() + WAIT_MS;
        while ((await session(clientId))?.connected !== false) {
          if (Date.now() > deadline) {
            throw new Error(`${clientId} not offline within ${WAIT_MS} ms`);
          }
          await new Promise((resolve) => setTimeout(resolve, POLL_MS));
        }
      },
      async client(clientId) {
        const response = await fetch(`${api}/clients/${encodeURIComponent(clientId)}`);
        if (response.status === 404) {
          await response.body?.cancel();
          return undefined;
        }
        if (!response.ok) throw new Error(`GET client ${clientId}: ${await response.text()}`);
        return await response.json();
      },
      async counters() {
        const stats = await (await fetch(`${api}/stats`)).json();
        return {
          connectionsAccepted: stats.connections.accepted,
          clientsConnected: stats.connections.connected,
          droppedSlowConsumer: stats.dropped.slowConsumer,
        };
      },
      async subscribed(clientId) {
        await running.line("client subscribed", { clientId });
      },
      async proxyHeaderRefused() {
        return String((await running.line("connection closed: bad PROXY header")).reason);
      },
      clientIds: () =>
        running.logs
          .filter((line) => line.msg === "client connected" && line.level === "info")
          .map((line) => String(line.clientId)),
      async retainedCount() {
        const response = await fetch(`${api}/retained?limit=1`);
        return (await response.json()).meta.count;
      },
      async close() {
        const status = await running.stop();
        await Deno.remove(dir, { recursive: true });
        if (status.code !== 0) {
          throw new Error(
            `The broker on ${runtime} exited with ${status.code}: ${JSON.stringify(running.logs)}`,
          );
        }
      },
    };
  } catch (error) {
    await broker?.stop();
    await Deno.remove(dir, { recursive: true });
    throw error;
  }
}
