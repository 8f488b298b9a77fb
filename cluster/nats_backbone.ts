/**
 * The NATS JetStream backbone: sessions, retained messages, QoS 1/2 queues, live routing, nodes,
 * events and cluster-wide config kept in NATS, so that any number of stateless front-ends act as
 * one broker. How each part maps onto NATS is written on the part (`nats_parts.ts`,
 * `nats_queues.ts`).
 *
 * At start it connects twice (a main connection, and a publishing one with echo off), checks the
 * server (2.11 or newer, JetStream on), creates or checks the messages stream and the KV buckets,
 * loads its mirrors, and joins the node registry.
 *
 * @module
 */

import { readFile } from "node:fs/promises";
import {
  type Authenticator,
  type ConnectionOptions,
  credsAuthenticator,
  type NatsConnection,
  nkeyAuthenticator,
  nuid,
} from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import { jetstream, type JetStreamManager, jetstreamManager } from "@nats-io/jetstream";
import type {
  Backbone,
  Clock,
  InboundKey,
  LiveListener,
  Message,
  MessageBus,
  NodeInfo,
  PublishOutcome,
} from "../src/mod.ts";
import { Bucket, type BucketSettings, setupBudgetMs } from "./bucket.ts";
import {
  LiveRun,
  NatsConfigStore,
  NatsEventStream,
  NatsLiveRouting,
  NatsNodeRegistry,
  NatsRetainedStore,
  NatsSessionStore,
  type NatsShared,
} from "./nats_parts.ts";
import { JsPublisher } from "./js_publisher.ts";
import { NatsOutboxStore } from "./nats_outbox.ts";
import { messagesStream, NatsQueueStore } from "./nats_queues.ts";
import { SubjectMapping } from "./subject.ts";
import { isTransient, retrying } from "./names.ts";

/** The oldest nats-server with what the backbone needs (per-message TTL, delete markers). */
export const MIN_SERVER_VERSION = "2.11.0";

/** How the backbone reaches NATS, and how it names and keeps what it stores. */
export interface NatsBackboneOptions {
  /** Server URLs, e.g. `nats://127.0.0.1:4222`. */
  servers: string[];
  /** Prefix of every stream, bucket and subject (default `perch`). */
  prefix?: string;
  /** Replicas of the stream and buckets (1, or 3 in a 3-node NATS cluster). */
  replicas?: number;
  storage?: "file" | "memory";
  /** Bound of each request to NATS, in ms. */
  timeoutMs?: number;
  user?: string;
  password?: string;
  token?: string;
  /** An nkey seed (`SU…`). */
  nkeySeed?: string;
  /** A credentials file (JWT and nkey seed). */
  credsFile?: string;
  tls?: { ca?: string; cert?: string; key?: string };
  /** Retained store bounds (checked against this node's mirror). */
  retainedLimits?: { maxMessages: number; maxBytes: number };
  /** How long a node is alive after its last heartbeat (default 10 s). */
  leaseMs?: number;
  /** How long a delivery stays unacknowledged before the server hands it out again (default 30 s). */
  ackWaitMs?: number;
  /** Time source for message expiry and lock deadlines. */
  clock: Clock;
}

/** The backbone could not start: NATS unreachable, JetStream off, server too old, bad setup. */
export class NatsStartError extends Error {
  override name = "NatsStartError";
}

/** Compares dotted versions; negative when `a` is older. */
function compareVersions(a: string, b: string): number {
  const pa = a.split(/[.-]/).map((n) => parseInt(n, 10) || 0);
  const pb = b.split(/[.-]/).map((n) => parseInt(n, 10) || 0);
  for (let i = 0; i < 3; i++) if ((pa[i] ?? 0) !== (pb[i] ?? 0)) return (pa[i] ?? 0) - (pb[i] ?? 0);
  return 0;
}

/**
 * Refuses a nats-server older than {@linkcode MIN_SERVER_VERSION}, as it reports its version.
 *
 * @throws {NatsStartError} naming the version found and the one needed
 */
export function checkServerVersion(version: string): void {
  if (compareVersions(version, MIN_SERVER_VERSION) < 0) {
    throw new NatsStartError(
      `nats-server ${version} is too old: the NATS backbone needs ${MIN_SERVER_VERSION} or newer (per-message TTL)`,
    );
  }
}

/** The MessageBus: live routing, and QoS 1/2 into the queues' stream. */
class NatsMessageBus implements MessageBus {
  readonly #live: NatsLiveRouting;
  readonly #queues: NatsQueueStore;

  constructor(live: NatsLiveRouting, queues: NatsQueueStore) {
    this.#live = live;
    this.#queues = queues;
  }

