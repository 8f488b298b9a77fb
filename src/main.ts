/**
 * Composition root: CLI -> config -> backbone -> broker -> listeners -> admin API. The only module
 * that wires concrete parts together.
 *
 * @module
 */

import { readFile } from "node:fs/promises";
import process from "node:process";
import { type ApiUser, createAdminApp, serveNodeRequests } from "../routes/mod.ts";

import { anonymousNotice, createSecurity, type Security } from "./auth/setup.ts";
import { BanList, withBans } from "./auth/bans.ts";
import type { EnhancedAuthMethod, EnhancedAuthMethods } from "./auth/enhanced.ts";
import { createScramMethod, SCRAM_SHA_256 } from "./auth/scram.ts";
import type { Backbone } from "./backbone/backbone.ts";
import { MemoryBackbone } from "./backbone/memory.ts";
import { NatsBackbone } from "../cluster/nats_backbone.ts";
import { openBunSqlite } from "./backbone/bun_sqlite.ts";
import { openNodeSqlite } from "./backbone/node_sqlite.ts";
import { SqliteBackbone, SqliteOpenError } from "./backbone/sqlite.ts";
import { Broker } from "./broker/broker.ts";
import { KafkaBridge } from "./bridge/kafka_bridge.ts";
import { type Config, ConfigError, helpText, loadConfig, parseArgs } from "./config/mod.ts";
import { parseScramCredentials } from "./auth/credentials.ts";
import { proxyProtocolOptions, toBrokerOptions, VERSION, webSocketOptions } from "./compose.ts";

import { runtimeSockets } from "./transport/runtime.ts";
import type { HttpServer, Sockets } from "./transport/sockets.ts";
import type { Listener } from "./transport/transport.ts";
import { WebSocketListener } from "./transport/websocket.ts";
import { isLoopbackAddress } from "./util/address.ts";
import { type Clock, createSystemClock } from "./util/clock.ts";
import { EventLoopLagMonitor } from "./util/event_loop_lag.ts";
import { IdleCollector, runtimeCollector } from "./ops/idle_collection.ts";
import { tuneRuntime } from "./ops/runtime_flags.ts";
import { createLogger, type Logger } from "./util/logger.ts";
import { ClientEvents } from "./ops/client_events.ts";
import { createNotifier } from "./events/setup.ts";
import type { Notifier } from "./events/notifier.ts";
import { AgentRegistry } from "./events/agents.ts";
import { checkConfigFiles } from "./ops/config_files.ts";
import { routeRuntimeOutput } from "./ops/runtime_output.ts";
import { formatIssue } from "./config/errors.ts";

// The config mapping moved to compose.ts (src/mod.ts exports it from there); kept here for the
// scripts and tests that import it from the composition root.
export { toBrokerOptions } from "./compose.ts";

/** A part that cannot start, named by its config key (e.g. `listeners.tls`) and address. */
class StartupError extends Error {
  override name = "StartupError";
  readonly key: string;
  readonly address: string;

  constructor(key: string, host: string, port: number, cause: unknown) {
    const address = `${host.includes(":") ? `[${host}]` : host}:${port}`;
    const reason = cause instanceof Error ? cause.message : String(cause);
    super(`${key}: cannot listen on ${address}: ${reason}`, { cause });
    this.key = key;
    this.address = address;
  }
}

/** Runs `start`, naming the config key and address in the error when it fails. */
async function binding<T>(
  key: string,
  host: string,
  port: number,
  start: () => T | Promise<T>,
): Promise<T> {
  try {
    return await start();
  } catch (error) {
    throw new StartupError(key, host, port, error);
  }
}

/** What the admin API needs from the running broker. */
interface AdminParts {
  sockets: Sockets;
  broker: Broker;
  security: Security;
  bans: BanList;
  clientEvents: ClientEvents;
  notifier: Notifier;
  agents: AgentRegistry | undefined;
  listeners: Listener[];
  readiness: { listeners: boolean; backbone: boolean };
  eventLoopLag: EventLoopLagMonitor;
  idleCollector: IdleCollector;
  clock: Clock;
  bridge: KafkaBridge | undefined;
}

/**
 * Serves the admin API (and MQTT over WebSocket at `listeners.ws.path` with `admin.webSocket`).
 * With no token and no API user configured it listens on loopback only: there are no default
 * credentials, so an open API is never reachable from another machine.
 */
