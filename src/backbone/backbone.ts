/**
 * The backbone seam: everything the engine keeps beyond one connection (sessions, retained
 * messages, QoS 1/2 queues, routing between front-ends, node membership, events, cluster-wide
 * config, and optionally outboxes for bridges) lives behind this interface. The memory backbone
 * keeps it in this process; a NATS JetStream backbone keeps it in a cluster, so any front-end can
 * die without losing what it acknowledged.
 *
 * Designed for a remote, replicated store:
 * - every operation whose outcome matters returns a Promise, may reject with a
 *   {@linkcode BackboneError} and is bounded in time (the engine wraps every call in a timeout as
 *   well, see `guarded.ts`). The memory backbone resolves at once; the engine never relies on it.
 * - the two fire-and-forget operations, {@linkcode MessageBus.forward} (QoS 0, which has no
 *   acknowledgement to wait for anywhere) and {@linkcode EventStream.emit}, return nothing; the
 *   backbone counts what it could not send.
 * - a QoS 1/2 message is stored in every matching session and group queue before the publisher
 *   is acknowledged, and stays stored until the subscriber acknowledged it (queue handles ack,
 *   nak and release by sequence), so a message delivered but not yet acknowledged survives the
 *   front-end that delivered it.
 * - sessions are claimed for a node with compare-and-set on a revision, which is the cluster-wide
 *   client id lock.
 *
 * How each part maps onto JetStream is written next to it ("JetStream:").
 *
 * @module
 */

import type { AgentFacts } from "../domain/agent_facts.ts";
import type { Message, SessionRecord } from "../domain/types.ts";
import { Pending } from "../util/pending.ts";

export type { Message, SessionRecord, SubscriptionRecord, WillRecord } from "../domain/types.ts";

// ---- sessions ----------------------------------------------------------------------------------

/** A stored session record with the revision used for compare-and-set. */
export interface StoredSession {
  record: SessionRecord;
  /** Increases with every write; 0 is never a stored revision (it means "absent"). */
  revision: number;
}

/** The outcome of {@linkcode SessionStore.claim}. */
export type SessionClaim =
  /** The record now names the claiming node; `previous` is what was stored before, if anything. */
  | { status: "claimed"; revision: number; previous: StoredSession | undefined }
  /** Another node holds the session (and `force` was not set). */
  | { status: "held"; owner: string; revision: number };

/**
 * Durable session records keyed by client id. Writes are compare-and-set on the revision, which
 * makes the record the client-id lock of the cluster: a node owns a session while the record
 * names it as `owner`.
 *
 * JetStream: a KV bucket (`{prefix}-sessions`), one key per client id (escaped), revision =
 * the KV revision; `put` is `update(key, value, revision)` (`create` for revision 0).
 */
export interface SessionStore {
  get(clientId: string): Promise<StoredSession | undefined>;
  /** Every record, in client id order. */
  list(): Promise<StoredSession[]>;
  /** Number of records. */
  count(): Promise<number>;
  /**
   * Writes `record` if the stored revision equals `expectedRevision` (0: only if absent) and
   * returns the new revision, or undefined when another writer got there first.
   */
  put(record: SessionRecord, expectedRevision: number): Promise<number | undefined>;
  /**
   * Claims a client id for `owner`, atomically: `build` receives the stored session (undefined
   * when there is none) and returns the record to write, whose `owner` is set to `owner`. Fails
   * with "held" when another node is the owner, unless `force` (that node's lease ran out). Races
   * between claimers are settled by compare-and-set; `build` may be called more than once.
   */
  claim(
    clientId: string,
    owner: string,
    build: (previous: StoredSession | undefined) => SessionRecord,
    options?: { force?: boolean },
  ): Promise<SessionClaim>;
  /** Deletes the record if its revision matches (any revision when omitted); true if deleted. */
  delete(clientId: string, expectedRevision?: number): Promise<boolean>;
}

// ---- retained messages -------------------------------------------------------------------------

