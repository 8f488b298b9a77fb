/**
 * QoS 1/2 queues on JetStream, fan-out on read: every QoS 1/2 message is published once to the
 * messages stream (`{prefix}-msgs`, interest retention, subjects `{prefix}.msg.q.>`), and each
 * queue is ONE durable pull consumer on it whose `filter_subjects` are the queue's filters (a
 * session's QoS 1/2 subscriptions, a share group's filter), never one consumer per subscription.
 * A message stays in the stream until every consumer that captured it acknowledged it.
 *
 * - QoS 1 messages of one turn to one topic go as one stream message, a run (see
 *   {@linkcode StoredRun}); queue counts are kept in stream messages, as the server keeps them,
 *   beside the MQTT messages the bounds count.
 *
 * - Every session consumer also captures its own direct subject `{prefix}.msg.q.d.{queue id}`:
 *   a session without QoS 1/2 filters captures only that (never everything), and a share group's
 *   QoS 2 delivery pinned to a member moves there.
 * - The queue registry (KV `{prefix}-queues`: filters, bounds, group members) is mirrored by every
 *   node; a publish counts the queues it is stored in from that mirror.
 * - Bounds: each node keeps a ledger of every queue's size: what this node published and
 *   acknowledged, refreshed from the consumer's counts (pending + unacknowledged, plus what this
 *   node changed while they were on their way) at most once a second per queue it publishes into
 *   (every 25 ms while the queue looks full and other nodes are known, so that room freed by
 *   another node's reader is seen soon), and on `size()`. A queue found full is named in the
 *   message's `Perch-Skip` header: its consumer acknowledges and drops it unread, so the message
 *   is stored in the other queues and the publisher hears "full". A message whose every queue is
 *   full is not stored at all (it would only be read to be dropped, slowing the full queue's own
 *   reader): it goes to other nodes' live subscribers on `{prefix}.msg.u.{topic}`, which the
 *   stream does not capture. Across nodes a queue can run over its bound by what other nodes
 *   published since the last refresh; bytes are estimated from the ledger's mean size when the
 *   counts came from the server.
 * - Waiting for room (`whenFull: "wait"`): a publish into a full queue waits in that queue's line
 *   (and in the line of every other queue it matches, so that order holds), and is stored once
 *   each has room or refused it. Progress is this node's acknowledgements for a queue read here,
 *   and the consumer's delivered and ack floor sequences, asked every 100 ms, for one read
 *   elsewhere; a queue without progress for `mqtt.stuckSubscriberTimeout` (3 s), or whose session
 *   is offline, refuses what waits for it and is not waited on again until it progresses. With other nodes, a publish that
 *   waited half a second for a queue that progressed goes in over the bound (the reader's own node
 *   would otherwise take all the room).
 * - A handle pulls within its credit (one pull request for what was granted meanwhile, gathered by
 *   32 places, 8 for a share group, while pulls are outstanding or what arrived covers the credit)
 *   and, for a
 *   session queue (one reader), 128 deliveries ahead of it (its window when larger, at most
 *   1,024), so that returned credit is used at once rather than after a round trip to the server.
 *   Pulls ask for idle heartbeats (every 5 s): a handle that hears nothing for 11 s while waiting
 *   counts its pulls as lost (one waiting at a consumer leader that died is never answered) and
 *   pulls again, as it does after a reconnection, and shortly after a pull is refused for want of
 *   a consumer leader (503, or 409 leadership change). It acks with `+ACK` (confirmed only when
 *   QoS 2 state must go after it), naks with `-NAK`, and keeps its unacknowledged deliveries (and
 *   those pulled ahead) alive with `+WPI` every third of the ack wait; after a crash the server
 *   redelivers them once the ack wait passes. QoS 2 packet ids and release state live in KV
 *   `{prefix}-inflight` (key: queue id and stream sequence), read back for redelivered messages and for any delivery whose sequence
 *   was listed there when the handle opened or NATS reconnected (a restarted nats-server may
 *   deliver again as new what it delivered just before it died); a completed delivery's state
 *   becomes a "done" record for a minute, so that such a delivery is dropped, not sent again.
 * - A session queue's handle opened while its consumer has unacknowledged deliveries of an earlier
 *   reader (a front-end that died) hands out only redeliveries until those are back (it pulls no
 *   new message before they are due, one ack wait; it stops holding after two): they keep their
 *   packet ids, which a new message must not take first.
 * - QoS 2 inbound ids live in KV `{prefix}-inbound` (key: publisher and packet id), created before
 *   the message is stored, marked stored after; the stream publish carries a message id made of
 *   the key and its revision, so a retry after a crash between the two is de-duplicated by the
 *   stream (within its duplicate window, two minutes).
 *
 * @module
 */

import {
  createInbox,
  headers,
  type Msg,
  type MsgHdrs,
  nanos,
  type Subscription,
} from "@nats-io/nats-core";
import {
  AckPolicy,
  DeliverPolicy,
  type JetStreamManager,
  type StreamConfig,
} from "@nats-io/jetstream";
import type { KvEntry } from "@nats-io/kv";
import {
  DONE,
  Fifo,
  type InboundKey,
  type Message,
  type PublishOutcome,
  type QueueConsumer,
  type QueuedDelivery,
  type QueueHandle,
  type QueueKey,
  type QueueLimits,
  type QueueSize,
  type QueueStore,
  roomForWaiting,
  STUCK_AFTER_MS,
  SubscriptionTrie,
  topicMatchesFilter,
} from "../src/mod.ts";
import { type Bucket, BucketMirror, MARKER_TTL_MS } from "./bucket.ts";
import {
  decodeEnvelopes,
  encodeBatch,
  encodeEnvelope,
  type Envelope,
  envelopeCount,
} from "./envelope.ts";
import {
  asBackboneError,
  consumerSubjects,
  guarded,
  isConsumerNotFound,
  keyToken,
  shortHash,
  ttlSeconds,
} from "./names.ts";
import { type NatsShared, nextSender } from "./nats_parts.ts";

const encoder = new TextEncoder();
const ACK = encoder.encode("+ACK");
const NAK = encoder.encode("-NAK");
const WPI = encoder.encode("+WPI");
const decoder = new TextDecoder();

/** How long a pull request waits on the server for messages before it is renewed. */
const PULL_EXPIRES_MS = 30_000;
/**
 * How often the server says a pull request still waits (an idle heartbeat on the handle's inbox)
 * while it has no message for it.
 */
const PULL_HEARTBEAT_MS = 5_000;
/**
 * How long a handle still waiting on pulled messages may hear nothing from the server (neither
 * messages, nor heartbeats, nor a status) before it counts those pulls as lost: a pull waiting at
 * a consumer leader that died (a NATS node killed while this node stays connected to another)
 * is never answered, and the new leader knows nothing of it.
 */
const PULL_SILENCE_MS = 2 * PULL_HEARTBEAT_MS + 1_000;
/**
 * After a pull is refused for want of a consumer leader (503 no responders, 409 leadership
 * change: an election under way), how long before it is asked again; doubled while refusals go
 * on, up to PULL_RETRY_MAX_MS.
 */
const PULL_RETRY_MS = 250;
const PULL_RETRY_MAX_MS = 2_000;
/**
 * Credit gathered before a pull while earlier pulls are still being filled: a pull is a JetStream
 * API request, and one per acknowledged message cost more than the delivery itself. A session
 * queue's handle, which pulls ahead, gathers a quarter of its least lookahead; a share group's,
 * which pulls only its credit (its client's window), less.
 */
const PULL_MIN_BATCH = 32;
const PULL_MIN_BATCH_GROUP = 8;
/**
 * Deliveries a session queue's handle pulls ahead of its credit, at least (its largest grant,
 * the client's window, when more) and at most: they wait in the handle, unacknowledged in the
 * stream, so that credit coming back is used at once instead of after a round trip to the
 * server. A share group's handle pulls nothing ahead: what one member holds, no other can take.
 * What was pulled ahead goes back with the rest when the handle closes (a takeover, a
 * disconnect), in stream order; the server then counts it delivered once already, so its first
 * send to the client carries DUP, which MQTT allows ("might be a re-delivery").
 */
const PREFETCH_MIN = 128;
const PREFETCH_MAX = 1024;
/** How often a queue's ledger may be refreshed from the server while it is published into. */
const REFRESH_MS = 1_000;
/**
 * How often while it looks full: acknowledgements on other nodes free room this node learns of
 * only from the server, and a queue that looked full for a whole second would starve its reader.
 */
const REFRESH_FULL_MS = 25;
/**
 * With other nodes known, a queue this node counts as full is asked of the server before a
 * publish is refused, unless its count is younger than this.
 */
const FULL_RECHECK_MS = 100;
/** How often a queue with waiting publishes is looked at (and, read elsewhere, asked of the server). */
const LOOK_MS = 100;
/**
 * The most silence one look counts: a look that comes later means this process did not run in
 * between (a busy machine), and the reader's acknowledgements may be waiting unread meanwhile.
 */
const MAX_LOOK_STEP_MS = 250;
/**
 * With other nodes known, how long a publish may wait for a queue that progresses before it is let
 * in over the queue's bound (see `#unstarve`): well below the backbone's timeout.
 */
const STARVED_MS = 500;
/**
 * Most publishes waiting for room on one node. Each one's publisher is held (within its window),
 * so this bounds what a flood of publishers into full queues keeps in memory; past it a publish
 * into a queue that has publishes waiting is refused for that queue.
 */
const MAX_WAITING = 4_096;
/** What a waiting publish that no queue refused passes as refused (never changed). */
const NONE_REFUSED: ReadonlySet<string> = new Set();
/** How long after an unconfirmed ack the server's count may still include it. */
const ACK_LAG_MS = 500;
/** Most unacknowledged deliveries of one consumer (an MQTT Receive Maximum is at most 65535). */
const MAX_ACK_PENDING = 65_536;
/** How often a session handle holding back new deliveries asks whether it may stop (see #hold). */
const HOLD_POLL_MS = 250;
/** Tries of a handle's listing of its QoS 2 states, and the pause between them. */
const LIST_ATTEMPTS = 4;
const LIST_RETRY_MS = 500;
/** Most stream sequences with QoS 2 state a handle keeps from one listing (the newest). */
const MAX_LISTED_STATES = 2 * MAX_ACK_PENDING;

