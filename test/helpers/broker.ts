/**
 * Starts a real broker in this process on a free TCP port for behaviour tests, with the memory
 * backbone and an injectable clock.
 *
 * @module
 */

import type { Backbone } from "../../src/backbone/backbone.ts";
import { MemoryBackbone } from "../../src/backbone/memory.ts";
import { Broker } from "../../src/broker/broker.ts";
import type { MessageSink } from "../../src/domain/sink.ts";
import type { BrokerHooks } from "../../src/hooks/hooks.ts";
import { type Config, type ConfigInput, configSchema } from "../../src/config/mod.ts";
import type { EnhancedAuthMethods } from "../../src/auth/enhanced.ts";
import { toBrokerOptions } from "../../src/compose.ts";
import { denoSockets } from "../../src/transport/deno_sockets.ts";
import { type Clock, createSystemClock } from "../../src/util/clock.ts";
import { createLogger, type LogEntryLevel } from "../../src/util/logger.ts";

export interface TestBroker {
  broker: Broker;
  backbone: MemoryBackbone;
  config: Config;
  port: number;
  /** Log lines written by the broker, for tests that assert on logging. */
  logs: { level: LogEntryLevel; line: string }[];
  /**
   * Resolves once `predicate` holds, re-checking after every connect, disconnect, subscribe and
   * unsubscribe the broker reports, and every few milliseconds for what follows them
   * asynchronously (a session record written after its connection closed).
   */
  until(predicate: () => boolean | Promise<boolean>, timeoutMs?: number): Promise<void>;
  /** Resolves once a session's record says it is offline (its connection closed and released it). */
  offline(clientId: string): Promise<void>;
  /** Resolves once a session is gone (expired or ended). */
  gone(clientId: string): Promise<void>;
  close(): Promise<void>;
}

export interface TestBrokerOptions {
  config?: ConfigInput;
  /** A memory backbone made and started beforehand (one is made otherwise). */
  backbone?: MemoryBackbone;
  /** Wraps the memory backbone (e.g. to inject faults); the broker uses what it returns. */
  wrapBackbone?: (backbone: MemoryBackbone) => Backbone;
  clock?: Clock;
  hooks?: BrokerHooks;
  /** Enhanced-authentication methods (none by default). */
  authMethods?: EnhancedAuthMethods;
  /** Message sinks the publish pipeline offers messages to (none by default). */
  sinks?: MessageSink[];
}

/** A started memory backbone with the limits of `config`. */
export function memoryBackbone(config: Config, clock: Clock): MemoryBackbone {
  const backbone = new MemoryBackbone({
    clock,
    retainedLimits: config.retained,
    maxQueuedBytesTotal: config.limits.maxQueuedBytesTotal,
  });
  // The memory backbone starts at once; nothing here waits for it.
  backbone.start({ id: config.node.id, version: "perch test", startedAt: clock.now() });
  return backbone;
}

/** Starts a broker on 127.0.0.1 with `$SYS` off unless the config turns it on. */
export function startBroker(options: TestBrokerOptions = {}): TestBroker {
  const input: ConfigInput = {
    ...options.config,
    sys: { enabled: false, ...options.config?.sys },
    listeners: { tcp: { host: "127.0.0.1", port: 0 } },
  };
  const config = configSchema.parse(input);
  const clock = options.clock ?? createSystemClock();
  const logs: { level: LogEntryLevel; line: string }[] = [];
  const logger = createLogger({
    level: "debug",
    format: "text",
    write: (line, level) => logs.push({ level, line }),
  });
  const backbone = options.backbone ?? memoryBackbone(config, clock);
  const waiters = new Set<() => void>();
  const notify = () => {
    for (const waiter of [...waiters]) waiter();
  };
  const hooks: BrokerHooks = { ...options.hooks };
  hooks.onConnect = (client) => {
    options.hooks?.onConnect?.(client);
    notify();
  };
  hooks.onDisconnect = (client, info) => {
    options.hooks?.onDisconnect?.(client, info);
    notify();
  };
  hooks.onSubscribe = (client, filters) => {
    options.hooks?.onSubscribe?.(client, filters);
    notify();
  };
  hooks.onUnsubscribe = (client, filters) => {
    options.hooks?.onUnsubscribe?.(client, filters);
    notify();
  };
  const broker = new Broker({
    options: toBrokerOptions(config),
    backbone: options.wrapBackbone ? options.wrapBackbone(backbone) : backbone,
    clock,
    logger,
    hooks,
    authMethods: options.authMethods,
    sinks: options.sinks,
    version: "perch test",
  });
  broker.start();
  // The listener Perch runs on Deno (the native handle for an IP address).
  const listener = denoSockets.listenTcp({ hostname: "127.0.0.1", port: 0 }, broker.accept);
  return {
    broker,
    backbone,
    config,
    port: listener.port,
    logs,
    async until(predicate, timeoutMs = 5000) {
      if (await predicate()) return;
      const { promise, resolve, reject } = Promise.withResolvers<void>();
      let checking = false;
      const check = async () => {
        if (checking) return;
        checking = true;
        try {
          if (!(await predicate())) return;
          waiters.delete(check);
          clearTimeout(timer);
          clearInterval(poll);
          resolve();
        } finally {
          checking = false;
        }
      };
      const timer = setTimeout(() => {
        waiters.delete(check);
        clearInterval(poll);
        reject(new Error(`Condition not met within ${timeoutMs} ms`));
      }, timeoutMs);
      const poll = setInterval(check, 5);
      waiters.add(check);
      return await promise;
    },
    offline(clientId) {
      return this.until(async () => (await broker.getSession(clientId))?.connected === false);
    },
    gone(clientId) {
      return this.until(async () => (await broker.getSession(clientId)) === undefined);
    },
    async close() {
      listener.close();
      await broker.close(1000);
    },
  };
}