async function startAdminServer(
  config: Config,
  parts: AdminParts,
  logger: Logger,
): Promise<HttpServer> {
  const admin = config.admin;
  const users: ApiUser[] = admin.users.map((user) => {
    const credentials = parseScramCredentials(user.password);
    if (credentials instanceof Error) {
      throw new TypeError(`admin.users: user "${user.username}": ${credentials.message}`);
    }
    return { username: user.username, role: user.role, credentials };
  });
  const open = admin.tokens.length === 0 && users.length === 0;
  let hostname = admin.host;
  if (open && !isLoopbackAddress(hostname)) {
    hostname = hostname.includes(":") ? "::1" : "127.0.0.1";
    logger.warn(
      "admin API has no credentials configured: listening on loopback only (set admin.tokens or admin.users to serve other machines)",
      { configured: admin.host, host: hostname },
    );
  } else if (open) {
    logger.info("admin API has no credentials configured: anyone on this machine may use it", {
      host: hostname,
    });
  } else if (admin.tls.cert === undefined && !isLoopbackAddress(hostname)) {
    logger.warn(
      "admin API serves other machines without TLS: tokens and passwords cross the network in clear text (set admin.tls.cert and admin.tls.key)",
      { host: hostname },
    );
  }
  const jwtSecret = admin.jwtSecret ?? crypto.getRandomValues(new Uint8Array(32)).toBase64();
  const app = createAdminApp({
    broker: parts.broker,
    auth: { tokens: admin.tokens, users, jwtSecret, jwtTtl: admin.jwtTtl, clock: parts.clock },
    security: {
      acl: parts.security.acl,
      users: parts.security.users,
      aclRules: parts.security.aclRules,
      bans: parts.bans,
    },
    clientEvents: parts.clientEvents,
    notifier: parts.notifier,
    agents: parts.agents,
    login: { maxFailures: admin.loginMaxFailures, lockout: admin.loginLockout },
    readiness: () => ({ ...parts.readiness }),
    bridge: parts.bridge,
    listeners: () => describeListeners(parts.listeners),
    eventLoopLag: () => parts.eventLoopLag.read(),
    idleCollection: () => parts.idleCollector.stats,
    maxBodySize: admin.maxBodySize,
    publicMetrics: admin.publicMetrics,
    logger,
  });
  const webSocket = admin.webSocket
    ? { options: webSocketOptions(config.listeners.ws), accept: parts.broker.accept }
    : undefined;
  const tls = admin.tls.cert === undefined ? undefined : {
    cert: await readFile(admin.tls.cert, "utf8"),
    key: await readFile(admin.tls.key!, "utf8"),
  };
  const server = await binding("admin", hostname, admin.port, () =>
    parts.sockets.serveHttp(
      {
        hostname,
        port: admin.port,
        ...tls,
        webSocket,
        onError: (error) => logger.error("admin request failed", { error }),
      },
      (request, peer) => app.fetch(request, { remoteAddress: peer.address }),
    ));
  logger.info("admin API started", {
    address: `${server.hostname}:${server.port}`,
    scheme: server.secure ? "https" : "http",
    ...(webSocket ? { webSocket: config.listeners.ws.path } : {}),
  });
  return server;
}

/**
 * The enhanced-authentication methods the configuration turns on. SCRAM checks the users of the
 * chain's password file, so it sees every reload of that file.
 */
export function authMethodsFrom(config: Config, security: Security): EnhancedAuthMethods {
  const methods = new Map<string, EnhancedAuthMethod>();
  if (config.auth.scram.enabled && security.users) {
    methods.set(SCRAM_SHA_256, createScramMethod({ store: security.users }));
  }
  return methods;
}

/**
 * Binds every enabled listener; a listener that cannot bind stops the start-up with a
 * {@linkcode StartupError} naming it (and the listeners bound so far are closed).
 */
async function startListeners(
  sockets: Sockets,
  config: Config,
  broker: Broker,
  logger: Logger,
): Promise<Listener[]> {
  const listeners: Listener[] = [];
  try {
    await bindListeners(sockets, config, broker, logger, listeners);
  } catch (error) {
    for (const listener of listeners) listener.close();
    throw error;
  }
  for (const listener of listeners) {
    logger.info("listener started", {
      transport: listener.kind,
      address: `${listener.hostname}:${listener.port}`,
    });
  }
  return listeners;
}

