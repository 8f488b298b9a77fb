/**
 * Composition root: CLI -> config -> backbone -> broker -> listeners -> admin API. The only module
 * that wires concrete parts together.
 *
 * @module
 */

import { type ApiUser, createAdminApp } from "../routes/mod.ts";

import { anonymousNotice, createSecurity, type Security } from "./auth/setup.ts";
import type { EnhancedAuthMethod, EnhancedAuthMethods } from "./auth/enhanced.ts";
import { createScramMethod, SCRAM_SHA_256 } from "./auth/scram.ts";
import { MemoryBackbone } from "./backbone/memory.ts";
import { Broker } from "./broker/broker.ts";
import { type Config, ConfigError, helpText, loadConfig, parseArgs } from "./config/mod.ts";
import { parseScramCredentials } from "./auth/credentials.ts";
import { proxyProtocolOptions, toBrokerOptions, VERSION, webSocketOptions } from "./compose.ts";

import { DenoHttpServer } from "./transport/deno_http.ts";
import { DenoListener } from "./transport/deno_listener.ts";
import { DenoWebSocketListener, WebSocketUpgrader } from "./transport/deno_websocket.ts";
import { NodeTlsListener } from "./transport/node_tls_listener.ts";
import type { Listener } from "./transport/transport.ts";
import { isLoopbackAddress } from "./util/address.ts";
import { type Clock, createSystemClock } from "./util/clock.ts";
import { EventLoopLagMonitor } from "./util/event_loop_lag.ts";
import { createLogger, type Logger } from "./util/logger.ts";

// The config mapping moved to compose.ts (src/mod.ts exports it from there); kept here for the
// scripts and tests that import it from the composition root.
export { toBrokerOptions } from "./compose.ts";

/** The admin API's HTTP server and the WebSocket upgrader it may share its port with. */
interface AdminServer {
  server: DenoHttpServer;
  webSocket: WebSocketUpgrader | undefined;
}

/** What the admin API needs from the running broker. */
interface AdminParts {
  broker: Broker;
  security: Security;
  listeners: Listener[];
  readiness: { listeners: boolean; backbone: boolean };
  eventLoopLag: EventLoopLagMonitor;
  clock: Clock;
}

/**
 * Serves the admin API (and MQTT over WebSocket at `listeners.ws.path` with `admin.webSocket`).
 * With no token and no API user configured it listens on loopback only: there are no default
 * credentials, so an open API is never reachable from another machine.
 */
function startAdminServer(config: Config, parts: AdminParts, logger: Logger): AdminServer {
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
  }
  const jwtSecret = admin.jwtSecret ?? crypto.getRandomValues(new Uint8Array(32)).toBase64();
  const app = createAdminApp({
    broker: parts.broker,
    auth: { tokens: admin.tokens, users, jwtSecret, jwtTtl: admin.jwtTtl, clock: parts.clock },
    security: {
      acl: parts.security.acl,
      users: parts.security.users,
      aclFile: parts.security.aclFile,
    },
    readiness: () => ({ ...parts.readiness }),
    listeners: () =>
      parts.listeners.map((l) => ({ transport: l.kind, address: l.hostname, port: l.port })),
    eventLoopLag: () => parts.eventLoopLag.read(),
    maxBodySize: admin.maxBodySize,
    publicMetrics: admin.publicMetrics,
    logger,
  });
  const webSocket = admin.webSocket
    ? new WebSocketUpgrader("ws", webSocketOptions(config.listeners.ws), parts.broker.accept)
    : undefined;
  const server = DenoHttpServer.serve(
    {
      hostname,
      port: admin.port,
      onError: (error) => logger.error("admin request failed", { error }),
    },
    (request, peer) => webSocket?.handle(request, peer) ?? app.fetch(request),
  );
  logger.info("admin API started", {
    address: `${server.hostname}:${server.port}`,
    ...(webSocket ? { webSocket: config.listeners.ws.path } : {}),
  });
  return { server, webSocket };
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

