/**
 * The durable backbone of one node: the memory backbone's stores, with every change written to an
 * SQLite file (`sqlite_file.ts`) and read back at the next start. Sessions with their revisions,
 * retained messages, queued and in-flight QoS 1/2 messages (with their packet ids and QoS 2
 * release state), share-group queues, open QoS 2 packet ids, configuration documents and
 * outboxes survive a restart and a crash. Node membership, locks and events are this process's, as
 * in the memory backbone.
 *
 * Reads are answered from memory. An operation that changes state resolves once the change is as
 * durable as the sync policy says: committed and fsynced (`full`, the default), or at once, with
 * commits every window (`batched`). So with `full`, a QoS 1/2 message is on disk before its
 * publisher is acknowledged.
 *
 * The SQLite module is the runtime's own, behind {@linkcode OpenSqlite}: `node:sqlite` on Deno
 * (`node_sqlite.ts`), `bun:sqlite` on Bun (`bun_sqlite.ts`).
 *
 * @module
 */

import { mkdir } from "node:fs/promises";
import { dirname } from "node:path";
import type { Clock } from "../util/clock.ts";
import type {
  Backbone,
  ConfigStore,
  MessageBus,
  NodeInfo,
  Outbox,
  OutboxStore,
  QueueHandle,
  QueueStore,
  RetainedStore,
  SessionStore,
} from "./backbone.ts";
import type { BackboneError } from "./errors.ts";
import {
  MemoryConfigStore,
  MemoryEventStream,
  MemoryMessageBus,
  MemoryNodeRegistry,
  MemoryOutboxStore,
  MemoryQueueStore,
  MemoryRetainedStore,
  MemorySessionStore,
} from "./memory.ts";
import type { OpenSqlite } from "./sqlite_driver.ts";
import { type LoadedState, type MemoryStores, SqliteFile, type SqliteSync } from "./sqlite_file.ts";

export type { LoadedState, SqliteSync } from "./sqlite_file.ts";

/** Options of the SQLite backbone. */
export interface SqliteBackboneOptions {
  /** The database file; its folder is created if missing. */
  path: string;
  /** Opens the file with the runtime's SQLite module. */
  open: OpenSqlite;
  /** How changes become durable; `full` by default. */
  sync?: SqliteSync;
  /** Time source for message expiry and lock TTLs. */
  clock: Clock;
  /** Upper bounds on the retained store; a set beyond them is refused. */
  retainedLimits?: { maxMessages: number; maxBytes: number };
  /** Most payload bytes queued over all sessions and groups (see the memory backbone's option). */
  maxQueuedBytesTotal?: number;
  /**
   * Told of every commit that failed. With `full`, the operations waiting for it fail too; with
   * `batched` nobody else hears of it. Its changes are written by the next commit.
   */
  onWriteError?: (error: BackboneError) => void;
}

/** Why the file could not be opened, naming it. */
export class SqliteOpenError extends Error {
  override name = "SqliteOpenError";
  readonly path: string;

  constructor(path: string, problem: string, options?: ErrorOptions) {
    super(`${path}: ${problem}`, options);
    this.path = path;
  }
}

