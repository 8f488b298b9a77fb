/**
 * Event notifications in smq's form: the event names (one per `pb.Notify` call and webhook path)
 * and the JSON bodies, with smq's field names so that its receivers keep working. Perch adds
 * fields smq lacks (the listener, MQTT 5 user properties at CONNECT, why a client or agent went);
 * a receiver that reads only smq's fields never sees a difference.
 *
 * @module
 */

import { createHash } from "node:crypto";
import type { BrokerEvent } from "../backbone/backbone.ts";
import { AGENT_FACT_KEYS, type AgentFacts } from "../domain/agent_facts.ts";
import { disconnectReason } from "../ops/client_events.ts";

/** The events, as smq names them. */
export const EVENT_NAMES = [
  "OnClientConnect",
  "OnClientDisconnected",
  "OnSubscribe",
  "OnUnSubscribe",
  "OnAgentConnect",
  "OnAgentDisconnected",
] as const;

/** One event name. */
export type EventName = typeof EVENT_NAMES[number];

/** smq's client `status`. */
export const CLIENT_CONNECTED = 1;
export const CLIENT_DISCONNECTED = 2;

/**
 * The body of the client and agent events: smq's `model.Client` (every field present, strings
 * empty when unknown), then Perch's additions.
 */
export interface ClientRecord {
  id: string;
  node_id: string;
  host_name: string;
  connect_ip: string;
  intranet_ip: string;
  public_ip: string;
  platform: string;
  arch: string;
  os: string;
  agent_version: string;
  user_name: string;
  /** `MQTT`, or `MQIsdp` for MQTT 3.1. */
  proto_name: string;
  proto_ver: number;
  keep_alive: number;
  clean_start: boolean;
  /** 1 connected, 2 disconnected. */
  status: number;
  /** Unix seconds of the event. */
  timestamp: number;
  // ---- Perch's additions ----
  /** The transport the client connected over (`tcp`, `tls`, `ws`, `wss`), "" when unknown. */
  listener: string;
  /** MQTT 5 user properties of the CONNECT, as `[name, value]` pairs. */
  user_properties: [string, string][];
  /** Disconnect events: why it went (see docs/notifications.md). */
  reason?: string;
  /** Disconnect events: the DISCONNECT reason code sent or received, 0 for a plain close. */
  reason_code?: number;
}

/** The body of the subscription events: smq's `model.Subscription`. */
export interface SubscriptionEventRecord {
  /** smq's id: the hex MD5 of the topic filter, `:`, the client id. */
  id: string;
  client_id: string;
  node_id: string;
  topic: string;
  qos: number;
  timestamp: number;
}

/** One notification, ready to send: its name, whose it is (for ordering) and its JSON body. */
export interface Notification {
  name: EventName;
  /** Notifications of one client are sent in order. */
  clientId: string;
  body: string;
}

type Connected = Extract<BrokerEvent, { type: "connected" }>;
type Disconnected = Extract<BrokerEvent, { type: "disconnected" }>;

function seconds(ms: number): number {
  return Math.floor(ms / 1000);
}

/** The client record of a connect or disconnect event (status 1 or 2). */
export function clientRecord(event: Connected | Disconnected): ClientRecord {
  const facts: AgentFacts = event.facts ?? {};
  const connected = event.type === "connected";
  const record: ClientRecord = {
    id: event.clientId,
    node_id: connected ? event.node : event.lostNode ?? event.node,
    host_name: "",
    connect_ip: event.remoteAddress ?? "",
    intranet_ip: "",
    public_ip: "",
    platform: "",
    arch: "",
    os: "",
    agent_version: "",
    user_name: event.username ?? "",
    proto_name: event.protocolVersion === 3 ? "MQIsdp" : "MQTT",
    proto_ver: event.protocolVersion ?? 0,
    keep_alive: event.keepAlive ?? 0,
    clean_start: event.cleanStart ?? false,
    status: connected ? CLIENT_CONNECTED : CLIENT_DISCONNECTED,
    timestamp: seconds(event.at),
    listener: event.listener ?? "",
    user_properties: event.userProperties ?? [],
  };
  for (const key of AGENT_FACT_KEYS) record[key] = facts[key] ?? "";
  if (!connected) {
    record.reason = event.lostNode === undefined
      ? disconnectReason({ reasonCode: event.reasonCode, byClient: event.byClient })
      : "node_lost";
    record.reason_code = event.reasonCode;
  }
  return record;
}

/** smq's subscription id: the hex MD5 of the filter, `:`, the client id. */
export function subscriptionId(filter: string, clientId: string): string {
  return `${createHash("md5").update(filter).digest("hex")}:${clientId}`;
}

/** The body of a subscribe or unsubscribe event. */
export function subscriptionRecord(
  event: Extract<BrokerEvent, { type: "subscribed" | "unsubscribed" }>,
): SubscriptionEventRecord {
  return {
    id: subscriptionId(event.filter, event.clientId),
    client_id: event.clientId,
    node_id: event.node,
    topic: event.filter,
    qos: event.qos,
    timestamp: seconds(event.at),
  };
}

/** The notification of a lifecycle event. */
export function notificationOf(event: BrokerEvent): Notification {
  switch (event.type) {
    case "connected":
      return note("OnClientConnect", event.clientId, clientRecord(event));
    case "disconnected":
      return note("OnClientDisconnected", event.clientId, clientRecord(event));
    case "subscribed":
      return note("OnSubscribe", event.clientId, subscriptionRecord(event));
    case "unsubscribed":
      return note("OnUnSubscribe", event.clientId, subscriptionRecord(event));
  }
}

/** A notification with its body as JSON. */
export function note(name: EventName, clientId: string, body: object): Notification {
  return { name, clientId, body: JSON.stringify(body) };
}
