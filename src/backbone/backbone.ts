/**
 * What the broker core needs from the place its state lives (DESIGN section 4). The engine talks
 * only to this interface; `MemoryBackbone` keeps everything in this process and a NATS JetStream
 * backbone keeps it in a cluster. Methods return `T | Promise<T>` where the memory implementation
 * can answer at once: callers await only when they actually get a Promise, which keeps the QoS 0
 * path free of promises.
 *
 * @module
 */

import type { Properties, ProtocolVersion, QoS } from "../codec/packets.ts";

/** An application message as it travels beyond one connection's turn. */
export interface Message {
  topic: string;
  /** Owned bytes (copied out of the read chunk before the message was stored or queued). */
  payload: Uint8Array;
  qos: QoS;
  retain: boolean;
  /**
   * MQTT 5 properties forwarded to subscribers (payload format, content type, response topic,
   * correlation data, user properties). Never a topic alias or subscription identifier.
   */
  properties: Properties | undefined;
  /** Epoch ms after which the message must not be delivered; 0 for never [MQTT-3.3.2-5]. */
  expiresAt: number;
  /** Client id of the publisher, for No Local [MQTT-3.8.3-3]; "" for broker-made messages. */
  origin: string;
}

/** A subscription as a session record stores it. */
export interface SubscriptionRecord {
  /** The filter as the client sent it, including any `$share/{group}/` prefix. */
  filter: string;
  qos: QoS;
  noLocal: boolean;
  retainAsPublished: boolean;
  retainHandling: 0 | 1 | 2;
  /** MQTT 5 Subscription Identifier, 0 when none. */
  subscriptionId: number;
}

/** A will message held for a session. */
export interface WillRecord {
  /** The message; its `expiresAt` is set when it is published. */
  message: Message;
  /** Seconds to wait after the connection closed (MQTT 5 Will Delay Interval). */
  delayInterval: number;
  /** MQTT 5 Message Expiry Interval of the will in seconds, 0 for none; counts from publication. */
  messageExpiryInterval: number;
}

/** The durable part of a session: what another front-end needs to resume it. */
export interface SessionRecord {
  clientId: string;
  protocolVersion: ProtocolVersion;
  /** Seconds the session outlives its connection; 0xFFFFFFFF never expires. */
  expiryInterval: number;
  subscriptions: SubscriptionRecord[];
  will: WillRecord | undefined;
  /** Node id of the front-end that holds the live connection, undefined while offline. */
  owner: string | undefined;
  /** Epoch ms when the last connection closed, undefined while connected. */
  disconnectedAt: number | undefined;
}

/** A stored session record with the revision used for compare-and-set. */
export interface StoredSession {
  record: SessionRecord;
  revision: number;
}

/** Durable session records keyed by client id; writes are compare-and-set on the revision. */
export interface SessionStore {
  get(clientId: string): StoredSession | undefined | Promise<StoredSession | undefined>;
  /**
   * Writes a record if the stored revision equals `expectedRevision` (0: only if absent) and
   * returns the new revision, or `undefined` when another writer got there first.
   */
  put(
    record: SessionRecord,
    expectedRevision: number,
  ): number | undefined | Promise<number | undefined>;
  /** Deletes the record if its revision matches (any revision when omitted); true if deleted. */
  delete(clientId: string, expectedRevision?: number): boolean | Promise<boolean>;
  /** All records, in client id order. */
  list(): SessionRecord[] | Promise<SessionRecord[]>;
}

/** Retained messages by topic. */
export interface RetainedStore {
  /** Stores (replaces) the retained message of `message.topic`. */
  set(message: Message): void | Promise<void>;
  /** Removes the retained message of a topic; true if there was one. */
  delete(topic: string): boolean | Promise<boolean>;
  get(topic: string): Message | undefined | Promise<Message | undefined>;
  /**
   * Retained messages whose topics match a filter (wildcards allowed), without scanning unrelated
   * topics; expired messages are not returned. Order: topic order is not guaranteed.
   */
  match(filter: string): Message[] | Promise<Message[]>;
  /** Number of retained messages. */
  count(): number | Promise<number>;
}

/** Limits for one session's queue. */
export interface QueueLimits {
  maxMessages: number;
  maxBytes: number;
}

/** How much one session's queue holds. */
export interface QueueSize {
  messages: number;
  bytes: number;
}

/** Why a message was not queued. */
export type QueueRejection = "full";

/**
 * Per-session FIFO queues of QoS 1/2 messages waiting for the client: while it is offline, or while
 * its inflight window is full. Bounded; a full queue rejects the message visibly.
 */
export interface QueueStore {
  /** Appends to a session's queue; returns "full" when a limit would be exceeded. */
  push(
    clientId: string,
    message: Message,
    limits: QueueLimits,
  ): QueueRejection | undefined | Promise<QueueRejection | undefined>;
  /** Removes and returns up to `max` messages from the head, oldest first. */
  take(clientId: string, max: number): Message[] | Promise<Message[]>;
  /** Number of messages and bytes queued for a session. */
  size(clientId: string): QueueSize | Promise<QueueSize>;
  /** Drops a session's queue. */
  drop(clientId: string): void | Promise<void>;
}

/** Receives messages routed to this node. */
export type MessageListener = (message: Message) => void;

/**
 * Fan-out between front-ends. Every node registers one listener and declares interest in the
 * filters of its local subscriptions; a published message reaches every node with matching
 * interest (the memory bus has one node and delivers everything to it, synchronously).
 */
export interface MessageBus {
  /** Sets the listener for messages routed to this node. */
  listen(listener: MessageListener): void;
  /** Counts one more local subscription on a filter (reference counted). */
  addInterest(filter: string): void | Promise<void>;
  /** Counts one fewer local subscription on a filter. */
  removeInterest(filter: string): void | Promise<void>;
  /**
   * Publishes to every interested node. Resolves (or returns) once the message is durable enough
   * to acknowledge to the publisher [MQTT-4.3.2-2].
   */
  publish(message: Message): void | Promise<void>;
}

/** Cluster-wide configuration documents (users, ACL rules, bridges), any node edits, all see. */
export interface ConfigStore {
  get(key: string): Uint8Array | undefined | Promise<Uint8Array | undefined>;
  put(key: string, value: Uint8Array): void | Promise<void>;
  delete(key: string): void | Promise<void>;
  /** Calls `listener` after every change to a key, from any node; returns an unsubscribe. */
  watch(listener: (key: string, value: Uint8Array | undefined) => void): () => void;
}

/** The backbone: where sessions, retained messages, queues and routing live. */
export interface Backbone {
  /** "memory" or "nats". */
  readonly kind: string;
  /**
   * Whether state is shared with other front-ends. A local backbone (memory) keeps offline
   * sessions in this process, so the engine keeps routing to them itself.
   */
  readonly shared: boolean;
  readonly sessions: SessionStore;
  readonly retained: RetainedStore;
  readonly queues: QueueStore;
  readonly bus: MessageBus;
  readonly config: ConfigStore;
  /** Connects to the backing service (nothing to do for memory). */
  start(): Promise<void>;
  /** Releases everything it holds. */
  close(): Promise<void>;
}