/**
 * Most consumers (queues: sessions and share groups) of the messages stream. Left unset, the
 * stream gets nats-server's default limit (1,000 in nats-server 2.12 and later), and the 1,001st
 * session's subscriptions fail.
 */
export const MAX_QUEUES = 1_000_000;

/** Headers this backbone puts on stored messages. */
const SKIP_HEADER = "Perch-Skip";
const MOVED_HEADER = "Perch-Moved";
const PACKET_ID_HEADER = "Perch-Packet-Id";
const RELEASED_HEADER = "Perch-Released";

/**
 * Most QoS 1 messages stored as one stream message, and the places each stream message's
 * deliveries take in the ids a handle gives the engine: delivery id = stream sequence times this,
 * plus the message's place in it (see {@linkcode deliveryId}).
 */
const RUN_MAX_MESSAGES = 64;
/** Most payload bytes of one run. */
const RUN_MAX_BYTES = 64 * 1024;
/** A payload at least this large is stored on its own. */
const RUN_ALONE_BYTES = 16 * 1024;
/**
 * Runs on their way to the stream (sent, not acknowledged yet) past which the run of this turn
 * waits, taking in more messages, until one is acknowledged: as a database commits a group,
 * runs grow while the stream is busy and cost no wait while it is not.
 */
const RUNS_IN_FLIGHT = 2;

/** The id the engine knows a delivery by: its stream message's sequence and its place in it. */
function deliveryId(seq: number, index: number): number {
  return seq * RUN_MAX_MESSAGES + index;
}

/** The stream sequence of a delivery id. */
function streamSeq(id: number): number {
  return Math.floor(id / RUN_MAX_MESSAGES);
}

/**
 * QoS 1 messages to one topic stored one after the other in one turn of the event loop (a
 * publisher's messages read from one socket chunk, or several publishers' in one turn), with the
 * same queues taking them and none full: stored as ONE stream message, a batch of envelopes, sent
 * at the end of the turn. Each MQTT message stored alone cost four NATS messages (the publish,
 * its acknowledgement, the delivery and the ack), each processed by nats-server and by the NATS
 * client of two front-ends; a run of n costs four for all n. Every publish of the run is answered
 * when the stream stored the run.
 *
 * Only QoS 1: a queue's handle hands each message of a stored run out on its own and acks the
 * stream message once every one was acknowledged; given back (a takeover, a disconnect), the
 * whole run is delivered again, including what the client had acknowledged: a duplicate with DUP,
 * which QoS 1 allows and QoS 2's exactly-once would not. Messages with an expiry (a per-message
 * TTL) or a message id (a QoS 2 publish) are stored alone, as are large ones.
 */
class StoredRun {
  readonly subject: string;
  /** The queues taking the run (counted once each, for the whole run). */
  readonly ledgers: readonly Ledger[];
  readonly messages: Message[] = [];
  bytes = 0;
  readonly #result = Promise.withResolvers<PublishOutcome>();

  constructor(subject: string, ledgers: readonly Ledger[]) {
    this.subject = subject;
    this.ledgers = ledgers;
    // Each publish of the run handles a failure; this keeps one from going unhandled meanwhile.
    this.#result.promise.catch(() => {});
  }

  /** Whether a message to `subject` that these queues take joins this run. */
  takes(subject: string, ledgers: readonly Ledger[], size: number): boolean {
    if (
      subject !== this.subject || ledgers.length !== this.ledgers.length ||
      this.messages.length >= RUN_MAX_MESSAGES || this.bytes + size > RUN_MAX_BYTES
    ) return false;
    for (let i = 0; i < ledgers.length; i++) if (ledgers[i] !== this.ledgers[i]) return false;
    return true;
  }

  /** Adds a message; the promise settles when the run is stored (the same for every message). */
  add(message: Message): Promise<PublishOutcome> {
    this.messages.push(message);
    this.bytes += message.payload.length;
    return this.#result.promise;
  }

  stored(): void {
    this.#result.resolve({
      queued: this.ledgers.length,
      full: 0,
      fullQueues: [],
      congested: false,
      forwarded: true,
      duplicate: false,
    });
  }

  failed(error: Error): void {
    this.#result.reject(error);
  }
}

/** A queue as the registry holds it. */
interface RegistryValue {
  key: QueueKey;
  filters: string[];
  limits: QueueLimits;
  members: string[];
}

/** What this node believes a queue holds. */
interface Ledger {
  /** MQTT messages: what the queue's bounds count. */
  messages: number;
  bytes: number;
  /**
   * Stream messages holding those (a run of QoS 1 messages is one, see `StoredRun`): what the
   * server counts, and the unit of every count below.
   */
  entries: number;
  /** Stream messages stored with this queue named in their skip header and not read yet. */
  skipped: number;
  refreshedAt: number;
  /** Stream messages this node added to the queue (publishes counted, moves), ever. */
  added: number;
  /** Stream messages this node removed from it (acknowledgements, failed publishes), ever. */
  removed: number;
  /** Stream publishes counted and not yet confirmed by the stream. */
  pending: number;
  /** Acks this node sent without waiting for the server's confirmation, ever. */
  unconfirmed: number;
  /**
   * `unconfirmed` when counts were asked for, oldest first: the newest one older than
   * ACK_LAG_MS and all later ones.
   */
  marks: [at: number, unconfirmed: number][];
  refreshing: Promise<void> | undefined;
  /** Acknowledgements made on this node, ever (progress of a local reader). */
  acks: number;
  /**
   * The server's delivered plus ack floor sequences at the last count (progress of a reader
   * anywhere); -1 before the first.
   */
  served: number;
  /**
   * Publishes waited and the queue made no progress for `stuckAfterMs`: none waits again until it does
   * (so a reader that reconnects and takes its window again and again holds nobody up).
   */
  stalled: boolean;
}

/** A publish waiting for room in full queues (`whenFull: "wait"`), in each matched queue's line. */
interface WaitingPublish {
  message: Message;
  msgID: string | undefined;
  ttlMs: number | undefined;
  /** Every queue it is stored in (it waits in the line of each). */
  qids: string[];
  /** Queues that refused it while it waited (stalled, offline, gone), once one did. */
  refused: Set<string> | undefined;
  /**
   * Queues that take it over their bound: with other nodes it waited {@linkcode STARVED_MS} while
   * the queue progressed (see `#look`).
   */
  over: Set<string> | undefined;
  /** When it began to wait (ms since the epoch). */
  since: number;
  done: (outcome: Promise<PublishOutcome>) => void;
}

/** Publishes waiting in one queue's line, and how its reader was seen progressing. */
interface QueueWait {
  line: Fifo<WaitingPublish>;
  /** Ms the queue was seen making no progress while publishes waited (see `#look`). */
  silentMs: number;
  lookedAt: number;
  /** Progress marker (`acks + served`) at the last look. */
  progress: number;
  /** Whether the queue's session was checked online since the wait began (no local reader). */
  online: "unknown" | "checking" | "yes";
}

/** Of the ledgers of queues that refused a message, those taken for stuck or offline. */
function stuckCount(skipped: readonly Ledger[]): number {
  let stuck = 0;
  for (const ledger of skipped) if (ledger.stalled) stuck++;
  return stuck;
}

/** How a queue is named in logs: its client id, or the share group's subscription. */
function queueName(key: QueueKey): string {
  return key.kind === "session" ? key.clientId : `$share/${key.group}/${key.filter}`;
}

/** The id of a queue: its durable consumer's name and its registry key. */
export function queueId(key: QueueKey): string {
  return key.kind === "session"
    ? `s${shortHash(`s\n${key.clientId}`)}`
    : `g${shortHash(`g\n${key.group}\n${key.filter}`)}`;
}

/** The messages stream's configuration. */
export function messagesStream(
  prefix: string,
  replicas: number,
  storage: "file" | "memory",
): Partial<StreamConfig> & { name: string } {
  return {
    name: `${prefix}-msgs`,
    subjects: [`${prefix}.msg.q.>`],
    retention: "interest" as StreamConfig["retention"],
    storage: storage as StreamConfig["storage"],
    num_replicas: replicas,
    allow_msg_ttl: true,
    discard: "new" as StreamConfig["discard"],
    max_consumers: MAX_QUEUES,
  };
}

/** The session and group queues of a backbone. */
export class NatsQueueStore implements QueueStore {
  readonly #shared: NatsShared;
  readonly #jsm: JetStreamManager;
  readonly #registry: Bucket;
  readonly #inflight: Bucket;
  readonly #inbound: Bucket;
  readonly #stream: string;
  readonly #ackWaitMs: number;
  /** Whether other nodes are known (only they can have live subscribers for an unstored one). */
  readonly #hasPeers: () => boolean;
  readonly mirror: BucketMirror;
  readonly #view = new Map<string, RegistryValue>();
  readonly #capture = new SubscriptionTrie<string, string>();
  readonly #ledgers = new Map<string, Ledger>();
  /** `isExact` of each queue, until its registry entry changes. */
  readonly #exact = new Map<string, boolean>();
  /** Filter subjects each consumer was last given by this node. */
  readonly #consumers = new Map<string, string>();
  /** Open handles. */
  readonly #handles = new Set<NatsQueueHandle>();
  /** Open handles by queue (whether this node reads a queue). */
  readonly #reading = new Map<string, Set<NatsQueueHandle>>();
  /** Queues with publishes waiting for room, and those publishes in order. */
  readonly #waits = new Map<string, QueueWait>();
  #waitingCount = 0;
  #lookTimer: ReturnType<typeof setTimeout> | undefined;
  /** Whether a session has a live connection on some node (its record's owner). */
  readonly #isOnline: (clientId: string) => Promise<boolean>;
  /** Mean payload size of what this node stored, for byte estimates. */
  #meanSize = 0;
  #stored = 0;
  /** Mean MQTT messages per stream message this node stored, for message estimates. */
  #meanEntry = 1;
  #entries = 0;
  /** The QoS 1 messages of this turn to be stored as one stream message (see StoredRun). */
  #run: StoredRun | undefined;
  /** Runs sent and not acknowledged by the stream yet (see RUNS_IN_FLIGHT). */
  #runsInFlight = 0;

