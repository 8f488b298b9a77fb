/**
 * Composition root: CLI -> config -> backbone -> broker -> listeners. The only module that wires
 * concrete parts together.
 *
 * @module
 */

import denoConfig from "../deno.json" with { type: "json" };
import { anonymousNotice, createSecurity, type Security } from "./auth/setup.ts";
import type { EnhancedAuthMethod, EnhancedAuthMethods } from "./auth/enhanced.ts";
import { createScramMethod, SCRAM_SHA_256 } from "./auth/scram.ts";
import { MemoryBackbone } from "./backbone/memory.ts";
import { Broker } from "./broker/broker.ts";
import type { BrokerOptions } from "./broker/options.ts";
import { type Config, ConfigError, helpText, loadConfig, parseArgs } from "./config/mod.ts";
import { DenoListener, type ProxyProtocolOptions } from "./transport/deno_listener.ts";
import { DenoWebSocketListener, type WebSocketOptions } from "./transport/deno_websocket.ts";
import { NodeTlsListener } from "./transport/node_tls_listener.ts";
import type { Listener } from "./transport/transport.ts";
import { addressMatcher } from "./util/address_match.ts";
import { createSystemClock } from "./util/clock.ts";
import { createLogger, type Logger } from "./util/logger.ts";

/** The broker's version, from deno.json. */
export const VERSION: string = denoConfig.version;

/** Maps the validated configuration onto the engine's options. */
export function toBrokerOptions(config: Config): BrokerOptions {
  return {
    ...config.mqtt,
    ...config.limits,
    nodeId: config.node.id,
    sysInterval: config.sys.enabled ? config.sys.interval : 0,
  };
}

/** The PROXY protocol settings of the TCP listener, or undefined when it is off. */
function proxyProtocolOptions(config: Config): ProxyProtocolOptions | undefined {
  const proxy = config.listeners.tcp.proxyProtocol;
  if (!proxy.enabled) return undefined;
  return {
    trustedSources: proxy.trustedSources.length > 0
      ? addressMatcher(proxy.trustedSources)
      : undefined,
    timeout: proxy.timeout,
  };
}

/** How the WebSocket listener (and the admin port, when it serves MQTT too) accepts clients. */
export function webSocketOptions(
  listener: { path: string; trustedProxies: string[]; proxyHeader: string },
): WebSocketOptions {
  return {
    path: listener.path,
    trustedProxies: listener.trustedProxies.length > 0
      ? addressMatcher(listener.trustedProxies)
      : undefined,
    proxyHeader: listener.proxyHeader,
  };
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
  await backbone.start();
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
  const notice = anonymousNotice(config.auth.anonymous, listeners.map((l) => l.hostname));
  if (notice) logger[notice.level](notice.message, { anonymous: config.auth.anonymous });
  logger.info("broker started", {
    version: VERSION,
    node: config.node.id,
    backbone: backbone.kind,
  });

  const stopped = Promise.withResolvers<void>();
  const shutdown = async (signal: string) => {
    logger.info("shutting down", { signal });
    for (const listener of listeners) listener.close();
    await broker.close(config.shutdown.gracePeriod);
    await backbone.close();
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