/** Binds every enabled listener; a listener that cannot bind stops the start-up. */
async function startListeners(config: Config, broker: Broker, logger: Logger): Promise<Listener[]> {
  const listeners: Listener[] = [];
  const onAcceptError = (error: Error) => logger.warn("accept failed", { error });
  const onProxyHeaderError = (reason: string, remote: string) =>
    logger.info("connection closed: bad PROXY header", { remote, reason });
  const onError = (error: unknown) => logger.error("WebSocket request failed", { error });
  const { tcp, tls, ws, wss } = config.listeners;
  if (tcp.enabled) {
    listeners.push(
      DenoListener.tcp({
        hostname: tcp.host,
        port: tcp.port,
        onAcceptError,
        proxyProtocol: proxyProtocolOptions(config),
        onProxyHeaderError,
      }, broker.accept),
    );
  }
  if (tls.enabled) {
    const [cert, key] = await Promise.all([
      Deno.readTextFile(tls.cert!),
      Deno.readTextFile(tls.key!),
    ]);
    if (tls.requestClientCert) {
      // Mutual TLS: Deno.listenTls cannot request client certificates; node:tls can.
      const ca = await Deno.readTextFile(tls.ca!);
      const onHandshakeError = (error: Error) =>
        logger.debug("TLS handshake failed", { error: error.message });
      listeners.push(
        await NodeTlsListener.listen(
          { hostname: tls.host, port: tls.port, cert, key, ca, onHandshakeError },
          broker.accept,
        ),
      );
    } else {
      listeners.push(
        DenoListener.tls(
          { hostname: tls.host, port: tls.port, cert, key, onAcceptError },
          broker.accept,
        ),
      );
    }
  }
  if (ws.enabled) {
    listeners.push(
      DenoWebSocketListener.listen(
        { hostname: ws.host, port: ws.port, onError, ...webSocketOptions(ws) },
        broker.accept,
      ),
    );
  }
  if (wss.enabled) {
    const [cert, key] = await Promise.all([
      Deno.readTextFile(wss.cert!),
      Deno.readTextFile(wss.key!),
    ]);
    listeners.push(
      DenoWebSocketListener.listen(
        { hostname: wss.host, port: wss.port, cert, key, onError, ...webSocketOptions(wss) },
        broker.accept,
      ),
    );
  }
  for (const listener of listeners) {
    logger.info("listener started", {
      transport: listener.kind,
      address: `${listener.hostname}:${listener.port}`,
    });
  }
  return listeners;
}

async function main(args: string[]): Promise<number> {
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
    config = await loadConfig({ file: cli.config, env: Deno.env.toObject() });
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(err.message);
      return 1;
    }
    throw err;
  }
  if (cli.checkConfig) {
    console.log("Configuration is valid");
    return 0;
  }

  const logger = createLogger(config.log);
  const clock = createSystemClock();
  let security: Security;
  try {
    security = await createSecurity(config.auth, config.acl, { clock, logger });
  } catch (err) {
    logger.error("cannot start: security configuration", { error: err });
    return 1;
  }
  if (config.auth.chain.includes("certificate") && !config.listeners.tls.requestClientCert) {
    logger.warn(
      "auth.chain lists certificate but listeners.tls.requestClientCert is false: no client will present one",
    );
  }
  const backbone = new MemoryBackbone({ clock, retainedLimits: config.retained });
  await backbone.start({ id: config.node.id, version: VERSION, startedAt: clock.now() });
  const readiness = { listeners: false, backbone: true };
  const broker = new Broker({
    options: toBrokerOptions(config),
    backbone,
    clock,
    logger,
    hooks: security.hooks,
    authMethods: authMethodsFrom(config, security),
    version: `perch ${VERSION}`,
  });
  broker.start();
  let listeners: Listener[];
  try {
    listeners = await startListeners(config, broker, logger);
  } catch (err) {
    logger.error("cannot start listener", { error: err });
    await broker.close(0);
    security.close();
    return 1;
  }
  readiness.listeners = true;
  const eventLoopLag = new EventLoopLagMonitor(clock);
  eventLoopLag.start();
  let admin: AdminServer | undefined;
  if (config.admin.enabled) {
    try {
      admin = startAdminServer(
        config,
        { broker, security, listeners, readiness, eventLoopLag, clock },
        logger,
      );
    } catch (err) {
      logger.error("cannot start the admin API", { error: err });
      for (const listener of listeners) listener.close();
      eventLoopLag.stop();
      await broker.close(0);
      security.close();
      return 1;
    }
  }
  const notice = anonymousNotice(config.auth.anonymous, listeners.map((l) => l.hostname));
  if (notice) logger[notice.level](notice.message, { anonymous: config.auth.anonymous });
  logger.info("broker started", {
    version: VERSION,
    node: config.node.id,
    backbone: backbone.kind,
    state: backbone.durable
      ? "sessions and retained messages survive a restart"
      : "sessions and retained messages are lost on exit",
  });

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
    admin?.webSocket?.stopAccepting();
    await broker.close(config.shutdown.gracePeriod);
    await admin?.server.close();
    readiness.backbone = false;
    await backbone.close();
    eventLoopLag.stop();
    security.close();
    stopped.resolve();
  };
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    Deno.addSignalListener(signal, () => shutdown(signal));
  }
  // SIGHUP re-reads the password file, keys and ACL file without a restart.
  Deno.addSignalListener("SIGHUP", () => security.reload());
  await stopped.promise;
  logger.info("broker stopped");
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
