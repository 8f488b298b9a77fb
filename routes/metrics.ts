/**
 * `/metrics`: Prometheus text exposition, with prom-client. Every value is read from the broker's
 * own counters when Prometheus scrapes (prom-client's `collect`), so the message path pays nothing
 * for metrics beyond the plain counter increments it already makes. prom-client's default process
 * metrics are not used: under Deno its event-loop histogram stays empty, so lag comes from the
 * broker's own monitor on every runtime.
 *
 * @module
 */

import { createRoute, z } from "@hono/zod-openapi";
import { Counter, Gauge, Registry } from "prom-client";
import type {
  BanList,
  Broker,
  ClientEvents,
  EventLoopLag,
  IdleCollectionStats,
  KafkaBridge,
  MappingStats,
  Notifier,
} from "../src/mod.ts";
import { authErrors, resourceApp } from "./_common.ts";

/** Process memory, as `process.memoryUsage()` reports it. */
export interface MemoryUsage {
  rss: number;
  heapUsed: number;
  heapTotal: number;
}

/** Where the metrics come from. */
export interface MetricsDeps {
  broker: Broker;
  eventLoopLag: () => EventLoopLag;
  memoryUsage: () => MemoryUsage;
  /** What idle collection has done (`memory.idleCollection`), when it runs. */
  idleCollection?: () => IdleCollectionStats;
  /** Connects and disconnects by listener and reason, from the lifecycle hooks. */
  clientEvents?: ClientEvents;
  /** Bans, for the connections they refused. */
  bans?: BanList;
  /** Event notification sinks. */
  notifier?: Notifier;
  /** The Kafka bridge, when configured: its state and per-mapping counts. */
  bridge?: KafkaBridge;
}

const QOS_LEVELS = ["0", "1", "2"] as const;
const PROTOCOL_VERSIONS = [3, 4, 5] as const;

/** A counter whose value is read from the broker at scrape time. */
function pulledCounter(
  registry: Registry,
  name: string,
  help: string,
  read: () => number,
): void {
  new Counter({
    name,
    help,
    registers: [registry],
    collect() {
      this.reset();
      this.inc(read());
    },
  });
}

/** A counter with one value per label value, read at scrape time. */
function pulledLabelledCounter<L extends string>(
  registry: Registry,
  name: string,
  help: string,
  label: L,
  read: () => [string, number][],
): void {
  new Counter({
    name,
    help,
    labelNames: [label],
    registers: [registry],
    collect() {
      this.reset();
      for (const [value, count] of read()) this.inc({ [label]: value } as Record<L, string>, count);
    },
  });
}

function pulledGauge(registry: Registry, name: string, help: string, read: () => number): void {
  new Gauge({
    name,
    help,
    registers: [registry],
    collect() {
      this.set(read());
    },
  });
}