/**
 * Retained messages by topic.
 *
 * JetStream: a stream with one message per subject (`max_msgs_per_subject: 1`, per-message TTL
 * for Message Expiry); each node keeps a local topic index fed by a watch, so `match` walks only
 * matching branches and never scans the store.
 */
export interface RetainedStore {
  /** Stores (replaces) the retained message of `message.topic`; rejects "full" at its bounds. */
  set(message: Message): Promise<void>;
  /** Removes the retained message of a topic; true if there was one. */
  delete(topic: string): Promise<boolean>;
  get(topic: string): Promise<Message | undefined>;
  /**
   * Retained messages whose topics match a filter (wildcards allowed); expired messages are not
   * returned. Topic order is not guaranteed.
   */
  match(filter: string): Promise<Message[]>;
  count(): Promise<number>;
}

// ---- publishing and live routing ---------------------------------------------------------------

/** A QoS 2 message's exactly-once key: its publisher and packet id [MQTT-4.3.3-9]. */
export interface InboundKey {
  clientId: string;
  packetId: number;
}

/** What a QoS 1/2 publish did: the engine turns it into a reason code, with no side channels. */
export interface PublishOutcome {
  /** Session and group queues that stored the message. */
  queued: number;
  /** Queues that refused it at their bound (the publisher is told: 0x97). */
  full: number;
  /** Client ids (or `$share/{group}/{filter}`) of some of those queues, for the log. */
  fullQueues: string[];
  /**
   * Of `full`, the queues that refused it because their subscriber was taken for stuck (it
   * acknowledged nothing for `stuckAfterMs` while publishes waited, and has not since) or is
   * offline, rather than at their bound alone; absent counts as 0.
   */
  stuck?: number;
  /**
   * The store is near its global ceiling on queued bytes: the engine slows publishers until it
   * is not (one stuck subscriber alone never causes it; its own queue bound comes first).
   */
  congested: boolean;
  /**
   * Whether live subscribers on other nodes may receive it (false when the backbone knows there
   * are none, as on one node).
   */
  forwarded: boolean;
  /** QoS 2: the publisher's packet id was already open, nothing was stored again. */
  duplicate: boolean;
  /**
   * Optional: a queue that took the message holds more than its subscriber can take at once
   * while its subscriber keeps acknowledging (`whenFull: "wait"`; the memory backbone: an eighth
   * of its bound beyond the subscriber's window); settled once it drained, or its subscriber
   * was taken for stuck ({@linkcode QueueLimits.stuckAfterMs}) or went away. The engine does not read the
   * publisher until then: its next messages stay in its socket (TCP holds it back), so the queue
   * stays short and few messages are alive in the process.
   */
  backpressure?: Pending<void>;
}

/**
 * A publish that an in-process backbone keeps waiting for room in a full queue
 * (`whenFull: "wait"`), settled once every queue it waits on stored or refused it. It is bounded by
 * the queue's own rules (refused once the subscriber acknowledges nothing for
 * {@linkcode QueueLimits.stuckAfterMs}, goes offline or the queue goes away), not by the engine's timeout for calls to a remote store, so it
 * holds no promise or timer of its own. The engine stops reading the publisher while it waits:
 * its further publishes stay unread in its socket rather than waiting in the line too.
 */
export class PublishWait extends Pending<PublishOutcome> {}

/** Where a live message arrived for: every local non-shared subscription, or one share group. */
export interface LiveTarget {
  /** Undefined: route to this node's non-shared subscriptions. Set: one member of this group. */
  group: string | undefined;
  /** The group's filter (without the share prefix), when `group` is set. */
  filter: string | undefined;
}

/** Receives live messages routed to this node by other nodes (and shared-group QoS 0 ones). */
export type LiveListener = (message: Message, target: LiveTarget) => void;

