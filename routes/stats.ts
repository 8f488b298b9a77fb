/**
 * `/api/v1/stats`: this node's counters as JSON (the same numbers `/metrics` exposes to
 * Prometheus), for dashboards and scripts that do not speak Prometheus.
 *
 * @module
 */

import { createRoute, z } from "@hono/zod-openapi";
import type { Broker } from "../src/mod.ts";
import { authErrors, json, resourceApp } from "./_common.ts";

const ByQos = z.object({ qos0: z.number(), qos1: z.number(), qos2: z.number() });

const StatsSchema = z.object({
  node: z.string(),
  uptimeSeconds: z.number().int(),
  connections: z.object({
    open: z.number(),
    connected: z.number(),
    byProtocolVersion: z.object({ "3": z.number(), "4": z.number(), "5": z.number() }),
    connectedTotal: z.number(),
    accepted: z.number(),
    refused: z.number(),
  }),
  messages: z.object({ received: ByQos, sent: ByQos }),
  payloadBytes: z.object({ received: ByQos, sent: ByQos }),
  bytes: z.object({ received: z.number(), sent: z.number() }),
  dropped: z.object({
    expired: z.number(),
    slowConsumer: z.number(),
    queueFull: z.number(),
    stuckSubscriber: z.number(),
    tooLargeForClient: z.number(),
    notAuthorizedToRead: z.number(),
    publishDenied: z.number(),
    notStored: z.number(),
  }),
  retained: z.number(),
  retainedRejected: z.number(),
  sessions: z.number(),
  subscriptions: z.number(),
  inflight: z.number(),
  queued: z.number(),
  queuedBytes: z.number(),
  authFailures: z.number(),
  protocolErrors: z.number(),
  slowConsumerDisconnects: z.number(),
  publishRateExceeded: z.number(),
}).openapi("Stats");

const getStats = createRoute({
  method: "get",
  path: "/",
  tags: ["stats"],
  summary: "This node's counters",
  responses: { 200: { description: "Counters", content: json(StatsSchema) }, ...authErrors },
});

function byQos(values: readonly number[]) {
  return { qos0: values[0], qos1: values[1], qos2: values[2] };
}

/** The stats resource. */
export function statsRoutes(broker: Broker) {
  const app = resourceApp();
  app.openapi(getStats, async (c) => {
    const s = broker.stats;
    const [totals, sessions] = await Promise.all([
      broker.deliveryTotals(),
      broker.backbone.sessions.count(),
    ]);
    return c.json({
      node: broker.options.nodeId,
      uptimeSeconds: Math.floor((broker.clock.now() - s.startedAt) / 1000),
      connections: {
        open: broker.connections.size,
        connected: s.clientsConnected,
        byProtocolVersion: {
          "3": s.clientsConnectedByVersion[3],
          "4": s.clientsConnectedByVersion[4],
          "5": s.clientsConnectedByVersion[5],
        },
        connectedTotal: s.clientsConnectedTotal,
        accepted: s.connectionsAccepted,
        refused: s.connectionsRefused,
      },
      messages: { received: byQos(s.publishReceivedByQos), sent: byQos(s.publishSentByQos) },
      payloadBytes: {
        received: byQos(s.payloadBytesReceivedByQos),
        sent: byQos(s.payloadBytesSentByQos),
      },
      bytes: { received: s.bytesReceived, sent: s.bytesSent },
      dropped: {
        expired: s.droppedExpired,
        slowConsumer: s.droppedSlowConsumer,
        queueFull: s.droppedQueueFull,
        stuckSubscriber: s.droppedStuckSubscriber,
        tooLargeForClient: s.droppedTooLarge,
        notAuthorizedToRead: s.droppedNotAuthorized,
        publishDenied: s.publishDenied,
        notStored: s.publishNotStored,
      },
      retained: await broker.backbone.retained.count(),
      retainedRejected: s.retainedRejected,
      sessions,
      subscriptions: broker.subscriptionCount,
      inflight: totals.inflight,
      queued: totals.queued,
      queuedBytes: totals.queuedBytes,
      authFailures: s.authFailures,
      protocolErrors: s.protocolErrors,
      slowConsumerDisconnects: s.slowConsumerDisconnects,
      publishRateExceeded: s.publishRateExceeded,
    }, 200);
  });
  return app;
}