/** Builds the registry of this node's metrics. */
export function createMetricsRegistry(deps: MetricsDeps): Registry {
  const { broker } = deps;
  const stats = broker.stats;
  const registry = new Registry();
  registry.setDefaultLabels({ node: broker.options.nodeId });
  const byQos = (values: number[]) => (): [string, number][] =>
    QOS_LEVELS.map((qos, i) => [qos, values[i]]);

  new Gauge({
    name: "perch_info",
    help: "Always 1; the labels say which broker this is.",
    labelNames: ["version", "backbone"],
    registers: [registry],
    collect() {
      this.set({ version: broker.version, backbone: broker.backbone.kind }, 1);
    },
  });
  pulledGauge(
    registry,
    "perch_start_time_seconds",
    "When the broker started, Unix time.",
    () => stats.startedAt / 1000,
  );

  // Connections.
  pulledGauge(
    registry,
    "perch_connections_open",
    "Open network connections, including ones that have not completed CONNECT.",
    () => broker.connections.size,
  );
  new Gauge({
    name: "perch_clients_connected",
    help: "Connected clients, by MQTT protocol level (3: 3.1, 4: 3.1.1, 5: 5.0).",
    labelNames: ["protocol_version"],
    registers: [registry],
    collect() {
      for (const version of PROTOCOL_VERSIONS) {
        this.set({ protocol_version: String(version) }, stats.clientsConnectedByVersion[version]);
      }
    },
  });
  pulledLabelledCounter(
    registry,
    "perch_clients_connected_total",
    "Completed CONNECTs, by MQTT protocol level.",
    "protocol_version",
    () => PROTOCOL_VERSIONS.map((v) => [String(v), stats.clientsConnectedTotalByVersion[v]]),
  );
  pulledCounter(
    registry,
    "perch_connections_accepted_total",
    "Network connections accepted.",
    () => stats.connectionsAccepted,
  );
  pulledLabelledCounter(
    registry,
    "perch_connections_refused_total",
    "Connections refused, by cause: a connection limit (limit), authentication (auth), a ban (banned), a CONNECT that breaks the protocol (protocol).",
    "cause",
    () => {
      const banned = deps.bans?.refused ?? 0;
      return [
        ["limit", stats.connectionsRefused],
        // Bans are checked in the authentication hook, so the broker counts them there too.
        ["auth", stats.authFailures - banned],
        ["banned", banned],
        ["protocol", stats.connectsRefusedProtocol],
      ];
    },
  );
  const events = deps.clientEvents;
  if (events) {
    new Gauge({
      name: "perch_listener_clients_connected",
      help: "Connected clients, by listener (transport: tcp, tls, ws, wss).",
      labelNames: ["listener"],
      registers: [registry],
      collect() {
        this.reset();
        for (const [listener, count] of events.connected) this.set({ listener }, count);
      },
    });
    pulledLabelledCounter(
      registry,
      "perch_listener_connects_total",
      "Completed CONNECTs, by listener (transport: tcp, tls, ws, wss).",
      "listener",
      () => [...events.connects],
    );
    pulledLabelledCounter(
      registry,
      "perch_client_disconnects_total",
      "Connections of connected clients that ended, by reason (client_disconnect, connection_lost, keep_alive_timeout, session_taken_over, administrative_action, ...).",
      "reason",
      () => [...events.disconnects],
    );
  }

  // Event notifications, by sink (webhook, grpc, nats); absent without sinks.
  const sinks = deps.notifier?.sinks ?? [];
  if (sinks.length > 0) {
    const bySink = (read: (sink: typeof sinks[number]) => number) => (): [string, number][] =>
      sinks.map((sink) => [sink.name, read(sink)]);
    pulledLabelledCounter(
      registry,
      "perch_notify_sent_total",
      "Event notifications the sink's receiver took, by sink (webhook, grpc, nats).",
      "sink",
      bySink((sink) => sink.sent),
    );
    pulledLabelledCounter(
      registry,
      "perch_notify_failed_total",
      "Event notifications given up after their retries (or refused by the receiver), by sink.",
      "sink",
      bySink((sink) => sink.failed),
    );
    pulledLabelledCounter(
      registry,
      "perch_notify_dropped_total",
      "Event notifications dropped because the sink's queue was full (or the broker stopping), by sink.",
      "sink",
      bySink((sink) => sink.dropped),
    );
    new Gauge({
      name: "perch_notify_queue_depth",
      help: "Event notifications waiting or in flight, by sink.",
      labelNames: ["sink"],
      registers: [registry],
      collect() {
        this.reset();
        for (const sink of sinks) this.set({ sink: sink.name }, sink.depth);
      },
    });
  }

  // Messages and bytes.
  pulledLabelledCounter(
    registry,
    "perch_messages_received_total",
    "PUBLISH packets received from clients, by QoS.",
    "qos",
    byQos(stats.publishReceivedByQos),
  );
  pulledLabelledCounter(
    registry,
    "perch_messages_sent_total",
    "PUBLISH packets sent to clients, by QoS.",
    "qos",
    byQos(stats.publishSentByQos),
  );
  pulledLabelledCounter(
    registry,
    "perch_payload_bytes_received_total",
    "Payload bytes of PUBLISH packets received, by QoS.",
    "qos",
    byQos(stats.payloadBytesReceivedByQos),
  );
  pulledLabelledCounter(
    registry,
    "perch_payload_bytes_sent_total",
    "Payload bytes of PUBLISH packets sent, by QoS.",
    "qos",
    byQos(stats.payloadBytesSentByQos),
  );
  pulledCounter(
    registry,
    "perch_bytes_received_total",
    "Bytes received, all packets.",
    () => stats.bytesReceived,
  );
  pulledCounter(
    registry,
    "perch_bytes_sent_total",
    "Bytes sent, all packets.",
    () => stats.bytesSent,
  );
  pulledLabelledCounter(
    registry,
    "perch_messages_dropped_total",
    "Messages not delivered or not accepted, by cause.",
    "reason",
    () => [
      ["expired", stats.droppedExpired],
      ["slow_consumer", stats.droppedSlowConsumer],
      ["queue_full", stats.droppedQueueFull],
      ["too_large_for_client", stats.droppedTooLarge],
      ["not_authorized_to_read", stats.droppedNotAuthorized],
      ["publish_denied", stats.publishDenied],
      ["not_stored", stats.publishNotStored],
    ],
  );
  pulledCounter(
    registry,
    "perch_messages_dropped_stuck_subscriber_total",
    "Of the queue_full drops, those refused because the subscriber was taken for stuck (nothing acknowledged for mqtt.stuckSubscriberTimeout while publishes waited) or is offline.",
    () => stats.droppedStuckSubscriber,
  );
  pulledCounter(
    registry,
    "perch_retained_rejected_total",
    "Retained messages not stored because the retained store was full (still routed).",
    () => stats.retainedRejected,
  );

  // State.
  new Gauge({
    name: "perch_retained_messages",
    help: "Retained messages stored, $SYS topics included.",
    registers: [registry],
    async collect() {
      this.set(await broker.backbone.retained.count());
    },
  });
  new Gauge({
    name: "perch_retained_messages_without_sys",
    help: "Retained messages stored on topics outside $SYS/ (the ones clients published).",
    registers: [registry],
    async collect() {
      const store = broker.backbone.retained;
      const [all, sys] = await Promise.all([store.count(), store.match("$SYS/#")]);
      this.set(all - sys.length);
    },
  });
  pulledGauge(
    registry,
    "perch_subscriptions",
    "Subscriptions, shared group members included.",
    () => broker.subscriptionCount,
  );
  new Gauge({
    name: "perch_sessions",
    help: "Sessions in the backbone, connected or not.",
    registers: [registry],
    async collect() {
      this.set(await broker.backbone.sessions.count());
    },
  });
  new Gauge({
    name: "perch_delivery_backlog",
    help:
      "Outbound QoS 1/2 messages awaiting acknowledgement (inflight) and waiting in session queues (queued).",
    labelNames: ["state"],
    registers: [registry],
    async collect() {
      const totals = await broker.deliveryTotals();
      this.set({ state: "inflight" }, totals.inflight);
      this.set({ state: "queued" }, totals.queued);
    },
  });
  new Gauge({
    name: "perch_queued_bytes",
    help: "Payload bytes waiting in session queues.",
    registers: [registry],
    async collect() {
      this.set((await broker.deliveryTotals()).queuedBytes);
    },
  });

  // Failures.
  pulledCounter(
    registry,
    "perch_auth_failures_total",
    "CONNECTs refused by authentication.",
    () => stats.authFailures,
  );
  pulledCounter(
    registry,
    "perch_protocol_errors_total",
    "Connections closed for bad input (malformed or forbidden packets).",
    () => stats.protocolErrors,
  );
  pulledCounter(
    registry,
    "perch_slow_consumer_disconnects_total",
    "Subscribers disconnected for keeping their window full without acknowledging (0x97).",
    () => stats.slowConsumerDisconnects,
  );
  pulledCounter(
    registry,
    "perch_publishers_slowed_total",
    "Publishes after which the publisher was slowed: queued bytes near limits.maxQueuedBytesTotal.",
    () => stats.publishersSlowed,
  );
  pulledCounter(
    registry,
    "perch_publish_rate_exceeded_total",
    "Clients disconnected for publishing faster than limits.publishRate.",
    () => stats.publishRateExceeded,
  );

  if (deps.bridge) kafkaBridgeMetrics(registry, deps.bridge);

  // Process.
  pulledGauge(
    registry,
    "perch_event_loop_lag_seconds",
    "How late the latest event-loop sample fired.",
    () => deps.eventLoopLag().latest / 1000,
  );
  pulledGauge(
    registry,
    "perch_event_loop_lag_max_seconds",
    "Largest event-loop lag of the recent sampling window.",
    () => deps.eventLoopLag().max / 1000,
  );
  const idleCollection = deps.idleCollection;
  if (idleCollection) {
    pulledCounter(
      registry,
      "perch_idle_collections_total",
      "Garbage collections run once the broker was quiet after connection churn.",
      () => idleCollection().collections,
    );
    pulledGauge(
      registry,
      "perch_idle_collection_pause_seconds",
      "How long the latest idle collection held the broker up.",
      () => idleCollection().lastPauseSeconds,
    );
  }
  pulledGauge(
    registry,
    "process_resident_memory_bytes",
    "Resident set size.",
    () => deps.memoryUsage().rss,
  );
  pulledGauge(
    registry,
    "process_heap_used_bytes",
    "JavaScript heap in use.",
    () => deps.memoryUsage().heapUsed,
  );
  pulledGauge(
    registry,
    "process_heap_total_bytes",
    "JavaScript heap reserved.",
    () => deps.memoryUsage().heapTotal,
  );
  return registry;
}