/**
 * Publishing and live routing between front-ends. The engine routes every message to this node's
 * own non-shared subscriptions itself; the bus carries it to other nodes and to share groups.
 *
 * JetStream: QoS 1/2 are published to the messages stream (`{prefix}-msgs`, subject
 * `{prefix}.m.{topic as subject}`) with the publish acknowledged by the stream before the engine
 * acknowledges the client; live traffic is core NATS on the same subjects, each node subscribing
 * (reference counted) to the subjects of its local filters, shared filters in a NATS queue group
 * so exactly one node takes each message.
 */
export interface MessageBus {
  /** Sets the listener for live messages arriving from the bus. */
  listen(listener: LiveListener): void;
  /**
   * Counts one more local subscription on a filter (reference counted), optionally as a member
   * of share group `group`. `stored` (default true) says whether it takes QoS 1/2 messages live
   * too: a non-shared subscription granted QoS 0 does; one granted QoS 1/2 gets them from its
   * queue, so a backbone may send it only QoS 0 messages live.
   */
  addInterest(filter: string, group?: string, stored?: boolean): Promise<void>;
  /** Counts one fewer (with the `stored` it was counted with). */
  removeInterest(filter: string, group?: string, stored?: boolean): Promise<void>;
  /**
   * QoS 0: best effort to live subscribers elsewhere (other nodes, share groups). Never throws;
   * what could not be sent is counted by the backbone.
   */
  forward(message: Message): void;
  /**
   * QoS 1/2: stores the message in every matching session and group queue, forwards it live for
   * subscriptions that receive it at QoS 0, and resolves once it is durable enough to
   * acknowledge [MQTT-4.3.2-2] [MQTT-4.3.3-2]. With `inbound` (QoS 2), a packet id still open for
   * that publisher stores nothing and answers `duplicate`; otherwise it is opened, atomically
   * with the store, until {@linkcode MessageBus.completeInbound}. An in-process backbone that
   * stored it at once answers with the outcome itself rather than a promise, so the engine
   * answers the publisher in the same turn; one whose full queue makes it wait for room
   * (`whenFull: "wait"`) answers with a {@linkcode PublishWait}.
   */
  publish(
    message: Message,
    inbound?: InboundKey,
  ): PublishOutcome | Promise<PublishOutcome> | PublishWait;
  /**
   * Closes a QoS 2 packet id at PUBREL; true if it was open [MQTT-4.3.3-11]. An in-process
   * backbone answers with the result itself, as `publish` does, so the engine sends PUBCOMP in
   * the same turn.
   */
  completeInbound(key: InboundKey): boolean | Promise<boolean>;
  /** The publisher's open QoS 2 packet ids (after a takeover on another node). */
  openInbound(clientId: string): Promise<number[]>;
}

// ---- queues ------------------------------------------------------------------------------------

/** Names a queue: a session's own, or a share group's (`$share/{group}/{filter}`). */
export type QueueKey =
  | { kind: "session"; clientId: string }
  | { kind: "group"; group: string; filter: string };

/** Bounds of one queue, counting stored and unacknowledged messages. */
export interface QueueLimits {
  maxMessages: number;
  maxBytes: number;
  /**
   * What a full queue does with one more message: `"refuse"` it at once (the default), or
   * `"wait"` for room while its subscriber keeps acknowledging (a publish then takes longer, which
   * slows its publisher), refusing once the subscriber acknowledged nothing for
   * {@linkcode QueueLimits.stuckAfterMs} (of time this process ran) or is offline. A subscriber
   * that is stuck slows nobody for longer than that.
   */
  whenFull?: "refuse" | "wait";
  /**
   * With `whenFull: "wait"`: how long the subscriber may acknowledge nothing while publishes wait
   * for room before it is taken for stuck and what waits is refused
   * ({@linkcode STUCK_AFTER_MS} when absent).
   */
  stuckAfterMs?: number;
}

/**
 * How long a subscriber whose full queue has publishes waiting may acknowledge nothing before it
 * is taken for stuck, unless its queue's limits say otherwise (`mqtt.stuckSubscriberTimeout`).
 * Refusing a subscriber that was only held up (its process kept off its CPU, a collection pause,
 * a TCP retransmission) drops messages that 3.1.1 publishers were told were delivered; a second
 * was too short on a busy machine.
 */
