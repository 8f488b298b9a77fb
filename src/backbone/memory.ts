/**
 * The embedded backbone: everything in this process, nothing else to run, state lost on exit.
 *
 * @module
 */

import { RetainedIndex } from "../topic/retained_index.ts";
import type { Clock } from "../util/clock.ts";
import { Fifo } from "../util/fifo.ts";
import type {
  Backbone,
  ConfigStore,
  Message,
  MessageBus,
  MessageListener,
  QueueLimits,
  QueueRejection,
  QueueSize,
  QueueStore,
  RetainedStore,
  SessionRecord,
  SessionStore,
  StoredSession,
} from "./backbone.ts";

/** Options of the memory backbone. */
export interface MemoryBackboneOptions {
  /** Time source for message expiry. */
  clock: Clock;
  /** Upper bounds on the retained store; a set beyond them is refused. */
  retainedLimits?: { maxMessages: number; maxBytes: number };
}

/** Sessions in a Map with a per-record revision. */
export class MemorySessionStore implements SessionStore {
  #records = new Map<string, StoredSession>();

  get(clientId: string): StoredSession | undefined {
    const stored = this.#records.get(clientId);
    return stored && { record: cloneRecord(stored.record), revision: stored.revision };
  }

  put(record: SessionRecord, expectedRevision: number): number | undefined {
    const current = this.#records.get(record.clientId)?.revision ?? 0;
    if (current !== expectedRevision) return undefined;
    const revision = current + 1;
    this.#records.set(record.clientId, { record: cloneRecord(record), revision });
    return revision;
  }

  delete(clientId: string, expectedRevision?: number): boolean {
    const stored = this.#records.get(clientId);
    if (!stored) return false;
    if (expectedRevision !== undefined && stored.revision !== expectedRevision) return false;
    return this.#records.delete(clientId);
  }

  list(): SessionRecord[] {
    return [...this.#records.keys()].sort().map((id) => cloneRecord(this.#records.get(id)!.record));
  }
}

/**
 * Records are copied in and out so callers cannot mutate the stored state by accident. Spread
 * copies keep the record's shape (structuredClone builds objects with out-of-line properties,
 * ~300 bytes more per session); only a will, whose properties may nest, goes through
 * structuredClone.
 */
function cloneRecord(record: SessionRecord): SessionRecord {
  return {
    ...record,
    subscriptions: record.subscriptions.map((subscription) => ({ ...subscription })),
    will: record.will === undefined ? undefined : structuredClone(record.will),
  };
}

/** Error raised when the retained store is at its configured bounds. */
export class RetainedStoreFullError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "RetainedStoreFullError";
  }
}

/** Retained messages in a topic tree, so wildcard lookups walk only matching branches. */
export class MemoryRetainedStore implements RetainedStore {
  #index = new RetainedIndex<Message>();
  #bytes = 0;
  #clock: Clock;
  #limits: { maxMessages: number; maxBytes: number };

  constructor(clock: Clock, limits = { maxMessages: Infinity, maxBytes: Infinity }) {
    this.#clock = clock;
    this.#limits = limits;
  }

  set(message: Message): void {
    const previous = this.#index.get(message.topic);
    const bytes = this.#bytes - (previous ? previous.payload.length : 0) + message.payload.length;
    const count = this.#index.size + (previous ? 0 : 1);
    if (count > this.#limits.maxMessages || bytes > this.#limits.maxBytes) {
      throw new RetainedStoreFullError(
        `Cannot retain message on "${message.topic}": retained store is full`,
      );
    }
    this.#index.set(message.topic, message);
    this.#bytes = bytes;
  }

  delete(topic: string): boolean {
    const previous = this.#index.get(topic);
    if (!previous) return false;
    this.#index.delete(topic);
    this.#bytes -= previous.payload.length;
    return true;
  }