/** The Kafka bridge: whether it is connected, its outbox, and per mapping its counts. */
function kafkaBridgeMetrics(registry: Registry, bridge: KafkaBridge): void {
  pulledGauge(
    registry,
    "perch_kafka_bridge_connected",
    "1 while Kafka takes the bridge's requests, else 0 (disconnected, retrying, starting).",
    () => bridge.status().state === "connected" ? 1 : 0,
  );
  new Gauge({
    name: "perch_kafka_bridge_outbox",
    help:
      "What this node's outbox holds, as the outbox counts it (entries of earlier runs included): messages and bytes.",
    labelNames: ["unit"],
    registers: [registry],
    async collect() {
      const size = await bridge.outboxSize();
      this.set({ unit: "messages" }, size.messages);
      this.set({ unit: "bytes" }, size.bytes);
    },
  });
  const perMapping = (read: (stats: MappingStats) => number) => (): [string, number][] =>
    [...bridge.stats()].map(([mapping, stats]) => [mapping, read(stats)]);
  const counters: [string, string, (stats: MappingStats) => number][] = [
    ["produced", "Records Kafka acknowledged, by mapping.", (s) => s.produced],
    ["failed", "Records Kafka refused for good (dropped and logged), by mapping.", (s) => s.failed],
    [
      "dropped",
      "QoS 0 messages dropped because the buffer was full, by mapping.",
      (s) => s.dropped,
    ],
    [
      "refused",
      "QoS 1/2 messages refused because the buffer was full (the publisher got 0x97), by mapping.",
      (s) => s.refused,
    ],
  ];
  for (const [name, help, read] of counters) {
    pulledLabelledCounter(
      registry,
      `perch_kafka_bridge_${name}_total`,
      help,
      "mapping",
      perMapping(read),
    );
  }
  const gauges: [string, string, (stats: MappingStats) => number][] = [
    ["buffered_messages", "Records waiting for Kafka, by mapping.", (s) => s.bufferedMessages],
    [
      "buffered_bytes",
      "Key and value bytes waiting for Kafka, by mapping.",
      (s) => s.bufferedBytes,
    ],
    [
      "oldest_buffered_age_seconds",
      "Age of the oldest record waiting for Kafka (0 when none), by mapping.",
      (s) => s.oldestBufferedAge,
    ],
  ];
  for (const [name, help, read] of gauges) {
    new Gauge({
      name: `perch_kafka_bridge_${name}`,
      help,
      labelNames: ["mapping"],
      registers: [registry],
      collect() {
        this.reset();
        for (const [mapping, value] of perMapping(read)()) this.set({ mapping }, value);
      },
    });
  }
}

const metricsRoute = createRoute({
  method: "get",
  path: "/",
  tags: ["health"],
  summary: "Prometheus metrics (text exposition format)",
  responses: {
    200: {
      description: "The metrics",
      content: { "text/plain": { schema: z.string() } },
    },
    ...authErrors,
  },
});

/** The metrics endpoint. */
export function metricsRoutes(registry: Registry) {
  const app = resourceApp();
  app.openapi(metricsRoute, async (c) => {
    const body = await registry.metrics();
    return c.text(body, 200, { "content-type": registry.contentType });
  });
  return app;
}
