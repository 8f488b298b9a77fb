/**
 * JetStream KV buckets as the NATS backbone uses them: opened or created with the backbone's
 * replicas and storage, writes that carry a per-message TTL or an expected revision (which the KV
 * client's own calls do not), delete markers that expire, a snapshot of every live entry, and a
 * {@linkcode BucketMirror} that follows a bucket with a watch so that a node can answer reads
 * from memory and wait until its own writes are visible there.
 *
 * @module
 */

import type { MsgHdrs } from "@nats-io/nats-core";
import { headers } from "@nats-io/nats-core";
import type { JetStreamClient } from "@nats-io/jetstream";
import { type KV, type KvEntry, Kvm, KvWatchInclude } from "@nats-io/kv";
import { isNoResponders, isTransient, isWrongSequence, retrying, ttlSeconds } from "./names.ts";

/** How long a delete marker stays before the server removes it (and with it the key). */
export const MARKER_TTL_MS = 60_000;

/** What every bucket of one backbone shares. */
export interface BucketSettings {
  replicas: number;
  storage: "file" | "memory";
  timeoutMs: number;
}

/**
 * How long setting up a stream or bucket may keep trying: four request timeouts, as a create that
 * another front-end makes at the same moment can leave one request unanswered.
 */
export function setupBudgetMs(timeoutMs: number): number {
  return 4 * timeoutMs;
}

/** A KV bucket with the writes the backbone needs beyond the KV client's. */
export class Bucket {
  readonly kv: KV;
  readonly name: string;
  readonly #js: JetStreamClient;
  readonly #timeoutMs: number;

  constructor(kv: KV, name: string, js: JetStreamClient, timeoutMs: number) {
    this.kv = kv;
    this.name = name;
    this.#js = js;
    this.#timeoutMs = timeoutMs;
  }

  /**
   * Opens a bucket, creating it when absent. Every bucket allows per-message TTLs (so delete
   * markers and locks expire); `ttlMs` expires every value that is not written again.
   */
  static async open(
    js: JetStreamClient,
    name: string,
    settings: BucketSettings,
    ttlMs = 0,
  ): Promise<Bucket> {
    const kvm = new Kvm(js);
    // Creating a bucket that exists with the same settings opens it, so a create may be repeated.
    const kv = await retrying(
      () =>
        kvm.create(
          name,
          {
            history: 1,
            replicas: settings.replicas,
            storage: settings.storage === "memory" ? "memory" : "file",
            markerTTL: MARKER_TTL_MS,
            ...(ttlMs > 0 ? { ttl: ttlMs } : {}),
            timeout: settings.timeoutMs,
          } as Parameters<Kvm["create"]>[1],
        ),
      isTransient,
      setupBudgetMs(settings.timeoutMs),
    );
    return new Bucket(kv, name, js, settings.timeoutMs);
  }