  listen(listener: LiveListener): void {
    this.#live.listen(listener);
  }
  addInterest(filter: string, group?: string, stored?: boolean): Promise<void> {
    return this.#live.addInterest(filter, group, stored);
  }
  removeInterest(filter: string, group?: string, stored?: boolean): Promise<void> {
    return this.#live.removeInterest(filter, group, stored);
  }
  forward(message: Message): void {
    this.#live.forward(message);
  }
  publish(message: Message, inbound?: InboundKey): Promise<PublishOutcome> {
    return this.#queues.publish(message, inbound);
  }
  completeInbound(key: InboundKey): Promise<boolean> {
    return this.#queues.completeInbound(key);
  }
  openInbound(clientId: string): Promise<number[]> {
    return this.#queues.openInbound(clientId);
  }
}

/** Parts that exist once the backbone started. */
interface Started {
  shared: NatsShared;
  sessions: NatsSessionStore;
  retained: NatsRetainedStore;
  messages: NatsMessageBus;
  live: NatsLiveRouting;
  queues: NatsQueueStore;
  nodes: NatsNodeRegistry;
  events: NatsEventStream;
  config: NatsConfigStore;
  outbox: NatsOutboxStore;
}

/** The NATS JetStream backbone. */
export class NatsBackbone implements Backbone {
  readonly kind = "nats";
  readonly durable: boolean;
  readonly #options: NatsBackboneOptions;
  #started: Started | undefined;

  constructor(options: NatsBackboneOptions) {
    this.#options = options;
    this.durable = (options.storage ?? "file") === "file";
  }

  #parts(): Started {
    if (!this.#started) throw new Error("the NATS backbone is not started");
    return this.#started;
  }

  get sessions(): NatsSessionStore {
    return this.#parts().sessions;
  }
  get retained(): NatsRetainedStore {
    return this.#parts().retained;
  }
  get messages(): NatsMessageBus {
    return this.#parts().messages;
  }
  get queues(): NatsQueueStore {
    return this.#parts().queues;
  }
  get nodes(): NatsNodeRegistry {
    return this.#parts().nodes;
  }
  get events(): NatsEventStream {
    return this.#parts().events;
  }
  get config(): NatsConfigStore {
    return this.#parts().config;
  }
  get outbox(): NatsOutboxStore {
    return this.#parts().outbox;
  }