  get(topic: string): Message | undefined {
    const message = this.#index.get(topic);
    if (message && isExpired(message, this.#clock.now())) {
      this.delete(topic);
      return undefined;
    }
    return message;
  }

  match(filter: string): Message[] {
    const found: Message[] = [];
    this.#index.matchFilter(filter, found);
    const now = this.#clock.now();
    let live = 0;
    for (const message of found) {
      if (isExpired(message, now)) this.delete(message.topic);
      else found[live++] = message;
    }
    found.length = live;
    return found;
  }

  count(): number {
    return this.#index.size;
  }
}

function isExpired(message: Message, now: number): boolean {
  return message.expiresAt !== 0 && message.expiresAt <= now;
}

interface SessionQueue {
  messages: Fifo<Message>;
  bytes: number;
}

/** Per-session ring-buffer queues with message and byte bounds. */
export class MemoryQueueStore implements QueueStore {
  #queues = new Map<string, SessionQueue>();

  push(clientId: string, message: Message, limits: QueueLimits): QueueRejection | undefined {
    let queue = this.#queues.get(clientId);
    if (!queue) {
      queue = { messages: new Fifo<Message>(), bytes: 0 };
      this.#queues.set(clientId, queue);
    }
    const bytes = queue.bytes + message.payload.length;
    if (queue.messages.length >= limits.maxMessages || bytes > limits.maxBytes) return "full";
    queue.messages.push(message);
    queue.bytes = bytes;
    return undefined;
  }

  take(clientId: string, max: number): Message[] {
    const queue = this.#queues.get(clientId);
    if (!queue) return [];
    const taken: Message[] = [];
    while (taken.length < max && queue.messages.length > 0) {
      const message = queue.messages.shift()!;
      queue.bytes -= message.payload.length;
      taken.push(message);
    }
    if (queue.messages.length === 0) this.#queues.delete(clientId);
    return taken;
  }

  size(clientId: string): QueueSize {
    const queue = this.#queues.get(clientId);
    return { messages: queue?.messages.length ?? 0, bytes: queue?.bytes ?? 0 };
  }

  drop(clientId: string): void {
    this.#queues.delete(clientId);
  }
}

/** One node: every published message goes straight to the local listener. */
export class MemoryMessageBus implements MessageBus {
  #listener: MessageListener = () => {};

  listen(listener: MessageListener): void {
    this.#listener = listener;
  }

  addInterest(_filter: string): void {}

  removeInterest(_filter: string): void {}

  publish(message: Message): void {
    this.#listener(message);
  }
}

/** Configuration documents in a Map, with synchronous watchers. */
export class MemoryConfigStore implements ConfigStore {
  #values = new Map<string, Uint8Array>();
  #watchers = new Set<(key: string, value: Uint8Array | undefined) => void>();

  get(key: string): Uint8Array | undefined {
    return this.#values.get(key)?.slice();
  }

  put(key: string, value: Uint8Array): void {
    const stored = value.slice();
    this.#values.set(key, stored);
    for (const watcher of this.#watchers) watcher(key, stored.slice());
  }

  delete(key: string): void {
    if (!this.#values.delete(key)) return;
    for (const watcher of this.#watchers) watcher(key, undefined);
  }

  watch(listener: (key: string, value: Uint8Array | undefined) => void): () => void {
    this.#watchers.add(listener);
    return () => this.#watchers.delete(listener);
  }
}

/** The embedded default backbone. */
export class MemoryBackbone implements Backbone {
  readonly kind = "memory";
  readonly shared = false;
  readonly sessions: MemorySessionStore = new MemorySessionStore();
  readonly retained: MemoryRetainedStore;
  readonly queues: MemoryQueueStore = new MemoryQueueStore();
  readonly bus: MemoryMessageBus = new MemoryMessageBus();
  readonly config: MemoryConfigStore = new MemoryConfigStore();

  constructor(options: MemoryBackboneOptions) {
    this.retained = new MemoryRetainedStore(options.clock, options.retainedLimits);
  }

  start(): Promise<void> {
    return Promise.resolve();
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