  constructor(
    shared: NatsShared,
    jsm: JetStreamManager,
    buckets: { registry: Bucket; inflight: Bucket; inbound: Bucket },
    ackWaitMs: number,
    hasPeers: () => boolean = () => true,
    isOnline: (clientId: string) => Promise<boolean> = () => Promise.resolve(true),
  ) {
    this.#hasPeers = hasPeers;
    this.#isOnline = isOnline;
    this.#shared = shared;
    this.#jsm = jsm;
    this.#registry = buckets.registry;
    this.#inflight = buckets.inflight;
    this.#inbound = buckets.inbound;
    this.#stream = `${shared.prefix}-msgs`;
    shared.liveRun.sendEarlier = () => {
      if (this.#run !== undefined) this.#sendRun();
    };
    this.#ackWaitMs = ackWaitMs;
    this.mirror = new BucketMirror(
      buckets.registry,
      (entry) => this.#apply(entry),
      shared.timeoutMs,
    );
  }

  async start(): Promise<void> {
    await this.mirror.start();
    this.#watchReconnects().catch(() => {});
  }

  /**
   * After a reconnection to NATS the pulls this node's handles were waiting on are gone (a
   * restarted server forgot them, and one that lost this client dropped them): each open handle
   * asks again for what it was waiting for, or its session would never be delivered to again.
   */
  async #watchReconnects(): Promise<void> {
    for await (const status of this.#shared.nc.status()) {
      if (status.type === "reconnect") {
        for (const handle of [...this.#handles]) {
          handle.listStates();
          handle.pullAgain();
        }
      }
    }
  }

  close(): void {
    this.mirror.stop();
    for (const handle of [...this.#handles]) handle.stop();
    this.#handles.clear();
    clearTimeout(this.#lookTimer);
    this.#lookTimer = undefined;
    const closed = Promise.reject(
      asBackboneError("messages.publish", new Error("the backbone closed")),
    );
    closed.catch(() => {});
    for (const wait of this.#waits.values()) {
      for (const waiting of wait.line) waiting.done(closed);
    }
    this.#waits.clear();
    this.#waitingCount = 0;
  }

  // ---- the registry mirror -------------------------------------------------------------------

  #apply(entry: KvEntry): void {
    const qid = entry.key;
    this.#exact.delete(qid);
    const before = this.#view.get(qid);
    if (before) { for (const filter of before.filters) this.#capture.remove(filter, qid); }
    if (entry.operation !== "PUT") {
      this.#view.delete(qid);
      // Its consumer goes too (whichever node deleted it): a later join must create it again.
      this.#consumers.delete(qid);
      return;
    }
    let value: RegistryValue;
    try {
      value = JSON.parse(decoder.decode(entry.value)) as RegistryValue;
    } catch {
      this.#view.delete(qid);
      return;
    }
    this.#view.set(qid, value);
    for (const filter of value.filters) this.#capture.add(filter, qid, qid);
  }

  /** Writes a registry entry; with `expected`, only at that revision (0: absent). */
  async #writeRegistry(qid: string, value: RegistryValue, expected?: number): Promise<boolean> {
    const bytes = encoder.encode(JSON.stringify(value));
    // Absent may be a delete marker (a group whose last member left), which has a revision of
    // its own: create() writes over it.
    const revision = expected === 0
      ? await this.#registry.create(qid, bytes)
      : await this.#registry.write(qid, bytes, { expected });
    if (revision === undefined) return false;
    await this.mirror.reached(revision);
    return true;
  }

  // ---- consumers -----------------------------------------------------------------------------

  /** A session's direct subject, which only moved deliveries are published to. */
  #direct(qid: string): string {
    return `${this.#shared.prefix}.msg.q.d.${qid}`;
  }

  #subjectsOf(
    qid: string,
    key: QueueKey,
    filters: string[],
  ): { subjects: string[]; exact: boolean } {
    const stored = this.#shared.stored;
    const cover = consumerSubjects(filters.flatMap((filter) => stored.filterToSubjects(filter)));
    if (key.kind === "session") cover.subjects.push(this.#direct(qid));
    return cover;
  }

  /** Creates the queue's consumer, or updates its filter subjects when they changed. */
  async #ensureConsumer(qid: string, subjects: string[]): Promise<void> {
    const wanted = subjects.join(" ");
    if (this.#consumers.get(qid) === wanted) return;
    try {
      // The ack wait too, so that a consumer made under another `ackWait` follows this one.
      await this.#jsm.consumers.update(this.#stream, qid, {
        filter_subjects: subjects,
        ack_wait: nanos(this.#ackWaitMs),
      });
    } catch (error) {
      if (!isConsumerNotFound(error)) throw error;
      await this.#jsm.consumers.add(this.#stream, {
        durable_name: qid,
        ack_policy: AckPolicy.Explicit,
        ack_wait: nanos(this.#ackWaitMs),
        deliver_policy: DeliverPolicy.New,
        max_ack_pending: MAX_ACK_PENDING,
        max_waiting: 4096,
        filter_subjects: subjects,
      });
    }
    this.#consumers.set(qid, wanted);
  }