export const STUCK_AFTER_MS = 3_000;

/** How much one queue holds. */
export interface QueueSize {
  messages: number;
  bytes: number;
}

/** One message handed out by a queue. */
export interface QueuedDelivery {
  /** Position in the queue's store, increasing; names the delivery for ack, nak and release. */
  readonly seq: number;
  readonly message: Message;
  /** Handed out before and not acknowledged (sent again with DUP [MQTT-3.3.1-1]). */
  readonly redelivered: boolean;
  /** QoS 2: PUBREC was received and PUBREL sent; only PUBREL is resent [MQTT-4.4.0-1]. */
  readonly released: boolean;
  /**
   * The packet id recorded for it (QoS 2 before its first send, see
   * {@linkcode QueueHandle.recordPacketId}); 0 when none was.
   */
  readonly packetId: number;
}

/**
 * Receives deliveries from an open queue, never more than the credit granted. The fields of a
 * delivery describe it as handed out: an in-process queue hands out its own record, which changes
 * once the delivery is handed back (marked `redelivered`), so a consumer copies what it keeps.
 */
export type QueueConsumer = (deliveries: QueuedDelivery[]) => void;

/**
 * A step that completed at once, successfully: a backbone returns this very promise (from a queue
 * handle's `ack`, `nak`, `recordPacketId`, `release`) when it has nothing left to wait for (the
 * memory backbone always; the NATS one for an acknowledgement handed to its connection unconfirmed),
 * so the engine, which bounds every call in time, need not watch it. Once per delivered message,
 * that watching was a good part of the memory backbone's cost per message.
 */
export const DONE: Promise<void> = Promise.resolve();

/** Most places a full queue waits to have free before it takes in waiting publishes. */
const ADMIT_BATCH = 64;

/**
 * Whether a full queue holding `messages` and `bytes` has drained far enough to take in the
 * publishes waiting for room (`whenFull: "wait"`): a sixteenth of its bound free (at most
 * {@linkcode ADMIT_BATCH} messages, and a sixteenth of its bytes). Admitted one per
 * acknowledgement, waiting publishes were acknowledged to their publishers one at a time, each
 * answer a write of its own and each next publish a read of its own; in batches they go out
 * together. The subscriber does not wait: its queue still holds fifteen sixteenths of its bound.
 * A quarter (at most 256) took a few more socket calls off, but the bursts it let in held the
 * subscriber's acknowledgements up: its rate moved between 51k and 172k msg/s where a sixteenth
 * held 100k-156k (interleaved runs, one node).
 */
export function roomForWaiting(limits: QueueLimits, messages: number, bytes: number): boolean {
  const { maxMessages, maxBytes } = limits;
  return messages + Math.min(ADMIT_BATCH, Math.ceil(maxMessages / 16)) <= maxMessages &&
    bytes * 16 <= maxBytes * 15;
}

/**
 * An open queue on this node. Messages are handed out within the credit the engine grants (its
 * inflight window) and stay stored until acknowledged.
 *
 * JetStream: a pull request for `credit` messages on the queue's durable consumer; ack, nak and
 * the QoS 2 release state are acknowledgements (and a release marker) on that consumer.
 */
export interface QueueHandle {
  /** Grants credit for `count` more deliveries. */
  request(count: number): void;
  /** The client acknowledged: the message leaves the queue. */
  ack(seq: number): Promise<void>;
  /**
   * QoS 2: records the packet id a delivery is about to be sent with, so that it is resent with
   * the same one after a takeover and the client can recognise it [MQTT-4.3.3-9] [MQTT-4.4.0-1].
   */
  recordPacketId(seq: number, packetId: number): Promise<void>;
  /**
   * QoS 2: PUBREC received and PUBREL sent; after a takeover the delivery comes back `released`,
   * so only PUBREL is sent again.
   */
  release(seq: number): Promise<void>;
  /** Hands a delivery back unacknowledged (a group gives it to another member). */
  nak(seq: number): Promise<void>;
  /**
   * Stops handing out messages. Unacknowledged deliveries stay stored and come back
   * `redelivered`; for a group they go to other members, except the `pin`ned ones (QoS 2 sent to
   * this member), which move to the member session's own queue with their packet id and release
   * state [MQTT-4.8.2-4] [MQTT-4.8.2-5].
   */
  close(pin?: { clientId: string; seqs: number[] }): Promise<void>;
}

