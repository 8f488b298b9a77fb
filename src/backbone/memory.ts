/**
 * The embedded backbone: everything in this process, nothing else to run, state lost on exit.
 * Every operation resolves at once; the engine does not rely on that.
 *
 * Its stores also carry the SQLite backbone (`sqlite.ts`), which keeps the same state in memory
 * and writes every change to a file: each store takes an optional
 * {@linkcode MemoryStateObserver} told of every change, and can be filled back from the file.
 *
 * @module
 */

import {
  isExpired,
  type Message,
  type SessionRecord,
  type SubscriptionRecord,
} from "../domain/types.ts";
import { RetainedIndex } from "../topic/retained_index.ts";
import { SubscriptionTrie } from "../topic/trie.ts";
import { ScratchList } from "../util/scratch_list.ts";
import type { Clock, TimerId } from "../util/clock.ts";
import { Fifo } from "../util/fifo.ts";
import { Pending } from "../util/pending.ts";
import type {
  Backbone,
  BrokerEvent,
  ConfigEntry,
  ConfigStore,
  EventStream,
  InboundKey,
  LiveListener,
  Lock,
  MessageBus,
  NodeInfo,
  NodeRegistry,
  NodeStatus,
  Outbox,
  OutboxAppend,
  OutboxEntry,
  OutboxLimits,
  OutboxStore,
  PublishOutcome,
  QueueConsumer,
  QueuedDelivery,
  QueueHandle,
  QueueKey,
  QueueLimits,
  QueueSize,
  QueueStore,
  RequestHandler,
  RetainedStore,
  SessionClaim,
  SessionStore,
  StoredSession,
} from "./backbone.ts";
import { DONE, PublishWait, roomForWaiting, STUCK_AFTER_MS } from "./backbone.ts";
import { BackboneError } from "./errors.ts";

/**
 * Told of every change to the state of the memory stores, once it is made, so that a durable
 * backbone can write the changed state. Calls are synchronous and must be cheap: they name what
 * changed, and the observer reads the state when it writes (see the stores' `peek` methods).
 */
export interface MemoryStateObserver {
  /** A session record was written or deleted. */
  sessionChanged(clientId: string): void;
  /** A topic's retained message was set, replaced or removed (deleted or expired). */
  retainedChanged(topic: string): void;
  /** A queue was created or deleted, or its filters, limits or members changed. */
  queueChanged(queueId: string): void;
  /** A message was stored in a queue. */
  entryAdded(queueId: string, entry: QueueEntry): void;
  /** A stored message's packet id or release state changed. */
  entryChanged(entry: QueueEntry): void;
  /** A stored message left its queue (acknowledged, moved to another queue, or dropped). */
  entryRemoved(entry: QueueEntry): void;
  /** A publisher's QoS 2 packet id was opened or closed. */
  inboundChanged(clientId: string, packetId: number): void;
  /** Every open QoS 2 packet id of a publisher was dropped with its session. */
  inboundDropped(clientId: string): void;
  /** A configuration document was put or deleted. */
  configChanged(key: string): void;
  /** An entry was appended to an outbox. */
  outboxAppended(name: string, entry: OutboxEntry): void;
  /** An outbox's entries up to and including `lastRemoved` were removed. */
  outboxRemoved(name: string, lastRemoved: number): void;
}

/** Options of the memory backbone. */
export interface MemoryBackboneOptions {
  /** Time source for message expiry and lock TTLs. */
  clock: Clock;
  /**
   * Most payload bytes queued over all sessions and groups: past it a queue refuses as if full
   * unless its subscriber keeps acknowledging (offline sessions and subscribers that acknowledged
   * nothing for a second take nothing more), and publishes report `congested` from 90% of it.
   */
  maxQueuedBytesTotal?: number;
  /** Upper bounds on the retained store; a set beyond them is refused. */
  retainedLimits?: { maxMessages: number; maxBytes: number };
}

// ---- sessions ----------------------------------------------------------------------------------

/** Sessions in a Map; revisions come from one counter, so a re-created key never reuses one. */
export class MemorySessionStore implements SessionStore {
  #records = new Map<string, StoredSession>();
  #revision = 0;
  #observer: MemoryStateObserver | undefined;

  constructor(observer?: MemoryStateObserver) {
    this.#observer = observer;
  }

  /** The last revision given out. */
  get revision(): number {
    return this.#revision;
  }

  /** The stored session itself, not a copy: for an observer writing it out, which must not change it. */
  peek(clientId: string): StoredSession | undefined {
    return this.#records.get(clientId);
  }

  /** Fills an empty store with sessions read back, revisions continuing after `revision`. */
  restore(sessions: Iterable<StoredSession>, revision: number): void {
    for (const stored of sessions) this.#records.set(stored.record.clientId, stored);
    this.#revision = revision;
  }

