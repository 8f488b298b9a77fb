/**
 * The parts of the NATS backbone other than the queues: sessions, retained messages, live
 * routing, nodes, events and cluster-wide config. Each part's doc says how it maps onto NATS.
 *
 * @module
 */

import type { Msg, NatsConnection, Subscription } from "@nats-io/nats-core";
import type { JetStreamClient } from "@nats-io/jetstream";
import type { KvEntry } from "@nats-io/kv";
import {
  BackboneError,
  type BrokerEvent,
  type Clock,
  type ConfigEntry,
  type ConfigStore,
  type EventStream,
  isExpired,
  type LiveListener,
  type Lock,
  type Message,
  type NodeInfo,
  type NodeRegistry,
  type NodeStatus,
  type RequestHandler,
  RetainedIndex,
  type RetainedStore,
  type SessionClaim,
  type SessionRecord,
  type SessionStore,
  type StoredSession,
} from "../src/mod.ts";
import { type Bucket, BucketMirror } from "./bucket.ts";
import type { JsPublisher } from "./js_publisher.ts";
import {
  decodeEnvelope,
  decodeEnvelopes,
  encodeBatch,
  encodeEnvelope,
  type Sender,
} from "./envelope.ts";
import { guarded, keyToken, shortHash } from "./names.ts";
import type { SubjectMapping } from "./subject.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** What every part shares: the connections, the clock and the names. */
export interface NatsShared {
  /** The main connection: KV, JetStream API, requests, events, share-group interest. */
  nc: NatsConnection;
  /**
   * The publishing connection, with echo off: live messages and QoS 1/2 publishes go out on it,
   * and this node's non-shared interest is subscribed on it, so a node never receives what it
   * published itself (the engine routed that locally already).
   */
  pub: NatsConnection;
  js: JetStreamClient;
  /** JetStream publishes on the publishing connection, many in flight. */
  pubJs: JsPublisher;
  prefix: string;
  clock: Clock;
  timeoutMs: number;
  /** Topic subjects of live QoS 0 messages (`{prefix}.msg.l.…`). */
  live: SubjectMapping;
  /** Topic subjects of QoS 1/2 messages, captured by the messages stream (`{prefix}.msg.q.…`). */
  stored: SubjectMapping;
  /** This backbone instance: its id and the sequence of what it sent. */
  sender: Sender;
  /** Messages that could not be sent (QoS 0 forwards, events). */
  dropped: { forward: number; events: number };
  /** QoS 0 forwards of this turn, sent as one NATS message per run (see {@linkcode LiveRun}). */
  liveRun: LiveRun;
}

/** Most envelopes in one run. */
const RUN_MAX_MESSAGES = 256;
/** Most bytes of envelopes in one run (well below NATS's smallest usual max_payload). */
const RUN_MAX_BYTES = 64 * 1024;
/** An envelope at least this large is sent on its own. */
const RUN_ALONE_BYTES = 16 * 1024;

/**
 * QoS 0 forwards to one subject made one after the other in one turn of the event loop (a
 * publisher's messages read from one socket chunk), sent at the end of the turn as one NATS
 * message, a batch of envelopes: one at a time, each crossed NATS as a message of its own, to be
 * parsed, dispatched and decoded alone by every node receiving it.
 *
 * Only consecutive forwards to the same subject join a run, and every other message that carries
 * a sender stamp sends the run first ({@linkcode LiveRun.flush}): a receiver then still sees this
 * node's stamps in increasing order, which its duplicate check relies on (see
 * {@linkcode NatsLiveRouting}). Order among messages of one topic is kept.
 */
