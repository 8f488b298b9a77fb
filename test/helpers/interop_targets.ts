/**
 * Where the interoperability tests run their scenarios: a broker in this process (the memory
 * backbone), the broker as a process of its own on Deno or on Bun (`targets.ts`), or a cluster of
 * three front-end processes on one nats-server behind haproxy, reached through haproxy alone, so
 * consecutive connections of a scenario land on different front-ends.
 *
 * The cluster is started once, by the first scenario that needs it, and stopped by
 * {@linkcode InteropTarget.stop} (each test file's last test), since a cluster per scenario would
 * cost seconds each; its scenarios therefore share one broker, and keep their client ids and
 * topics apart as they already do.
 *
 * @module
 */

import { type LocalCluster, startLocalCluster } from "../../scripts/cluster.ts";
import type { ClientInfo } from "../../src/hooks/hooks.ts";
import { startBroker } from "./broker.ts";
import { type Runtime, RUNTIMES } from "./broker_process.ts";
import { startTarget } from "./targets.ts";

/** Longest wait for a subscription to show in the cluster's API (a failure guard). */
const SUBSCRIBED_GUARD_MS = 10_000;
/** Pause between two looks at the cluster's API. */
const POLL_MS = 20;

/** A broker a scenario talks to. */
export interface InteropBroker {
  /** The MQTT TCP port clients connect to. */
  port: number;
  /** Resolves once the session of `clientId` has a subscription. */
  subscribed(clientId: string): Promise<void>;
  /** The session of `clientId`: whether its client is connected, and its queued messages. */
  session(clientId: string): Promise<{ connected: boolean; queued: number } | undefined>;
  /** Ends this scenario's use of the broker. */
  close(): Promise<void>;
}

/** A kind of broker scenarios run against. */
export interface InteropTarget {
  /** Put before a scenario's name ("" in this process, as the names always were). */
  prefix: string;
  start(): Promise<InteropBroker>;
  /** Stops what the target started for every scenario (nothing in this process). */
  stop(): Promise<void>;
}

/** A fresh broker in this process for each scenario. */
export const inProcess: InteropTarget = {
  prefix: "",
  start() {
    const subscribed = new Set<string>();
    const waiters = new Map<string, (() => void)[]>();
    const server = startBroker({
      hooks: {
        onSubscribe: (client: ClientInfo) => {
          subscribed.add(client.clientId);
          for (const wake of waiters.get(client.clientId) ?? []) wake();
          waiters.delete(client.clientId);
        },
      },
    });
    return Promise.resolve({
      port: server.port,
      subscribed(clientId) {
        if (subscribed.has(clientId)) return Promise.resolve();
        const { promise, resolve } = Promise.withResolvers<void>();
        waiters.set(clientId, [...(waiters.get(clientId) ?? []), resolve]);
        return promise;
      },
      async session(clientId) {
        return await server.broker.getSession(clientId);
      },
      close: () => server.close(),
    });
  },
  stop: () => Promise.resolve(),
};

/** A fresh broker process on `runtime` for each scenario. */
export function onRuntime(runtime: Runtime): InteropTarget {
  return {
    prefix: `${runtime} process: `,
    start: () => startTarget(runtime),
    stop: () => Promise.resolve(),
  };
}

/** The broker as a process on each runtime. */
export const ON_RUNTIMES: readonly InteropTarget[] = RUNTIMES.map(onRuntime);

/** Three front-ends on NATS behind haproxy, shared by every scenario of a test file. */
export function throughHaproxy(): InteropTarget {
  let started: Promise<LocalCluster> | undefined;
  const cluster = () => started ??= startLocalCluster({ nodes: 3, prefix: "interop" });
  return {
    prefix: "cluster (haproxy, 3 front-ends on NATS): ",
    async start() {
      const { balancer, frontEnds } = await cluster();
      // Sessions live in the backbone: any front-end's admin API shows every one.
      const admin = `http://127.0.0.1:${frontEnds[0].adminPort}/api/v1`;
      const session = async (clientId: string) => {
        const response = await fetch(`${admin}/sessions/${encodeURIComponent(clientId)}`);
        if (response.status === 404) {
          await response.body?.cancel();
          return undefined;
        }
        return await response.json() as {
          connected: boolean;
          queued: number;
          subscriptions: number;
        };
      };
      return {
        port: balancer!.port,
        async subscribed(clientId) {
          const deadline = Date.now() + SUBSCRIBED_GUARD_MS;
          while (((await session(clientId))?.subscriptions ?? 0) === 0) {
            if (Date.now() > deadline) {
              throw new Error(`no subscription of ${clientId} in ${SUBSCRIBED_GUARD_MS} ms`);
            }
            await new Promise((resolve) => setTimeout(resolve, POLL_MS));
          }
        },
        session,
        close: () => Promise.resolve(),
      };
    },
    async stop() {
      if (started) await (await started).close();
    },
  };
}