/**
 * QoS 1/2 queues, one per session with QoS 1/2 subscriptions and one per share group, capturing
 * every matching published message until acknowledged. Bounded; a full queue refuses visibly
 * (see {@linkcode PublishOutcome.full}).
 *
 * JetStream: one durable consumer per queue on the messages stream, whose filter subjects are the
 * session's QoS 1/2 subscriptions (updated on SUBSCRIBE and UNSUBSCRIBE; never one consumer per
 * subscription); a group's consumer is shared by every member's node.
 */
export interface QueueStore {
  /**
   * Creates a session's queue or sets its filters (topic filters without share prefix, of the
   * subscriptions granted QoS 1 or 2). An empty list captures nothing. Deliveries handed out and
   * not acknowledged stay; messages a removed filter captured that were not handed out yet may
   * stay or go (MQTT requires finishing only deliveries already started [MQTT-3.10.4-3] and lets
   * a server drop the rest; a JetStream consumer whose filter subjects change no longer sees them).
   */
  setFilters(clientId: string, filters: string[], limits: QueueLimits): Promise<void>;
  /** Adds a session to a share group's queue, creating it; idempotent. */
  joinGroup(group: string, filter: string, clientId: string, limits: QueueLimits): Promise<void>;
  /** Removes a member; the queue goes with its last member (what it held is dropped). */
  leaveGroup(group: string, filter: string, clientId: string): Promise<void>;
  /** Opens a queue for delivery on this node. */
  open(key: QueueKey, consumer: QueueConsumer): Promise<QueueHandle>;
  /** Drops a session's queue and everything in it, and its open QoS 2 packet ids as publisher. */
  drop(clientId: string): Promise<void>;
  size(key: QueueKey): Promise<QueueSize>;
  /** Messages and bytes over every queue. */
  totals(): Promise<QueueSize>;
}

// ---- nodes -------------------------------------------------------------------------------------

/** A front-end as the cluster knows it. */
export interface NodeInfo {
  id: string;
  version: string;
  /** Epoch ms the node started. */
  startedAt: number;
}

/** A node and its liveness. */
export interface NodeStatus extends NodeInfo {
  /** Epoch ms of its last heartbeat. */
  lastSeen: number;
  alive: boolean;
}

/** A held lock; it lapses after its TTL unless released first. */
export interface Lock {
  release(): Promise<void>;
}

/** Handles one kind of request sent to this node. */
export type RequestHandler = (body: unknown) => Promise<unknown>;

/**
 * Membership, liveness and requests between front-ends.
 *
 * JetStream: a KV bucket of heartbeats with a per-key TTL (a node whose key expires is lost);
 * locks are KV `create` with a TTL; requests are core NATS request/reply on
 * `{prefix}.node.{id}.{method}`.
 */
export interface NodeRegistry {
  /** Every known node, this one included. */
  list(): Promise<NodeStatus[]>;
  /** Whether a node's lease is current. */
  isAlive(nodeId: string): Promise<boolean>;
  /** Calls `listener` when another node's lease runs out; returns an unsubscribe. */
  onNodeLost(listener: (node: NodeInfo) => void): () => void;
  /**
   * Takes a named lock for `ttlMs` if nobody holds it; undefined when another node does. Used so
   * that exactly one survivor handles a lost node's sessions and wills.
   */
  lock(name: string, ttlMs: number): Promise<Lock | undefined>;
  /** Sends a request to a node and waits for its answer (rejects on timeout or no handler). */
  request(nodeId: string, method: string, body: unknown): Promise<unknown>;
  /** Serves requests of `method` sent to this node; returns an unsubscribe. */
  serve(method: string, handler: RequestHandler): () => void;
}