  #subject(key: string): string {
    return `$KV.${this.name}.${key}`;
  }

  /**
   * Writes a value; with `expected` only if the key's revision is that (0: absent), with `ttlMs`
   * it expires. The new revision, or undefined when the expected revision did not match.
   */
  async write(
    key: string,
    value: Uint8Array,
    options: { expected?: number; ttlMs?: number; headers?: MsgHdrs } = {},
  ): Promise<number | undefined> {
    try {
      // Without responders nothing was stored: sent again until the stream's interest is known
      // (a bucket just created through another server, a stream electing its leader).
      const ack = await retrying(
        () =>
          this.#js.publish(this.#subject(key), value, {
            timeout: this.#timeoutMs,
            headers: options.headers,
            ...(options.ttlMs !== undefined ? { ttl: ttlSeconds(options.ttlMs) } : {}),
            ...(options.expected !== undefined
              ? { expect: { lastSubjectSequence: options.expected } }
              : {}),
          }),
        isNoResponders,
        this.#timeoutMs,
      );
      return ack.seq;
    } catch (error) {
      if (options.expected !== undefined && isWrongSequence(error)) return undefined;
      throw error;
    }
  }

  /**
   * Creates a key that is absent (never written, deleted, or expired); the revision, or undefined
   * when it holds a value.
   */
  async create(key: string, value: Uint8Array, ttlMs?: number): Promise<number | undefined> {
    const created = await this.write(key, value, { expected: 0, ttlMs });
    if (created !== undefined) return created;
    // A delete marker holds the key's last revision: write over it.
    const entry = await this.kv.get(key);
    if (entry && entry.operation === "PUT") return undefined;
    return await this.write(key, value, { expected: entry?.revision ?? 0, ttlMs });
  }

  /**
   * Deletes a key with a marker that expires; with `expected`, only at that revision. The
   * marker's revision, or undefined when the expected revision did not match.
   */
  delete(key: string, expected?: number): Promise<number | undefined> {
    const h = headers();
    h.set("KV-Operation", "DEL");
    return this.write(key, new Uint8Array(0), { expected, ttlMs: MARKER_TTL_MS, headers: h });
  }

  /** The live entry of a key (not a delete marker), or undefined. */
  async get(key: string): Promise<KvEntry | undefined> {
    const entry = await this.kv.get(key);
    return entry && entry.operation === "PUT" ? entry : undefined;
  }

  /**
   * The keys matching `filter` (a KV key with wildcards, not `>` alone) that the bucket holds a
   * message for: live entries and delete markers not yet expired. One request, from the stream's
   * subjects.
   */
  async keys(filter: string): Promise<string[]> {
    // Not `kv.keys()`: it makes an ephemeral consumer per call, which the server keeps until it
    // has been idle a while; a burst of session resumes (each lists its open QoS 2 ids) met the
    // server's consumer limit of the stream (1,000) and was refused.
    const jsm = await this.#js.jetstreamManager();
    const prefix = `$KV.${this.name}.`;
    const info = await jsm.streams.info(`KV_${this.name}`, {
      subjects_filter: `${prefix}${filter}`,
    });
    return Object.keys(info.state.subjects ?? {}).map((subject) => subject.slice(prefix.length));
  }

  /**
   * Every live entry whose key matches `filter` (a KV key with wildcards): for the whole bucket
   * one watch of last values, for a part of it its keys (from the stream's subjects) and then
   * their values.
   */
  async snapshot(filter = ">"): Promise<KvEntry[]> {
    if (filter !== ">") {
      const keys = await this.keys(filter);
      const entries = await Promise.all(keys.map((key) => this.get(key)));
      return entries.filter((entry) => entry !== undefined);
    }
    const status = await this.kv.status();
    if (status.values === 0) return [];
    const watch = await this.kv.watch({ key: filter, include: KvWatchInclude.LastValue });
    const entries: KvEntry[] = [];
    const timer = setTimeout(() => watch.stop(), this.#timeoutMs);
    try {
      for await (const entry of watch) {
        if (entry.operation === "PUT") entries.push(entry);
        if (entry.delta === 0) break;
      }
    } finally {
      clearTimeout(timer);
      watch.stop();
    }
    return entries;
  }
}

/**
 * Follows a bucket with a watch: `apply` sees every entry (delete markers too), first the last
 * value of every key, then each change. `start()` resolves once the first part is applied, and
 * `reached(revision)` once a write of this node is.
 */
export class BucketMirror {
  readonly #bucket: Bucket;
  readonly #apply: (entry: KvEntry) => void;
  readonly #timeoutMs: number;
  #revision = 0;
  #waiters: { revision: number; resolve: () => void }[] = [];
  #stop: (() => void) | undefined;

  constructor(bucket: Bucket, apply: (entry: KvEntry) => void, timeoutMs: number) {
    this.#bucket = bucket;
    this.#apply = apply;
    this.#timeoutMs = timeoutMs;
  }

  async start(): Promise<void> {
    const kv = this.#bucket.kv;
    // Both only read, so they may be repeated while a new bucket settles in the cluster (a watch
    // whose creation went unanswered is removed by the server once idle).
    const [status, watch] = await retrying(
      async () => [await kv.status(), await kv.watch({ include: KvWatchInclude.LastValue })],
      isTransient,
      setupBudgetMs(this.#timeoutMs),
    );
    this.#stop = () => watch.stop();
    const loaded = Promise.withResolvers<void>();
    if (status.values === 0) loaded.resolve();
    (async () => {
      for await (const entry of watch) {
        this.#apply(entry);
        if (entry.revision > this.#revision) this.#revision = entry.revision;
        if (entry.delta === 0) loaded.resolve();
        this.#wake();
      }
    })().catch(() => {}).finally(() => loaded.resolve());
    const timer = setTimeout(
      () => loaded.reject(new Error(`bucket ${this.#bucket.name}: the watch did not load`)),
      this.#timeoutMs,
    );
    try {
      await loaded.promise;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Resolves once the watch applied `revision` (or anything later). */
  reached(revision: number): Promise<void> {
    if (this.#revision >= revision) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push({ revision, resolve }));
  }

  stop(): void {
    this.#stop?.();
    for (const waiter of this.#waiters) waiter.resolve();
    this.#waiters = [];
  }

  #wake(): void {
    if (this.#waiters.length === 0) return;
    const waiting: { revision: number; resolve: () => void }[] = [];
    for (const waiter of this.#waiters) {
      if (waiter.revision <= this.#revision) waiter.resolve();
      else waiting.push(waiter);
    }
    this.#waiters = waiting;
  }
}