async function bindListeners(
  sockets: Sockets,
  config: Config,
  broker: Broker,
  logger: Logger,
  listeners: Listener[],
): Promise<void> {
  const onAcceptError = (error: Error) => logger.warn("accept failed", { error });
  const onProxyHeaderError = (reason: string, remote: string) =>
    logger.info("connection closed: bad PROXY header", { remote, reason });
  const onError = (error: unknown) => logger.error("WebSocket request failed", { error });
  const { tcp, tls, ws, wss } = config.listeners;
  if (tcp.enabled) {
    listeners.push(
      await binding("listeners.tcp", tcp.host, tcp.port, () =>
        sockets.listenTcp({
          hostname: tcp.host,
          port: tcp.port,
          nativeHandle: tcp.nativeHandle,
          onAcceptError,
          proxyProtocol: proxyProtocolOptions(config),
          onProxyHeaderError,
        }, broker.accept)),
    );
  }
  if (tls.enabled) {
    const [cert, key, ca] = await Promise.all([
      readFile(tls.cert!, "utf8"),
      readFile(tls.key!, "utf8"),
      // Mutual TLS: clients must present a certificate chaining to this CA.
      tls.requestClientCert ? readFile(tls.ca!, "utf8") : undefined,
    ]);
    const onHandshakeError = (error: Error) =>
      logger.debug("TLS handshake failed", { error: error.message });
    listeners.push(
      await binding("listeners.tls", tls.host, tls.port, () =>
        sockets.listenTls(
          { hostname: tls.host, port: tls.port, cert, key, ca, onAcceptError, onHandshakeError },
          broker.accept,
        )),
    );
  }
  if (ws.enabled) {
    listeners.push(
      await binding("listeners.ws", ws.host, ws.port, () =>
        WebSocketListener.listen(
          sockets,
          { hostname: ws.host, port: ws.port, onError, ...webSocketOptions(ws) },
          broker.accept,
        )),
    );
  }
  if (wss.enabled) {
    const [cert, key] = await Promise.all([
      readFile(wss.cert!, "utf8"),
      readFile(wss.key!, "utf8"),
    ]);
    listeners.push(
      await binding("listeners.wss", wss.host, wss.port, () =>
        WebSocketListener.listen(
          sockets,
          { hostname: wss.host, port: wss.port, cert, key, onError, ...webSocketOptions(wss) },
          broker.accept,
        )),
    );
  }
}