// ---- events ------------------------------------------------------------------------------------

/** The transport a client connected over, as events name it. */
export type EventListenerKind = "tcp" | "tls" | "ws" | "wss" | "memory";

/**
 * A client lifecycle event, for notifiers: what the node holding the connection saw, or (for a
 * `disconnected` with `lostNode`) what the node that took care of a lost node's sessions
 * concluded.
 */
export type BrokerEvent =
  | {
    type: "connected";
    node: string;
    clientId: string;
    username: string | undefined;
    remoteAddress: string;
    /** The transport the client connected over. */
    listener: EventListenerKind;
    protocolVersion: number;
    /** Granted keep alive, seconds. */
    keepAlive: number;
    /** The CONNECT's Clean Session (3.1.1) or Clean Start (5) flag. */
    cleanStart: boolean;
    /** MQTT 5 user properties of the CONNECT. */
    userProperties?: [string, string][];
    /** Host facts the client sent (agent mode), see `src/domain/agent_facts.ts`. */
    facts?: AgentFacts;
    at: number;
  }
  | {
    type: "disconnected";
    node: string;
    clientId: string;
    username: string | undefined;
    /** The DISCONNECT reason code sent or received; 0 for a close without one. */
    reasonCode: number;
    /** The client sent DISCONNECT itself. */
    byClient: boolean;
    /**
     * The client's connection was on this node, which was lost: `node` is the survivor that
     * noticed, and nothing but the client id and protocol level is known of the connection.
     */
    lostNode?: string;
    remoteAddress?: string;
    listener?: EventListenerKind;
    protocolVersion?: number;
    keepAlive?: number;
    cleanStart?: boolean;
    userProperties?: [string, string][];
    facts?: AgentFacts;
    /** Epoch ms the connection completed CONNECT. */
    connectedAt?: number;
    at: number;
  }
  | { type: "subscribed"; node: string; clientId: string; filter: string; qos: number; at: number }
  | {
    type: "unsubscribed";
    node: string;
    clientId: string;
    filter: string;
    /** The QoS the subscription had. */
    qos: number;
    at: number;
  };

/**
 * Client lifecycle events. Each event is emitted once, by the node that saw it.
 *
 * JetStream: core NATS subjects `{prefix}.events.{type}`.
 */
export interface EventStream {
  /** Emits an event; never throws (what could not be sent is counted). */
  emit(event: BrokerEvent): void;
  /** Receives events of every node; returns an unsubscribe. */
  subscribe(listener: (event: BrokerEvent) => void): () => void;
}

// ---- cluster-wide configuration ----------------------------------------------------------------

/** A configuration value with the revision used for compare-and-set. */
export interface ConfigEntry {
  value: Uint8Array;
  /** Increases with every write of the key; 0 is never a stored revision (it means "absent"). */
  revision: number;
}

/**
 * Cluster-wide configuration documents (users, ACL rules, bridges): any node edits, all see.
 * `get` and `list` may answer from this node's copy, which follows other nodes' writes within
 * the watch's latency; `entry` asks the store itself, so a read-modify-write starts from it and
 * ends with {@linkcode ConfigStore.compareAndSet}. Once a write of this node resolved, this node's
 * watchers have seen it.
 *
 * JetStream: a KV bucket (`{prefix}-config`) and a watch on it; the revision is the KV revision.
 */
