/**
 * How broker state looks in API replies: the zod schemas (which the OpenAPI document is generated
 * from) and the functions that turn broker snapshots into them. Field by field, so nothing a hook
 * attached to a client (such as its authentication context) leaks out.
 *
 * @module
 */

import { z } from "@hono/zod-openapi";
import type { ConnectedClientInfo, SessionInfo, SubscriptionRecord } from "../src/mod.ts";

/** Epoch ms as an ISO 8601 string. */
function isoTime(ms: number): string {
  return new Date(ms).toISOString();
}

export const SubscriptionSchema = z.object({
  clientId: z.string(),
  filter: z.string().openapi({ example: "sensors/+/temperature" }),
  qos: z.number().int(),
  noLocal: z.boolean(),
  retainAsPublished: z.boolean(),
  retainHandling: z.number().int(),
  /** MQTT 5 Subscription Identifier, null when none. */
  subscriptionId: z.number().int().nullable(),
}).openapi("Subscription");

export type SubscriptionView = z.infer<typeof SubscriptionSchema>;

export function subscriptionView(clientId: string, record: SubscriptionRecord): SubscriptionView {
  return {
    clientId,
    filter: record.filter,
    qos: record.qos,
    noLocal: record.noLocal,
    retainAsPublished: record.retainAsPublished,
    retainHandling: record.retainHandling,
    subscriptionId: record.subscriptionId === 0 ? null : record.subscriptionId,
  };
}

export const ClientSchema = z.object({
  clientId: z.string().openapi({ example: "sensor-1" }),
  node: z.string().openapi({ description: "The node the client is connected to" }),
  username: z.string().nullable(),
  remoteAddress: z.string().openapi({ example: "203.0.113.7" }),
  remotePort: z.number().int(),
  protocolVersion: z.number().int().openapi({ description: "3 (3.1), 4 (3.1.1) or 5" }),
  transport: z.enum(["tcp", "tls", "ws", "wss", "memory"]),
  connectedAt: z.string().openapi({ format: "date-time" }),
  keepAlive: z.number().int().openapi({ description: "Granted keep alive, seconds" }),
  expiryInterval: z.number().int().openapi({ description: "Session Expiry Interval, seconds" }),
  subscriptions: z.number().int(),
  inflight: z.number().int(),
  queued: z.number().int(),
  bufferedBytes: z.number().int(),
  readingPaused: z.boolean().openapi({
    description:
      "Whether the broker stopped reading this client: its replies passed mqtt.writeBufferLimit unread; it reads again once they are sent",
  }),
  certificateCommonName: z.string().nullable(),
}).openapi("Client");

export type ClientView = z.infer<typeof ClientSchema>;

export function clientView(info: ConnectedClientInfo, node: string): ClientView {
  return {
    clientId: info.clientId,
    node,
    username: info.username ?? null,
    remoteAddress: info.remoteAddress,
    remotePort: info.remotePort,
    protocolVersion: info.protocolVersion,
    transport: info.transport,
    connectedAt: isoTime(info.connectedAt),
    keepAlive: info.keepAlive,
    expiryInterval: info.expiryInterval,
    subscriptions: info.subscriptions,
    inflight: info.inflight,
    queued: info.queued,
    bufferedBytes: info.bufferedBytes,
    readingPaused: info.readingPaused,
    certificateCommonName: info.peerCertificate?.commonName ?? null,
  };
}

export const SessionSchema = z.object({
  clientId: z.string(),
  connected: z.boolean(),
  protocolVersion: z.number().int(),
  expiryInterval: z.number().int(),
  subscriptions: z.number().int(),
  inflight: z.number().int(),
  queued: z.number().int(),
  disconnectedAt: z.string().nullable().openapi({ format: "date-time" }),
}).openapi("Session");

export type SessionView = z.infer<typeof SessionSchema>;

export function sessionView(info: SessionInfo): SessionView {
  return {
    clientId: info.clientId,
    connected: info.connected,
    protocolVersion: info.protocolVersion,
    expiryInterval: info.expiryInterval,
    subscriptions: info.subscriptions.length,
    inflight: info.inflight,
    queued: info.queued,
    disconnectedAt: info.disconnectedAt === undefined ? null : isoTime(info.disconnectedAt),
  };
}

export const SessionDetailSchema = SessionSchema.extend({
  subscriptionList: z.array(SubscriptionSchema),
}).openapi("SessionDetail");

export function sessionDetailView(info: SessionInfo) {
  return {
    ...sessionView(info),
    subscriptionList: info.subscriptions.map((record) => subscriptionView(info.clientId, record)),
  };
}

export const ClientDetailSchema = ClientSchema.extend({
  session: SessionDetailSchema,
}).openapi("ClientDetail");