export class LiveRun {
  readonly #pub: NatsConnection;
  readonly #dropped: { forward: number };
  #subject = "";
  #envelopes: Uint8Array[] = [];
  #bytes = 0;
  #scheduled = false;
  readonly #atTurnEnd = () => {
    this.#scheduled = false;
    this.flush();
  };

  constructor(pub: NatsConnection, dropped: { forward: number }) {
    this.#pub = pub;
    this.#dropped = dropped;
  }

  /**
   * Sends what must reach other nodes before a forward stamped now: QoS 1 messages of this turn
   * waiting to be stored as one stream message, which take their stamps when sent.
   */
  sendEarlier: () => void = () => {};

  /**
   * Adds a forward to the run (sent at the end of this turn), or sends it now when large; its
   * envelope is stamped after {@linkcode LiveRun.sendEarlier}.
   */
  add(subject: string, envelope: Uint8Array): void {
    const run = this.#envelopes.length;
    if (
      run > 0 &&
      (subject !== this.#subject || run >= RUN_MAX_MESSAGES ||
        this.#bytes + envelope.length > RUN_MAX_BYTES)
    ) this.flush(); // A new run (and a new list) begins.
    if (envelope.length >= RUN_ALONE_BYTES) {
      this.#send(subject, envelope, 1);
      return;
    }
    this.#subject = subject;
    this.#envelopes.push(envelope);
    this.#bytes += envelope.length;
    if (!this.#scheduled) {
      this.#scheduled = true;
      queueMicrotask(this.#atTurnEnd);
    }
  }

  /** Sends the run now (before any other message with a sender stamp). */
  flush(): void {
    const envelopes = this.#envelopes;
    if (envelopes.length === 0) return;
    const bytes = envelopes.length === 1 ? envelopes[0] : encodeBatch(envelopes, this.#bytes);
    this.#send(this.#subject, bytes, envelopes.length);
    this.#envelopes = [];
    this.#bytes = 0;
  }

  #send(subject: string, bytes: Uint8Array, count: number): void {
    if (this.#pub.isClosed()) {
      this.#dropped.forward += count;
      return;
    }
    try {
      this.#pub.publish(subject, bytes);
    } catch {
      this.#dropped.forward += count; // Larger than the server's max_payload, or closing.
    }
  }
}

/** The next sender stamp of this instance. */
export function nextSender(shared: NatsShared): Sender {
  return { id: shared.sender.id, seq: ++shared.sender.seq };
}

// ---- sessions ----------------------------------------------------------------------------------

interface StoredWill {
  message: string;
  delayInterval: number;
  messageExpiryInterval: number;
}

function encodeRecord(record: SessionRecord): Uint8Array {
  const will: StoredWill | undefined = record.will && {
    message: encodeEnvelope(record.will.message, { id: "", seq: 0 }).toBase64(),
    delayInterval: record.will.delayInterval,
    messageExpiryInterval: record.will.messageExpiryInterval,
  };
  return encoder.encode(JSON.stringify({ ...record, will }));
}

function decodeRecord(bytes: Uint8Array): SessionRecord {
  const raw = JSON.parse(decoder.decode(bytes)) as Omit<SessionRecord, "will"> & {
    will?: StoredWill;
  };
  return {
    ...raw,
    owner: raw.owner ?? undefined,
    disconnectedAt: raw.disconnectedAt ?? undefined,
    will: raw.will && {
      message: decodeEnvelope(Uint8Array.fromBase64(raw.will.message)).message,
      delayInterval: raw.will.delayInterval,
      messageExpiryInterval: raw.will.messageExpiryInterval,
    },
  };
}

/**
 * Sessions in the KV bucket `{prefix}-sessions`, one key per client id, the KV revision as the
 * record's revision: `put` is a write expecting that revision (0: absent), `claim` a read and a
 * compare-and-set retried while another claimer wins the race, `delete` a marker expecting the
 * revision.
 */
export class NatsSessionStore implements SessionStore {
  readonly #bucket: Bucket;

  constructor(bucket: Bucket) {
    this.#bucket = bucket;
  }

  get(clientId: string): Promise<StoredSession | undefined> {
    return guarded("sessions.get", async () => {
      const entry = await this.#bucket.get(keyToken(clientId));
      return entry && { record: decodeRecord(entry.value), revision: entry.revision };
    });
  }

  list(): Promise<StoredSession[]> {
    return guarded("sessions.list", async () => {
      const entries = await this.#bucket.snapshot();
      return entries
        .map((entry) => ({ record: decodeRecord(entry.value), revision: entry.revision }))
        .sort((a, b) =>
          a.record.clientId < b.record.clientId ? -1 : a.record.clientId > b.record.clientId ? 1 : 0
        );
    });
  }

  count(): Promise<number> {
    return guarded("sessions.count", async () => (await this.#bucket.snapshot()).length);
  }

  put(record: SessionRecord, expectedRevision: number): Promise<number | undefined> {
    return guarded("sessions.put", () => this.#put(record, expectedRevision));
  }

  #put(record: SessionRecord, expectedRevision: number): Promise<number | undefined> {
    const key = keyToken(record.clientId);
    const value = encodeRecord(record);
    return expectedRevision === 0
      ? this.#bucket.create(key, value)
      : this.#bucket.write(key, value, { expected: expectedRevision });
  }

  claim(
    clientId: string,
    owner: string,
    build: (previous: StoredSession | undefined) => SessionRecord,
    options: { force?: boolean } = {},
  ): Promise<SessionClaim> {
    return guarded("sessions.claim", async () => {
      for (;;) {
        const stored = await this.get(clientId);
        const holder = stored?.record.owner;
        if (stored && holder !== undefined && holder !== owner && !options.force) {
          return { status: "held", owner: holder, revision: stored.revision };
        }
        const record = { ...build(stored), clientId, owner };
        const revision = await this.#put(record, stored?.revision ?? 0);
        if (revision !== undefined) return { status: "claimed", revision, previous: stored };
      }
    });
  }

  delete(clientId: string, expectedRevision?: number): Promise<boolean> {
    return guarded("sessions.delete", async () => {
      const stored = await this.#bucket.get(keyToken(clientId));
      if (!stored) return false;
      if (expectedRevision !== undefined && stored.revision !== expectedRevision) return false;
      return (await this.#bucket.delete(keyToken(clientId), stored.revision)) !== undefined;
    });
  }
}

// ---- retained ----------------------------------------------------------------------------------

interface RetainedEntry {
  message: Message;
}

/**
 * Retained messages in the KV bucket `{prefix}-retained`, one key per topic, a Message Expiry as
 * the entry's TTL. Every node mirrors the bucket into a topic tree through a watch, so `match`
 * and `get` read memory and never scan the store; a write resolves once this node's mirror shows
 * it. The bounds are checked against the mirror.
 */
export class NatsRetainedStore implements RetainedStore {
  readonly #bucket: Bucket;
  readonly #clock: Clock;
  readonly #limits: { maxMessages: number; maxBytes: number };
  readonly #index = new RetainedIndex<RetainedEntry>();
  readonly #keys = new Map<string, string>();
  readonly mirror: BucketMirror;
  #bytes = 0;

  constructor(
    bucket: Bucket,
    clock: Clock,
    limits: { maxMessages: number; maxBytes: number },
    timeoutMs: number,
  ) {
    this.#bucket = bucket;
    this.#clock = clock;
    this.#limits = limits;
    this.mirror = new BucketMirror(bucket, (entry) => this.#apply(entry), timeoutMs);
  }

  #apply(entry: KvEntry): void {
    if (entry.operation === "PUT") {
      let message: Message;
      try {
        message = decodeEnvelope(entry.value).message;
      } catch {
        return; // Not ours: ignored.
      }
      this.#remove(message.topic);
      this.#index.set(message.topic, { message });
      this.#keys.set(entry.key, message.topic);
      this.#bytes += message.payload.length;
      return;
    }
    const topic = this.#keys.get(entry.key);
    if (topic !== undefined) {
      this.#keys.delete(entry.key);
      this.#remove(topic);
    }
  }

  #remove(topic: string): boolean {
    const previous = this.#index.get(topic);
    if (!previous) return false;
    this.#index.delete(topic);
    this.#bytes -= previous.message.payload.length;
    return true;
  }

  set(message: Message): Promise<void> {
    const previous = this.#index.get(message.topic)?.message;
    const bytes = this.#bytes - (previous ? previous.payload.length : 0) + message.payload.length;
    const count = this.#index.size + (previous ? 0 : 1);
    if (count > this.#limits.maxMessages || bytes > this.#limits.maxBytes) {
      return Promise.reject(
        new BackboneError(
          "full",
          `Cannot retain message on "${message.topic}": retained store is full`,
        ),
      );
    }
    return guarded("retained.set", async () => {
      const ttlMs = message.expiresAt === 0 ? undefined : message.expiresAt - this.#clock.now();
      if (ttlMs !== undefined && ttlMs <= 0) {
        await this.#delete(message.topic);
        return;
      }
      const revision = await this.#bucket.write(
        keyToken(message.topic),
        encodeEnvelope(message, { id: "", seq: 0 }),
        { ttlMs },
      );
      await this.mirror.reached(revision!);
    });
  }

  delete(topic: string): Promise<boolean> {
    return guarded("retained.delete", () => this.#delete(topic));
  }

  async #delete(topic: string): Promise<boolean> {
    if (!this.#index.get(topic)) return false;
    const revision = await this.#bucket.delete(keyToken(topic));
    await this.mirror.reached(revision!);
    return true;
  }

  get(topic: string): Promise<Message | undefined> {
    const message = this.#index.get(topic)?.message;
    if (message && isExpired(message, this.#clock.now())) return Promise.resolve(undefined);
    return Promise.resolve(message);
  }

  match(filter: string): Promise<Message[]> {
    const found: RetainedEntry[] = [];
    this.#index.matchFilter(filter, found);
    const now = this.#clock.now();
    return Promise.resolve(
      found.map((entry) => entry.message).filter((message) => !isExpired(message, now)),
    );
  }

  count(): Promise<number> {
    return Promise.resolve(this.#index.size);
  }
}

// ---- live routing ------------------------------------------------------------------------------

/** Senders whose last sequence is remembered for de-duplication. */
const MAX_SENDERS = 1024;

/** One subject subscription and how many local subscriptions need it. */
interface Interest {
  subscriptions: Subscription[];
  count: number;
}

/**
 * A node's non-shared interest in a filter: its QoS 0 root subscriptions while any local
 * subscription needs it, its QoS 1/2 roots' while one granted QoS 0 does.
 */
interface PlainInterest extends Interest {
  stored: Subscription[];
  storedCount: number;
}

/**
 * Live routing over core NATS. QoS 0 messages go to `{prefix}.msg.l.{topic}`, QoS 1/2 to
 * `{prefix}.msg.q.{topic}` (the messages stream captures only the latter), and QoS 1/2 messages no
 * queue took (all full) to `{prefix}.msg.u.{topic}`; a node's non-shared interest in a filter is a
 * subscription on `{prefix}.msg.l.{filter}`, and while a local subscription granted QoS 0 has the
 * filter, also on the `q` and `u` roots, so it sees QoS 1/2 publishes live too (a subscription
 * granted QoS 1/2 gets those from its queue: receiving them live too would only cost). Interest is reference counted per filter (per filter and group for
 * share groups, which subscribe to the QoS 0 root in a NATS queue group named after the group,
 * so exactly one node takes each message).
 *
 * Two overlapping filters of one node (`a/+` and `a/#`) are two subscriptions that both receive
 * a matching message. Messages of one sender reach a connection in the order it sent them, and
 * the client calls the callbacks in arrival order, so each sender's sequence numbers arrive
 * non-decreasing: a message whose sequence is not above the last one seen from its sender is the
 * second copy, and is dropped. The window is one number per sender (bounded).
 */
export class NatsLiveRouting {
  readonly #shared: NatsShared;
  #listener: LiveListener = () => {};
  readonly #plain = new Map<string, PlainInterest>();
  readonly #groups = new Map<string, Interest & { group: string; filter: string }>();
  readonly #lastSeq = new Map<string, number>();
  /** Whether other nodes are known (see {@linkcode NatsNodeRegistry.hasPeers}). */
  #hasPeers: () => boolean = () => true;

  constructor(shared: NatsShared) {
    this.#shared = shared;
  }

  /** Tells live routing how to know whether other nodes exist (set once at start). */
  set hasPeers(hasPeers: () => boolean) {
    this.#hasPeers = hasPeers;
  }

  listen(listener: LiveListener): void {
    this.#listener = listener;
  }

  addInterest(filter: string, group?: string, stored = true): Promise<void> {
    return guarded("messages.addInterest", async () => {
      const shared = this.#shared;
      if (group === undefined) {
        let interest = this.#plain.get(filter);
        let subscribed = false;
        if (!interest) {
          interest = {
            count: 0,
            subscriptions: this.#subscribePlain(filter, ["l"]),
            stored: [],
            storedCount: 0,
          };
          this.#plain.set(filter, interest);
          subscribed = true;
        }
        interest.count++;
        if (stored && interest.storedCount++ === 0) {
          interest.stored = this.#subscribePlain(filter, ["q", "u"]);
          subscribed = true;
        }
        if (subscribed) await shared.pub.flush();
        return;
      }
      const id = `${group}\n${filter}`;
      const known = this.#groups.get(id);
      if (known) {
        known.count++;
        return;
      }
      const queue = `g${shortHash(id)}`;
      const interest = {
        group,
        filter,
        count: 1,
        subscriptions: shared.live.filterToSubjects(filter).map((subject) =>
          shared.nc.subscribe(subject, {
            queue,
            callback: (_e, msg) => this.#grouped(msg, group, filter),
          })
        ),
      };
      this.#groups.set(id, interest);
      await shared.nc.flush();
    });
  }

  removeInterest(filter: string, group?: string, stored = true): Promise<void> {
    if (group === undefined) {
      const interest = this.#plain.get(filter);
      if (!interest) return Promise.resolve();
      if (stored && interest.storedCount > 0 && --interest.storedCount === 0) {
        for (const subscription of interest.stored) subscription.unsubscribe();
        interest.stored = [];
      }
      if (--interest.count === 0) {
        this.#plain.delete(filter);
        for (const subscription of [...interest.subscriptions, ...interest.stored]) {
          subscription.unsubscribe();
        }
      }
      return Promise.resolve();
    }
    const id = `${group}\n${filter}`;
    const interest = this.#groups.get(id);
    if (interest && --interest.count === 0) {
      this.#groups.delete(id);
      for (const subscription of interest.subscriptions) subscription.unsubscribe();
    }
    return Promise.resolve();
  }

  /** Subscribes the publishing connection to a filter's subjects under the given roots. */
  #subscribePlain(filter: string, roots: string[]): Subscription[] {
    const shared = this.#shared;
    const livePrefix = `${shared.prefix}.msg.l.`;
    return shared.live.filterToSubjects(filter).flatMap((subject) =>
      roots.map((root) =>
        shared.pub.subscribe(`${shared.prefix}.msg.${root}.${subject.slice(livePrefix.length)}`, {
          callback: (_e, msg) => this.#plain_(msg),
        })
      )
    );
  }

  /**
   * QoS 0 to other nodes and share groups: one core publish (echo off). Not sent when no other
   * node is known and this node has no share group: nobody could take it.
   */
  forward(message: Message): void {
    const shared = this.#shared;
    if (this.#groups.size === 0 && !this.#hasPeers()) return;
    if (shared.pub.isClosed()) {
      shared.dropped.forward++;
      return;
    }
    let subject: string;
    try {
      subject = shared.live.topicToSubject(message.topic);
    } catch {
      shared.dropped.forward++;
      return;
    }
    shared.liveRun.sendEarlier();
    shared.liveRun.add(subject, encodeEnvelope(message, nextSender(shared)));
    // Share-group members of this node subscribe on the main connection, which sees it.
  }

  #plain_(msg: Msg): void {
    let envelopes;
    try {
      envelopes = decodeEnvelopes(msg.data);
    } catch {
      return;
    }
    for (const { sender, message } of envelopes) {
      const last = this.#lastSeq.get(sender.id);
      if (last !== undefined && sender.seq <= last) continue;
      if (last === undefined && this.#lastSeq.size >= MAX_SENDERS) {
        this.#lastSeq.delete(this.#lastSeq.keys().next().value!);
      }
      this.#lastSeq.set(sender.id, sender.seq);
      this.#listener(message, { group: undefined, filter: undefined });
    }
  }

  #grouped(msg: Msg, group: string, filter: string): void {
    let envelopes;
    try {
      envelopes = decodeEnvelopes(msg.data);
    } catch {
      return;
    }
    for (const { message } of envelopes) this.#listener(message, { group, filter });
  }

  close(): void {
    for (const interest of this.#plain.values()) {
      for (const subscription of [...interest.subscriptions, ...interest.stored]) {
        subscription.unsubscribe();
      }
    }
    for (const interest of this.#groups.values()) {
      for (const subscription of interest.subscriptions) subscription.unsubscribe();
    }
    this.#plain.clear();
    this.#groups.clear();
  }
}

// ---- nodes -------------------------------------------------------------------------------------

interface NodeEntry {
  info: NodeInfo;
  lastSeen: number;
}

interface LockValue {
  holder: string;
  expiresAt: number;
}

/**
 * Nodes heartbeat into the KV bucket `{prefix}-nodes`, whose values expire after the lease: a
 * node whose key expires (or is deleted when it leaves) is lost, which every node sees through
 * its watch. Locks are keys of `{prefix}-locks` created only if absent, with the lock's TTL as
 * the entry's TTL (and the expiry in the value, so a lapsed lock can be taken over at once).
 * Requests are core NATS request/reply on `{prefix}.node.{id}.{method}`.
 */
export class NatsNodeRegistry implements NodeRegistry {
  readonly #shared: NatsShared;
  readonly #nodes: Bucket;
  readonly #locks: Bucket;
  readonly #leaseMs: number;
  readonly #known = new Map<string, NodeEntry>();
  readonly #lostListeners = new Set<(node: NodeInfo) => void>();
  readonly mirror: BucketMirror;
  #self: NodeInfo | undefined;
  /** This node's key in the bucket. */
  #selfKey: string | undefined;
  #heartbeat: ReturnType<typeof setInterval> | undefined;
  /** The connection to NATS is down (between its disconnect and reconnect events). */
  #natsAway = false;
  /** When the connection to NATS last came back (clock ms). */
  #backFromNatsAt = Number.NEGATIVE_INFINITY;
  /** Losses waiting to be confirmed (see {@linkcode #apply}). */
  readonly #pendingLosses = new Set<ReturnType<typeof setTimeout>>();

  constructor(shared: NatsShared, nodes: Bucket, locks: Bucket, leaseMs: number) {
    this.#shared = shared;
    this.#nodes = nodes;
    this.#locks = locks;
    this.#leaseMs = leaseMs;
    this.mirror = new BucketMirror(nodes, (entry) => this.#apply(entry), shared.timeoutMs);
  }

  #apply(entry: KvEntry): void {
    if (entry.operation === "PUT") {
      try {
        const info = JSON.parse(decoder.decode(entry.value)) as NodeInfo;
        this.#known.set(entry.key, { info, lastSeen: entry.created.getTime() });
      } catch {
        // Not ours.
      }
      return;
    }
    const lost = this.#known.get(entry.key);
    this.#known.delete(entry.key);
    if (!lost) return;
    if (lost.info.id === this.#self?.id) {
      // This node's own lease lapsed (NATS was away): say it is alive again at once.
      this.#beat().catch(() => {});
      return;
    }
    const grace = this.#leaseGraceMs();
    if (grace > 0) this.#judgeLater(entry.key, lost.info, grace);
    else this.#confirmLost(entry.key, lost.info);
  }

  /**
   * How long a lapsed lease is not yet judged: leases lapse on the server while NATS is away,
   * though their nodes ran on, so a live node first gets a whole lease from NATS's return to beat
   * again (a whole lease while NATS is still away).
   */
  #leaseGraceMs(): number {
    if (this.#natsAway) return this.#leaseMs;
    return Math.max(0, this.#leaseMs - (this.#shared.clock.now() - this.#backFromNatsAt));
  }

  #judgeLater(key: string, info: NodeInfo, waitMs: number): void {
    const timer = setTimeout(() => {
      this.#pendingLosses.delete(timer);
      this.#confirmLost(key, info);
    }, waitMs);
    this.#pendingLosses.add(timer);
  }

  /** A node whose lease lapsed is lost unless it beat again meanwhile (or NATS is away again). */
  #confirmLost(key: string, info: NodeInfo): void {
    const back = this.#known.get(key);
    if (back && back.info.startedAt === info.startedAt) return;
    if (this.#natsAway) return this.#judgeLater(key, info, this.#leaseMs);
    for (const listener of this.#lostListeners) listener(info);
  }

  /** Follows the connection to NATS, for {@linkcode #apply}'s judgement of lapsed leases. */
  async #watchConnection(): Promise<void> {
    for await (const status of this.#shared.nc.status()) {
      if (status.type === "disconnect") this.#natsAway = true;
      else if (status.type === "reconnect") {
        this.#natsAway = false;
        this.#backFromNatsAt = this.#shared.clock.now();
      }
    }
  }

  /** Joins: the first heartbeat, the watch, and a heartbeat every third of the lease. */
  async join(self: NodeInfo): Promise<void> {
    this.#self = self;
    this.#selfKey = keyToken(self.id);
    this.#watchConnection().catch(() => {});
    await this.#beat();
    await this.mirror.start();
    this.#heartbeat = setInterval(() => {
      this.#beat().catch(() => {}); // The next beat tries again; the lease covers two misses.
    }, Math.max(100, Math.floor(this.#leaseMs / 3)));
  }

  async #beat(): Promise<void> {
    const self = this.#self!;
    // A per-message TTL (over the bucket's, set by whichever node created it): each node's
    // lease is its own configured one.
    await this.#nodes.write(keyToken(self.id), encoder.encode(JSON.stringify(self)), {
      ttlMs: this.#leaseMs,
    });
  }

  /** Stops the heartbeat and deletes this node's key. */
  async leave(): Promise<void> {
    clearInterval(this.#heartbeat);
    for (const timer of this.#pendingLosses) clearTimeout(timer);
    this.#pendingLosses.clear();
    this.mirror.stop();
    if (this.#self) await this.#nodes.delete(keyToken(this.#self.id)).catch(() => {});
  }

  /** Whether this node's mirror knows of another live node (a joining one shows within ms). */
  get hasPeers(): boolean {
    const self = this.#selfKey;
    for (const key of this.#known.keys()) if (key !== self) return true;
    return false;
  }

  list(): Promise<NodeStatus[]> {
    return Promise.resolve(
      [...this.#known.values()]
        .map(({ info, lastSeen }) => ({ ...info, lastSeen, alive: true }))
        .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)),
    );
  }

  isAlive(nodeId: string): Promise<boolean> {
    return guarded("nodes.isAlive", async () => {
      if ((await this.#nodes.get(keyToken(nodeId))) !== undefined) return true;
      // Just back from an outage of NATS, a live node may not have beaten again yet.
      const grace = this.#leaseGraceMs();
      if (grace === 0) return false;
      await new Promise((resolve) => setTimeout(resolve, grace));
      return (await this.#nodes.get(keyToken(nodeId))) !== undefined;
    });
  }

  onNodeLost(listener: (node: NodeInfo) => void): () => void {
    this.#lostListeners.add(listener);
    return () => this.#lostListeners.delete(listener);
  }

  lock(name: string, ttlMs: number): Promise<Lock | undefined> {
    return guarded("nodes.lock", async () => {
      const key = keyToken(name);
      const holder = `${this.#self?.id}/${this.#shared.sender.id}`;
      const value = (): Uint8Array =>
        encoder.encode(JSON.stringify({ holder, expiresAt: this.#shared.clock.now() + ttlMs }));
      let revision = await this.#locks.create(key, value(), ttlMs);
      if (revision === undefined) {
        const entry = await this.#locks.get(key);
        const held = entry && (JSON.parse(decoder.decode(entry.value)) as LockValue);
        if (entry && held && held.expiresAt > this.#shared.clock.now()) return undefined;
        revision = await this.#locks.write(key, value(), {
          expected: entry?.revision ?? 0,
          ttlMs,
        });
        if (revision === undefined) return undefined;
      }
      const taken = revision;
      return {
        release: async () => {
          await this.#locks.delete(key, taken).catch(() => {});
        },
      };
    });
  }

  request(nodeId: string, method: string, body: unknown): Promise<unknown> {
    return guarded(`nodes.request.${method}`, async () => {
      let reply: Msg;
      try {
        reply = await this.#shared.nc.request(
          this.#subject(nodeId, method),
          encoder.encode(JSON.stringify(body ?? null)),
          { timeout: this.#shared.timeoutMs },
        );
      } catch (error) {
        if (
          (error as { name?: string }).name === "NoRespondersError" ||
          /no responders/i.test(String(error))
        ) {
          throw new BackboneError("unavailable", `No node "${nodeId}" serves "${method}"`);
        }
        throw error;
      }
      const answer = JSON.parse(decoder.decode(reply.data)) as { value?: unknown; error?: string };
      if (answer.error !== undefined) throw new BackboneError("unavailable", answer.error);
      return answer.value;
    });
  }

  serve(method: string, handler: RequestHandler): () => void {
    const nodeId = this.#self?.id ?? "";
    const subscription = this.#shared.nc.subscribe(this.#subject(nodeId, method), {
      callback: (_error, msg) => {
        let body: unknown;
        try {
          body = JSON.parse(decoder.decode(msg.data));
        } catch {
          body = undefined;
        }
        handler(body).then(
          (value) => msg.respond(encoder.encode(JSON.stringify({ value: value ?? null }))),
          (error) => msg.respond(encoder.encode(JSON.stringify({ error: String(error) }))),
        );
      },
    });
    return () => subscription.unsubscribe();
  }

  #subject(nodeId: string, method: string): string {
    return `${this.#shared.prefix}.node.${keyToken(nodeId)}.${method}`;
  }
}

// ---- events ------------------------------------------------------------------------------------

/** Events on core NATS subjects `{prefix}.events.{type}`, JSON. */
export class NatsEventStream implements EventStream {
  readonly #shared: NatsShared;

  constructor(shared: NatsShared) {
    this.#shared = shared;
  }

  emit(event: BrokerEvent): void {
    const shared = this.#shared;
    if (shared.nc.isClosed()) {
      shared.dropped.events++;
      return;
    }
    shared.nc.publish(
      `${shared.prefix}.events.${event.type}`,
      encoder.encode(JSON.stringify(event)),
    );
  }

  subscribe(listener: (event: BrokerEvent) => void): () => void {
    const subscription = this.#shared.nc.subscribe(`${this.#shared.prefix}.events.*`, {
      callback: (_error, msg) => {
        try {
          listener(JSON.parse(decoder.decode(msg.data)) as BrokerEvent);
        } catch {
          // Not an event of ours.
        }
      },
    });
    return () => subscription.unsubscribe();
  }
}

// ---- config ------------------------------------------------------------------------------------

/**
 * Configuration documents in the KV bucket `{prefix}-config`, keyed by the document name; every
 * node follows the bucket with a watch, and `get` and `keys` read that mirror, `entry` the bucket.
 * A value is stored with its name in front (a KV key is a token of the name), so that the watch
 * can tell which document changed.
 */
export class NatsConfigStore implements ConfigStore {
  readonly #bucket: Bucket;
  readonly #values = new Map<string, Uint8Array>();
  readonly #names = new Map<string, string>();
  readonly #watchers = new Set<(key: string, value: Uint8Array | undefined) => void>();
  readonly mirror: BucketMirror;
  #loaded = false;

  constructor(bucket: Bucket, timeoutMs: number) {
    this.#bucket = bucket;
    this.mirror = new BucketMirror(bucket, (entry) => this.#apply(entry), timeoutMs);
  }

  async start(): Promise<void> {
    await this.mirror.start();
    this.#loaded = true;
  }

  #apply(entry: KvEntry): void {
    if (entry.operation === "PUT") {
      const { name, value } = unpackConfig(entry.value);
      this.#values.set(name, value);
      this.#names.set(entry.key, name);
      if (this.#loaded) {
        for (const watcher of this.#watchers) watcher(name, new Uint8Array(value));
      }
      return;
    }
    const name = this.#names.get(entry.key);
    if (name === undefined) return;
    this.#names.delete(entry.key);
    this.#values.delete(name);
    if (this.#loaded) { for (const watcher of this.#watchers) watcher(name, undefined); }
  }

  get(key: string): Promise<Uint8Array | undefined> {
    const value = this.#values.get(key);
    return Promise.resolve(value && new Uint8Array(value));
  }

  list(prefix: string): Promise<{ key: string; value: Uint8Array }[]> {
    const found: { key: string; value: Uint8Array }[] = [];
    for (const [key, value] of this.#values) {
      if (key.startsWith(prefix)) found.push({ key, value: new Uint8Array(value) });
    }
    return Promise.resolve(found.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0)));
  }

  entry(key: string): Promise<ConfigEntry | undefined> {
    return guarded("config.entry", async () => {
      const entry = await this.#bucket.get(keyToken(key));
      if (!entry) return undefined;
      const { name, value } = unpackConfig(entry.value);
      return name === key ? { value, revision: entry.revision } : undefined;
    });
  }

  put(key: string, value: Uint8Array): Promise<void> {
    return guarded("config.put", async () => {
      const revision = await this.#bucket.write(keyToken(key), packConfig(key, value));
      await this.mirror.reached(revision!);
    });
  }

  compareAndSet(
    key: string,
    value: Uint8Array,
    expectedRevision: number,
  ): Promise<number | undefined> {
    return guarded("config.compareAndSet", async () => {
      const token = keyToken(key);
      const bytes = packConfig(key, value);
      // Absent may mean a delete marker, which holds the key's last revision: create() knows.
      const revision = expectedRevision === 0
        ? await this.#bucket.create(token, bytes)
        : await this.#bucket.write(token, bytes, { expected: expectedRevision });
      if (revision !== undefined) await this.mirror.reached(revision);
      return revision;
    });
  }

  delete(key: string): Promise<void> {
    return guarded("config.delete", async () => {
      if (!this.#values.has(key)) return;
      const revision = await this.#bucket.delete(keyToken(key));
      await this.mirror.reached(revision!);
    });
  }

  watch(listener: (key: string, value: Uint8Array | undefined) => void): () => void {
    this.#watchers.add(listener);
    return () => this.#watchers.delete(listener);
  }
}

/** A config value as stored: the length of its name (2 bytes), the name, the value. */
function packConfig(name: string, value: Uint8Array): Uint8Array {
  const encoded = encoder.encode(name);
  const bytes = new Uint8Array(2 + encoded.length + value.length);
  new DataView(bytes.buffer).setUint16(0, encoded.length);
  bytes.set(encoded, 2);
  bytes.set(value, 2 + encoded.length);
  return bytes;
}

function unpackConfig(bytes: Uint8Array): { name: string; value: Uint8Array } {
  const nameLength = new DataView(bytes.buffer, bytes.byteOffset).getUint16(0);
  return {
    name: decoder.decode(bytes.subarray(2, 2 + nameLength)),
    value: new Uint8Array(bytes.subarray(2 + nameLength)),
  };
}