export interface ConfigStore {
  get(key: string): Promise<Uint8Array | undefined>;
  /** The value and revision the store holds now (not a copy that may lag), or undefined. */
  entry(key: string): Promise<ConfigEntry | undefined>;
  /** Every document whose key starts with `prefix` (e.g. `agents/`), in key order. */
  list(prefix: string): Promise<{ key: string; value: Uint8Array }[]>;
  put(key: string, value: Uint8Array): Promise<void>;
  /**
   * Writes `value` if the key's revision is `expectedRevision` (0: only if absent) and returns the
   * new revision, or undefined when another writer got there first.
   */
  compareAndSet(
    key: string,
    value: Uint8Array,
    expectedRevision: number,
  ): Promise<number | undefined>;
  delete(key: string): Promise<void>;
  /** Calls `listener` after every change to a key, from any node; returns an unsubscribe. */
  watch(listener: (key: string, value: Uint8Array | undefined) => void): () => void;
}

// ---- outboxes ------------------------------------------------------------------------------------

/** One entry of an {@linkcode Outbox}. */
export interface OutboxEntry {
  /** Position in the outbox, increasing in append order; names the entry for `remove`. */
  readonly seq: number;
  readonly payload: Uint8Array;
  /** Epoch ms the entry was appended. */
  readonly appendedAt: number;
}

/** Bounds of one outbox, over the entries it holds. */
export interface OutboxLimits {
  maxMessages: number;
  /** Payload bytes (a store may count its own overhead per entry too: see the implementation). */
  maxBytes: number;
}

/** What an append came to: stored at `seq`, or refused at the bounds with nothing stored. */
export type OutboxAppend = { status: "stored"; seq: number } | { status: "full" };

/**
 * An outbox opened by this node: a bounded log of entries waiting to be handed to an outside
 * system (a Kafka bridge's messages), appended at the end, read in order and removed once
 * delivered. One opener at a time per name.
 */
export interface Outbox {
  /** Whether a stored entry survives a crash of this process (the memory outbox's do not). */
  readonly durable: boolean;
  /**
   * Appends an entry, which takes `payload` over (the caller must not change it afterwards);
   * resolves once it is stored (durably when `durable`), or "full".
   */
  append(payload: Uint8Array): Promise<OutboxAppend>;
  /**
   * Up to `max` entries after the last one read, in append order (on opening, from the first
   * entry held); an empty list when there are none.
   */
  read(max: number): Promise<OutboxEntry[]>;
  /** Removes every entry up to and including `seq`: they were delivered. */
  remove(upTo: number): Promise<void>;
  /** Entries held (read or not) and their bytes, as the store counts them (see `OutboxLimits`). */
  size(): Promise<QueueSize>;
}

/**
 * Named outboxes. Optional in a backbone: one without it leaves its users to a buffer of their own.
 *
 * JetStream: one stream per outbox (`{prefix}-outbox-{hash}`) with the bounds as stream limits
 * and discard-new, read by direct get from a sequence, removed by purging up to a sequence.
 */
export interface OutboxStore {
  /** Opens the outbox `name`, creating it with `limits` or applying them to the existing one. */
  open(name: string, limits: OutboxLimits): Promise<Outbox>;
  /**
   * Opens the outbox `name` only if it exists, with its limits unchanged (to drain what a lost
   * node left); undefined when there is none.
   */
  find(name: string): Promise<Outbox | undefined>;
}

// ---- the whole -----------------------------------------------------------------------------------

/** The backbone: where sessions, retained messages, queues and routing live. */
export interface Backbone {
  /** "memory", "sqlite" or "nats". */
  readonly kind: string;
  /** Whether the state survives a restart of this process. */
  readonly durable: boolean;
  readonly sessions: SessionStore;
  readonly retained: RetainedStore;
  readonly messages: MessageBus;
  readonly queues: QueueStore;
  readonly nodes: NodeRegistry;
  readonly events: EventStream;
  readonly config: ConfigStore;
  /** Durable outboxes for bridges, when this backbone has them. */
  readonly outbox?: OutboxStore;
  /** Connects to the backing service and joins as `self`. */
  start(self: NodeInfo): Promise<void>;
  /** Leaves and releases everything it holds. */
  close(): Promise<void>;
}
