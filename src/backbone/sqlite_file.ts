/**
 * The SQLite file of the SQLite backbone: its tables, reading the whole state back at start-up,
 * and writing what changed since the last write in one transaction (group commit).
 *
 * The backbone keeps its state in the memory stores and this file is told of every change (it is
 * their {@linkcode MemoryStateObserver}). It notes only which keys changed; when it writes, it
 * reads their state at that moment, so a key changed many times costs one write, and a message
 * queued and acknowledged between two writes costs none.
 *
 * Durability without stalling the event loop: the driver is synchronous, so a commit runs on
 * this thread, but it does not wait for the disk (WAL with `synchronous = NORMAL`); the write-ahead
 * log is then fsynced by an asynchronous file handle, off this thread, and the operations waiting
 * for the commit resolve once that fsync returns. That is what `synchronous = FULL` guarantees
 * (a transaction is on disk before it is acknowledged) without the event loop waiting for the
 * disk. One fsync runs at a time; what changes meanwhile is committed when it returns, so one
 * commit and one fsync serve everything that arrived during the previous one.
 *
 * @module
 */

import { open } from "node:fs/promises";
import type { FileHandle } from "node:fs/promises";
import { dirname } from "node:path";
import { clearImmediate, setImmediate } from "node:timers";
import type {
  ConfigEntry,
  Message,
  OutboxEntry,
  QueueKey,
  SessionRecord,
  StoredSession,
} from "./backbone.ts";
import { BackboneError } from "./errors.ts";
import type {
  MemoryConfigStore,
  MemoryOutboxStore,
  MemoryQueueStore,
  MemoryRetainedStore,
  MemorySessionStore,
  MemoryStateObserver,
  QueueEntry,
} from "./memory.ts";
import type { SqliteDatabase, SqliteRow, SqliteStatement, SqliteValue } from "./sqlite_driver.ts";

/** How changes become durable. */
export type SqliteSync =
  /**
   * Operations resolve once what they changed is committed and on disk. Changes made while one
   * commit is being synced share the next commit and fsync.
   */
  | { policy: "full" }
  /**
   * Operations resolve at once; changes are committed (and synced) `windowMs` after the first one
   * of a window, so a crash loses the changes of the last window.
   */
  | { policy: "batched"; windowMs: number };

/** The layout of the file; another value means a file this code cannot read. */
const SCHEMA_VERSION = 1;

const TABLES = [
  "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID",
  "CREATE TABLE IF NOT EXISTS sessions (client_id TEXT PRIMARY KEY, revision INTEGER NOT NULL, " +
  "record TEXT NOT NULL) WITHOUT ROWID",
  "CREATE TABLE IF NOT EXISTS retained (topic TEXT PRIMARY KEY, payload BLOB NOT NULL, " +
  "qos INTEGER NOT NULL, retain INTEGER NOT NULL, properties TEXT, expires_at INTEGER NOT NULL, " +
  "origin TEXT NOT NULL)",
  "CREATE TABLE IF NOT EXISTS queues (id TEXT PRIMARY KEY, key TEXT NOT NULL, " +
  "filters TEXT NOT NULL, members TEXT NOT NULL, max_messages REAL NOT NULL, " +
  "max_bytes REAL NOT NULL) WITHOUT ROWID",
  // seq is unique over every queue, so it is the row id: one B-tree, appended to in order.
  "CREATE TABLE IF NOT EXISTS entries (seq INTEGER PRIMARY KEY, queue_id TEXT NOT NULL, " +
  "topic TEXT NOT NULL, payload BLOB NOT NULL, qos INTEGER NOT NULL, retain INTEGER NOT NULL, " +
  "properties TEXT, expires_at INTEGER NOT NULL, origin TEXT NOT NULL, " +
  "packet_id INTEGER NOT NULL, released INTEGER NOT NULL, redelivered INTEGER NOT NULL)",
  "CREATE TABLE IF NOT EXISTS inbound (client_id TEXT NOT NULL, packet_id INTEGER NOT NULL, " +
  "PRIMARY KEY (client_id, packet_id)) WITHOUT ROWID",
  "CREATE TABLE IF NOT EXISTS config (key TEXT PRIMARY KEY, value BLOB NOT NULL, " +
  "revision INTEGER NOT NULL) WITHOUT ROWID",
  "CREATE TABLE IF NOT EXISTS outboxes (name TEXT PRIMARY KEY, next_seq INTEGER NOT NULL) " +
  "WITHOUT ROWID",
  "CREATE TABLE IF NOT EXISTS outbox (name TEXT NOT NULL, seq INTEGER NOT NULL, " +
  "payload BLOB NOT NULL, appended_at INTEGER NOT NULL, PRIMARY KEY (name, seq))",
];