  async #deleteConsumer(qid: string): Promise<void> {
    this.#consumers.delete(qid);
    this.#ledgers.delete(qid);
    try {
      await this.#jsm.consumers.delete(this.#stream, qid);
    } catch (error) {
      if (!isConsumerNotFound(error)) throw error;
    }
  }

  /** Whether a queue's consumer captures exactly its filters (else the reader must check). */
  isExact(qid: string): boolean {
    let exact = this.#exact.get(qid);
    if (exact === undefined) {
      const value = this.#view.get(qid);
      exact = value === undefined || this.#subjectsOf(qid, value.key, value.filters).exact;
      this.#exact.set(qid, exact);
    }
    return exact;
  }

  /** Whether a queue's filters match a topic (for a consumer whose subjects were widened). */
  captures(qid: string, topic: string): boolean {
    const value = this.#view.get(qid);
    return value !== undefined && value.filters.some((filter) => topicMatchesFilter(topic, filter));
  }

  // ---- QueueStore ----------------------------------------------------------------------------

  setFilters(clientId: string, filters: string[], limits: QueueLimits): Promise<void> {
    return guarded("queues.setFilters", async () => {
      const key: QueueKey = { kind: "session", clientId };
      const qid = queueId(key);
      const unique = [...new Set(filters)];
      await this.#ensureConsumer(qid, this.#subjectsOf(qid, key, unique).subjects);
      await this.#writeRegistry(qid, { key, filters: unique, limits, members: [] });
    });
  }

  joinGroup(group: string, filter: string, clientId: string, limits: QueueLimits): Promise<void> {
    return guarded("queues.joinGroup", async () => {
      const key: QueueKey = { kind: "group", group, filter };
      const qid = queueId(key);
      await this.#ensureConsumer(qid, this.#subjectsOf(qid, key, [filter]).subjects);
      for (;;) {
        const entry = await this.#registry.get(qid);
        const value: RegistryValue = entry
          ? JSON.parse(decoder.decode(entry.value))
          : { key, filters: [filter], limits, members: [] };
        if (value.members.includes(clientId)) return;
        value.members.push(clientId);
        if (await this.#writeRegistry(qid, value, entry?.revision ?? 0)) return;
      }
    });
  }

  leaveGroup(group: string, filter: string, clientId: string): Promise<void> {
    return guarded("queues.leaveGroup", async () => {
      const qid = queueId({ kind: "group", group, filter });
      for (;;) {
        const entry = await this.#registry.get(qid);
        if (!entry) return;
        const value = JSON.parse(decoder.decode(entry.value)) as RegistryValue;
        if (!value.members.includes(clientId)) return;
        value.members = value.members.filter((member) => member !== clientId);
        if (value.members.length > 0) {
          if (await this.#writeRegistry(qid, value, entry.revision)) return;
          continue;
        }
        const revision = await this.#registry.delete(qid, entry.revision);
        if (revision === undefined) continue;
        await this.mirror.reached(revision);
        // The queue goes with its last member: without the consumer's interest, the stream
        // drops what only it held.
        await this.#deleteConsumer(qid);
        return;
      }
    });
  }

  open(key: QueueKey, consumer: QueueConsumer): Promise<QueueHandle> {
    return guarded("queues.open", async () => {
      const qid = queueId(key);
      const known = this.#view.get(qid);
      const filters = known?.filters ?? (key.kind === "group" ? [key.filter] : []);
      await this.#ensureConsumer(qid, this.#subjectsOf(qid, key, filters).subjects);
      const handle = new NatsQueueHandle(this, qid, consumer);
      this.#handles.add(handle);
      let reading = this.#reading.get(qid);
      if (!reading) this.#reading.set(qid, reading = new Set());
      reading.add(handle);
      return handle;
    });
  }

  drop(clientId: string): Promise<void> {
    return guarded("queues.drop", async () => {
      const qid = queueId({ kind: "session", clientId });
      const revision = await this.#registry.delete(qid);
      await this.mirror.reached(revision!);
      await this.#deleteConsumer(qid);
      const states = await this.#inflight.snapshot(`${qid}.*`);
      const inbound = await this.#inbound.snapshot(`${keyToken(clientId)}.*`);
      await Promise.all([
        ...states.map((entry) => this.#inflight.delete(entry.key)),
        ...inbound.map((entry) => this.#inbound.delete(entry.key)),
      ]);
    });
  }

  size(key: QueueKey): Promise<QueueSize> {
    return guarded("queues.size", async () => {
      const qid = queueId(key);
      // This node's acks go out unconfirmed (on the publishing connection): the round trip puts
      // them on the server before the count is asked for.
      await Promise.all([this.#shared.pub.flush(), this.#shared.nc.flush()]);
      await this.#refresh(qid);
      const ledger = this.#ledgers.get(qid);
      return { messages: ledger?.messages ?? 0, bytes: ledger?.bytes ?? 0 };
    });
  }

  totals(): Promise<QueueSize> {
    return guarded("queues.totals", async () => {
      const counts = new Map<string, number>();
      for await (const info of await this.#jsm.consumers.list(this.#stream)) {
        counts.set(info.name, info.num_pending + info.num_ack_pending);
      }
      const totals = { messages: 0, bytes: 0 };
      for (const [qid, count] of counts) {
        const ledger = this.#ledger(qid);
        this.#settle(ledger, count);
        totals.messages += ledger.messages;
        totals.bytes += ledger.bytes;
      }
      return totals;
    });
  }

  // ---- the ledger ----------------------------------------------------------------------------

  #ledger(qid: string): Ledger {
    let ledger = this.#ledgers.get(qid);
    if (!ledger) {
      ledger = {
        messages: 0,
        bytes: 0,
        entries: 0,
        skipped: 0,
        refreshedAt: 0,
        added: 0,
        removed: 0,
        pending: 0,
        unconfirmed: 0,
        marks: [],
        refreshing: undefined,
        acks: 0,
        served: -1,
        stalled: false,
      };
      this.#ledgers.set(qid, ledger);
    }
    return ledger;
  }

  /**
   * Sets a ledger from the server's count of what the consumer holds (stream messages): messages
   * and bytes are estimated from the ledger's own means, or this node's when it is empty.
   */
  #settle(ledger: Ledger, count: number): void {
    const entries = Math.max(0, count - ledger.skipped);
    const messages = ledger.entries > 0
      ? Math.round((ledger.messages * entries) / ledger.entries)
      : Math.round(entries * this.#meanEntry);
    ledger.bytes = ledger.messages > 0
      ? Math.round((ledger.bytes * messages) / ledger.messages)
      : Math.round(messages * this.#meanSize);
    ledger.messages = messages;
    ledger.entries = entries;
    ledger.refreshedAt = Date.now();
  }

  #refresh(qid: string): Promise<void> {
    const ledger = this.#ledger(qid);
    return ledger.refreshing ??= (async () => {
      const { added, removed, pending } = ledger;
      const askedAt = Date.now();
      // Unconfirmed acks of the last ACK_LAG_MS (all, without an older mark) may not be applied
      // yet: the server takes acks in on a queue of its own, and may answer before it did.
      const marks = ledger.marks;
      marks.push([askedAt, ledger.unconfirmed]);
      while (marks.length > 1 && marks[1][0] <= askedAt - ACK_LAG_MS) marks.shift();
      const lagging = ledger.unconfirmed - (marks[0][0] <= askedAt - ACK_LAG_MS ? marks[0][1] : 0);
      let count = 0;
      try {
        const info = await this.#jsm.consumers.info(this.#stream, qid);
        count = info.num_pending + info.num_ack_pending;
        // Its reader, wherever it is, took or acknowledged something since the last count.
        const served = info.delivered.consumer_seq + info.ack_floor.consumer_seq;
        if (served !== ledger.served) {
          if (ledger.served !== -1) ledger.stalled = false;
          ledger.served = served;
        }
      } catch (error) {
        if (!isConsumerNotFound(error)) throw error;
      }
      // The count raced what this node did meanwhile: publishes on their way to the stream when
      // it was asked for, or made since, may be in it or not, and so may acks made since or
      // lagging. A ledger within that range is kept (on one node it is exact), one outside it
      // is brought to its nearest end: so a node also learns of what other nodes stored.
      const low = count - (ledger.removed - removed) - lagging;
      const high = count + pending + (ledger.added - added);
      const held = ledger.entries + ledger.skipped;
      if (held > high) this.#settle(ledger, high);
      else if (held < low) this.#settle(ledger, low);
      else ledger.refreshedAt = Date.now();
    })().finally(() => {
      ledger.refreshing = undefined;
      // Room freed elsewhere may let waiting publishes in.
      if (this.#waits.has(qid)) this.#admit(qid);
    });
  }

  /** A stream message of this node's handle, `messages` MQTT ones, was acknowledged: it left the queue. */
  acknowledged(qid: string, messages: number, bytes: number, confirmed: boolean): void {
    const ledger = this.#ledgers.get(qid);
    if (!ledger) return;
    if (!confirmed) ledger.unconfirmed++;
    ledger.messages = Math.max(0, ledger.messages - messages);
    ledger.bytes = Math.max(0, ledger.bytes - bytes);
    ledger.entries = Math.max(0, ledger.entries - 1);
    ledger.removed++;
    ledger.acks++;
    ledger.stalled = false;
    if (this.#waits.has(qid) && this.#roomForBatch(qid, ledger)) this.#admit(qid);
  }

  /** Whether a full queue read here drained far enough to take in what waits, as on one node. */
  #roomForBatch(qid: string, ledger: Ledger): boolean {
    const value = this.#view.get(qid);
    return value === undefined || roomForWaiting(value.limits, ledger.messages, ledger.bytes);
  }

  /** A message skipped for a queue was read and dropped by its consumer. */
  skippedRead(qid: string): void {
    const ledger = this.#ledgers.get(qid);
    if (ledger && ledger.skipped > 0) {
      ledger.skipped--;
    }
  }

  // ---- publishing ----------------------------------------------------------------------------

  /** Stores a QoS 1/2 message in the stream (see the module doc for what it counts). */
  publish(message: Message, inbound?: InboundKey): Promise<PublishOutcome> {
    // Without QoS 2 state: #store's failures are backbone errors already (see #storeNow), and
    // one async layer less per message counts at this rate.
    if (!inbound) return this.#store(message, undefined);
    return guarded("messages.publish", async () => {
      let msgID: string | undefined;
      let inboundKey: string | undefined;
      let inboundRevision = 0;
      if (inbound) {
        inboundKey = `${keyToken(inbound.clientId)}.${inbound.packetId}`;
        const created = await this.#inbound.create(inboundKey, encoder.encode("storing"));
        if (created === undefined) {
          const entry = await this.#inbound.get(inboundKey);
          if (!entry || decoder.decode(entry.value) === "stored") return duplicateOutcome();
          // Opened and not marked stored: a crash, or a publish still under way. Publishing
          // again with the same message id stores it at most once.
          inboundRevision = entry.revision;
        } else inboundRevision = created;
        msgID = `${inboundKey}.${inboundRevision}`;
      }
      const outcome = await this.#store(message, msgID);
      if (inboundKey !== undefined) {
        await this.#inbound.write(inboundKey, encoder.encode("stored"), {
          expected: inboundRevision,
        });
      }
      return outcome;
    });
  }

  /** Whether this node counts the queue too full for one more message of `size` bytes. */
  #looksFull(qid: string, size: number): boolean {
    const limits = this.#view.get(qid)!.limits;
    const ledger = this.#ledger(qid);
    return ledger.messages + 1 > limits.maxMessages || ledger.bytes + size > limits.maxBytes;
  }

  /** Whether a full queue's publish may wait for room (see `QueueLimits.whenFull`). */
  #mayWait(qid: string): boolean {
    return this.#view.get(qid)?.limits.whenFull === "wait" && !this.#ledger(qid).stalled;
  }

  /** Not async: an async function's frame per message counted at this rate. */
  #store(message: Message, msgID: string | undefined): Promise<PublishOutcome> {
    const shared = this.#shared;
    const ttlMs = message.expiresAt === 0 ? undefined : message.expiresAt - shared.clock.now();
    if (ttlMs !== undefined && ttlMs <= 0) {
      return Promise.resolve({
        queued: 0,
        full: 0,
        fullQueues: [],
        congested: false,
        forwarded: false,
        duplicate: false,
      });
    }
    const matches: string[] = [];
    this.#capture.match(message.topic, matches);
    const qids = matches.length > 1 ? [...new Set(matches)] : matches;
    const size = message.payload.length;
    // A queue with publishes waiting takes this one after them (in order); a full one that may
    // wait makes it wait for room.
    let wait = false;
    for (const qid of qids) {
      if (this.#waits.has(qid) || (this.#looksFull(qid, size) && this.#mayWait(qid))) {
        wait = true;
        break;
      }
    }
    if (wait) {
      if (this.#waitingCount < MAX_WAITING) return this.#wait(message, msgID, ttlMs, qids);
      // Too many wait already: refused by every queue it would wait for.
      const refused = new Set(
        qids.filter((qid) => this.#waits.has(qid) || this.#looksFull(qid, size)),
      );
      return this.#storeNow(message, msgID, ttlMs, qids, refused);
    }
    if (this.#hasPeers()) {
      // Full by this node's count, which may be old: room freed by a reader on another node is
      // only known to the server, so it is asked before the publish is refused.
      const stale = qids.filter((qid) =>
        this.#looksFull(qid, size) && this.#ledger(qid).refreshedAt + FULL_RECHECK_MS < Date.now()
      );
      if (stale.length > 0) {
        return Promise.all(stale.map((qid) => this.#refresh(qid).catch(() => {}))).then(() =>
          this.#storeNow(message, msgID, ttlMs, qids, undefined)
        );
      }
    }
    return this.#storeNow(message, msgID, ttlMs, qids, undefined);
  }

  // ---- waiting for room ----------------------------------------------------------------------

  /** Puts a publish in the line of every queue it matches; settled once it is stored. */
  #wait(
    message: Message,
    msgID: string | undefined,
    ttlMs: number | undefined,
    qids: string[],
  ): Promise<PublishOutcome> {
    const { promise, resolve } = Promise.withResolvers<PublishOutcome>();
    const now = Date.now();
    const waiting: WaitingPublish = {
      message,
      msgID,
      ttlMs,
      qids,
      refused: undefined,
      over: undefined,
      since: now,
      done: resolve,
    };
    for (const qid of qids) {
      let wait = this.#waits.get(qid);
      if (!wait) {
        const ledger = this.#ledger(qid);
        wait = {
          line: new Fifo(),
          silentMs: 0,
          lookedAt: now,
          progress: ledger.acks + ledger.served,
          online: "unknown",
        };
        this.#waits.set(qid, wait);
      }
      wait.line.push(waiting);
    }
    this.#waitingCount++;
    this.#lookTimer ??= setTimeout(() => this.#look(), LOOK_MS);
    // Room may be there already (the line was only waiting on an earlier one).
    this.#admit(qids[0]);
    return promise;
  }

  /** Whether a waiting publish is first in every line it is in, and each queue takes it. */
  #admissible(waiting: WaitingPublish): boolean {
    const size = waiting.message.payload.length;
    for (const qid of waiting.qids) {
      if (this.#waits.get(qid)?.line.peek() !== waiting) return false;
      if (waiting.refused?.has(qid) || waiting.over?.has(qid) || !this.#view.has(qid)) continue;
      if (this.#looksFull(qid, size) && this.#mayWait(qid)) return false;
    }
    return true;
  }

  /** Stores the waiting publishes that may go now, from `qid`'s line on, in order. */
  #admit(qid: string): void {
    const work = [qid];
    while (work.length > 0) {
      const current = work.pop()!;
      for (;;) {
        const wait = this.#waits.get(current);
        const head = wait?.line.peek();
        if (head === undefined) break;
        if (!this.#admissible(head)) break;
        for (const other of head.qids) {
          const line = this.#waits.get(other)!.line;
          line.shift();
          if (line.length === 0) this.#waits.delete(other);
          else if (other !== current) work.push(other);
        }
        this.#waitingCount--;
        // Queues that refused it, or that look full without waiting (stalled since), skip it.
        const size = head.message.payload.length;
        for (const other of head.qids) {
          if (head.over?.has(other) || !this.#view.has(other)) continue;
          if (this.#looksFull(other, size)) (head.refused ??= new Set()).add(other);
        }
        head.done(
          this.#storeNow(
            head.message,
            head.msgID,
            head.ttlMs,
            head.qids,
            head.refused ?? NONE_REFUSED,
            head.over,
          ),
        );
      }
    }
    if (this.#waits.size === 0 && this.#lookTimer !== undefined) {
      clearTimeout(this.#lookTimer);
      this.#lookTimer = undefined;
    }
  }

  /**
   * Looks at every queue with publishes waiting: one read on another node (or nowhere) is asked
   * of the server, and one that made no progress (no acknowledgement seen, here or by the server)
   * for `limits.stuckAfterMs` ({@linkcode STUCK_AFTER_MS}) of looks, or whose
   * session is offline, refuses what waits for it and is stalled. Silence is counted look by look,
   * each adding at most {@linkcode MAX_LOOK_STEP_MS}, rather than read off the wall clock: when
   * this process itself did not run for a second, the wall clock would call a reader silent whose
   * acknowledgements wait unread, and refusing then would drop messages that 3.1.1 publishers
   * were told were delivered.
   */
  #look(): void {
    this.#lookTimer = undefined;
    const now = Date.now();
    for (const [qid, wait] of [...this.#waits]) {
      const value = this.#view.get(qid);
      if (value === undefined) {
        this.#refuseWaiting(qid); // The queue is gone.
        continue;
      }
      const ledger = this.#ledger(qid);
      if (!this.#reading.has(qid)) {
        // Read on another node, or nowhere: room and progress are known to the server only.
        this.#refresh(qid).catch(() => {});
        if (wait.online === "unknown" && value.key.kind === "session") {
          wait.online = "checking";
          this.#isOnline(value.key.clientId).then((online) => {
            if (this.#waits.get(qid) !== wait) return;
            if (online) wait.online = "yes";
            else this.#stall(qid);
          }, () => wait.online = "unknown");
        }
      }
      const progress = ledger.acks + ledger.served;
      if (progress !== wait.progress) {
        wait.progress = progress;
        wait.silentMs = 0;
      } else wait.silentMs += Math.min(now - wait.lookedAt, MAX_LOOK_STEP_MS);
      wait.lookedAt = now;
      if (wait.silentMs >= (value.limits.stuckAfterMs ?? STUCK_AFTER_MS)) this.#stall(qid);
      else if (wait.silentMs < 3 * LOOK_MS && this.#hasPeers()) this.#unstarve(qid, wait, now);
    }
    if (this.#waits.size > 0) this.#lookTimer ??= setTimeout(() => this.#look(), LOOK_MS);
  }

  /**
   * With other nodes, the reader's own node sees room first (at each acknowledgement) and others
   * only when they ask the server, by which time it may be taken again: their publishes would wait
   * until the backbone's timeout although the queue progresses. A publish first in line that
   * waited {@linkcode STARVED_MS} for a queue that progressed lately is let in over its bound; what
   * goes over is at most what the publishers' windows hold each half second.
   */
  #unstarve(qid: string, wait: QueueWait, now: number): void {
    const head = wait.line.peek();
    if (head === undefined || head.since + STARVED_MS > now) return;
    for (const waiting of wait.line) {
      if (waiting.since + STARVED_MS > now) break;
      (waiting.over ??= new Set()).add(qid);
    }
    this.#admit(qid);
  }

  /** The queue made no progress (or its session is offline): what waits for it is refused. */
  #stall(qid: string): void {
    this.#ledger(qid).stalled = true;
    this.#refuseWaiting(qid);
  }

  #refuseWaiting(qid: string): void {
    const wait = this.#waits.get(qid);
    if (!wait) return;
    for (const waiting of wait.line) (waiting.refused ??= new Set()).add(qid);
    this.#admit(qid);
  }

  /** Stores a message now; queues in `refused`, or that look full, are named in its skip header. */
  #storeNow(
    message: Message,
    msgID: string | undefined,
    ttlMs: number | undefined,
    matched: string[],
    refused: ReadonlySet<string> | undefined,
    over?: Set<string>,
  ): Promise<PublishOutcome> {
    let subject: string;
    try {
      subject = this.#shared.stored.topicToSubject(message.topic);
    } catch (error) {
      return Promise.reject(asBackboneError("messages.publish", error));
    }
    // A queue deleted meanwhile (a waiting publish) takes nothing.
    const qids = refused === undefined || matched.every((qid) => this.#view.has(qid))
      ? matched
      : matched.filter((qid) => this.#view.has(qid));
    const size = message.payload.length;
    const counted: Ledger[] = [];
    const skipped: Ledger[] = [];
    const skip: string[] = [];
    const now = Date.now();
    for (const qid of qids) {
      const ledger = this.#ledger(qid);
      const full = refused?.has(qid) || (!over?.has(qid) && this.#looksFull(qid, size));
      if (
        // Alone, this node's ledger is exact but for expiries: no need to ask often.
        ledger.refreshedAt + (full && this.#hasPeers() ? REFRESH_FULL_MS : REFRESH_MS) < now &&
        ledger.refreshing === undefined
      ) {
        this.#refresh(qid).catch(() => {}); // Best effort; the next publish tries again.
      }
      if (full) {
        skip.push(qid);
        ledger.skipped++;
        skipped.push(ledger);
      } else {
        ledger.messages++;
        ledger.bytes += size;
        counted.push(ledger);
      }
    }
    if (counted.length === 0 && skipped.length > 0) {
      // Every queue it matches is full: nothing would read it, so it is not stored (a consumer
      // would otherwise read and drop it, and a full queue's overflow would slow its own
      // delivery). Other nodes' live subscribers still get it, on a root the stream ignores.
      for (const ledger of skipped) ledger.skipped--;
      this.#forwardUnstored(message);
      return Promise.resolve({
        queued: 0,
        full: skipped.length,
        fullQueues: skip.slice(0, 4).map((qid) => queueName(this.#view.get(qid)!.key)),
        stuck: stuckCount(skipped),
        congested: false,
        forwarded: true,
        duplicate: false,
      });
    }
    this.#stored++;
    this.#meanSize += (size - this.#meanSize) / this.#stored;
    if (
      skip.length === 0 && msgID === undefined && ttlMs === undefined && message.qos === 1 &&
      size < RUN_ALONE_BYTES
    ) {
      if (this.#run?.takes(subject, counted, size) !== true) {
        this.#sendRun();
        this.#run = new StoredRun(subject, counted);
        this.#countEntry(counted);
        queueMicrotask(this.#runAtTurnEnd);
      }
      return this.#run!.add(message);
    }
    this.#countEntry(counted);
    return this.#publishAlone(message, subject, msgID, ttlMs, counted, skipped, skip);
  }

  /** One stream message more in each of these queues, on its way to the stream. */
  #countEntry(counted: readonly Ledger[]): void {
    for (const ledger of counted) {
      ledger.entries++;
      ledger.added++;
      ledger.pending++;
    }
  }

  /** At the end of the turn a run is sent, unless enough are on their way already. */
  readonly #runAtTurnEnd = () => {
    if (this.#runsInFlight < RUNS_IN_FLIGHT) this.#sendRun();
  };

  /**
   * Sends the run of QoS 1 messages under way (see {@linkcode StoredRun}) as one stream message,
   * after the QoS 0 run: its sender stamps are taken now, so every message this node stamps still
   * reaches other nodes in stamp order.
   */
  #sendRun(): void {
    const shared = this.#shared;
    shared.liveRun.flush();
    const run = this.#run;
    if (run === undefined) return;
    this.#run = undefined;
    const messages = run.messages;
    this.#noteEntry(messages.length);
    let sent: Promise<unknown>;
    try {
      let data: Uint8Array;
      if (messages.length === 1) data = encodeEnvelope(messages[0], nextSender(shared));
      else {
        const envelopes = messages.map((message) => encodeEnvelope(message, nextSender(shared)));
        let bytes = 0;
        for (const envelope of envelopes) bytes += envelope.length;
        data = encodeBatch(envelopes, bytes);
      }
      sent = shared.pubJs.publish(run.subject, data);
    } catch (error) {
      sent = Promise.reject(error);
    }
    this.#runsInFlight++;
    sent.then(
      () => run.stored(),
      (error) => {
        this.#undo(run.ledgers, [], messages.length, run.bytes);
        run.failed(asBackboneError("messages.publish", error));
      },
    ).finally(() => {
      for (const ledger of run.ledgers) ledger.pending--;
      // A run that waited for this one goes now.
      if (--this.#runsInFlight < RUNS_IN_FLIGHT && this.#run !== undefined) this.#sendRun();
    });
  }

  /** A stream message of `messages` MQTT messages is sent (see `#settle`). */
  #noteEntry(messages: number): void {
    this.#meanEntry += (messages - this.#meanEntry) / ++this.#entries;
  }

  /** Stores one message as a stream message of its own. */
  async #publishAlone(
    message: Message,
    subject: string,
    msgID: string | undefined,
    ttlMs: number | undefined,
    counted: Ledger[],
    skipped: Ledger[],
    skip: string[],
  ): Promise<PublishOutcome> {
    const shared = this.#shared;
    let h: MsgHdrs | undefined;
    if (skip.length > 0) {
      h = headers();
      h.set(SKIP_HEADER, skip.join(" "));
    }
    const size = message.payload.length;
    this.#noteEntry(1);
    try {
      this.#sendRun(); // Stamps reach every node in order (see LiveRun).
      const ack = await shared.pubJs.publish(
        subject,
        encodeEnvelope(message, nextSender(shared)),
        { headers: h, msgID, ttl: ttlMs === undefined ? undefined : ttlSeconds(ttlMs) },
      );
      if (ack.duplicate) {
        this.#undo(counted, skipped, 1, size);
        return duplicateOutcome();
      }
    } catch (error) {
      this.#undo(counted, skipped, 1, size);
      throw asBackboneError("messages.publish", error);
    } finally {
      for (const ledger of counted) ledger.pending--;
    }
    return {
      queued: counted.length,
      full: skipped.length,
      fullQueues: skip.slice(0, 4).map((qid) => queueName(this.#view.get(qid)!.key)),
      stuck: stuckCount(skipped),
      // The stream's own limits refuse beyond them; there is no slower mode to ask publishers for.
      congested: false,
      forwarded: true,
      duplicate: false,
    };
  }

  /**
   * A QoS 1/2 message no queue takes, to other nodes' live (non-shared) interest: a core
   * publish on `{prefix}.msg.u.{topic}`, which their `{prefix}.msg.*.{filter}` subscriptions
   * match and the messages stream does not capture. Not sent while no other node is known.
   */
  #forwardUnstored(message: Message): void {
    const shared = this.#shared;
    // This node's own live subscribers were routed to by the engine, and its share groups
    // never take from this root: with no other node, nobody is left to send it to.
    if (!this.#hasPeers()) return;
    if (shared.pub.isClosed()) {
      shared.dropped.forward++;
      return;
    }
    const subject = shared.stored.topicToSubject(message.topic);
    const root = `${shared.prefix}.msg.q.`;
    this.#sendRun(); // Stamps reach every node in order (see LiveRun).
    shared.pub.publish(
      `${shared.prefix}.msg.u.${subject.slice(root.length)}`,
      encodeEnvelope(message, nextSender(shared)),
    );
  }

  /** Takes back what a failed stream publish of `messages` MQTT messages counted. */
  #undo(counted: readonly Ledger[], skipped: readonly Ledger[], messages: number, bytes: number) {
    for (const ledger of counted) {
      ledger.messages -= messages;
      ledger.bytes -= bytes;
      ledger.entries--;
      ledger.removed++;
    }
    for (const ledger of skipped) ledger.skipped--;
  }

  completeInbound(key: InboundKey): Promise<boolean> {
    return guarded("messages.completeInbound", async () => {
      const inboundKey = `${keyToken(key.clientId)}.${key.packetId}`;
      const entry = await this.#inbound.get(inboundKey);
      if (!entry) return false;
      return (await this.#inbound.delete(inboundKey, entry.revision)) !== undefined;
    });
  }

  openInbound(clientId: string): Promise<number[]> {
    return guarded("messages.openInbound", async () => {
      const entries = await this.#inbound.snapshot(`${keyToken(clientId)}.*`);
      // Only ids whose message was stored: one opened by a node that died before it stored the
      // message (and so before any PUBREC) is not open for the client, whose resent PUBLISH must
      // reach publish(), which stores it at most once; taken for open, the resend would be
      // answered PUBREC as a duplicate and the message lost.
      return entries.filter((entry) => decoder.decode(entry.value) === "stored")
        .map((entry) => Number(entry.key.slice(entry.key.lastIndexOf(".") + 1)));
    });
  }

  // ---- for handles ---------------------------------------------------------------------------

  get shared(): NatsShared {
    return this.#shared;
  }

  get stream(): string {
    return this.#stream;
  }

  get ackWaitMs(): number {
    return this.#ackWaitMs;
  }

  forgetHandle(handle: NatsQueueHandle, qid: string): void {
    this.#handles.delete(handle);
    const reading = this.#reading.get(qid);
    if (reading?.delete(handle) && reading.size === 0) {
      this.#reading.delete(qid);
      // Its reader left this node: whether it is online elsewhere is asked again.
      const wait = this.#waits.get(qid);
      if (wait) wait.online = "unknown";
    }
  }

  /** The QoS 2 state recorded for a delivery, if any; `done` once it completed. */
  async deliveryState(qid: string, seq: number): Promise<DeliveryState | undefined> {
    const entry = await this.#inflight.get(`${qid}.${seq}`);
    return entry && JSON.parse(decoder.decode(entry.value));
  }

  /** How many deliveries of a queue's consumer are unacknowledged (the server's count). */
  async ackPending(qid: string): Promise<number> {
    try {
      return (await this.#jsm.consumers.info(this.#stream, qid)).num_ack_pending;
    } catch (error) {
      if (isConsumerNotFound(error)) return 0;
      throw error;
    }
  }

  /** Stream sequences of a queue's deliveries with QoS 2 state (or a completion) recorded. */
  async statedSeqs(qid: string): Promise<number[]> {
    const keys = await this.#inflight.keys(`${qid}.*`);
    return keys.map((key) => Number(key.slice(qid.length + 1)));
  }

  async recordState(qid: string, seq: number, packetId: number, released: boolean): Promise<void> {
    await this.#inflight.write(
      `${qid}.${seq}`,
      encoder.encode(JSON.stringify({ packetId, released })),
    );
  }

  /**
   * A completed delivery's QoS 2 state becomes a record that it completed, which expires as a
   * delete marker would: the consumer's acknowledgement, although confirmed, may not be on the
   * server's disk yet (nats-server writes consumer state behind), and a nats-server killed then
   * delivers the message again, even as a first delivery. Found, the record has that delivery
   * acknowledged and dropped instead of sent to the client as a new message.
   */
  async forgetState(qid: string, seq: number): Promise<void> {
    await this.#inflight.write(`${qid}.${seq}`, DONE_STATE, { ttlMs: MARKER_TTL_MS });
  }

  /**
   * Moves a group delivery into a member session's queue, keeping its packet id and release
   * state, before the group's copy is acknowledged.
   */
  async moveToSession(clientId: string, data: Uint8Array, packetId: number, released: boolean) {
    const key: QueueKey = { kind: "session", clientId };
    const qid = queueId(key);
    const filters = this.#view.get(qid)?.filters ?? [];
    await this.#ensureConsumer(qid, this.#subjectsOf(qid, key, filters).subjects);
    const h = headers();
    h.set(MOVED_HEADER, "1");
    h.set(PACKET_ID_HEADER, String(packetId));
    h.set(RELEASED_HEADER, released ? "1" : "0");
    await this.#shared.pubJs.publish(this.#direct(qid), data, { headers: h });
    const ledger = this.#ledger(qid);
    ledger.messages++;
    for (const { message } of decodeEnvelopes(data)) ledger.bytes += message.payload.length;
    ledger.entries++;
    ledger.added++;
  }
}

/** A delivery's QoS 2 state in KV `{prefix}-inflight`. */
interface DeliveryState {
  packetId: number;
  released: boolean;
  /** The delivery completed (and its acknowledgement was confirmed). */
  done?: boolean;
}

const DONE_STATE = encoder.encode(JSON.stringify({ packetId: 0, released: true, done: true }));

function duplicateOutcome(): PublishOutcome {
  return {
    queued: 0,
    full: 0,
    fullQueues: [],
    congested: false,
    forwarded: false,
    duplicate: true,
  };
}

/** A stream message this handle holds (handed out, or some of its run; not acknowledged). */
interface Held {
  reply: string;
  data: Uint8Array;
  /** Payload bytes of its messages. */
  size: number;
  /** MQTT messages in it: 1, or a stored run's (see StoredRun). */
  count: number;
  /** Its messages not acknowledged yet. */
  unacked: number;
  /** A run's: 1 at a message's place once it was acknowledged. */
  acked: Uint8Array | undefined;
  /** A run's deliveries (to hand one out again when the engine gives it back). */
  run: QueuedDelivery[] | undefined;
  packetId: number;
  released: boolean;
  stateRecorded: boolean;
}

/** Where a JetStream delivery's ack subject keeps its delivery count and stream sequence. */
function ackInfo(reply: string): { deliveries: number; seq: number } {
  // $JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.… or, with domain and account hash, two more
  // tokens after ACK (11 tokens or more). Read in place: no token strings per delivery.
  let dots = 0;
  for (let i = reply.indexOf("."); i !== -1; i = reply.indexOf(".", i + 1)) dots++;
  let start = 0;
  for (let token = dots + 1 >= 11 ? 6 : 4; token > 0; token--) {
    start = reply.indexOf(".", start) + 1;
  }
  let deliveries = 0;
  let i = start;
  for (let c = reply.charCodeAt(i); c >= 48 && c <= 57; c = reply.charCodeAt(++i)) {
    deliveries = deliveries * 10 + (c - 48);
  }
  let seq = 0;
  for (let c = reply.charCodeAt(++i); c >= 48 && c <= 57; c = reply.charCodeAt(++i)) {
    seq = seq * 10 + (c - 48);
  }
  return { deliveries, seq };
}

/** An open queue on this node: pulls within credit, hands deliveries out in order. */
class NatsQueueHandle implements QueueHandle {
  readonly #store: NatsQueueStore;
  readonly #qid: string;
  /** The inbox pull requests are answered on (deliveries keep their own subjects). */
  readonly #inbox: string;
  readonly #subscription: Subscription;
  readonly #consumer: QueueConsumer;
  readonly #held = new Map<number, Held>();
  /** Arrived and not handed out yet (beyond the credit: pulled ahead). */
  #arrivals: Msg[] = [];
  /** MQTT messages in #arrivals (a run's count for each). */
  #arrivedMessages = 0;
  /**
   * Deliveries of held stream messages not handed out yet, in order: the rest of a run beyond the
   * credit, and a run's delivery the engine gave back.
   */
  #ready: QueuedDelivery[] = [];
  /** Deliveries that arrived while closing, handed back with the held ones in `close`. */
  #returned: Msg[] = [];
  /** `close` handed everything back: a late delivery goes back on its own. */
  #handedBack = false;
  #draining = false;
  /** Granted by the engine and not handed out yet. */
  #credit = 0;
  /** How far beyond the credit to pull (see PREFETCH_MIN). */
  #prefetch: number;
  /** Asked of the server and not arrived yet. */
  #outstanding = 0;
  #flushing = false;
  #closed = false;
  /** When a pull was last sent or the server last answered on the inbox. */
  #heardAt = Date.now();
  #keepAlive: ReturnType<typeof setInterval> | undefined;
  /** When the unacknowledged deliveries were last kept alive. */
  #keptAliveAt = Date.now();
  #retry: ReturnType<typeof setTimeout> | undefined;
  #retryMs = PULL_RETRY_MS;
  /**
   * Stream sequences with QoS 2 state recorded, as last listed (when opened, and after each
   * reconnection to NATS): their deliveries are looked up even when the server counts them first
   * deliveries, which a restarted nats-server does for what it delivered just before it died
   * (it writes consumer state behind). Each is forgotten once delivered.
   */
  #stated = new Set<number>();
  /** The listing under way: deliveries wait for it. */
  #listing: Promise<void> | undefined;
  /**
   * A session handle opened while its consumer has unacknowledged deliveries (an earlier reader
   * held them: a front-end that died, or one still handing them back) hands out only
   * redeliveries until the server counts no unacknowledged delivery outside this handle, or for
   * two ack waits at most. Those go to the client first, with the packet ids they were sent with
   * [MQTT-4.4.0-1]; a new message handed out before would take one of those ids while the
   * client still holds the earlier message under it awaiting PUBREL, and the client would
   * replace that message with the new one and drop it at the PUBREL that follows.
   */
  #hold = false;
  /** While holding: how many deliveries the earlier reader held, pulled beyond the credit. */
  #holdExtra = 0;
  /**
   * While holding, no pull is sent before this time once a new delivery waits: a redelivery that
   * is not due yet is only handed out after new messages, which would fill the pulls.
   */
  #holdPullsFrom = 0;

  constructor(store: NatsQueueStore, qid: string, consumer: QueueConsumer) {
    this.#store = store;
    this.#qid = qid;
    this.#consumer = consumer;
    this.#prefetch = qid.startsWith("s") ? PREFETCH_MIN : 0;
    this.#inbox = createInbox();
    this.#subscription = store.shared.nc.subscribe(this.#inbox, {
      callback: (_error, msg) => this.#arrived(msg),
    });
    this.#keepAlive = setInterval(
      () => this.#progress(),
      Math.max(100, Math.min(store.ackWaitMs / 3, PULL_HEARTBEAT_MS)),
    );
    this.listStates();
    if (qid.startsWith("s")) this.#startHold();
  }

  /** Holds new deliveries back while an earlier reader's are unacknowledged (see #hold). */
  #startHold(): void {
    this.#hold = true;
    // Past one ack wait the earlier reader's deliveries are due again, and the server hands out
    // due redeliveries before new messages: pulls go on then; past two, the hold ends anyway.
    const ackWait = this.#store.ackWaitMs;
    this.#holdPullsFrom = Date.now() + ackWait + 1_000;
    const deadline = Date.now() + 2 * ackWait + 1_000;
    (async () => {
      let first = true;
      while (!this.#closed && Date.now() < deadline) {
        this.#schedulePull();
        // What this handle had when it asked: what arrives meanwhile may be in the count or not.
        const ours = this.#held.size + this.#arrivals.length;
        const pending = await this.#store.ackPending(this.#qid).catch(() => undefined);
        if (pending !== undefined) {
          if (pending <= ours) break;
          if (first) {
            this.#holdExtra = pending - ours;
            first = false;
          }
        }
        await new Promise((resolve) => setTimeout(resolve, HOLD_POLL_MS));
      }
    })().finally(() => {
      this.#hold = false;
      this.#holdExtra = 0;
      if (this.#hasWork() && this.#credit > 0 && !this.#draining) {
        this.#drain().catch(() => {});
      }
    });
  }

  /** The next arrival to hand out: while holding, only a redelivery. */
  #nextArrival(): Msg | undefined {
    let msg: Msg | undefined;
    if (!this.#hold) msg = this.#arrivals.shift();
    else {
      const i = this.#arrivals.findIndex((msg) => ackInfo(msg.reply!).deliveries > 1);
      msg = i === -1 ? undefined : this.#arrivals.splice(i, 1)[0];
    }
    if (msg !== undefined) this.#arrivedMessages -= envelopeCount(msg.data);
    return msg;
  }

  /** Takes every arrival out (the handle closes). */
  #takeArrivals(): Msg[] {
    this.#arrivedMessages = 0;
    return this.#arrivals.splice(0);
  }

  /** Lists the queue's recorded QoS 2 states (see `#stated`); deliveries wait meanwhile. */
  listStates(): void {
    if (this.#closed) return;
    const listing: Promise<void> = (async () => {
      // Just after a reconnection JetStream may not answer yet: a few tries, then deliveries go
      // on (the next reconnection lists again).
      for (let attempt = 0; attempt < LIST_ATTEMPTS && !this.#closed; attempt++) {
        if (attempt > 0) await new Promise((resolve) => setTimeout(resolve, LIST_RETRY_MS));
        const seqs = await this.#store.statedSeqs(this.#qid).catch(() => undefined);
        if (seqs === undefined) continue;
        seqs.sort((a, b) => a - b);
        this.#stated = new Set(seqs.slice(-MAX_LISTED_STATES));
        return;
      }
    })().finally(() => {
      if (this.#listing !== listing) return;
      this.#listing = undefined;
      if (this.#hasWork() && this.#credit > 0 && !this.#draining) {
        this.#drain().catch(() => {});
      }
    });
    this.#listing = listing;
  }

  request(count: number): void {
    if (this.#closed || count <= 0) return;
    this.#credit += count;
    if (this.#prefetch > 0 && count > this.#prefetch) {
      this.#prefetch = Math.min(count, PREFETCH_MAX);
    }
    if (this.#hasWork() && !this.#draining) this.#drain().catch(() => {});
    this.#schedulePull();
  }

  /** Whether something waits to be handed out. */
  #hasWork(): boolean {
    return this.#arrivals.length > 0 || this.#ready.length > 0;
  }

  #schedulePull(): void {
    if (this.#flushing) return;
    this.#flushing = true;
    queueMicrotask(() => {
      this.#flushing = false;
      if (this.#closed) return;
      if (
        this.#hold && Date.now() < this.#holdPullsFrom &&
        this.#arrivals.some((msg) => ackInfo(msg.reply!).deliveries === 1)
      ) return;
      const batch = this.#credit + this.#prefetch + this.#holdExtra - this.#outstanding -
        this.#arrivedMessages - this.#ready.length;
      if (batch <= 0) return;
      // A small batch waits for more while messages are still coming, or while what arrived
      // covers the credit (a full lookahead freeing one place at a time asked for one message
      // per pull); never when hand-outs would run dry.
      const least = this.#prefetch > 0 ? PULL_MIN_BATCH : PULL_MIN_BATCH_GROUP;
      if (batch < least && (this.#outstanding > 0 || this.#arrivedMessages > this.#credit)) return;
      this.#outstanding += batch;
      this.#heardAt = Date.now();
      const store = this.#store;
      // On the connection of the inbox's subscription: the server drops a pull whose reply
      // subject has no interest yet.
      store.shared.nc.publish(
        `$JS.API.CONSUMER.MSG.NEXT.${store.stream}.${this.#qid}`,
        encoder.encode(JSON.stringify({
          batch,
          expires: nanos(PULL_EXPIRES_MS),
          idle_heartbeat: nanos(PULL_HEARTBEAT_MS),
        })),
        { reply: this.#inbox },
      );
    });
  }

  /** A message (or a status) on this handle's inbox. */
  #arrived(msg: Msg): void {
    this.#heardAt = Date.now();
    const status = msg.headers?.code ?? 0;
    if (!msg.reply && status !== 0) {
      // 408 (the pull expired) or 409 (e.g. consumer deleted): what it did not fill is asked
      // again while the handle is open and the consumer exists. 100 is a heartbeat.
      const pending = msg.headers?.get("Nats-Pending-Messages");
      const unfilled = Number(pending || "0");
      this.#outstanding = Math.max(0, this.#outstanding - unfilled);
      const deleted = /deleted/i.test(msg.headers?.description ?? "");
      if (!this.#closed && unfilled > 0 && (status === 408 || status === 409)) {
        if (!deleted) this.#schedulePull();
      } else if (status === 503 || (status === 409 && !pending && !deleted)) {
        // No consumer leader took the pull (503), or the leader holding it stepped down (409
        // without counts): it is gone, and how much it asked for is not said.
        this.#retryPull();
      } else this.#retryMs = PULL_RETRY_MS; // A leader answered.
      return;
    }
    if (!msg.reply) return;
    this.#retryMs = PULL_RETRY_MS;
    this.#outstanding = Math.max(0, this.#outstanding - 1);
    if (this.#closed) {
      this.#giveBack([msg]);
      return;
    }
    this.#arrivals.push(msg);
    this.#arrivedMessages += envelopeCount(msg.data);
    if (this.#credit > 0 && !this.#draining) this.#drain().catch(() => {});
    else if (this.#outstanding === 0) this.#schedulePull();
  }

  async #drain(): Promise<void> {
    this.#draining = true;
    try {
      while (this.#hasWork() && this.#credit > 0 && !this.#closed) {
        if (this.#listing !== undefined) {
          await this.#listing;
          continue;
        }
        const batch: QueuedDelivery[] = [];
        let waiting = false;
        while (this.#credit > 0 && !this.#closed) {
          if (this.#ready.length > 0) {
            batch.push(this.#ready.shift()!);
            this.#credit--;
            continue;
          }
          if (this.#arrivals.length === 0) break;
          const msg = this.#nextArrival();
          if (msg === undefined) {
            waiting = true; // New deliveries wait for the earlier reader's (see #hold).
            break;
          }
          const prepared = this.#prepare(msg);
          if (prepared === undefined) continue;
          if (prepared.lookup) {
            this.#credit--;
            if (batch.length > 0) this.#hand(batch.splice(0));
            const delivery = prepared.deliveries[0];
            const seq = streamSeq(delivery.seq);
            const state = await this.#store.deliveryState(this.#qid, seq).catch(() => undefined);
            const held = this.#held.get(seq);
            if (state?.done) {
              // Completed before (its acknowledgement did not survive a nats-server restart).
              this.#held.delete(seq);
              this.#credit++;
              if (held) {
                this.#store.shared.pub.publish(held.reply, ACK);
                this.#store.acknowledged(this.#qid, 1, held.size, false);
              }
              continue;
            }
            if (state && held) {
              held.packetId = state.packetId;
              held.released = state.released;
              held.stateRecorded = true;
            }
            this.#hand([{
              ...delivery,
              // Sent before when it has an id: a resend, with DUP.
              redelivered: delivery.redelivered || state !== undefined,
              packetId: state?.packetId ?? delivery.packetId,
              released: state?.released ?? delivery.released,
            }]);
            continue;
          }
          // A run's deliveries beyond the credit wait in #ready, first in line.
          for (const delivery of prepared.deliveries) this.#ready.push(delivery);
        }
        if (batch.length > 0) this.#hand(batch);
        if (waiting) break;
      }
    } finally {
      this.#draining = false;
    }
    if (this.#closed) {
      this.#ready = [];
      this.#giveBack(this.#takeArrivals());
    } else this.#schedulePull();
  }

  /** Deliveries not handed out because the handle closed: back to the server with the rest. */
  #giveBack(messages: Msg[]): void {
    if (!this.#handedBack) this.#returned.push(...messages);
    else for (const msg of messages) msg.respond(NAK);
  }

  #hand(batch: QueuedDelivery[]): void {
    try {
      this.#consumer(batch);
    } catch {
      // The engine's consumer does not throw; a failure here must not stop the handle.
    }
  }

  /**
   * Turns a stream message into its deliveries (one, or a run's); undefined when it is dropped
   * unread.
   */
  #prepare(msg: Msg): { deliveries: QueuedDelivery[]; lookup: boolean } | undefined {
    const { deliveries, seq } = ackInfo(msg.reply!);
    const handedOut = this.#held.get(seq);
    if (handedOut !== undefined) {
      // Delivered again while the engine has it (a restarted nats-server lost its record of the
      // delivery): not handed out twice; this delivery's reply is the one to acknowledge.
      handedOut.reply = msg.reply!;
      this.#schedulePull();
      return undefined;
    }
    const h = msg.headers;
    const skip = h?.get(SKIP_HEADER);
    let envelopes: Envelope[] | undefined;
    if (!(skip && skip.split(" ").includes(this.#qid))) {
      try {
        envelopes = decodeEnvelopes(msg.data);
      } catch {
        envelopes = undefined;
      }
    } else this.#store.skippedRead(this.#qid);
    const moved = h?.get(MOVED_HEADER) === "1";
    // A run's messages share one topic.
    if (
      envelopes !== undefined &&
      (envelopes.length === 0 || envelopes.length > RUN_MAX_MESSAGES ||
        (!this.#store.isExact(this.#qid) && !moved &&
          !this.#store.captures(this.#qid, envelopes[0].message.topic)))
    ) envelopes = undefined;
    if (envelopes === undefined) {
      // Not for this queue: acknowledged unread, and the credit it used is given back.
      this.#store.shared.pub.publish(msg.reply!, ACK);
      this.#schedulePull();
      return undefined;
    }
    const packetId = moved ? Number(h!.get(PACKET_ID_HEADER)) : 0;
    const released = moved && h!.get(RELEASED_HEADER) === "1";
    const redelivered = deliveries > 1 || moved;
    let size = 0;
    const run: QueuedDelivery[] = envelopes.map(({ message }, index) => {
      size += message.payload.length;
      return { seq: deliveryId(seq, index), message, redelivered, released, packetId };
    });
    this.#held.set(seq, {
      reply: msg.reply!,
      data: msg.data,
      size,
      count: run.length,
      unacked: run.length,
      acked: run.length > 1 ? new Uint8Array(run.length) : undefined,
      run: run.length > 1 ? run : undefined,
      packetId,
      released,
      stateRecorded: false,
    });
    return {
      deliveries: run,
      // A run is QoS 1 only: no QoS 2 state to look up.
      lookup: run.length === 1 && (deliveries > 1 || this.#stated.delete(seq)),
    };
  }

  /** Pulls again shortly (an election may still be under way). */
  #retryPull(): void {
    if (this.#closed || this.#retry !== undefined) return;
    this.#retry = setTimeout(() => {
      this.#retry = undefined;
      this.pullAgain();
    }, this.#retryMs);
    this.#retryMs = Math.min(2 * this.#retryMs, PULL_RETRY_MAX_MS);
  }

  /**
   * Counts every pull still waiting as lost and asks for that credit again (after a reconnection,
   * or when the server stayed silent past a pull's expiry). Were a pull not lost after all, its
   * messages would only come beyond the credit; a 408 answering it lowers nothing below zero.
   */
  pullAgain(): void {
    if (this.#closed || this.#outstanding === 0) return;
    this.#outstanding = 0; // What the next pull asks for is computed from the credit again.
    this.#schedulePull();
  }

  /**
   * Keeps unacknowledged deliveries from being redelivered while this handle holds them, and
   * pulls again when the server has not answered a pull by its expiry.
   */
  #progress(): void {
    if (this.#closed) return;
    const now = Date.now();
    if (this.#outstanding > 0 && now - this.#heardAt > PULL_SILENCE_MS) this.pullAgain();
    if (now - this.#keptAliveAt < this.#store.ackWaitMs / 3 - 50) return;
    this.#keptAliveAt = now;
    for (const held of this.#held.values()) {
      this.#store.shared.nc.publish(held.reply, WPI);
    }
    for (const msg of this.#arrivals) {
      this.#store.shared.nc.publish(msg.reply!, WPI);
    }
  }

  ack(id: number): Promise<void> {
    const seq = streamSeq(id);
    const held = this.#held.get(seq);
    if (!held) return DONE;
    if (held.acked !== undefined) {
      const index = id - seq * RUN_MAX_MESSAGES;
      if (held.acked[index] === 1) return DONE;
      held.acked[index] = 1;
    }
    if (--held.unacked !== 0) return DONE; // The rest of its run is still out.
    this.#held.delete(seq);
    if (held.stateRecorded) {
      return guarded("queues.ack", async () => {
        // Confirmed before its QoS 2 state goes: were the ack lost, a redelivery without that
        // state would be sent to the client as a new message.
        await this.#store.shared.nc.request(held.reply, ACK, {
          timeout: this.#store.shared.timeoutMs,
        });
        await this.#store.forgetState(this.#qid, seq);
        this.#store.acknowledged(this.#qid, held.count, held.size, true);
      });
    }
    // Without state a lost ack (the connection to NATS broke) costs a redelivery with DUP after
    // the ack wait, which QoS 1 allows; confirming each would cost a round trip.
    try {
      this.#store.shared.pub.publish(held.reply, ACK);
    } catch (error) {
      return Promise.reject(asBackboneError("queues.ack", error));
    }
    this.#store.acknowledged(this.#qid, held.count, held.size, false);
    return DONE;
  }

  recordPacketId(id: number, packetId: number): Promise<void> {
    const seq = streamSeq(id);
    const held = this.#held.get(seq);
    if (!held || held.run !== undefined) return DONE; // A run is QoS 1 only.
    held.packetId = packetId;
    held.stateRecorded = true;
    return guarded(
      "queues.recordPacketId",
      () => this.#store.recordState(this.#qid, seq, packetId, held.released),
    );
  }

  release(id: number): Promise<void> {
    const seq = streamSeq(id);
    const held = this.#held.get(seq);
    if (!held || held.run !== undefined) return DONE;
    held.released = true;
    held.stateRecorded = true;
    return guarded(
      "queues.release",
      () => this.#store.recordState(this.#qid, seq, held.packetId, true),
    );
  }

  async nak(id: number): Promise<void> {
    const seq = streamSeq(id);
    const held = this.#held.get(seq);
    if (!held) return;
    if (held.run !== undefined) {
      // Given back while the rest of its run is out: handed out again from here, in order (the
      // server would deliver the whole run again).
      const index = id - seq * RUN_MAX_MESSAGES;
      if (held.acked![index] === 1 || this.#ready.some((d) => d.seq === id)) return;
      let at = this.#ready.length;
      while (at > 0 && this.#ready[at - 1].seq > id) at--;
      this.#ready.splice(at, 0, held.run[index]);
      if (this.#credit > 0 && !this.#draining) this.#drain().catch(() => {});
      return;
    }
    this.#held.delete(seq);
    await guarded("queues.nak", () => this.#nakReply(held.reply));
  }

  async #nakReply(reply: string): Promise<void> {
    await this.#store.shared.nc.request(reply, NAK, {
      timeout: this.#store.shared.timeoutMs,
    });
  }

  close(pin?: { clientId: string; seqs: number[] }): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#closed = true;
    clearInterval(this.#keepAlive);
    clearTimeout(this.#retry);
    return guarded("queues.close", async () => {
      for (const id of pin?.seqs ?? []) {
        const seq = streamSeq(id);
        const held = this.#held.get(seq);
        if (!held || held.run !== undefined) continue; // A run is QoS 1 only.
        this.#held.delete(seq);
        await this.#store.moveToSession(pin!.clientId, held.data, held.packetId, held.released);
        await this.#store.shared.nc.request(held.reply, ACK, {
          timeout: this.#store.shared.timeoutMs,
        });
        this.#store.acknowledged(this.#qid, 1, held.size, true);
        if (held.stateRecorded) await this.#store.forgetState(this.#qid, seq);
      }
      // First the inbox: a pull request still waiting on the server is dropped once its inbox
      // has no interest, so what is handed back below goes to the next reader, not back here
      // (where it would bounce until the request's batch ran out and then wait for the ack wait).
      // What the server sent before that arrives while draining, closed, and joins the rest.
      await this.#subscription.drain();
      this.stop();
      this.#ready = [];
      this.#returned.push(...this.#takeArrivals());
      // Then everything back, in stream order: the server redelivers in the order of the NAKs,
      // and a resumed session must get its messages again in their first order [MQTT-4.6.0-1].
      const returned = [
        ...[...this.#held].map(([seq, held]) => ({ seq, reply: held.reply })),
        ...this.#returned.splice(0).map((msg) => ({
          seq: ackInfo(msg.reply!).seq,
          reply: msg.reply!,
        })),
      ].sort((a, b) => a.seq - b.seq);
      this.#held.clear();
      this.#handedBack = true;
      for (const { reply } of returned) await this.#nakReply(reply);
    });
  }

  /** Forgets the handle (it closed, or the backbone closes). */
  stop(): void {
    this.#closed = true;
    clearInterval(this.#keepAlive);
    clearTimeout(this.#retry);
    if (!this.#subscription.isClosed()) this.#subscription.unsubscribe();
    this.#store.forgetHandle(this, this.#qid);
  }
}
