/**
 * A broker with the Kafka bridge as `main.ts` wires it: the backbone (memory by default, or one
 * given, such as a NATS backbone), the bridge as the broker's message sink, the security hooks of
 * the config (so the publish ACL applies), an MQTT listener on a free port, and the admin API
 * (through `app.request()`) with the bridge's routes, metrics and `/readyz` detail.
 *
 * Kafka here is the wire-level test server of `test/helpers/kafka/` (no Kafka broker can be
 * installed on these machines).
 *
 * @module
 */

import { createAdminApp } from "../../routes/mod.ts";
import type { Backbone } from "../../src/backbone/backbone.ts";
import { MemoryBackbone } from "../../src/backbone/memory.ts";
import { BanList } from "../../src/auth/bans.ts";
import { createSecurity, type Security } from "../../src/auth/setup.ts";
import { KafkaBridge, type KafkaBridgeState } from "../../src/bridge/kafka_bridge.ts";
import { Broker } from "../../src/broker/broker.ts";
import { toBrokerOptions } from "../../src/compose.ts";
import { type Config, type ConfigInput, configSchema } from "../../src/config/mod.ts";
import { denoSockets } from "../../src/transport/deno_sockets.ts";
import { createSystemClock } from "../../src/util/clock.ts";
import { createLogger, type LogEntryLevel } from "../../src/util/logger.ts";

export const ADMIN_TOKEN = "bridge-admin-token-0123456789";

/** Lets every client publish to `$queue/...` (a `$` topic: only a rule grants it). */
export const QUEUE_RULE = { permission: "allow", action: "publish", topic: "$queue/#" } as const;

export interface BridgedBroker {
  broker: Broker;
  bridge: KafkaBridge;
  backbone: Backbone;
  config: Config;
  port: number;
  /** Log lines of the broker and the bridge. */
  logs: { level: LogEntryLevel; line: string }[];
  /** The admin API with the admin token, as `app.request()` (JSON bodies get their type). */
  api(path: string, init?: RequestInit): Promise<Response>;
  /** Resolves once the bridge is in `state` (checked at each log line the bridge writes). */
  state(state: KafkaBridgeState): Promise<void>;
  /** Resolves once a log line contains `text`. */
  logged(text: string): Promise<void>;
  close(): Promise<void>;
}

export interface BridgedBrokerOptions {
  /** Broker config; `bridge.kafka.brokers` is required. */
  config: ConfigInput;
  /** The backbone (started by the caller); a fresh memory backbone by default. */
  backbone?: Backbone;
  /** What the bridge sees of the backbone (e.g. one without an outbox); `backbone` by default. */
  bridgeBackbone?: (backbone: Backbone) => Backbone;
}

/** Longest wait for a state or a log line (a guard, never a delay). */
const WAIT_MS = 15_000;

export async function startBridgedBroker(options: BridgedBrokerOptions): Promise<BridgedBroker> {
  const config = configSchema.parse({
    ...options.config,
    sys: { enabled: false },
    listeners: { tcp: { host: "127.0.0.1", port: 0 } },
  });
  const clock = createSystemClock();
  const logs: { level: LogEntryLevel; line: string }[] = [];
  const waiters = new Set<() => void>();
  const logger = createLogger({
    level: "debug",
    write: (line, level) => {
      logs.push({ level, line });
      for (const waiter of [...waiters]) waiter();
    },
  });
  const until = (done: () => boolean, what: string) => {
    if (done()) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const check = () => {
        if (!done()) return;
        waiters.delete(check);
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        waiters.delete(check);
        reject(
          new Error(
            `timed out waiting for ${what}; last lines: ${
              logs.slice(-5).map((l) => l.line).join(" | ")
            }`,
          ),
        );
      }, WAIT_MS);
      waiters.add(check);
    });
  };
  let backbone = options.backbone;
  if (!backbone) {
    backbone = new MemoryBackbone({ clock, retainedLimits: config.retained });
    await backbone.start({ id: config.node.id, version: "perch test", startedAt: clock.now() });
  }
  const bridge = new KafkaBridge({
    settings: config.bridge.kafka,
    backbone: options.bridgeBackbone ? options.bridgeBackbone(backbone) : backbone,
    nodeId: config.node.id,
    clock,
    logger,
  });
  await bridge.start();
  const security: Security = await createSecurity(config.auth, config.acl, {
    clock,
    logger,
    config: backbone.config,
  });
  const broker = new Broker({
    options: toBrokerOptions(config),
    backbone,
    clock,
    logger,
    hooks: security.hooks,
    sinks: [bridge],
    version: "perch test",
  });
  broker.start();
  // The listener Perch runs on Deno (the native handle for an IP address).
  const listener = denoSockets.listenTcp({ hostname: "127.0.0.1", port: 0 }, broker.accept);
  const app = createAdminApp({
    broker,
    auth: {
      tokens: [{ token: ADMIN_TOKEN, role: "admin", name: "test" }],
      users: [],
      jwtSecret: "bridged-broker-jwt-secret-0123456789abcdef",
      jwtTtl: 60_000,
      clock,
    },
    security: { acl: security.acl, bans: new BanList({ clock, maxBans: 10 }) },
    readiness: () => ({ listeners: true, backbone: true }),
    listeners: () => [{ transport: "tcp", address: "127.0.0.1", port: listener.port }],
    eventLoopLag: () => ({ latest: 0, max: 0 }),
    maxBodySize: 64 * 1024,
    bridge,
    logger,
  });
  return {
    broker,
    bridge,
    backbone,
    config,
    port: listener.port,
    logs,
    api(path, init = {}) {
      const headers = new Headers(init.headers);
      headers.set("x-token", ADMIN_TOKEN);
      if (init.body !== undefined) headers.set("content-type", "application/json");
      return Promise.resolve(app.request(path, { ...init, headers }));
    },
    state(state) {
      return until(() => bridge.status().state === state, `the bridge to be ${state}`);
    },
    logged(text) {
      return until(() => logs.some((l) => l.line.includes(text)), `a log line "${text}"`);
    },
    async close() {
      listener.close();
      await broker.close(1000);
      await bridge.close(1000);
      security.close();
      if (!options.backbone) await backbone.close();
    },
  };
}