async function main(args: string[]): Promise<number> {
  tuneRuntime();
  const cli = parseArgs(args);
  if ("error" in cli) {
    console.error(`${cli.error}\n\n${helpText()}`);
    return 2;
  }
  if (cli.help) {
    console.log(helpText());
    return 0;
  }
  if (cli.version) {
    console.log(`perch ${VERSION}`);
    return 0;
  }
  let config: Config;
  try {
    config = await loadConfig({ file: cli.config, env: process.env });
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(err.message);
      return 1;
    }
    throw err;
  }
  if (cli.checkConfig) {
    const problems = await checkConfigFiles(config);
    if (problems.length > 0) {
      console.error(new ConfigError(problems).message);
      return 1;
    }
    console.log("Configuration is valid");
    return 0;
  }

  const logger = createLogger(config.log);
  routeRuntimeOutput(logger);
  const problems = await checkConfigFiles(config);
  if (problems.length > 0) {
    for (const problem of problems) {
      logger.error(`cannot start: ${formatIssue(problem)}`, { key: problem.path });
    }
    return 1;
  }
  const clock = createSystemClock();
  let backbone: Backbone;
  try {
    backbone = await createBackbone(config, clock, logger);
    await backbone.start({ id: config.node.id, version: VERSION, startedAt: clock.now() });
  } catch (err) {
    // An SQLite file that cannot be used names its key; any other failure is the backbone's.
    const key = err instanceof SqliteOpenError ? "backbone.path" : "backbone";
    logger.error(`cannot start: ${key}: ${err instanceof Error ? err.message : err}`, { key });
    return 1;
  }
  // After the backbone: the users and ACL rules live in its config store.
  let security: Security;
  try {
    security = await createSecurity(config.auth, config.acl, {
      clock,
      logger,
      config: backbone.config,
    });
  } catch (err) {
    logger.error("cannot start: security configuration", { error: err });
    await backbone.close();
    return 1;
  }
  if (config.auth.chain.includes("certificate") && !config.listeners.tls.requestClientCert) {
    logger.warn(
      "auth.chain lists certificate but listeners.tls.requestClientCert is false: no client will present one",
    );
  }
  // Kafka down at start-up never stops the broker: the bridge connects in the background.
  let bridge: KafkaBridge | undefined;
  if (config.bridge.kafka.brokers.length > 0) {
    bridge = new KafkaBridge({
      settings: config.bridge.kafka,
      backbone,
      nodeId: config.node.id,
      clock,
      logger,
    });
    try {
      await bridge.start();
    } catch (err) {
      logger.error(`cannot start: bridge.kafka: ${err instanceof Error ? err.message : err}`, {
        key: "bridge.kafka",
      });
      await bridge.close();
      await backbone.close();
      security.close();
      return 1;
    }
  }
  const readiness = { listeners: false, backbone: true };
  const bans = new BanList({ clock, maxBans: config.admin.maxBans });
  const secured = withBans(bans, security.hooks, authMethodsFrom(config, security), logger);
  const clientEvents = new ClientEvents(logger);
  let notifier: Notifier;
  try {
    notifier = await createNotifier(config, { clock, logger });
  } catch (err) {
    logger.error(`cannot start: ${err instanceof Error ? err.message : err}`, { key: "notify" });
    await bridge?.close();
    await backbone.close();
    security.close();
    return 1;
  }
  const broker = new Broker({
    options: toBrokerOptions(config),
    backbone,
    clock,
    logger,
    hooks: { ...secured.hooks, ...clientEvents.hooks() },
    authMethods: secured.authMethods,
    version: `perch ${VERSION}`,
    sinks: bridge ? [bridge] : undefined,
  });
  let agents: AgentRegistry | undefined;
  if (config.agent.enabled) {
    agents = new AgentRegistry({
      store: broker.backbone.config,
      notifier,
      nodeId: config.node.id,
      clock,
      logger,
      maxAgents: config.agent.maxAgents,
      isSubscribed: (clientId, filter) =>
        broker.sessions.attached(clientId)?.subscriptions.has(filter) ?? false,
    });
    try {
      await agents.start();
    } catch (err) {
      logger.error("cannot start: agent records unavailable", { key: "agent", error: err });
      await broker.close(0);
      await notifier.close(0);
      await bridge?.close();
      await backbone.close();
      security.close();
      return 1;
    }
  }
  broker.onEvent((event) => {
    notifier.event(event);
    agents?.event(event);
  });
  broker.start();
  const sockets = runtimeSockets();
  let listeners: Listener[];
  try {
    listeners = await startListeners(sockets, config, broker, logger);
  } catch (err) {
    logger.error(`cannot start: ${err instanceof Error ? err.message : err}`, startupFields(err));
    await broker.close(0);
    await notifier.close(0);
    await bridge?.close();
    await backbone.close();
    security.close();
    return 1;
  }
  readiness.listeners = true;
  const eventLoopLag = new EventLoopLagMonitor(clock);
  eventLoopLag.start();
  const idleCollector = new IdleCollector({
    collect: runtimeCollector(),
    // Connections opened, and clients gone (connected at some point, not now).
    readChurn: () => {
      const stats = broker.stats;
      return stats.connectionsAccepted + stats.clientsConnectedTotal - stats.clientsConnected;
    },
    clock,
    logger,
    after: config.memory.idleCollectionAfter,
  });
  if (config.memory.idleCollection) idleCollector.start();
  const stopServingNodes = serveNodeRequests({
    broker,
    readiness: () => ({ ...readiness }),
    listeners: () => describeListeners(listeners),
    eventLoopLag: () => eventLoopLag.read(),
  });
  let admin: HttpServer | undefined;
  if (config.admin.enabled) {
    try {
      admin = await startAdminServer(
        config,
        {
          sockets,
          broker,
          security,
          bans,
          clientEvents,
          notifier,
          agents,
          listeners,
          readiness,
          eventLoopLag,
          idleCollector,
          clock,
          bridge,
        },
        logger,
      );
    } catch (err) {
      logger.error("cannot start the admin API", { ...startupFields(err), error: err });
      for (const listener of listeners) listener.close();
      stopServingNodes();
      eventLoopLag.stop();
      idleCollector.stop();
      await broker.close(0);
      await notifier.close(0);
      await bridge?.close();
      await backbone.close();
      security.close();
      return 1;
    }
  }
  const notice = anonymousNotice(config.auth.anonymous, listeners.map((l) => l.hostname));
  if (notice) logger[notice.level](notice.message, { anonymous: config.auth.anonymous });
  const stopped = Promise.withResolvers<void>();
  let stopping = false;
  const shutdown = async (signal: string) => {
    // A second signal (a supervisor and its process group both sending one) changes nothing.
    if (stopping) return;
    stopping = true;
    logger.info("shutting down", { signal });
    // Not ready from now on, so a load balancer stops sending new clients here.
    readiness.listeners = false;
    for (const listener of listeners) listener.close();
    stopServingNodes();
    admin?.stopWebSockets();
    await broker.close(config.shutdown.gracePeriod);
    await agents?.stop();
    // The disconnects of the shutdown go out too, and what waits for Kafka (no message comes in
    // any more), given the same grace side by side.
    await Promise.all([
      notifier.close(config.shutdown.gracePeriod),
      bridge?.close(config.shutdown.gracePeriod),
    ]);
    await admin?.close();
    readiness.backbone = false;
    await backbone.close();
    eventLoopLag.stop();
    idleCollector.stop();
    security.close();
    stopped.resolve();
  };
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.on(signal, () => shutdown(signal));
  }
  // SIGHUP re-reads the password file, keys and ACL file without a restart.
  process.on("SIGHUP", () => security.reload());
  // Logged once the signal handlers are in place: a supervisor that stops the broker as soon as
  // it reads this line is heard.
  logger.info("broker started", {
    version: VERSION,
    runtime: `${sockets.runtime} ${process.versions[sockets.runtime]}`,
    node: config.node.id,
    backbone: backbone.kind,
    durable: backbone.durable,
    state: backbone.durable
      ? "sessions and retained messages survive a restart"
      : "sessions and retained messages are lost on exit",
  });
  await stopped.promise;
  logger.info("broker stopped");
  return 0;
}