  get(clientId: string): Promise<StoredSession | undefined> {
    return Promise.resolve(this.#copy(this.#records.get(clientId)));
  }

  list(): Promise<StoredSession[]> {
    const ids = [...this.#records.keys()].sort();
    return Promise.resolve(ids.map((id) => this.#copy(this.#records.get(id))!));
  }

  put(record: SessionRecord, expectedRevision: number): Promise<number | undefined> {
    const current = this.#records.get(record.clientId)?.revision ?? 0;
    if (current !== expectedRevision) return Promise.resolve(undefined);
    return Promise.resolve(this.#write(record));
  }

  claim(
    clientId: string,
    owner: string,
    build: (previous: StoredSession | undefined) => SessionRecord,
    options: { force?: boolean } = {},
  ): Promise<SessionClaim> {
    const stored = this.#records.get(clientId);
    const holder = stored?.record.owner;
    if (stored && holder !== undefined && holder !== owner && !options.force) {
      return Promise.resolve({ status: "held", owner: holder, revision: stored.revision });
    }
    const previous = this.#copy(stored);
    const record = { ...build(this.#copy(stored)), clientId, owner };
    return Promise.resolve({ status: "claimed", revision: this.#write(record), previous });
  }

  delete(clientId: string, expectedRevision?: number): Promise<boolean> {
    const stored = this.#records.get(clientId);
    if (!stored) return Promise.resolve(false);
    if (expectedRevision !== undefined && stored.revision !== expectedRevision) {
      return Promise.resolve(false);
    }
    this.#records.delete(clientId);
    this.#observer?.sessionChanged(clientId);
    return Promise.resolve(true);
  }

  count(): Promise<number> {
    return Promise.resolve(this.#records.size);
  }

  #write(record: SessionRecord): number {
    const revision = ++this.#revision;
    this.#records.set(record.clientId, { record: cloneRecord(record), revision });
    this.#observer?.sessionChanged(record.clientId);
    return revision;
  }

  #copy(stored: StoredSession | undefined): StoredSession | undefined {
    return stored && { record: cloneRecord(stored.record), revision: stored.revision };
  }
}

/**
 * The subscriptions of every record that has none (an idle clean session's): one frozen array
 * instead of one each, so changing it throws rather than changing every record.
 */
const NO_SUBSCRIPTIONS = Object.freeze([]) as unknown as SubscriptionRecord[];

/**
 * Records are copied in and out so callers cannot mutate the stored state by accident. Spread
 * copies keep the record's shape (structuredClone builds objects with out-of-line properties,
 * ~300 bytes more per session); only a will, whose properties may nest, goes through
 * structuredClone.
 */
function cloneRecord(record: SessionRecord): SessionRecord {
  return {
    ...record,
    subscriptions: record.subscriptions.length === 0
      ? NO_SUBSCRIPTIONS
      : record.subscriptions.map((subscription) => ({ ...subscription })),
    will: record.will === undefined ? undefined : structuredClone(record.will),
  };
}

// ---- retained ----------------------------------------------------------------------------------

/** Retained messages in a topic tree, so wildcard lookups walk only matching branches. */
export class MemoryRetainedStore implements RetainedStore {
  #index = new RetainedIndex<Message>();
  #bytes = 0;
  #clock: Clock;
  #limits: { maxMessages: number; maxBytes: number };
  #observer: MemoryStateObserver | undefined;

  constructor(
    clock: Clock,
    limits = { maxMessages: Infinity, maxBytes: Infinity },
    observer?: MemoryStateObserver,
  ) {
    this.#clock = clock;
    this.#limits = limits;
    this.#observer = observer;
  }

  /** A topic's retained message, expired or not: for an observer writing it out. */
  peek(topic: string): Message | undefined {
    return this.#index.get(topic);
  }

  /**
   * Fills an empty store with messages read back. They were within the bounds when they were set,
   * so the bounds are not applied again (a lowered bound refuses new messages until there is room).
   */
  restore(messages: Iterable<Message>): void {
    for (const message of messages) {
      this.#index.set(message.topic, message);
      this.#bytes += message.payload.length;
    }
  }

  set(message: Message): Promise<void> {
    const previous = this.#index.get(message.topic);
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
    this.#index.set(message.topic, message);
    this.#bytes = bytes;
    this.#observer?.retainedChanged(message.topic);
    return Promise.resolve();
  }

  delete(topic: string): Promise<boolean> {
    return Promise.resolve(this.#remove(topic));
  }

  get(topic: string): Promise<Message | undefined> {
    const message = this.#index.get(topic);
    if (message && isExpired(message, this.#clock.now())) {
      this.#remove(topic);
      return Promise.resolve(undefined);
    }
    return Promise.resolve(message);
  }

  match(filter: string): Promise<Message[]> {
    const found: Message[] = [];
    this.#index.matchFilter(filter, found);
    const now = this.#clock.now();
    let live = 0;
    for (const message of found) {
      if (isExpired(message, now)) this.#remove(message.topic);
      else found[live++] = message;
    }
    found.length = live;
    return Promise.resolve(found);
  }

  count(): Promise<number> {
    return Promise.resolve(this.#index.size);
  }

  #remove(topic: string): boolean {
    const previous = this.#index.get(topic);
    if (!previous) return false;
    this.#index.delete(topic);
    this.#bytes -= previous.payload.length;
    this.#observer?.retainedChanged(topic);
    return true;
  }
}

// ---- queues --------------------------------------------------------------------------------------

/**
 * A stored message of one queue. A queue hands the entry itself out (as a `QueuedDelivery`):
 * none of its fields changes while it is out but those the holder asks to change (its packet id,
 * its release); `redelivered` is set when it comes back unacknowledged.
 */
export interface QueueEntry {
  /** Increasing, and unique over every queue of the store (a durable store's key for it). */
  readonly seq: number;
  readonly message: Message;
  /** Handed out before and not acknowledged. */
  redelivered: boolean;
  released: boolean;
  packetId: number;
  /** The queue handle it is handed out to, until acknowledged or handed back. */
  holder: object | undefined;
}

/** What a queue keeps beyond its messages. */
export interface QueueState {
  readonly key: QueueKey;
  /** Filters it captures (a session's QoS 1/2 subscriptions, a group's one filter). */
  readonly filters: readonly string[];
  readonly limits: QueueLimits;
  /** Group members (client ids); empty for a session queue. */
  readonly members: ReadonlySet<string>;
}

/** Bytes queued over every queue of a store, against its global ceiling. */
class QueuedBytes {
  bytes = 0;
  constructor(readonly limit: number, readonly clock: Clock) {}
}

/** What the queues of one store share. */
interface QueueContext {
  readonly total: QueuedBytes;
  /** The next entry's sequence. */
  nextSeq: number;
  readonly observer: MemoryStateObserver | undefined;
}

/**
 * A queue holding messages its subscriber has not acknowledged for this long is not draining:
 * past the global ceiling it takes nothing more.
 */
const DRAINING_MS = 1_000;

/** How often a queue whose publishes wait for room looks whether its subscriber still acknowledges. */
const LOOK_MS = 100;

/**
 * The most silence one look counts. A look that comes later than this means that this process did
 * not run in between (the machine was busy, a long collection or task): the subscriber's
 * acknowledgements may be waiting unread in its socket, so that time is not its silence.
 */
const MAX_LOOK_STEP_MS = 250;

/**
 * A queue that waits holds its publishers back once more than 1/HOLD_AT of its bound waits to be
 * handed out, until 1/RELEASE_AT does (see `MemoryQueue.backpressure`). In the benchmark's QoS 1
 * fan-in (bound 1,000), holding from half the bound to a quarter kept 302 KB alive through each
 * scavenge (267 KB promoted), from an eighth to a sixteenth 102 KB (26 KB promoted), GC pauses
 * halved, at the same rate (one GC trace each, back to back).
 */
const HOLD_AT = 8;
const RELEASE_AT = 16;

/** Most queues named in a publish outcome. */
const FULL_QUEUES_NAMED = 4;

/** One session's or share group's queue. */
class MemoryQueue implements QueueState {
  readonly key: QueueKey;
  readonly id: string;
  readonly #context: QueueContext;
  readonly #total: QueuedBytes;
  limits: QueueLimits;
  filters: string[] = [];
  readonly members = new Set<string>();
  /** Stored and not handed out, oldest first. */
  pending = new Fifo<QueueEntry>();
  /** Handed out and not acknowledged, by sequence. */
  readonly unacked = new Map<number, QueueEntry>();
  readonly handles: MemoryQueueHandle[] = [];
  messages = 0;
  bytes = 0;
  /** Round-robin position among a group's handles. */
  turn = 0;
  /** Epoch ms of the last acknowledgement. */
  lastAck = 0;
  /** Epoch ms of the first hand-out since nothing was outstanding. */
  #waitingSince = 0;
  /**
   * Publishes waited and the subscriber acknowledged nothing for `stuckAfterMs`: none waits again until
   * it does (so a client that reconnects and takes its window again and again holds nobody up).
   */
  #stalled = false;
  /** Publishes waiting for room (`whenFull: "wait"`), in order; each told stored or not. */
  readonly waiting = new Fifo<{ message: Message; capture: CaptureWait }>();
  /**
   * Holding its publishers back (`whenFull: "wait"`, a subscriber that keeps acknowledging):
   * settled once it drained, or its subscriber was taken for stuck or went away (see
   * `backpressure`).
   */
  #backpressure: Pending<void> | undefined = undefined;
  /** Acknowledgements since {@linkcode #backpressure} was set. */
  #ackedSinceHeld = 0;
  #waitTimer: TimerId | undefined = undefined;
  /** Ms the subscriber was seen acknowledging nothing while publishes waited (see `#look`). */
  #silentMs = 0;
  /** Epoch ms of the last look. */
  #lookedAt = 0;
  #lookNow = () => this.#look();

  constructor(key: QueueKey, limits: QueueLimits, context: QueueContext) {
    this.key = key;
    this.id = queueId(key);
    this.limits = limits;
    this.#context = context;
    this.#total = context.total;
  }

  /**
   * Stores a message unless its bound would be exceeded, or the store's global ceiling while this
   * queue is not draining: one whose subscriber keeps acknowledging still takes it, so it is not
   * punished for the ones that do not. A full queue that waits (`whenFull: "wait"`) and drains
   * answers {@linkcode WAIT}: the caller then hands the message to {@linkcode park}.
   */
  offer(message: Message): boolean | typeof WAIT {
    const size = message.payload.length;
    if (this.#total.bytes + size > this.#total.limit && !this.#keepingUp()) return false;
    if (this.waiting.length > 0 || !this.#hasRoom(size)) {
      if (this.limits.whenFull !== "wait" || !this.#mayWait()) return false;
      return WAIT;
    }
    this.#store(message);
    return true;
  }

  /**
   * After a message was stored: whether its publishers should stop sending for a while, as a
   * {@linkcode Pending} settled when they may go on. A queue that waits (`whenFull: "wait"`),
   * whose subscriber keeps acknowledging, holds its publishers back once an eighth of its bound
   * waits to be handed out (beyond the subscriber's window), or half its bytes are queued, until
   * a sixteenth waits (and a quarter of its bytes): otherwise they keep it full, with publishes
   * waiting for room behind it, three to five times as many messages alive as it takes to keep
   * the subscriber busy, and every one of them kept through collections of the young generation.
   */
  backpressure(): Pending<void> | undefined {
    const limits = this.limits;
    if (this.#backpressure !== undefined) return this.#backpressure;
    if (
      limits.whenFull !== "wait" || !this.#mayWait() ||
      (this.pending.length * HOLD_AT < limits.maxMessages && this.bytes * 2 < limits.maxBytes)
    ) return undefined;
    this.#backpressure = new Pending<void>();
    this.#ackedSinceHeld = 0;
    this.#armWaitCheck();
    return this.#backpressure;
  }

  /** Lets the publishers held back by {@linkcode backpressure} go on. */
  #releasePublishers(): void {
    const held = this.#backpressure;
    if (held === undefined) return;
    this.#backpressure = undefined;
    held.settle();
  }
  #hasRoom(size: number): boolean {
    return this.messages < this.limits.maxMessages && this.bytes + size <= this.limits.maxBytes;
  }

  /** Puts a message {@linkcode offer} answered {@linkcode WAIT} for in line for room. */
  park(message: Message, capture: CaptureWait): void {
    capture.remaining++;
    this.waiting.push({ message, capture });
    this.#armWaitCheck();
  }

  /** Starts looking at the subscriber while publishes wait (see `#look`). */
  #armWaitCheck(): void {
    if (this.#waitTimer !== undefined) return;
    const now = this.#total.clock.now();
    // Silence from before the wait counts, but at most one step of it: whether this process was
    // running all that time is not known.
    this.#silentMs = this.unacked.size === 0
      ? 0
      : Math.min(Math.max(0, now - this.#lastProgress()), MAX_LOOK_STEP_MS);
    this.#lookedAt = now;
    this.#waitTimer = this.#total.clock.setTimeout(this.#lookNow, LOOK_MS);
  }

  /**
   * Refuses the waiting publishes once the subscriber has acknowledged nothing for
   * `limits.stuckAfterMs` ({@linkcode STUCK_AFTER_MS}) of looks, or is offline. Silence is counted
   * look by look, each adding at most {@linkcode MAX_LOOK_STEP_MS}, rather than read off the wall
   * clock: when this process itself did not run for a second (a busy machine), the wall clock says
   * the subscriber was silent although its acknowledgements were waiting in its socket, and
   * refusing then would drop messages that 3.1.1 publishers were told were delivered.
   */
  #look(): void {
    this.#waitTimer = undefined;
    if (this.waiting.length === 0 && this.#backpressure === undefined) return;
    const now = this.#total.clock.now();
    if (this.handles.length === 0) {
      this.#stalled = true;
      this.refuseWaiting();
      return;
    }
    if (this.unacked.size === 0) this.#silentMs = 0;
    else {
      const progress = this.#lastProgress();
      if (progress > this.#lookedAt) this.#silentMs = 0;
      this.#silentMs += Math.min(now - Math.max(progress, this.#lookedAt), MAX_LOOK_STEP_MS);
    }
    this.#lookedAt = now;
    if (this.#silentMs >= (this.limits.stuckAfterMs ?? STUCK_AFTER_MS)) {
      this.#stalled = true;
      this.refuseWaiting();
    } else this.#waitTimer = this.#total.clock.setTimeout(this.#lookNow, LOOK_MS);
  }

  /** Stores waiting publishes while there is room, in order. */
  #admitWaiting(): void {
    while (this.waiting.length > 0 && this.#hasRoom(this.waiting.peek()!.message.payload.length)) {
      const { message, capture } = this.waiting.shift()!;
      this.#store(message);
      capture.stored();
    }
  }

  /** Refuses every waiting publish (the subscriber stopped, or the queue goes away). */
  refuseWaiting(): void {
    if (this.#waitTimer !== undefined) this.#total.clock.clearTimeout(this.#waitTimer);
    this.#waitTimer = undefined;
    this.#releasePublishers();
    while (this.waiting.length > 0) this.waiting.shift()!.capture.refused(this);
  }

  #store(message: Message): void {
    this.#keep({
      seq: this.#context.nextSeq++,
      message,
      redelivered: false,
      released: false,
      packetId: 0,
      holder: undefined,
    });
  }

  #keep(entry: QueueEntry): void {
    this.#count(entry);
    this.pending.push(entry);
    this.#context.observer?.entryAdded(this.id, entry);
    this.dispatch();
  }

  #count(entry: QueueEntry): void {
    const size = entry.message.payload.length;
    this.messages++;
    this.bytes += size;
    this.#total.bytes += size;
  }

  /** Stores a delivery handed over from a group, keeping its state (bounds do not apply). */
  adopt(from: QueueEntry): void {
    this.#keep({
      seq: this.#context.nextSeq++,
      message: from.message,
      redelivered: true,
      released: from.released,
      packetId: from.packetId,
      holder: undefined,
    });
  }

  /** Puts back an entry read from a durable store, behind those put back before. */
  reload(entry: QueueEntry): void {
    this.#count(entry);
    this.pending.push(entry);
  }

  /** Hands pending entries to open handles within their credit, round robin. */
  dispatch(): void {
    const handles = this.handles;
    while (this.pending.length > 0) {
      let handle: MemoryQueueHandle | undefined;
      for (let i = 0; i < handles.length; i++) {
        const candidate = handles[(this.turn + i) % handles.length];
        if (candidate.credit > 0 && !candidate.delivering) {
          handle = candidate;
          this.turn = (this.turn + i + 1) % handles.length;
          break;
        }
      }
      if (!handle) return;
      // A group spreads messages over its members one at a time. Made at its size: the first
      // push into an empty array allocates room for 17.
      const count = this.key.kind === "group" ? 1 : Math.min(handle.credit, this.pending.length);
      const batch = new Array<QueuedDelivery>(count);
      for (let i = 0; i < count; i++) {
        const entry = this.pending.shift()!;
        this.unacked.set(entry.seq, entry);
        if (this.unacked.size === 1) this.#waitingSince = this.#total.clock.now();
        entry.holder = handle;
        batch[i] = entry;
      }
      handle.credit -= count;
      handle.hand(batch);
    }
  }

  /**
   * Whether the subscriber keeps up, for the global ceiling: nothing handed out waits for an
   * acknowledgement, or the oldest wait (or the last acknowledgement) is within
   * {@linkcode DRAINING_MS}. Offline (no handle open) does not keep up.
   */
  #keepingUp(): boolean {
    if (this.handles.length === 0) return false;
    if (this.unacked.size === 0) return true;
    return this.#total.clock.now() - this.#lastProgress() < DRAINING_MS;
  }

  /** Epoch ms of the last acknowledgement, or of the hand-out that started the current wait. */
  #lastProgress(): number {
    return Math.max(this.lastAck, this.#waitingSince);
  }

  /**
   * Whether a publish may wait for room: the subscriber is connected and has not been found
   * stalled since its last acknowledgement. Whether it still acknowledges is for `#look` to say,
   * not the wall clock: a publish read right after this process was held up for a second must not
   * be refused before the acknowledgements read in the same turn.
   */
  #mayWait(): boolean {
    return !this.#stalled && this.handles.length > 0;
  }

  /** Taken for stuck (or offline) while publishes waited, and no acknowledgement since. */
  get stalled(): boolean {
    return this.#stalled;
  }

  /** An acknowledgement: progress, and room for what waits once a batch of it is free. */
  acked(): void {
    this.lastAck = this.#total.clock.now();
    this.#stalled = false;
    if (this.waiting.length > 0 && this.#roomForBatch()) this.#admitWaiting();
    // Drained to a sixteenth; or a sixteenth of the bound acknowledged since, so that publishers
    // held back are not held for long by others that are not (whose own deliveries await
    // acknowledgement) and keep the queue fuller.
    const limits = this.limits;
    if (
      this.#backpressure !== undefined && this.waiting.length === 0 &&
      ((this.pending.length * RELEASE_AT <= limits.maxMessages &&
        this.bytes * 4 <= limits.maxBytes) ||
        ++this.#ackedSinceHeld * RELEASE_AT >= limits.maxMessages)
    ) this.#releasePublishers();
  }

  /** Whether a full queue has drained far enough to take in what waits (see `roomForWaiting`). */
  #roomForBatch(): boolean {
    return roomForWaiting(this.limits, this.messages, this.bytes);
  }

  remove(seq: number): QueueEntry | undefined {
    const entry = this.unacked.get(seq);
    if (!entry) return undefined;
    this.unacked.delete(seq);
    this.messages--;
    this.bytes -= entry.message.payload.length;
    this.#total.bytes -= entry.message.payload.length;
    this.#context.observer?.entryRemoved(entry);
    return entry;
  }

  /** A stored entry's packet id or release state changed. */
  changed(entry: QueueEntry): void {
    this.#context.observer?.entryChanged(entry);
  }

  /** Forgets everything it holds (the queue is deleted). */
  clear(): void {
    this.refuseWaiting();
    const observer = this.#context.observer;
    if (observer) { for (const entry of this.entries()) observer.entryRemoved(entry); }
    this.#total.bytes -= this.bytes;
    this.messages = 0;
    this.bytes = 0;
    this.pending.clear();
    this.unacked.clear();
  }

  /** Puts handed-out entries back at the head, in sequence order: handed out again, redelivered. */
  restore(entries: QueueEntry[]): void {
    if (entries.length === 0) return;
    for (const entry of entries) {
      entry.holder = undefined;
      entry.redelivered = true;
    }
    const rest = this.pending;
    this.pending = new Fifo<QueueEntry>();
    for (const entry of entries.sort((a, b) => a.seq - b.seq)) this.pending.push(entry);
    for (const entry of rest) this.pending.push(entry);
  }

  /** Every stored entry, handed out or not. */
  *entries(): IterableIterator<QueueEntry> {
    yield* this.unacked.values();
    yield* this.pending;
  }
}

class MemoryQueueHandle implements QueueHandle {
  credit = 0;
  /** True while the consumer runs (deliveries made from inside it wait for the next dispatch). */
  delivering = false;
  #queue: MemoryQueue;
  #consumer: QueueConsumer;
  #store: MemoryQueueStore;
  #closed = false;

  constructor(queue: MemoryQueue, consumer: QueueConsumer, store: MemoryQueueStore) {
    this.#queue = queue;
    this.#consumer = consumer;
    this.#store = store;
  }

  hand(batch: QueuedDelivery[]): void {
    this.delivering = true;
    try {
      this.#consumer(batch);
    } finally {
      this.delivering = false;
    }
  }

  request(count: number): void {
    if (this.#closed || count <= 0) return;
    this.credit += count;
    if (!this.delivering) this.#queue.dispatch();
  }

  ack(seq: number): Promise<void> {
    if (this.#queue.unacked.get(seq)?.holder === this) {
      this.#queue.remove(seq);
      this.#queue.acked();
    }
    return DONE;
  }

  recordPacketId(seq: number, packetId: number): Promise<void> {
    const entry = this.#queue.unacked.get(seq);
    if (entry?.holder === this) {
      entry.packetId = packetId;
      this.#queue.changed(entry);
    }
    return DONE;
  }

  release(seq: number): Promise<void> {
    const entry = this.#queue.unacked.get(seq);
    if (entry?.holder === this) {
      entry.released = true;
      this.#queue.changed(entry);
    }
    return DONE;
  }

  nak(seq: number): Promise<void> {
    const entry = this.#queue.unacked.get(seq);
    if (entry?.holder === this) {
      this.#queue.unacked.delete(seq);
      this.#queue.restore([entry]);
      this.#queue.dispatch();
    }
    return DONE;
  }

  close(pin?: { clientId: string; seqs: number[] }): Promise<void> {
    if (this.#closed) return DONE;
    this.#closed = true;
    const queue = this.#queue;
    const index = queue.handles.indexOf(this);
    if (index !== -1) queue.handles.splice(index, 1);
    // Nobody drains it now: publishes waiting for room are refused rather than kept waiting.
    if (queue.handles.length === 0) queue.refuseWaiting();
    for (const seq of pin?.seqs ?? []) {
      if (queue.unacked.get(seq)?.holder !== this) continue;
      const entry = queue.remove(seq);
      if (entry) this.#store.adoptInto(pin!.clientId, entry);
    }
    const returned: QueueEntry[] = [];
    for (const entry of queue.unacked.values()) {
      if (entry.holder === this) returned.push(entry);
    }
    for (const entry of returned) queue.unacked.delete(entry.seq);
    queue.restore(returned);
    queue.dispatch();
    return DONE;
  }
}

function queueId(key: QueueKey): string {
  return key.kind === "session" ? `s/${key.clientId}` : `g/${key.group}/${key.filter}`;
}

/**
 * What capturing a message did, counted as the queues answer: the publish outcome itself once
 * `congested` is set (on one node nothing is forwarded to other nodes).
 */
interface Captured extends PublishOutcome {
  /** Of `full`, queues whose subscriber was taken for stuck or is offline. */
  stuck: number;
  /** A queue that took it holds its publishers back (see `MemoryQueue.backpressure`). */
  backpressure: Pending<void> | undefined;
}

/** The publish outcome of a capture, once every queue answered. */
function outcomeOf(captured: Captured, congested: boolean): PublishOutcome {
  captured.congested = congested;
  return captured;
}

/** Counts a queue that refused a message, naming the first few. */
function refused(captured: Captured, queue: MemoryQueue): void {
  captured.full++;
  if (queue.limits.whenFull === "wait" && (queue.stalled || queue.handles.length === 0)) {
    captured.stuck++;
  }
  if (captured.fullQueues === NO_NAMES) captured.fullQueues = [];
  if (captured.fullQueues.length < FULL_QUEUES_NAMED) {
    captured.fullQueues.push(queueName(queue.key));
  }
}

/** How a queue is named in logs: its client id, or the share group's subscription. */
function queueName(key: QueueKey): string {
  return key.kind === "session" ? key.clientId : `$share/${key.group}/${key.filter}`;
}

const NO_NAMES: string[] = [];

/** {@linkcode MemoryQueue.offer}'s answer when the message may wait for room. */
const WAIT = "wait";

/**
 * One publish waiting for room in one or more queues: counts what they answer and settles with
 * the outcome once all have, with no promise per queue or per publish (what each waiting publish
 * holds is kept small).
 */
class CaptureWait extends PublishWait {
  /** Queues still to answer, plus one while the capture is still offering it to queues. */
  remaining = 1;

  constructor(readonly captured: Captured, readonly store: MemoryQueueStore) {
    super();
  }

  stored(): void {
    this.captured.queued++;
    this.#answered();
  }

  refused(queue: MemoryQueue): void {
    refused(this.captured, queue);
    this.#answered();
  }

  /** The capture offered it to every queue: settles if they all answered already. */
  offered(): boolean {
    return --this.remaining === 0;
  }

  #answered(): void {
    if (--this.remaining === 0) this.settle(outcomeOf(this.captured, this.store.congested));
  }
}

/** Session and group queues, capturing published messages through a topic trie of their filters. */
export class MemoryQueueStore implements QueueStore {
  #queues = new Map<string, MemoryQueue>();
  readonly #context: QueueContext;
  /** Filter -> queues capturing it (keyed by queue id). */
  #capture = new SubscriptionTrie<MemoryQueue, string>();
  #matches = new ScratchList<MemoryQueue>();
  /** Open QoS 2 packet ids by publisher: session state, dropped with the session's queue. */
  readonly #inbound = new Map<string, Set<number>>();

  /**
   * @param clock Time source for telling draining queues from stuck ones.
   * @param maxQueuedBytesTotal The global ceiling on queued payload bytes.
   * @param observer Told of every change (a durable backbone writing it out).
   */
  constructor(clock: Clock, maxQueuedBytesTotal = Infinity, observer?: MemoryStateObserver) {
    this.#context = {
      total: new QueuedBytes(maxQueuedBytesTotal, clock),
      nextSeq: 1,
      observer,
    };
  }

  /** Whether the queued bytes are at 90% of the global ceiling or more. */
  get congested(): boolean {
    const total = this.#context.total;
    return total.bytes >= total.limit * 0.9;
  }

  /**
   * Stores a message in every queue whose filters match its topic; a {@linkcode CaptureWait} when
   * a full queue waits for room (settled once each of them stored or refused it).
   */
  capture(message: Message): Captured | CaptureWait {
    const matches = this.#matches.length === 0 ? this.#matches : new ScratchList<MemoryQueue>();
    this.#capture.match(message.topic, matches);
    const captured: Captured = {
      queued: 0,
      full: 0,
      fullQueues: NO_NAMES,
      stuck: 0,
      congested: false,
      forwarded: false,
      duplicate: false,
      backpressure: undefined,
    };
    let wait: CaptureWait | undefined;
    // A queue matched by several filters takes the message once [MQTT-3.3.4-2].
    const seen = matches.length > 1 ? new Set<MemoryQueue>() : undefined;
    for (let i = 0; i < matches.length; i++) {
      const queue = matches.at(i);
      if (seen) {
        if (seen.has(queue)) continue;
        seen.add(queue);
      }
      const offered = queue.offer(message);
      if (offered === true) {
        captured.queued++;
        captured.backpressure ??= queue.backpressure();
      } else if (offered === false) refused(captured, queue);
      else queue.park(message, wait ??= new CaptureWait(captured, this));
    }
    matches.clear();
    return wait === undefined || wait.offered() ? captured : wait;
  }

  setFilters(clientId: string, filters: string[], limits: QueueLimits): Promise<void> {
    const key: QueueKey = { kind: "session", clientId };
    const queue = this.#queue(key, limits);
    queue.limits = limits;
    this.#setCapture(queue, filters);
    this.#context.observer?.queueChanged(queue.id);
    return Promise.resolve();
  }

  joinGroup(group: string, filter: string, clientId: string, limits: QueueLimits): Promise<void> {
    const queue = this.#queue({ kind: "group", group, filter }, limits);
    if (queue.filters.length === 0) this.#setCapture(queue, [filter]);
    if (!queue.members.has(clientId)) {
      queue.members.add(clientId);
      this.#context.observer?.queueChanged(queue.id);
    }
    return Promise.resolve();
  }

  leaveGroup(group: string, filter: string, clientId: string): Promise<void> {
    const id = queueId({ kind: "group", group, filter });
    const queue = this.#queues.get(id);
    if (queue && queue.members.delete(clientId)) {
      if (queue.members.size === 0) this.#delete(id);
      else this.#context.observer?.queueChanged(id);
    }
    return Promise.resolve();
  }

  open(key: QueueKey, consumer: QueueConsumer): Promise<QueueHandle> {
    const queue = this.#queue(key, { maxMessages: 0, maxBytes: 0 });
    const handle = new MemoryQueueHandle(queue, consumer, this);
    queue.handles.push(handle);
    return Promise.resolve(handle);
  }

  drop(clientId: string): Promise<void> {
    this.#delete(queueId({ kind: "session", clientId }));
    if (this.#inbound.delete(clientId)) this.#context.observer?.inboundDropped(clientId);
    return Promise.resolve();
  }

  size(key: QueueKey): Promise<QueueSize> {
    const queue = this.#queues.get(queueId(key));
    return Promise.resolve({ messages: queue?.messages ?? 0, bytes: queue?.bytes ?? 0 });
  }

  /** A walk over every queue: for scrapes, not hot paths. */
  totals(): Promise<QueueSize> {
    const totals = { messages: 0, bytes: 0 };
    for (const queue of this.#queues.values()) {
      totals.messages += queue.messages;
      totals.bytes += queue.bytes;
    }
    return Promise.resolve(totals);
  }

  /** Moves a group delivery into a member session's queue (QoS 2 bound to that member). */
  adoptInto(clientId: string, entry: QueueEntry): void {
    this.#queue({ kind: "session", clientId }, { maxMessages: 0, maxBytes: 0 }).adopt(entry);
  }

  /** Opens a publisher's QoS 2 packet id; false when it is open already. */
  openInboundId(clientId: string, packetId: number): boolean {
    let open = this.#inbound.get(clientId);
    if (open?.has(packetId)) return false;
    if (!open) this.#inbound.set(clientId, open = new Set());
    open.add(packetId);
    this.#context.observer?.inboundChanged(clientId, packetId);
    return true;
  }

  /** Closes a publisher's QoS 2 packet id; true if it was open. */
  closeInboundId(clientId: string, packetId: number): boolean {
    const open = this.#inbound.get(clientId);
    if (!open?.delete(packetId)) return false;
    if (open.size === 0) this.#inbound.delete(clientId);
    this.#context.observer?.inboundChanged(clientId, packetId);
    return true;
  }

  /** A publisher's open QoS 2 packet ids. */
  inboundIds(clientId: string): number[] {
    return [...(this.#inbound.get(clientId) ?? [])];
  }

  /** Whether a publisher's QoS 2 packet id is open. */
  isInboundOpen(clientId: string, packetId: number): boolean {
    return this.#inbound.get(clientId)?.has(packetId) ?? false;
  }

  /** A queue's state, for an observer writing it out; undefined once the queue is gone. */
  peekQueue(id: string): QueueState | undefined {
    return this.#queues.get(id);
  }

  /** Every stored entry of every queue. */
  *entries(): IterableIterator<QueueEntry> {
    for (const queue of this.#queues.values()) yield* queue.entries();
  }

  /**
   * Marks every entry handed out and not acknowledged `redelivered`, as it will be once handed
   * back: for a durable store closing, so that they are sent with DUP after the restart.
   */
  markHandedOutRedelivered(): void {
    for (const queue of this.#queues.values()) {
      for (const entry of queue.unacked.values()) entry.redelivered = true;
    }
  }

  /**
   * Puts back a queue read from a durable store, with its entries in sequence order (none handed
   * out); later entries get higher sequences than these.
   */
  restoreQueue(state: QueueState, entries: Iterable<QueueEntry>): void {
    const queue = new MemoryQueue(state.key, state.limits, this.#context);
    this.#queues.set(queue.id, queue);
    this.#setCapture(queue, [...state.filters]);
    for (const member of state.members) queue.members.add(member);
    for (const entry of entries) {
      queue.reload(entry);
      if (entry.seq >= this.#context.nextSeq) this.#context.nextSeq = entry.seq + 1;
    }
  }

  /** Puts back a publisher's open QoS 2 packet ids read from a durable store. */
  restoreInbound(clientId: string, packetIds: Iterable<number>): void {
    this.#inbound.set(clientId, new Set(packetIds));
  }

  #queue(key: QueueKey, limits: QueueLimits): MemoryQueue {
    const id = queueId(key);
    let queue = this.#queues.get(id);
    if (!queue) {
      queue = new MemoryQueue(key, limits, this.#context);
      this.#queues.set(id, queue);
      this.#context.observer?.queueChanged(id);
    } else if (queue.limits.maxMessages === 0 && limits.maxMessages !== 0) {
      queue.limits = limits;
      this.#context.observer?.queueChanged(id);
    }
    return queue;
  }

  #setCapture(queue: MemoryQueue, filters: string[]): void {
    for (const filter of queue.filters) this.#capture.remove(filter, queue.id);
    queue.filters = [...new Set(filters)];
    for (const filter of queue.filters) this.#capture.add(filter, queue.id, queue);
  }

  #delete(id: string): void {
    const queue = this.#queues.get(id);
    if (!queue) return;
    for (const filter of queue.filters) this.#capture.remove(filter, id);
    this.#queues.delete(id);
    // Handles still open see nothing more; what they hold is gone with the queue.
    queue.clear();
    this.#context.observer?.queueChanged(id);
  }
}

// ---- live routing ------------------------------------------------------------------------------

/** One node: QoS 0 goes nowhere but this node's share groups; QoS 1/2 into the queues. */
export class MemoryMessageBus implements MessageBus {
  #listener: LiveListener = () => {};
  #queues: MemoryQueueStore;
  /** Share-group interest: (filter, group) -> reference count. */
  #groups = new SubscriptionTrie<{ group: string; filter: string; count: number }, string>();
  #groupMatches = new ScratchList<{ group: string; filter: string; count: number }>();
  constructor(queues: MemoryQueueStore) {
    this.#queues = queues;
  }

  listen(listener: LiveListener): void {
    this.#listener = listener;
  }

  addInterest(filter: string, group?: string): Promise<void> {
    if (group === undefined) return Promise.resolve();
    const entry = this.#groups.get(filter, group);
    if (entry) entry.count++;
    else this.#groups.add(filter, group, { group, filter, count: 1 });
    return Promise.resolve();
  }

  removeInterest(filter: string, group?: string): Promise<void> {
    if (group === undefined) return Promise.resolve();
    const entry = this.#groups.get(filter, group);
    if (entry && --entry.count === 0) this.#groups.remove(filter, group);
    return Promise.resolve();
  }

  forward(message: Message): void {
    if (this.#groups.size === 0) return;
    const matches = this.#groupMatches.length === 0
      ? this.#groupMatches
      : new ScratchList<{ group: string; filter: string; count: number }>();
    this.#groups.match(message.topic, matches);
    for (let i = 0; i < matches.length; i++) {
      const { group, filter } = matches.at(i);
      this.#listener(message, { group, filter });
    }
    matches.clear();
  }

  publish(message: Message, inbound?: InboundKey): PublishOutcome | PublishWait {
    if (inbound && !this.#queues.openInboundId(inbound.clientId, inbound.packetId)) {
      return {
        queued: 0,
        full: 0,
        fullQueues: NO_NAMES,
        congested: false,
        forwarded: false,
        duplicate: true,
      };
    }
    const captured = this.#queues.capture(message);
    return captured instanceof CaptureWait ? captured : outcomeOf(captured, this.#queues.congested);
  }

  completeInbound(key: InboundKey): boolean {
    return this.#queues.closeInboundId(key.clientId, key.packetId);
  }

  openInbound(clientId: string): Promise<number[]> {
    return Promise.resolve(this.#queues.inboundIds(clientId));
  }
}

// ---- nodes, events, config ---------------------------------------------------------------------

/** The one node of this process. */
export class MemoryNodeRegistry implements NodeRegistry {
  #self: NodeInfo | undefined;
  #clock: Clock;
  #locks = new Map<string, TimerId>();
  #handlers = new Map<string, RequestHandler>();

  constructor(clock: Clock) {
    this.#clock = clock;
  }

  join(self: NodeInfo): void {
    this.#self = self;
  }

  list(): Promise<NodeStatus[]> {
    const self = this.#self;
    if (!self) return Promise.resolve([]);
    return Promise.resolve([{ ...self, lastSeen: this.#clock.now(), alive: true }]);
  }

  isAlive(nodeId: string): Promise<boolean> {
    return Promise.resolve(nodeId === this.#self?.id);
  }

  onNodeLost(_listener: (node: NodeInfo) => void): () => void {
    // One node never sees another leave.
    return () => {};
  }

  lock(name: string, ttlMs: number): Promise<Lock | undefined> {
    if (this.#locks.has(name)) return Promise.resolve(undefined);
    const timer = this.#clock.setTimeout(() => this.#locks.delete(name), ttlMs);
    this.#locks.set(name, timer);
    return Promise.resolve({
      release: () => {
        if (this.#locks.get(name) === timer) {
          this.#clock.clearTimeout(timer);
          this.#locks.delete(name);
        }
        return Promise.resolve();
      },
    });
  }

  request(nodeId: string, method: string, body: unknown): Promise<unknown> {
    const handler = this.#handlers.get(method);
    if (nodeId !== this.#self?.id || !handler) {
      return Promise.reject(
        new BackboneError("unavailable", `No node "${nodeId}" serves "${method}"`),
      );
    }
    return handler(body);
  }

  serve(method: string, handler: RequestHandler): () => void {
    this.#handlers.set(method, handler);
    return () => {
      if (this.#handlers.get(method) === handler) this.#handlers.delete(method);
    };
  }

  /** Lets go of every lock (the backbone closes). */
  clear(): void {
    for (const timer of this.#locks.values()) this.#clock.clearTimeout(timer);
    this.#locks.clear();
  }
}

/** Events delivered to this process's listeners, in a microtask so no emitter waits on them. */
export class MemoryEventStream implements EventStream {
  #listeners = new Set<(event: BrokerEvent) => void>();

  emit(event: BrokerEvent): void {
    if (this.#listeners.size === 0) return;
    queueMicrotask(() => {
      for (const listener of this.#listeners) listener(event);
    });
  }

  subscribe(listener: (event: BrokerEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
}

/** Copies of the values of `entries` whose keys start with `prefix`, in key order. */
function listByPrefix(
  entries: ReadonlyMap<string, ConfigEntry>,
  prefix: string,
): { key: string; value: Uint8Array }[] {
  const found: { key: string; value: Uint8Array }[] = [];
  for (const [key, { value }] of entries) {
    if (key.startsWith(prefix)) found.push({ key, value: value.slice() });
  }
  return found.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

/** Configuration documents in a Map, with watchers called after each change. */
export class MemoryConfigStore implements ConfigStore {
  #entries = new Map<string, ConfigEntry>();
  #revision = 0;
  #watchers = new Set<(key: string, value: Uint8Array | undefined) => void>();
  #observer: MemoryStateObserver | undefined;

  constructor(observer?: MemoryStateObserver) {
    this.#observer = observer;
  }

  /** The last revision given out. */
  get revision(): number {
    return this.#revision;
  }

  /** A key's stored entry itself, not a copy: for an observer writing it out. */
  peek(key: string): ConfigEntry | undefined {
    return this.#entries.get(key);
  }

  /**
   * Fills an empty store with documents read back, revisions continuing after `revision`
   * (watchers are not called).
   */
  restore(documents: Iterable<[string, ConfigEntry]>, revision: number): void {
    for (const [key, entry] of documents) this.#entries.set(key, entry);
    this.#revision = revision;
  }

  get(key: string): Promise<Uint8Array | undefined> {
    return Promise.resolve(this.#entries.get(key)?.value.slice());
  }

  entry(key: string): Promise<ConfigEntry | undefined> {
    const entry = this.#entries.get(key);
    return Promise.resolve(entry && { value: entry.value.slice(), revision: entry.revision });
  }

  list(prefix: string): Promise<{ key: string; value: Uint8Array }[]> {
    return Promise.resolve(listByPrefix(this.#entries, prefix));
  }

  put(key: string, value: Uint8Array): Promise<void> {
    this.#write(key, value);
    return Promise.resolve();
  }

  compareAndSet(
    key: string,
    value: Uint8Array,
    expectedRevision: number,
  ): Promise<number | undefined> {
    if ((this.#entries.get(key)?.revision ?? 0) !== expectedRevision) {
      return Promise.resolve(undefined);
    }
    return Promise.resolve(this.#write(key, value));
  }

  #write(key: string, value: Uint8Array): number {
    const stored = value.slice();
    const revision = ++this.#revision;
    this.#entries.set(key, { value: stored, revision });
    this.#observer?.configChanged(key);
    for (const watcher of this.#watchers) watcher(key, stored.slice());
    return revision;
  }

  delete(key: string): Promise<void> {
    if (this.#entries.delete(key)) {
      this.#observer?.configChanged(key);
      for (const watcher of this.#watchers) watcher(key, undefined);
    }
    return Promise.resolve();
  }

  watch(listener: (key: string, value: Uint8Array | undefined) => void): () => void {
    this.#watchers.add(listener);
    return () => this.#watchers.delete(listener);
  }
}

// ---- outboxes ------------------------------------------------------------------------------------

/** One outbox's entries: seqs are consecutive, removal only from the head. */
class MemoryOutboxLog {
  readonly name: string;
  limits: OutboxLimits;
  #entries: OutboxEntry[] = [];
  #head = 0;
  #bytes = 0;
  #nextSeq = 1;
  readonly #observer: MemoryStateObserver | undefined;

  constructor(name: string, limits: OutboxLimits, observer: MemoryStateObserver | undefined) {
    this.name = name;
    this.limits = limits;
    this.#observer = observer;
  }

  /** The seq the next entry gets. */
  get nextSeq(): number {
    return this.#nextSeq;
  }

  get length(): number {
    return this.#entries.length - this.#head;
  }

  get bytes(): number {
    return this.#bytes;
  }

  /** Seq of the first entry held (the next one to be appended when empty). */
  get firstSeq(): number {
    return this.length === 0 ? this.#nextSeq : this.#entries[this.#head].seq;
  }

  append(payload: Uint8Array, now: number): OutboxAppend {
    const { maxMessages, maxBytes } = this.limits;
    if (this.length + 1 > maxMessages || this.#bytes + payload.length > maxBytes) {
      return { status: "full" };
    }
    const entry = { seq: this.#nextSeq++, payload, appendedAt: now };
    this.#entries.push(entry);
    this.#bytes += payload.length;
    this.#observer?.outboxAppended(this.name, entry);
    return { status: "stored", seq: entry.seq };
  }

  /** Puts back entries read from a durable store (in seq order), then `nextSeq`. */
  reload(entries: Iterable<OutboxEntry>, nextSeq: number): void {
    for (const entry of entries) {
      this.#entries.push(entry);
      this.#bytes += entry.payload.length;
    }
    this.#nextSeq = nextSeq;
  }

  /** Up to `max` entries from `seq` on. */
  from(seq: number, max: number): OutboxEntry[] {
    const start = this.#head + Math.max(0, seq - this.firstSeq);
    return this.#entries.slice(start, Math.min(this.#entries.length, start + max));
  }

  remove(upTo: number): void {
    const entries = this.#entries;
    const before = this.#head;
    while (this.#head < entries.length && entries[this.#head].seq <= upTo) {
      this.#bytes -= entries[this.#head].payload.length;
      this.#head++;
    }
    if (this.#head !== before) {
      this.#observer?.outboxRemoved(this.name, entries[this.#head - 1].seq);
    }
    // Compacts once the removed head outweighs what is left, so removal stays amortized O(1).
    if (this.#head > 1024 && this.#head * 2 > entries.length) {
      this.#entries = entries.slice(this.#head);
      this.#head = 0;
    }
  }
}

/** An open outbox: a read position over a shared log. */
class MemoryOutbox implements Outbox {
  readonly durable = false;
  readonly #log: MemoryOutboxLog;
  readonly #clock: Clock;
  #next: number;

  constructor(log: MemoryOutboxLog, clock: Clock) {
    this.#log = log;
    this.#clock = clock;
    this.#next = log.firstSeq;
  }

  append(payload: Uint8Array): Promise<OutboxAppend> {
    return Promise.resolve(this.#log.append(payload, this.#clock.now()));
  }

  read(max: number): Promise<OutboxEntry[]> {
    const entries = this.#log.from(this.#next, max);
    if (entries.length > 0) this.#next = entries[entries.length - 1].seq + 1;
    return Promise.resolve(entries);
  }

  remove(upTo: number): Promise<void> {
    this.#log.remove(upTo);
    return Promise.resolve();
  }

  size(): Promise<QueueSize> {
    return Promise.resolve({ messages: this.#log.length, bytes: this.#log.bytes });
  }
}

/**
 * Outboxes in this process: bounded by their limits, and **not crash-safe** (what they hold is
 * lost with the process, like everything else the memory backbone keeps).
 */
export class MemoryOutboxStore implements OutboxStore {
  readonly #clock: Clock;
  readonly #logs = new Map<string, MemoryOutboxLog>();
  readonly #observer: MemoryStateObserver | undefined;

  /**
   * @param clock Time source for the entries' `appendedAt`.
   * @param observer Told of every change (a durable backbone writing it out).
   */
  constructor(clock: Clock, observer?: MemoryStateObserver) {
    this.#clock = clock;
    this.#observer = observer;
  }

  open(name: string, limits: OutboxLimits): Promise<Outbox> {
    let log = this.#logs.get(name);
    if (log) log.limits = limits;
    else this.#logs.set(name, log = new MemoryOutboxLog(name, limits, this.#observer));
    return Promise.resolve(new MemoryOutbox(log, this.#clock));
  }

  find(name: string): Promise<Outbox | undefined> {
    const log = this.#logs.get(name);
    return Promise.resolve(log && new MemoryOutbox(log, this.#clock));
  }

  /** The seq an outbox's next entry gets; undefined for an outbox never opened. */
  nextSeq(name: string): number | undefined {
    return this.#logs.get(name)?.nextSeq;
  }

  /**
   * Puts back an outbox read from a durable store: its entries in seq order, and the seq its next
   * entry gets. Its limits are set when it is opened.
   */
  restore(name: string, entries: Iterable<OutboxEntry>, nextSeq: number): void {
    const log = new MemoryOutboxLog(
      name,
      { maxMessages: Infinity, maxBytes: Infinity },
      this.#observer,
    );
    log.reload(entries, nextSeq);
    this.#logs.set(name, log);
  }
}

// ---- the whole -----------------------------------------------------------------------------------

/** The embedded default backbone. */
export class MemoryBackbone implements Backbone {
  readonly kind = "memory";
  readonly durable = false;
  readonly sessions: MemorySessionStore = new MemorySessionStore();
  readonly retained: MemoryRetainedStore;
  readonly queues: MemoryQueueStore;
  readonly messages: MemoryMessageBus;
  readonly nodes: MemoryNodeRegistry;
  readonly events: MemoryEventStream = new MemoryEventStream();
  readonly config: MemoryConfigStore = new MemoryConfigStore();
  readonly outbox: MemoryOutboxStore;

  constructor(options: MemoryBackboneOptions) {
    this.outbox = new MemoryOutboxStore(options.clock);
    this.queues = new MemoryQueueStore(options.clock, options.maxQueuedBytesTotal);
    this.messages = new MemoryMessageBus(this.queues);
    this.retained = new MemoryRetainedStore(options.clock, options.retainedLimits);
    this.nodes = new MemoryNodeRegistry(options.clock);
  }

  start(self: NodeInfo): Promise<void> {
    this.nodes.join(self);
    return Promise.resolve();
  }

  close(): Promise<void> {
    this.nodes.clear();
    return Promise.resolve();
  }
}
