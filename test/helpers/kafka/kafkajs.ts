/**
 * kafkajs clients for tests against the Kafka test server: short retries so a test that makes
 * kafkajs retry stays fast, log lines collected instead of printed, and the client's socket
 * events counted so a test can wait for "kafkajs tried to connect and failed" as an event.
 *
 * @module
 */

import net from "node:net";
import { type ISocketFactory, Kafka, type KafkaConfig, logLevel } from "kafkajs";
import type { KafkaTestServer } from "./server.ts";

/** A kafkajs client and what it did. */
export interface TestKafka {
  kafka: Kafka;
  /** Log lines kafkajs wrote (it prints nothing; until() reports the last ones on timeout). */
  logs: { level: string; message: string }[];
  /** Sockets kafkajs opened, and how many of them failed to connect or broke. */
  sockets: { opened: number; failed: number };
  /** Resolves once `predicate` holds, re-checked at each socket event and log line. */
  until(predicate: () => boolean, timeoutMs?: number): Promise<void>;
}

const LEVELS: Record<number, string> = {
  [logLevel.ERROR]: "error",
  [logLevel.WARN]: "warn",
  [logLevel.INFO]: "info",
  [logLevel.DEBUG]: "debug",
};

/** A kafkajs client of `server` retrying every 20-100 ms, up to 30 times, with `config` on top. */
export function testKafka(server: KafkaTestServer, config: Partial<KafkaConfig> = {}): TestKafka {
  const logs: TestKafka["logs"] = [];
  const sockets = { opened: 0, failed: 0 };
  const waiters = new Set<() => void>();
  const notify = () => {
    for (const waiter of [...waiters]) waiter();
  };
  const socketFactory: ISocketFactory = ({ host, port, onConnect }) => {
    const socket = net.connect({ host, port }, onConnect);
    sockets.opened++;
    socket.on("error", () => {
      sockets.failed++;
      notify();
    });
    notify();
    return socket;
  };
  const kafka = new Kafka({
    clientId: "kafka-test",
    brokers: [server.bootstrap],
    connectionTimeout: 2000,
    requestTimeout: 5000,
    retry: { initialRetryTime: 20, maxRetryTime: 100, retries: 30 },
    socketFactory,
    logLevel: logLevel.INFO,
    logCreator: () => ({ level, log }) => {
      logs.push({ level: LEVELS[level] ?? String(level), message: log.message });
      notify();
    },
    ...config,
  });
  const until = (predicate: () => boolean, timeoutMs = 10_000) => {
    if (predicate()) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const check = () => {
        if (!predicate()) return;
        clearTimeout(timer);
        waiters.delete(check);
        resolve();
      };
      const timer = setTimeout(() => {
        waiters.delete(check);
        const recent = logs.slice(-5).map((l) => `${l.level}: ${l.message}`).join("; ");
        reject(new Error(`timed out waiting for a kafkajs event; last logs: ${recent}`));
      }, timeoutMs);
      waiters.add(check);
    });
  };
  return { kafka, logs, sockets, until };
}