/** The backbone the configuration names: in this process, in an SQLite file, or NATS JetStream. */
async function createBackbone(config: Config, clock: Clock, logger: Logger): Promise<Backbone> {
  const settings = config.backbone;
  switch (settings.kind) {
    case "memory":
      return new MemoryBackbone({
        clock,
        retainedLimits: config.retained,
        maxQueuedBytesTotal: config.limits.maxQueuedBytesTotal,
      });
    case "sqlite":
      return await openSqliteBackbone(config, settings, clock, logger);
    case "nats":
      return new NatsBackbone({
        servers: settings.servers,
        prefix: settings.prefix,
        replicas: settings.replicas,
        storage: settings.storage,
        timeoutMs: settings.timeout,
        user: settings.user,
        password: settings.password,
        token: settings.token,
        nkeySeed: settings.nkeySeedFile === undefined
          ? undefined
          : (await readFile(settings.nkeySeedFile, "utf8")).trim(),
        credsFile: settings.credsFile,
        tls: settings.tls,
        retainedLimits: config.retained,
        leaseMs: settings.leaseTimeout,
        ackWaitMs: settings.ackWait,
        clock,
      });
  }
}

/**
 * Opens the SQLite backbone's file and logs what it read back, with a warning when the previous
 * run did not close it.
 *
 * @throws {SqliteOpenError} when the file cannot be created, opened or read
 */
async function openSqliteBackbone(
  config: Config,
  settings: Extract<Config["backbone"], { kind: "sqlite" }>,
  clock: Clock,
  logger: Logger,
): Promise<Backbone> {
  const backbone = await SqliteBackbone.open({
    path: settings.path,
    // Each runtime's own SQLite: bun:sqlite on Bun, node:sqlite on Deno.
    open: "Bun" in globalThis ? openBunSqlite : openNodeSqlite,
    sync: settings.sync === "full"
      ? { policy: "full" }
      : { policy: "batched", windowMs: settings.syncWindow },
    clock,
    retainedLimits: config.retained,
    maxQueuedBytesTotal: config.limits.maxQueuedBytesTotal,
    onWriteError: (error) => logger.error("backbone write failed", { error }),
  });
  const { cleanShutdown, ...loaded } = backbone.loaded;
  logger.info("backbone file opened", {
    path: settings.path,
    sync: settings.sync,
    ...(settings.sync === "batched" ? { syncWindow: settings.syncWindow } : {}),
    ...loaded,
  });
  if (!cleanShutdown) {
    logger.warn(
      "the previous run did not close the backbone file (a crash or SIGKILL): every queued message is sent again with DUP set",
      { path: settings.path },
    );
  }
  return backbone;
}

/** Bound listeners as the admin API describes them. */
function describeListeners(listeners: Listener[]) {
  return listeners.map((l) => ({ transport: l.kind, address: l.hostname, port: l.port }));
}

/** The config key and address of a start-up failure, for its log line. */
function startupFields(error: unknown): Record<string, unknown> {
  return error instanceof StartupError ? { key: error.key, address: error.address } : {};
}

if (import.meta.main) process.exit(await main(process.argv.slice(2)));