function reason(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Why the file could not be opened, in words an operator can act on. */
function openProblem(error: unknown): string {
  const message = reason(error);
  if (/database is locked/i.test(message)) {
    return "the file is in use by another process (another broker on the same backbone.path?)";
  }
  return message;
}

/** The memory backbone's stores, written to an SQLite file. */
export class SqliteBackbone implements Backbone {
  readonly kind = "sqlite";
  readonly durable = true;
  readonly path: string;
  readonly sync: SqliteSync;
  /** What was read back from the file at start-up. */
  readonly loaded: LoadedState;
  readonly sessions: SessionStore;
  readonly retained: RetainedStore;
  readonly messages: MessageBus;
  readonly queues: QueueStore;
  readonly nodes: MemoryNodeRegistry;
  readonly events: MemoryEventStream = new MemoryEventStream();
  readonly config: ConfigStore;
  readonly outbox: OutboxStore;
  readonly #file: SqliteFile;

  private constructor(
    options: SqliteBackboneOptions,
    sync: SqliteSync,
    file: SqliteFile,
    stores: MemoryStores,
    loaded: LoadedState,
  ) {
    this.path = options.path;
    this.sync = sync;
    this.loaded = loaded;
    this.#file = file;
    this.nodes = new MemoryNodeRegistry(options.clock);
    const durably = <T>(result: Promise<T>): Promise<T> => {
      const durable = file.durable();
      return result.then((value) => durable.then(() => value));
    };
    this.sessions = durableSessions(stores.sessions, durably);
    this.retained = durableRetained(stores.retained, durably);
    this.messages = durableMessages(new MemoryMessageBus(stores.queues), durably);
    this.queues = durableQueues(stores.queues, durably);
    this.config = durableConfig(stores.config, durably);
    this.outbox = durableOutbox(stores.outbox, durably);
  }

  /**
   * Opens (creating it and its folder if needed) the file and reads its state back.
   *
   * @throws {SqliteOpenError} when the file cannot be created, opened, locked or read
   */
  static async open(options: SqliteBackboneOptions): Promise<SqliteBackbone> {
    const sync = options.sync ?? { policy: "full" };
    const onWriteError = options.onWriteError ?? (() => {});
    let file: SqliteFile | undefined;
    const folder = dirname(options.path);
    try {
      await mkdir(folder, { recursive: true });
    } catch (error) {
      const problem = `cannot create its folder ${folder}: ${reason(error)}`;
      throw new SqliteOpenError(options.path, problem, { cause: error });
    }
    try {
      const db = await options.open(options.path);
      file = new SqliteFile(options.path, db, sync, onWriteError);
      file.prepare();
      const stores = {
        sessions: new MemorySessionStore(file),
        retained: new MemoryRetainedStore(options.clock, options.retainedLimits, file),
        queues: new MemoryQueueStore(options.clock, options.maxQueuedBytesTotal, file),
        config: new MemoryConfigStore(file),
        outbox: new MemoryOutboxStore(options.clock, file),
      };
      const loaded = file.load(stores);
      await file.openLog();
      return new SqliteBackbone(options, sync, file, stores, loaded);
    } catch (error) {
      await file?.close().catch(() => {}); // The open error says what is wrong.
      throw new SqliteOpenError(options.path, openProblem(error), { cause: error });
    }
  }

  start(self: NodeInfo): Promise<void> {
    this.nodes.join(self);
    return Promise.resolve();
  }

  /** Writes what is left and closes the file, marked as closed cleanly. */
  close(): Promise<void> {
    this.nodes.clear();
    return this.#file.close();
  }
}

/** Resolves with an operation's result once its change is durable. */
type Durably = <T>(result: Promise<T>) => Promise<T>;

function durableSessions(inner: MemorySessionStore, durably: Durably): SessionStore {
  return {
    get: (clientId) => inner.get(clientId),
    list: () => inner.list(),
    count: () => inner.count(),
    put: (record, revision) => durably(inner.put(record, revision)),
    claim: (clientId, owner, build, options) =>
      durably(inner.claim(clientId, owner, build, options)),
    delete: (clientId, revision) => durably(inner.delete(clientId, revision)),
  };
}

function durableRetained(inner: MemoryRetainedStore, durably: Durably): RetainedStore {
  return {
    set: (message) => durably(inner.set(message)),
    delete: (topic) => durably(inner.delete(topic)),
    get: (topic) => inner.get(topic),
    match: (filter) => inner.match(filter),
    count: () => inner.count(),
  };
}

function durableMessages(inner: MemoryMessageBus, durably: Durably): MessageBus {
  return {
    listen: (listener) => inner.listen(listener),
    addInterest: (filter, group) => inner.addInterest(filter, group),
    removeInterest: (filter, group) => inner.removeInterest(filter, group),
    forward: (message) => inner.forward(message),
    // A duplicate changes nothing, yet waits: the publish that opened the id may not be on disk.
    publish: (message, inbound) => durably(Promise.resolve(inner.publish(message, inbound))),
    completeInbound: (key) => durably(Promise.resolve(inner.completeInbound(key))),
    openInbound: (clientId) => inner.openInbound(clientId),
  };
}

function durableQueues(inner: MemoryQueueStore, durably: Durably): QueueStore {
  const durableHandle = (handle: QueueHandle): QueueHandle => ({
    request: (count) => handle.request(count),
    ack: (seq) => durably(handle.ack(seq)),
    recordPacketId: (seq, packetId) => durably(handle.recordPacketId(seq, packetId)),
    release: (seq) => durably(handle.release(seq)),
    nak: (seq) => durably(handle.nak(seq)),
    close: (pin) => durably(handle.close(pin)),
  });
  return {
    setFilters: (clientId, filters, limits) => durably(inner.setFilters(clientId, filters, limits)),
    joinGroup: (group, filter, clientId, limits) =>
      durably(inner.joinGroup(group, filter, clientId, limits)),
    leaveGroup: (group, filter, clientId) => durably(inner.leaveGroup(group, filter, clientId)),
    open: (key, consumer) => inner.open(key, consumer).then(durableHandle),
    drop: (clientId) => durably(inner.drop(clientId)),
    size: (key) => inner.size(key),
    totals: () => inner.totals(),
  };
}

function durableConfig(inner: MemoryConfigStore, durably: Durably): ConfigStore {
  return {
    get: (key) => inner.get(key),
    entry: (key) => inner.entry(key),
    list: (prefix) => inner.list(prefix),
    put: (key, value) => durably(inner.put(key, value)),
    compareAndSet: (key, value, revision) => durably(inner.compareAndSet(key, value, revision)),
    delete: (key) => durably(inner.delete(key)),
    watch: (listener) => inner.watch(listener),
  };
}

function durableOutbox(inner: MemoryOutboxStore, durably: Durably): OutboxStore {
  const durableBox = (outbox: Outbox): Outbox => ({
    durable: true,
    append: (payload) => durably(outbox.append(payload)),
    read: (max) => outbox.read(max),
    remove: (upTo) => durably(outbox.remove(upTo)),
    size: () => outbox.size(),
  });
  return {
    open: (name, limits) => inner.open(name, limits).then(durableBox),
    find: (name) => inner.find(name).then((outbox) => outbox && durableBox(outbox)),
  };
}