  /** Messages that could not be sent (QoS 0 forwards, events). */
  get dropped(): { forward: number; events: number } {
    return { ...(this.#started?.shared.dropped ?? { forward: 0, events: 0 }) };
  }

  async start(self: NodeInfo): Promise<void> {
    const options = this.#options;
    const prefix = options.prefix ?? "perch";
    const timeoutMs = options.timeoutMs ?? 5_000;
    const settings: BucketSettings = {
      replicas: options.replicas ?? 1,
      storage: options.storage ?? "file",
      timeoutMs,
    };
    const connectOptions = await this.#connectOptions(self.id);
    let nc: NatsConnection;
    let pub: NatsConnection;
    try {
      nc = await connect(connectOptions);
    } catch (error) {
      throw new NatsStartError(
        `cannot connect to NATS at ${options.servers.join(", ")}: ${describe(error)}`,
        { cause: error },
      );
    }
    try {
      pub = await connect({
        ...connectOptions,
        name: `${connectOptions.name} publisher`,
        noEcho: true,
      });
    } catch (error) {
      await nc.close();
      throw new NatsStartError(`cannot connect to NATS: ${describe(error)}`, { cause: error });
    }
    try {
      checkServerVersion(nc.info?.version ?? "0.0.0");
      let jsm: JetStreamManager;
      try {
        jsm = await jetstreamManager(nc, { timeout: timeoutMs });
      } catch (error) {
        throw new NatsStartError(
          `JetStream is not enabled on the NATS server (start nats-server with -js): ${
            describe(error)
          }`,
          { cause: error },
        );
      }
      await this.#ensureStream(jsm, prefix, settings);
      const js = jetstream(nc, { timeout: timeoutMs });
      const dropped = { forward: 0, events: 0 };
      const shared: NatsShared = {
        nc,
        pub,
        js,
        pubJs: new JsPublisher(pub, timeoutMs),
        prefix,
        clock: options.clock,
        timeoutMs,
        live: new SubjectMapping(`${prefix}.msg.l`),
        stored: new SubjectMapping(`${prefix}.msg.q`),
        sender: { id: nuid.next(), seq: 0 },
        dropped,
        liveRun: new LiveRun(pub, dropped),
      };
      const leaseMs = options.leaseMs ?? 10_000;
      const [sessions, retained, nodesBucket, locks, registry, inflight, inbound, config] =
        await Promise
          .all([
            Bucket.open(js, `${prefix}-sessions`, settings),
            Bucket.open(js, `${prefix}-retained`, settings),
            Bucket.open(js, `${prefix}-nodes`, settings, leaseMs),
            Bucket.open(js, `${prefix}-locks`, settings),
            Bucket.open(js, `${prefix}-queues`, settings),
            Bucket.open(js, `${prefix}-inflight`, settings),
            Bucket.open(js, `${prefix}-inbound`, settings),
            Bucket.open(js, `${prefix}-config`, settings),
          ]);
      const live = new NatsLiveRouting(shared);
      const nodes = new NatsNodeRegistry(shared, nodesBucket, locks, leaseMs);
      live.hasPeers = () => nodes.hasPeers;
      const sessionStore = new NatsSessionStore(sessions);
      const queues = new NatsQueueStore(
        shared,
        jsm,
        { registry, inflight, inbound },
        options.ackWaitMs ?? 30_000,
        () => nodes.hasPeers,
        // A session's queue is read while some node holds its connection.
        async (clientId) => (await sessionStore.get(clientId))?.record.owner !== undefined,
      );
      const started: Started = {
        shared,
        sessions: sessionStore,
        retained: new NatsRetainedStore(
          retained,
          options.clock,
          options.retainedLimits ?? { maxMessages: Infinity, maxBytes: Infinity },
          timeoutMs,
        ),
        live,
        queues,
        messages: new NatsMessageBus(live, queues),
        nodes,
        events: new NatsEventStream(shared),
        config: new NatsConfigStore(config, timeoutMs),
        outbox: new NatsOutboxStore(shared, jsm, settings),
      };
      await Promise.all([
        started.retained.mirror.start(),
        started.queues.start(),
        started.config.start(),
      ]);
      await started.nodes.join(self);
      this.#started = started;
    } catch (error) {
      await Promise.allSettled([nc.close(), pub.close()]);
      if (error instanceof NatsStartError) throw error;
      throw new NatsStartError(`cannot set up the NATS backbone: ${describe(error)}`, {
        cause: error,
      });
    }
  }

  async #connectOptions(nodeId: string): Promise<ConnectionOptions> {
    const options = this.#options;
    const authenticators: Authenticator[] = [];
    if (options.nkeySeed) {
      authenticators.push(nkeyAuthenticator(new TextEncoder().encode(options.nkeySeed)));
    }
    if (options.credsFile) {
      authenticators.push(credsAuthenticator(new Uint8Array(await readFile(options.credsFile))));
    }
    const tls = options.tls && (options.tls.ca || options.tls.cert)
      ? {
        ...(options.tls.ca ? { caFile: options.tls.ca } : {}),
        ...(options.tls.cert ? { certFile: options.tls.cert, keyFile: options.tls.key } : {}),
      }
      : undefined;
    return {
      servers: options.servers,
      name: `perch ${nodeId}`,
      user: options.user,
      pass: options.password,
      token: options.token,
      ...(authenticators.length > 0 ? { authenticator: authenticators } : {}),
      ...(tls ? { tls } : {}),
      timeout: options.timeoutMs ?? 5_000,
      maxReconnectAttempts: -1,
      // Every request would otherwise build two errors with stack traces up front, in case it
      // fails: a tenth of a front-end's CPU under QoS 1 load, and much of its garbage.
      noAsyncTraces: true,
    };
  }

  async #ensureStream(
    jsm: JetStreamManager,
    prefix: string,
    settings: BucketSettings,
  ): Promise<void> {
    const wanted = messagesStream(prefix, settings.replicas, settings.storage);
    // Adding a stream that exists with the same settings succeeds, so both steps may be repeated.
    await retrying(
      async () => {
        try {
          const info = await jsm.streams.info(wanted.name);
          if (info.config.retention !== wanted.retention) {
            throw new NatsStartError(
              `stream ${wanted.name} exists with ${info.config.retention} retention; the NATS backbone needs interest retention (delete the stream or choose another prefix)`,
            );
          }
          return;
        } catch (error) {
          if (error instanceof NatsStartError) throw error;
          if (!/stream not found|10059/i.test(describe(error))) throw error;
        }
        await jsm.streams.add(wanted);
      },
      isTransient,
      setupBudgetMs(settings.timeoutMs),
    );
  }

  async close(): Promise<void> {
    const started = this.#started;
    if (!started) return;
    this.#started = undefined;
    await started.nodes.leave();
    started.live.close();
    started.queues.close();
    started.retained.mirror.stop();
    started.config.mirror.stop();
    await Promise.allSettled([started.shared.pub.drain(), started.shared.nc.drain()]);
    // After the drain, which takes in the answers already on their way: what still waits fails.
    started.shared.pubJs.close();
  }
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
