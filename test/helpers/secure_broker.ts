/**
 * A test broker with the security parts built from its config (`auth`, `acl`, `limits`), the way
 * `main.ts` builds them, and optionally a mutual-TLS listener.
 *
 * @module
 */

import { createSecurity, type Security } from "../../src/auth/setup.ts";
import { type BanList, withBans } from "../../src/auth/bans.ts";
import { type ConfigInput, configSchema } from "../../src/config/mod.ts";
import type { BrokerHooks } from "../../src/hooks/hooks.ts";
import type { MessageSink } from "../../src/domain/sink.ts";
import { NodeTlsListener } from "../../src/transport/node_tls_listener.ts";
import { type Clock, createSystemClock } from "../../src/util/clock.ts";
import { createLogger, type LogEntryLevel } from "../../src/util/logger.ts";
import { memoryBackbone, startBroker, type TestBroker } from "./broker.ts";

export interface SecureTestBroker extends TestBroker {
  security: Security;
  /** Port of the mutual-TLS listener, when `tls` was given. */
  tlsPort: number | undefined;
}

export interface SecureTestBrokerOptions {
  config?: ConfigInput;
  clock?: Clock;
  hooks?: BrokerHooks;
  /** PEM text: starts a mutual-TLS listener on a free port. */
  tls?: { cert: string; key: string; ca: string };
  /** Bans checked at CONNECT, as `main.ts` puts them in front of authentication. */
  bans?: BanList;
  /** Message sinks the publish pipeline offers messages to (none by default). */
  sinks?: MessageSink[];
}

export async function startSecureBroker(
  options: SecureTestBrokerOptions = {},
): Promise<SecureTestBroker> {
  const config = configSchema.parse(options.config ?? {});
  const clock = options.clock ?? createSystemClock();
  // The security parts log into the broker's log list (lines before it exists are moved over).
  let logs: { level: LogEntryLevel; line: string }[] = [];
  const logger = createLogger({
    level: "debug",
    write: (line, level) => logs.push({ level, line }),
  });
  const backbone = memoryBackbone(config, clock);
  const security = await createSecurity(config.auth, config.acl, {
    clock,
    logger,
    config: backbone.config,
  });
  const secured = options.bans
    ? withBans(options.bans, security.hooks, new Map(), logger)
    : { hooks: security.hooks, authMethods: undefined };
  const server = startBroker({
    config: options.config,
    backbone,
    clock,
    hooks: { ...options.hooks, ...secured.hooks },
    authMethods: secured.authMethods,
    sinks: options.sinks,
  });
  server.logs.push(...logs);
  logs = server.logs;
  let tls: NodeTlsListener | undefined;
  if (options.tls) {
    tls = await NodeTlsListener.listen(
      { hostname: "127.0.0.1", port: 0, ...options.tls },
      server.broker.accept,
    );
  }
  return {
    ...server,
    security,
    tlsPort: tls?.port,
    async close() {
      tls?.close();
      await server.close();
      security.close();
    },
  };
}