/** Columns of a message, in the order {@linkcode messageValues} binds them. */
const MESSAGE_COLUMNS = "topic, payload, qos, retain, properties, expires_at, origin";

/** The memory stores whose state the file holds. */
export interface MemoryStores {
  sessions: MemorySessionStore;
  retained: MemoryRetainedStore;
  queues: MemoryQueueStore;
  config: MemoryConfigStore;
  outbox: MemoryOutboxStore;
}

/** What was read back at start-up. */
export interface LoadedState {
  sessions: number;
  retained: number;
  /** Queued QoS 1/2 messages, over every queue. */
  queued: number;
  /** Whether the previous run closed the file (false after a crash or SIGKILL). */
  cleanShutdown: boolean;
}

/** A queue entry to write: new since the last commit, changed, or gone. */
type EntryWrite =
  | { op: "insert"; queueId: string; entry: QueueEntry }
  | { op: "update"; entry: QueueEntry }
  | { op: "delete" };

const DELETE_ENTRY: EntryWrite = { op: "delete" };
const RESOLVED = Promise.resolve();

/** Operations waiting until the commits up to `upTo` are on disk. */
interface SyncWaiter {
  upTo: number;
  resolvers: PromiseWithResolvers<void>;
}

/**
 * Resolvers whose promise never counts as an unhandled rejection: a commit that fails may have no
 * waiter left to hear of it (it is reported to `onWriteError` anyway).
 */
function quietResolvers(): PromiseWithResolvers<void> {
  const resolvers = Promise.withResolvers<void>();
  resolvers.promise.catch(() => {});
  return resolvers;
}

function rejected(error: BackboneError): Promise<void> {
  const promise = Promise.reject(error);
  promise.catch(() => {});
  return promise;
}

function reason(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** The prepared statements of one open file. */
class Statements {
  readonly setMeta: SqliteStatement;
  readonly putSession: SqliteStatement;
  readonly deleteSession: SqliteStatement;
  readonly putRetained: SqliteStatement;
  readonly deleteRetained: SqliteStatement;
  readonly putQueue: SqliteStatement;
  readonly deleteQueue: SqliteStatement;
  readonly insertEntry: SqliteStatement;
  readonly updateEntry: SqliteStatement;
  readonly deleteEntry: SqliteStatement;
  readonly openInbound: SqliteStatement;
  readonly closeInbound: SqliteStatement;
  readonly dropInbound: SqliteStatement;
  readonly putConfig: SqliteStatement;
  readonly deleteConfig: SqliteStatement;
  readonly putOutbox: SqliteStatement;
  readonly appendOutbox: SqliteStatement;
  readonly removeOutbox: SqliteStatement;

  constructor(db: SqliteDatabase) {
    this.setMeta = db.prepare("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)");
    this.putSession = db.prepare(
      "INSERT OR REPLACE INTO sessions (client_id, revision, record) VALUES (?, ?, ?)",
    );
    this.deleteSession = db.prepare("DELETE FROM sessions WHERE client_id = ?");
    this.putRetained = db.prepare(
      `INSERT OR REPLACE INTO retained (${MESSAGE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)`,
    );
    this.deleteRetained = db.prepare("DELETE FROM retained WHERE topic = ?");
    this.putQueue = db.prepare(
      "INSERT OR REPLACE INTO queues (id, key, filters, members, max_messages, max_bytes) " +
        "VALUES (?, ?, ?, ?, ?, ?)",
    );
    this.deleteQueue = db.prepare("DELETE FROM queues WHERE id = ?");
    this.insertEntry = db.prepare(
      `INSERT OR REPLACE INTO entries (seq, queue_id, ${MESSAGE_COLUMNS}, packet_id, released, redelivered) ` +
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    );
    this.updateEntry = db.prepare(
      "UPDATE entries SET packet_id = ?, released = ?, redelivered = ? WHERE seq = ?",
    );
    this.deleteEntry = db.prepare("DELETE FROM entries WHERE seq = ?");
    this.openInbound = db.prepare(
      "INSERT OR IGNORE INTO inbound (client_id, packet_id) VALUES (?, ?)",
    );
    this.closeInbound = db.prepare("DELETE FROM inbound WHERE client_id = ? AND packet_id = ?");
    this.dropInbound = db.prepare("DELETE FROM inbound WHERE client_id = ?");
    this.putConfig = db.prepare(
      "INSERT OR REPLACE INTO config (key, value, revision) VALUES (?, ?, ?)",
    );
    this.deleteConfig = db.prepare("DELETE FROM config WHERE key = ?");
    this.putOutbox = db.prepare("INSERT OR REPLACE INTO outboxes (name, next_seq) VALUES (?, ?)");
    this.appendOutbox = db.prepare(
      "INSERT OR REPLACE INTO outbox (name, seq, payload, appended_at) VALUES (?, ?, ?, ?)",
    );
    this.removeOutbox = db.prepare("DELETE FROM outbox WHERE name = ? AND seq <= ?");
  }
}

/** The database file, observing the memory stores and writing what changed. */
export class SqliteFile implements MemoryStateObserver {
  readonly #path: string;
  readonly #db: SqliteDatabase;
  readonly #policy: SqliteSync;
  readonly #onWriteError: (error: BackboneError) => void;
  #statements: Statements | undefined;
  #stores: MemoryStores | undefined;

  // What changed since the last commit, by key.
  readonly #sessions = new Set<string>();
  readonly #retained = new Set<string>();
  readonly #queues = new Set<string>();
  readonly #entries = new Map<number, EntryWrite>();
  /** Publishers whose open QoS 2 ids were all dropped (written before `#inbound`). */
  readonly #inboundDropped = new Set<string>();
  readonly #inbound = new Map<string, Set<number>>();
  readonly #config = new Set<string>();
  readonly #outboxAppended: { name: string; entry: OutboxEntry }[] = [];
  /** Per outbox, the last entry removed. */
  readonly #outboxRemoved = new Map<string, number>();
  /** Entries whose row says they were handed out. */
  readonly #redeliveredWritten = new WeakSet<QueueEntry>();

  /** Changes not committed yet. */
  #changed = false;
  /** Cancels the scheduled commit, if any. */
  #cancelCommit: (() => void) | undefined;
  /** Operations waiting for the changes not committed yet. */
  #waiting: PromiseWithResolvers<void> | undefined;
  /** The write-ahead log, opened for fsync. */
  #log: FileHandle | undefined;
  /** Commits made, and how many of them are known to be on disk. */
  #commits = 0;
  #synced = 0;
  /** The fsync running, if any. */
  #syncing: Promise<void> | undefined;
  readonly #syncWaiters: SyncWaiter[] = [];
  /** An fsync failed: what was written may not be on disk, so nothing is acknowledged any more. */
  #failure: BackboneError | undefined;
  #closed = false;

  /**
   * @param path The database file
   * @param db The database opened at `path` (this file takes it over and closes it)
   * @param sync How changes become durable
   * @param onWriteError Told of every failed commit (its changes stay to be written by the next)
   *   and of a failed fsync
   */
  constructor(
    path: string,
    db: SqliteDatabase,
    sync: SqliteSync,
    onWriteError: (error: BackboneError) => void,
  ) {
    this.#path = path;
    this.#db = db;
    this.#policy = sync;
    this.#onWriteError = onWriteError;
  }

  /**
   * Sets the file up (tables, pragmas, an exclusive lock so no second process uses it) and checks
   * that this code can read it. Throws when it cannot.
   */
  prepare(): void {
    const db = this.#db;
    // The lock is taken by the first write below and held until close; the WAL index then lives
    // in this process's memory instead of a shared-memory file.
    db.exec("PRAGMA locking_mode = EXCLUSIVE");
    const mode = db.prepare("PRAGMA journal_mode = WAL").all()[0]?.journal_mode;
    if (mode !== "wal") throw new Error(`cannot use a write-ahead log (journal mode: ${mode})`);
    // Commits do not wait for the disk; the log is synced off this thread (see the module doc).
    db.exec("PRAGMA synchronous = NORMAL");
    db.exec("BEGIN IMMEDIATE");
    try {
      for (const table of TABLES) db.exec(table);
      const schema = db.prepare("SELECT value FROM meta WHERE key = 'schema'").all()[0]?.value;
      if (schema === undefined) {
        db.prepare("INSERT INTO meta (key, value) VALUES ('schema', ?)").run(SCHEMA_VERSION);
      } else if (schema !== SCHEMA_VERSION) {
        throw new Error(
          `the file has schema version ${schema}, this version of Perch reads ${SCHEMA_VERSION}`,
        );
      }
      db.exec("COMMIT");
    } catch (error) {
      db.exec("ROLLBACK");
      throw error;
    }
    this.#statements = new Statements(db);
  }

  /**
   * Reads the whole state back into empty memory stores, then marks the file as in use (so the
   * next start knows whether this run closed it). After a crash every queued message counts as
   * handed out: which ones went out in the last moment is unknown, so all are resent with DUP.
   */
  load(stores: MemoryStores): LoadedState {
    const db = this.#db;
    const statements = this.#statements!;
    const meta = new Map(
      db.prepare("SELECT key, value FROM meta").all().map((row) => [row.key, Number(row.value)]),
    );
    const cleanShutdown = (meta.get("clean") ?? 1) === 1;
    db.exec("BEGIN IMMEDIATE");
    try {
      if (!cleanShutdown) db.exec("UPDATE entries SET redelivered = 1 WHERE redelivered = 0");
      statements.setMeta.run("clean", 0);
      db.exec("COMMIT");
    } catch (error) {
      db.exec("ROLLBACK");
      throw error;
    }

    let revision = meta.get("revision") ?? 0;
    const sessions: StoredSession[] = [];
    for (const row of db.prepare("SELECT revision, record FROM sessions").all()) {
      const stored = {
        record: toSessionRecord(String(row.record)),
        revision: Number(row.revision),
      };
      revision = Math.max(revision, stored.revision);
      sessions.push(stored);
    }
    stores.sessions.restore(sessions, revision);

    const retained = db.prepare(`SELECT ${MESSAGE_COLUMNS} FROM retained`).all().map(toMessage);
    stores.retained.restore(retained);

    const entries = new Map<string, QueueEntry[]>();
    let queued = 0;
    for (const row of db.prepare("SELECT * FROM entries ORDER BY seq").all()) {
      const entry: QueueEntry = {
        seq: Number(row.seq),
        message: toMessage(row),
        redelivered: row.redelivered === 1,
        released: row.released === 1,
        packetId: Number(row.packet_id),
        holder: undefined,
      };
      if (entry.redelivered) this.#redeliveredWritten.add(entry);
      const id = String(row.queue_id);
      const list = entries.get(id);
      if (list) list.push(entry);
      else entries.set(id, [entry]);
      queued++;
    }
    for (const row of db.prepare("SELECT * FROM queues").all()) {
      const id = String(row.id);
      stores.queues.restoreQueue({
        key: JSON.parse(String(row.key)) as QueueKey,
        filters: JSON.parse(String(row.filters)),
        members: new Set(JSON.parse(String(row.members))),
        limits: { maxMessages: Number(row.max_messages), maxBytes: Number(row.max_bytes) },
      }, entries.get(id) ?? []);
    }

    const inbound = new Map<string, number[]>();
    for (const row of db.prepare("SELECT client_id, packet_id FROM inbound").all()) {
      const clientId = String(row.client_id);
      const ids = inbound.get(clientId);
      if (ids) ids.push(Number(row.packet_id));
      else inbound.set(clientId, [Number(row.packet_id)]);
    }
    for (const [clientId, ids] of inbound) stores.queues.restoreInbound(clientId, ids);

    let configRevision = meta.get("configRevision") ?? 0;
    const documents: [string, ConfigEntry][] = [];
    for (const row of db.prepare("SELECT key, value, revision FROM config").all()) {
      const entry = { value: row.value as Uint8Array, revision: Number(row.revision) };
      configRevision = Math.max(configRevision, entry.revision);
      documents.push([String(row.key), entry]);
    }
    stores.config.restore(documents, configRevision);

    const outboxes = new Map<string, OutboxEntry[]>();
    for (const row of db.prepare("SELECT * FROM outbox ORDER BY name, seq").all()) {
      const name = String(row.name);
      const entry = {
        seq: Number(row.seq),
        payload: row.payload as Uint8Array,
        appendedAt: Number(row.appended_at),
      };
      const list = outboxes.get(name);
      if (list) list.push(entry);
      else outboxes.set(name, [entry]);
    }
    for (const row of db.prepare("SELECT name, next_seq FROM outboxes").all()) {
      const name = String(row.name);
      stores.outbox.restore(name, outboxes.get(name) ?? [], Number(row.next_seq));
    }
    this.#stores = stores;
    return { sessions: sessions.length, retained: retained.length, queued, cleanShutdown };
  }

  /**
   * Opens the write-ahead log for the fsyncs and syncs it, so that the in-use mark
   * {@linkcode SqliteFile.load} wrote (which also created the log) is on disk before anything is
   * served; syncs the folder too, so that the files' names are.
   */
  async openLog(): Promise<void> {
    this.#log = await open(`${this.#path}-wal`, "r");
    await this.#log.sync();
    const folder = await open(dirname(this.#path), "r");
    try {
      await folder.sync();
    } finally {
      await folder.close();
    }
  }

  /**
   * Resolves once every change made so far is durable, as the sync policy defines it: committed
   * and on disk (full), or at once (batched). Rejects with a {@linkcode BackboneError} when the
   * commit or the fsync fails.
   */
  durable(): Promise<void> {
    if (this.#failure) return rejected(this.#failure);
    if (this.#policy.policy === "batched") return RESOLVED;
    if (this.#changed) {
      if (this.#closed) {
        return rejected(new BackboneError("unavailable", "The SQLite backbone is closed"));
      }
      this.#schedule();
      return (this.#waiting ??= quietResolvers()).promise;
    }
    // Nothing new, but what was committed may not be on disk yet.
    if (this.#synced < this.#commits) return this.#whenSynced(this.#commits);
    return RESOLVED;
  }

  /**
   * Writes what is left (the handed-out state of queued messages included, so that they are sent
   * with DUP after the restart), syncs it and closes the file, marked as closed cleanly.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#cancelCommit?.();
    this.#cancelCommit = undefined;
    await this.#syncing?.catch(() => {}); // A failure is reported by #syncLog.
    if (this.#stores && !this.#failure) {
      this.#stores.queues.markHandedOutRedelivered();
      for (const entry of this.#stores.queues.entries()) {
        if (entry.redelivered && !this.#redeliveredWritten.has(entry)) this.entryChanged(entry);
      }
      if (this.#commit(true)) await this.#syncLog();
    }
    const log = this.#log;
    this.#log = undefined;
    await log?.close();
    this.#db.close();
  }

  // ---- MemoryStateObserver -------------------------------------------------------------------

  sessionChanged(clientId: string): void {
    this.#sessions.add(clientId);
    this.#touch();
  }

  retainedChanged(topic: string): void {
    this.#retained.add(topic);
    this.#touch();
  }

  queueChanged(queueId: string): void {
    this.#queues.add(queueId);
    this.#touch();
  }

  entryAdded(queueId: string, entry: QueueEntry): void {
    this.#entries.set(entry.seq, { op: "insert", queueId, entry });
    this.#touch();
  }

  entryChanged(entry: QueueEntry): void {
    // A pending insert or update writes the entry as it is when it is written.
    if (this.#entries.has(entry.seq)) return;
    this.#entries.set(entry.seq, { op: "update", entry });
    this.#touch();
  }

  entryRemoved(entry: QueueEntry): void {
    if (this.#entries.get(entry.seq)?.op === "insert") this.#entries.delete(entry.seq);
    else {
      this.#entries.set(entry.seq, DELETE_ENTRY);
      this.#touch();
    }
  }

  inboundChanged(clientId: string, packetId: number): void {
    let ids = this.#inbound.get(clientId);
    if (!ids) this.#inbound.set(clientId, ids = new Set());
    ids.add(packetId);
    this.#touch();
  }

  inboundDropped(clientId: string): void {
    this.#inbound.delete(clientId);
    this.#inboundDropped.add(clientId);
    this.#touch();
  }

  configChanged(key: string): void {
    this.#config.add(key);
    this.#touch();
  }

  outboxAppended(name: string, entry: OutboxEntry): void {
    this.#outboxAppended.push({ name, entry });
    this.#touch();
  }

  outboxRemoved(name: string, lastRemoved: number): void {
    this.#outboxRemoved.set(name, lastRemoved);
    this.#touch();
  }

  // ---- writing -------------------------------------------------------------------------------

  #touch(): void {
    this.#changed = true;
    this.#schedule();
  }

  #schedule(): void {
    if (this.#cancelCommit || this.#closed) return;
    const full = this.#policy.policy === "full";
    // With full sync, the fsync running commits what changed meanwhile when it returns.
    if (full && this.#syncing) return;
    const commit = () => {
      this.#cancelCommit = undefined;
      if (this.#commit(false)) void this.#syncLog();
    };
    if (full) {
      const immediate = setImmediate(commit);
      this.#cancelCommit = () => clearImmediate(immediate);
    } else {
      const timer = setTimeout(commit, this.#policy.windowMs);
      this.#cancelCommit = () => clearTimeout(timer);
    }
  }

  /**
   * Commits what changed in one transaction; on failure it all stays to be written next time.
   * The operations waiting for it then wait for the fsync. False when the commit failed.
   */
  #commit(closing: boolean): boolean {
    const waiting = this.#waiting;
    this.#waiting = undefined;
    if (!this.#changed && !closing) {
      if (waiting) this.#syncWaiters.push({ upTo: this.#commits, resolvers: waiting });
      return true;
    }
    const db = this.#db;
    try {
      db.exec("BEGIN IMMEDIATE");
      try {
        this.#write();
        if (closing) this.#statements!.setMeta.run("clean", 1);
        db.exec("COMMIT");
      } catch (error) {
        db.exec("ROLLBACK");
        throw error;
      }
    } catch (error) {
      const failure = new BackboneError(
        "unavailable",
        `Cannot write the SQLite backbone's file: ${reason(error)}`,
        { cause: error },
      );
      this.#onWriteError(failure);
      waiting?.reject(failure);
      return false;
    }
    this.#clear();
    this.#commits++;
    if (waiting) this.#syncWaiters.push({ upTo: this.#commits, resolvers: waiting });
    return true;
  }

  /** Resolves once the commits up to `upTo` are on disk. */
  #whenSynced(upTo: number): Promise<void> {
    const resolvers = quietResolvers();
    this.#syncWaiters.push({ upTo, resolvers });
    void this.#syncLog();
    return resolvers.promise;
  }

  /**
   * Syncs the log unless an fsync is running already (whose return starts the next one), then
   * releases the operations waiting for the commits it covers. Never rejects: a failure is
   * reported and fails the waiters.
   */
  async #syncLog(): Promise<void> {
    if (this.#syncing || !this.#log) return;
    if (this.#synced >= this.#commits) {
      this.#release();
      return;
    }
    const upTo = this.#commits;
    const syncing = this.#log.sync();
    this.#syncing = syncing;
    try {
      await syncing;
    } catch (error) {
      this.#syncing = undefined;
      this.#fail(error);
      return;
    }
    this.#syncing = undefined;
    this.#synced = upTo;
    this.#release();
    if (this.#closed) return;
    if (this.#changed && this.#policy.policy === "full" && !this.#cancelCommit) {
      if (!this.#commit(false)) return;
    }
    await this.#syncLog();
  }

  /** Resolves the waiters whose commits are on disk. */
  #release(): void {
    const waiters = this.#syncWaiters;
    while (waiters.length > 0 && waiters[0].upTo <= this.#synced) {
      waiters.shift()!.resolvers.resolve();
    }
  }

  /** An fsync failed: the operations waiting fail, and so does every later one. */
  #fail(error: unknown): void {
    const failure = new BackboneError(
      "unavailable",
      `Cannot sync the SQLite backbone's file to disk: ${reason(error)}; ` +
        "nothing is acknowledged until the broker is restarted",
      { cause: error },
    );
    this.#failure = failure;
    this.#onWriteError(failure);
    for (const waiter of this.#syncWaiters.splice(0)) waiter.resolvers.reject(failure);
    this.#waiting?.reject(failure);
    this.#waiting = undefined;
  }

  /** Runs every write of the changed keys, reading their state now. */
  #write(): void {
    const s = this.#statements!;
    const stores = this.#stores!;
    if (this.#sessions.size > 0) {
      for (const clientId of this.#sessions) {
        const stored = stores.sessions.peek(clientId);
        if (stored) s.putSession.run(clientId, stored.revision, toJson(stored.record));
        else s.deleteSession.run(clientId);
      }
      s.setMeta.run("revision", stores.sessions.revision);
    }
    for (const topic of this.#retained) {
      const message = stores.retained.peek(topic);
      if (message) s.putRetained.run(...messageValues(message));
      else s.deleteRetained.run(topic);
    }
    for (const id of this.#queues) {
      const queue = stores.queues.peekQueue(id);
      if (!queue) {
        s.deleteQueue.run(id);
        continue;
      }
      s.putQueue.run(
        id,
        JSON.stringify(queue.key),
        JSON.stringify(queue.filters),
        JSON.stringify([...queue.members]),
        queue.limits.maxMessages,
        queue.limits.maxBytes,
      );
    }
    for (const [seq, write] of this.#entries) {
      if (write.op === "delete") {
        s.deleteEntry.run(seq);
        continue;
      }
      const entry = write.entry;
      const redelivered = entry.redelivered ? 1 : 0;
      if (write.op === "insert") {
        s.insertEntry.run(
          seq,
          write.queueId,
          ...messageValues(entry.message),
          entry.packetId,
          entry.released ? 1 : 0,
          redelivered,
        );
      } else s.updateEntry.run(entry.packetId, entry.released ? 1 : 0, redelivered, seq);
    }
    for (const clientId of this.#inboundDropped) s.dropInbound.run(clientId);
    for (const [clientId, ids] of this.#inbound) {
      for (const packetId of ids) {
        if (stores.queues.isInboundOpen(clientId, packetId)) s.openInbound.run(clientId, packetId);
        else s.closeInbound.run(clientId, packetId);
      }
    }
    if (this.#config.size > 0) {
      for (const key of this.#config) {
        const entry = stores.config.peek(key);
        if (entry) s.putConfig.run(key, entry.value, entry.revision);
        else s.deleteConfig.run(key);
      }
      s.setMeta.run("configRevision", stores.config.revision);
    }
    // An entry appended and removed since the last commit is never written.
    for (const { name, entry } of this.#outboxAppended) {
      if (entry.seq > (this.#outboxRemoved.get(name) ?? 0)) {
        s.appendOutbox.run(name, entry.seq, entry.payload, entry.appendedAt);
      }
    }
    for (const [name, lastRemoved] of this.#outboxRemoved) s.removeOutbox.run(name, lastRemoved);
    const names = new Set([
      ...this.#outboxAppended.map((a) => a.name),
      ...this.#outboxRemoved.keys(),
    ]);
    for (const name of names) s.putOutbox.run(name, stores.outbox.nextSeq(name)!);
  }

  /** Forgets what was written, once it is committed. */
  #clear(): void {
    for (const write of this.#entries.values()) {
      if (write.op !== "delete" && write.entry.redelivered) {
        this.#redeliveredWritten.add(write.entry);
      }
    }
    this.#sessions.clear();
    this.#retained.clear();
    this.#queues.clear();
    this.#entries.clear();
    this.#inboundDropped.clear();
    this.#inbound.clear();
    this.#config.clear();
    this.#outboxAppended.length = 0;
    this.#outboxRemoved.clear();
    this.#changed = false;
  }
}

/** A message's column values, in the order of {@linkcode MESSAGE_COLUMNS}. */
function messageValues(message: Message): SqliteValue[] {
  return [
    message.topic,
    message.payload,
    message.qos,
    message.retain ? 1 : 0,
    message.properties === undefined ? null : toJson(message.properties),
    message.expiresAt,
    message.origin,
  ];
}

function toMessage(row: SqliteRow): Message {
  return {
    topic: String(row.topic),
    payload: row.payload as Uint8Array,
    qos: Number(row.qos) as Message["qos"],
    retain: row.retain === 1,
    properties: row.properties === null ? undefined : fromJson(String(row.properties)),
    expiresAt: Number(row.expires_at),
    origin: String(row.origin),
  };
}

/** A session record from its JSON, with every field present (JSON leaves out undefined ones). */
function toSessionRecord(text: string): SessionRecord {
  const json: SessionRecord = fromJson(text);
  return {
    clientId: json.clientId,
    protocolVersion: json.protocolVersion,
    expiryInterval: json.expiryInterval,
    subscriptions: json.subscriptions,
    will: json.will === undefined ? undefined : {
      message: { ...json.will.message, properties: json.will.message.properties },
      delayInterval: json.will.delayInterval,
      messageExpiryInterval: json.will.messageExpiryInterval,
    },
    owner: json.owner,
    disconnectedAt: json.disconnectedAt,
  };
}

/** JSON in which byte arrays (a will's payload, correlation data) are `{"$bytes": base64}`. */
function toJson(value: unknown): string {
  return JSON.stringify(
    value,
    (_key, field) => field instanceof Uint8Array ? { $bytes: field.toBase64() } : field,
  );
}

function fromJson<T>(text: string): T {
  return JSON.parse(text, (_key, field) => {
    if (field === null || typeof field !== "object" || typeof field.$bytes !== "string") {
      return field;
    }
    return Uint8Array.fromBase64(field.$bytes);
  });
}
