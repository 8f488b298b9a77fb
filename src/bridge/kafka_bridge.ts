/**
 * The Kafka bridge: a message sink that turns MQTT messages into Kafka records by its mappings,
 * keeps them in a bounded outbox, and drains the outbox to Kafka in order.
 *
 * - **Routing** (smq's semantics): a publish to `$queue/{topic}` goes to every mapping whose
 *   filter matches `{topic}`, and not to MQTT subscribers; a mapping with `copy` also takes
 *   ordinary publishes matching its filter, which then go to both.
 * - **Nothing acknowledged is lost to a Kafka outage.** Every message taken is appended to the
 *   outbox before the publisher hears back: the backbone's outbox (durable with NATS or sqlite),
 *   or, when the backbone has none, one in memory (not crash-safe, said at start). With a durable
 *   outbox a QoS 1/2 publish is answered once appended; with a memory one, once Kafka has the
 *   record while Kafka is connected, and once appended while it is not. A full outbox answers
 *   "full" (the publisher gets 0x97); QoS 0 is then dropped and counted.
 * - **Order.** One loop reads the outbox in append order and sends one request at a time (linger,
 *   batch bounds), retrying a failed request with a growing delay for as long as Kafka is away, so
 *   records of one key reach their partition in order. Only records Kafka refuses for good (too
 *   large, invalid) are dropped, each counted and logged.
 * - **Mappings** live in one document of the backbone's config store and are watched, so a change
 *   made through any node applies on every node.
 * - **A lost node's outbox** (clustered backbones: its lease ran out, or it left while Kafka was
 *   away) is taken over by one survivor, under a lock, and drained between this node's own
 *   batches until it is empty or its node is back.
 *
 * @module
 */

import type {
  Backbone,
  Lock,
  Outbox,
  OutboxEntry,
  OutboxStore,
  QueueSize,
} from "../backbone/backbone.ts";
import { MemoryOutboxStore } from "../backbone/memory.ts";
import type { MessageSink, Publisher, SinkOutcome, SinkTake } from "../domain/sink.ts";
import type { Message } from "../domain/types.ts";
import { SubscriptionTrie } from "../topic/mod.ts";
import type { Clock, TimerId } from "../util/clock.ts";
import type { Logger } from "../util/logger.ts";
import {
  classifyFailure,
  describeFailure,
  KafkaProducer,
  type KafkaProducerSettings,
} from "./kafka_producer.ts";
import {
  checkMapping,
  decodeMappings,
  encodeMappings,
  type KafkaMapping,
  type KafkaMappingInput,
  type MappingIssue,
  MAPPINGS_KEY,
  MAX_MAPPINGS,
} from "./mapping.ts";
import { type BridgeRecord, decodeEntry, encodeEntry, renderRecord } from "./records.ts";

/** The bridge's settings, as `bridge.kafka` in the configuration holds them (times in ms). */
export interface KafkaBridgeSettings extends KafkaProducerSettings {
  batch: { maxMessages: number; maxBytes: number; linger: number };
  buffer: { maxMessages: number; maxBytes: number };
  /** Mappings of the config file: read-only through the API. */
  mappings: readonly KafkaMappingInput[];
}

/** Where a mapping comes from: the config file (read-only here) or the admin API. */
export type MappingSource = "config" | "api";

/** A mapping and where it comes from. */
export interface KafkaMappingView extends KafkaMapping {
  source: MappingSource;
}

/** Where the link to Kafka stands. */
export type KafkaBridgeState =
  /** Starting: not connected yet, no failure yet. */
  | "connecting"
  /** Kafka took the last connect or request. */
  | "connected"
  /** Kafka cannot be reached; retrying. */
  | "disconnected"
  /** Kafka answered a request with an error that may pass; retrying. */
  | "retrying"
  /** The bridge was closed. */
  | "stopped";

/** The bridge as `/readyz` and the admin API show it. */
export interface KafkaBridgeStatus {
  state: KafkaBridgeState;
  /** Epoch ms of the last state change. */
  since: number;
  /** The failure behind `disconnected` or `retrying`. */
  error: string | undefined;
  brokers: string[];
  /** Whether what waits for Kafka survives a crash of this process. */
  durable: boolean;
  /** Messages taken and not yet in Kafka (by this process, and read back from the outbox). */
  buffered: number;
  mappings: number;
}

/** One mapping's counts. */
export interface MappingStats {
  /** Records Kafka acknowledged. */
  produced: number;
  /** Records Kafka refused for good (dropped, logged). */
  failed: number;
  /** QoS 0 messages dropped because the buffer was full. */
  dropped: number;
  /** QoS 1/2 messages refused because the buffer was full (the publisher got 0x97). */
  refused: number;
  /** Records waiting for Kafka. */
  bufferedMessages: number;
  /** Key and value bytes of those records. */
  bufferedBytes: number;
  /** Age of the oldest of them in seconds; 0 when none waits. */
  oldestBufferedAge: number;
}

/** What a mapping change came to, with the HTTP status of a refusal (400: `issues` say why). */
export type MappingChange<Status extends 400 | 404 | 409 = 400 | 404 | 409> =
  | { ok: true; mapping: KafkaMapping }
  | { ok: false; status: Status; message: string; issues?: MappingIssue[] };

/** What the bridge is made of. */
export interface KafkaBridgeOptions {
  settings: KafkaBridgeSettings;
  /** The backbone, unguarded: its outbox (if any) and config store. */
  backbone: Backbone;
  /** This node's id: it names the node's outbox. */
  nodeId: string;
  clock: Clock;
  logger: Logger;
}

/** How long a survivor holds the right to drain a lost node's outbox (it releases it when done). */
const ADOPTION_LOCK_MS = 10 * 60_000;

/** A lost node's outbox this node drains. */
interface AdoptedOutbox {
  nodeId: string;
  outbox: Outbox;
  lock: Lock;
  /** Entries handed to Kafka so far. */
  sent: number;
}

/** Counts kept per mapping. */
interface Counts {
  produced: number;
  failed: number;
  dropped: number;
  refused: number;
  bufferedMessages: number;
  bufferedBytes: number;
}

/** An entry taken and not yet in Kafka: when, and what each record weighs for its mapping. */
interface Buffered {
  at: number;
  parts: { mapping: string; bytes: number }[];
}

const QUEUE_PREFIX = "$queue/";

/** A refusal or drop is logged the first time and then once per this many. */
const LOG_EVERY = 1000;

function recordBytes(record: BridgeRecord): number {
  return (record.key?.length ?? 0) + record.value.length;
}

/** The Kafka bridge of one node. */
export class KafkaBridge implements MessageSink {
  readonly #settings: KafkaBridgeSettings;
  readonly #backbone: Backbone;
  readonly #nodeId: string;
  readonly #clock: Clock;
  readonly #logger: Logger;

  /** The config file's mappings (checked at start). */
  #configured: KafkaMapping[] = [];
  /** Every mapping in effect: the config file's, then the config store's. */
  #mappings: KafkaMappingView[] = [];
  /** Every mapping, by filter: for `$queue/` publishes. */
  #all = new SubscriptionTrie<KafkaMapping, string>();
  /** Mappings with `copy`: for ordinary publishes. */
  #copies = new SubscriptionTrie<KafkaMapping, string>();
  #counts = new Map<string, Counts>();
  /** Serializes this node's mapping changes (read, change, write). */
  #changes: Promise<unknown> = Promise.resolve();
  #unwatch: (() => void) | undefined;

  #outbox: Outbox | undefined;
  #producer: KafkaProducer | undefined;
  #state: KafkaBridgeState = "connecting";
  #since: number;
  #error: string | undefined;
  /** Entries taken and not yet produced, by seq (bounded by the outbox's bound). */
  #buffered = new Map<number, Buffered>();
  /** Entries in the outbox not yet read by the loop (an estimate: the outbox is the truth). */
  #unread = 0;
  /** Every entry up to this seq is in Kafka (or dropped for good). */
  #producedUpTo = 0;
  /** Memory outbox, Kafka connected: publishers waiting for their entry to reach Kafka, by seq. */
  #waiting = new Map<number, (outcome: SinkOutcome) => void>();
  #refusedTotal = 0;
  #failedTotal = 0;

  /** Lost nodes' outboxes taken over, drained in turn between this node's batches. */
  #adopted: AdoptedOutbox[] = [];
  #unwatchNodes: (() => void) | undefined;

  #loop: Promise<void> | undefined;
  #busy = false;
  #closing = false;
  #stop = new AbortController();
  /** Wakes the loop: new entries, or a change of what it waits for. */
  #wake: (() => void) | undefined;
  /** Wakes close(): the loop finished a batch. */
  #progress: (() => void) | undefined;

  constructor(options: KafkaBridgeOptions) {
    this.#settings = options.settings;
    this.#backbone = options.backbone;
    this.#nodeId = options.nodeId;
    this.#clock = options.clock;
    this.#logger = options.logger.child({ bridge: "kafka" });
    this.#since = this.#clock.now();
  }

  /**
   * Loads the mappings and watches them, opens the outbox and starts the loop, which connects to
   * Kafka in the background: Kafka being away never stops the start.
   *
   * @throws When the backbone cannot open the outbox or read the mappings.
   */
  async start(): Promise<void> {
    this.#configured = this.#settings.mappings.map((input, i) => {
      const checked = checkMapping(input);
      if (checked.issues) {
        const { field, message } = checked.issues[0];
        throw new TypeError(`mappings.${i}.${field}: ${message}`);
      }
      return checked.mapping;
    });
    const config = this.#backbone.config;
    this.#unwatch = config.watch((key, value) => {
      if (key === MAPPINGS_KEY) this.#apply(value, true);
    });
    this.#apply(await config.get(MAPPINGS_KEY), false);
    const { buffer } = this.#settings;
    const store = this.#backbone.outbox;
    if (!store) {
      this.#logger.warn(
        "the backbone has no outbox: messages waiting for Kafka are kept in memory and lost if the process dies",
        { backbone: this.#backbone.kind },
      );
    }
    this.#outbox = await (store ?? new MemoryOutboxStore(this.#clock)).open(
      `kafka.${this.#nodeId}`,
      { maxMessages: buffer.maxMessages, maxBytes: buffer.maxBytes },
    );
    this.#unread = (await this.#outbox.size()).messages;
    if (store && this.#outbox.durable) {
      this.#unwatchNodes = this.#backbone.nodes.onNodeLost((node) => {
        this.#adopt(store, node.id).catch((error) =>
          this.#logger.warn("kafka bridge: cannot take over a lost node's outbox", {
            node: node.id,
            error: describeFailure(error),
          })
        );
      });
    }
    this.#producer = await KafkaProducer.create(this.#settings, this.#logger);
    this.#logger.info("kafka bridge started", {
      brokers: this.#settings.brokers.join(","),
      mappings: this.#mappings.length,
      buffer: this.#outbox.durable ? `${this.#backbone.kind} outbox` : "memory",
      waiting: this.#unread,
    });
    this.#loop = this.#run();
  }

  // ---- the sink ------------------------------------------------------------------------------

  offer(message: Message, publisher: Publisher | undefined): SinkTake | undefined {
    const published = message.topic;
    let topic: string;
    let mappings: SubscriptionTrie<KafkaMapping, string>;
    let exclusive: boolean;
    if (published.startsWith(QUEUE_PREFIX)) {
      topic = published.slice(QUEUE_PREFIX.length);
      mappings = this.#all;
      exclusive = true;
    } else {
      topic = published;
      mappings = this.#copies;
      exclusive = false;
    }
    if (mappings.size === 0 || topic === "" || this.#closing || !this.#outbox) return undefined;
    const matched: KafkaMapping[] = [];
    mappings.match(topic, matched);
    if (matched.length === 0) return undefined;
    const now = this.#clock.now();
    const records = matched.map((mapping) => renderRecord(mapping, message, topic, publisher, now));
    const outcome = this.#take(records, message.qos);
    if (message.qos > 0) return { exclusive, outcome };
    outcome.catch((error) => this.#lostLive(records, error));
    return { exclusive, outcome: undefined };
  }

  async #take(records: BridgeRecord[], qos: number): Promise<SinkOutcome> {
    const outbox = this.#outbox!;
    // Encoded before the first await, within offer()'s turn: a QoS 0 payload may still be a view
    // of the connection's read buffer.
    const appended = await outbox.append(encodeEntry(records));
    if (appended.status === "full") {
      this.#refused(records, qos);
      return "full";
    }
    this.#account(appended.seq, records, this.#clock.now());
    this.#unread++;
    this.#wake?.();
    if (qos === 0 || outbox.durable || this.#state !== "connected") return "stored";
    if (appended.seq <= this.#producedUpTo) return "stored";
    return await new Promise<SinkOutcome>((resolve) => this.#waiting.set(appended.seq, resolve));
  }

  /** A full buffer: counted per mapping, logged the first time and once per thousand. */
  #refused(records: BridgeRecord[], qos: number): void {
    for (const record of records) {
      const counts = this.#counts.get(record.mapping);
      if (counts) qos === 0 ? counts.dropped++ : counts.refused++;
    }
    if (this.#refusedTotal++ % LOG_EVERY === 0) {
      this.#logger.warn("kafka bridge buffer full: message not taken", {
        mappings: records.map((r) => r.mapping).join(","),
        qos,
        refused: this.#refusedTotal,
        state: this.#state,
      });
    }
  }

  /** A QoS 0 message the outbox could not take (it failed): counted as dropped. */
  #lostLive(records: BridgeRecord[], error: unknown): void {
    for (const record of records) {
      const counts = this.#counts.get(record.mapping);
      if (counts) counts.dropped++;
    }
    if (this.#refusedTotal++ % LOG_EVERY === 0) {
      this.#logger.error("kafka bridge outbox failed: QoS 0 message dropped", {
        error: describeFailure(error),
      });
    }
  }

  /** Counts an entry as waiting (once, whoever sees it first: the taker or the loop). */
  #account(seq: number, records: BridgeRecord[], at: number): void {
    if (seq <= this.#producedUpTo || this.#buffered.has(seq)) return;
    const parts = records.map((record) => ({
      mapping: record.mapping,
      bytes: recordBytes(record),
    }));
    this.#buffered.set(seq, { at, parts });
    for (const part of parts) {
      const counts = this.#counts.get(part.mapping);
      if (!counts) continue;
      counts.bufferedMessages++;
      counts.bufferedBytes += part.bytes;
    }
  }

  /** Entries up to `seq` are in Kafka (or dropped for good): no longer waiting. */
  #delivered(entries: OutboxEntry[]): void {
    for (const entry of entries) {
      const buffered = this.#buffered.get(entry.seq);
      if (!buffered) continue;
      this.#buffered.delete(entry.seq);
      for (const part of buffered.parts) {
        const counts = this.#counts.get(part.mapping);
        if (!counts) continue;
        counts.bufferedMessages--;
        counts.bufferedBytes -= part.bytes;
      }
    }
    const last = entries[entries.length - 1].seq;
    this.#producedUpTo = Math.max(this.#producedUpTo, last);
    for (const [seq, resolve] of this.#waiting) {
      if (seq > last) continue;
      this.#waiting.delete(seq);
      resolve("stored");
    }
  }

  // ---- the loop ------------------------------------------------------------------------------

  async #run(): Promise<void> {
    const signal = this.#stop.signal;
    await this.#connect();
    while (!signal.aborted) {
      if (this.#unread <= 0 && this.#adopted.length === 0) {
        await this.#wait();
        continue;
      }
      if (this.#unread > 0) await this.#linger();
      if (signal.aborted) break;
      this.#busy = true;
      try {
        if (this.#unread > 0) await this.#drainBatch();
        if (this.#adopted.length > 0 && !signal.aborted) await this.#drainAdopted();
      } finally {
        this.#busy = false;
        this.#progress?.();
      }
    }
  }

  /** Connects, retrying until Kafka answers or the bridge stops. */
  async #connect(): Promise<void> {
    let delay = this.#settings.retry.initialDelay;
    while (!this.#stop.signal.aborted) {
      try {
        await this.#producer!.connect();
        this.#setState("connected");
        return;
      } catch (error) {
        this.#setState("disconnected", error);
        await this.#sleep(delay);
        delay = Math.min(delay * 2, this.#settings.retry.maxDelay);
      }
    }
  }

  /** Waits for the batch to fill, up to `linger` after the loop found work. */
  async #linger(): Promise<void> {
    const { linger, maxMessages } = this.#settings.batch;
    if (linger <= 0) return;
    const deadline = this.#clock.now() + linger;
    while (this.#unread < maxMessages && !this.#stop.signal.aborted) {
      const left = deadline - this.#clock.now();
      if (left <= 0) return;
      await this.#wait(left);
    }
  }

  /** Reads one batch of entries, sends its records, removes the entries. */
  async #drainBatch(): Promise<void> {
    const outbox = this.#outbox!;
    const entries = await this.#retrying(
      "outbox.read",
      () => outbox.read(this.#settings.batch.maxMessages),
    );
    if (entries === undefined) return;
    this.#unread = entries.length === 0 ? 0 : Math.max(0, this.#unread - entries.length);
    if (entries.length === 0) return;
    const records = this.#decode(entries, (entry, decoded) => {
      this.#account(entry.seq, decoded, entry.appendedAt);
    });
    if (!(await this.#produce(records))) return;
    this.#delivered(entries);
    await this.#retrying("outbox.remove", () => outbox.remove(entries[entries.length - 1].seq));
  }

  /** The records of outbox entries; an entry that cannot be read is logged and dropped. */
  #decode(
    entries: OutboxEntry[],
    onEntry?: (entry: OutboxEntry, records: BridgeRecord[]) => void,
  ): BridgeRecord[] {
    const records: BridgeRecord[] = [];
    for (const entry of entries) {
      let decoded: BridgeRecord[];
      try {
        decoded = decodeEntry(entry.payload);
      } catch (error) {
        this.#logger.error("kafka bridge: an outbox entry cannot be read: dropped", {
          seq: entry.seq,
          error: describeFailure(error),
        });
        continue;
      }
      onEntry?.(entry, decoded);
      records.push(...decoded);
    }
    return records;
  }

  /**
   * Takes over the outbox a lost node left, if it holds anything and no other survivor took it:
   * the loop drains it between this node's own batches.
   */
  async #adopt(store: OutboxStore, nodeId: string): Promise<void> {
    if (this.#closing || nodeId === this.#nodeId) return;
    if (this.#adopted.some((adopted) => adopted.nodeId === nodeId)) return;
    const outbox = await store.find(`kafka.${nodeId}`);
    const waiting = outbox ? (await outbox.size()).messages : 0;
    if (!outbox || waiting === 0) return;
    const lock = await this.#backbone.nodes.lock(`kafka-outbox.${nodeId}`, ADOPTION_LOCK_MS);
    if (!lock) return; // Another survivor drains it.
    if (this.#closing) {
      await lock.release();
      return;
    }
    this.#logger.info("kafka bridge: taking over a lost node's outbox", { node: nodeId, waiting });
    this.#adopted.push({ nodeId, outbox, lock, sent: 0 });
    this.#wake?.();
  }

  /**
   * Hands one batch of the first adopted outbox to Kafka; lets it go once it is empty, or once
   * its node is back (which then drains it itself).
   */
  async #drainAdopted(): Promise<void> {
    const adopted = this.#adopted[0];
    const back = await this.#backbone.nodes.isAlive(adopted.nodeId).catch(() => false);
    const entries = back ? [] : await this.#retrying(
      "outbox.read",
      () => adopted.outbox.read(this.#settings.batch.maxMessages),
    );
    if (entries === undefined) return;
    if (entries.length === 0) {
      this.#adopted.shift();
      await adopted.lock.release().catch(() => {}); // Its TTL ends it otherwise.
      this.#logger.info(
        back
          ? "kafka bridge: a lost node is back and drains its own outbox again"
          : "kafka bridge: a lost node's outbox is drained",
        { node: adopted.nodeId, sent: adopted.sent },
      );
      return;
    }
    if (!(await this.#produce(this.#decode(entries)))) return;
    adopted.sent += entries.length;
    const last = entries[entries.length - 1].seq;
    await this.#retrying("outbox.remove", () => adopted.outbox.remove(last));
  }

  /**
   * Sends records in requests within the batch bounds, in order, each until Kafka takes it; false
   * when the bridge stopped first.
   */
  async #produce(records: BridgeRecord[]): Promise<boolean> {
    const { maxMessages, maxBytes } = this.#settings.batch;
    let start = 0;
    while (start < records.length) {
      let end = start;
      let bytes = 0;
      while (end < records.length && end - start < maxMessages) {
        const size = recordBytes(records[end]);
        if (end > start && bytes + size > maxBytes) break;
        bytes += size;
        end++;
      }
      if (!(await this.#send(records.slice(start, end)))) return false;
      start = end;
    }
    return true;
  }

  /** Sends one request until Kafka takes it or refuses its records for good; false if stopped. */
  async #send(records: BridgeRecord[]): Promise<boolean> {
    let delay = this.#settings.retry.initialDelay;
    while (!this.#stop.signal.aborted) {
      try {
        await this.#producer!.send(records);
        this.#setState("connected");
        for (const record of records) {
          const counts = this.#counts.get(record.mapping);
          if (counts) counts.produced++;
        }
        return true;
      } catch (error) {
        if (this.#stop.signal.aborted) return false;
        const failure = classifyFailure(error);
        if (failure === "record") {
          // Find the records Kafka refuses by sending them one by one; the others go through.
          if (records.length > 1) {
            for (const record of records) if (!(await this.#send([record]))) return false;
          } else this.#dropped(records[0], error);
          return true;
        }
        if (failure === "producer") {
          this.#logger.warn(
            "kafka bridge: the producer's sequence is out of step with Kafka; starting a new producer (records sent again may be stored twice)",
            { error: describeFailure(error) },
          );
          await this.#producer!.renew();
          await this.#connect();
          continue;
        }
        this.#setState(failure === "unreachable" ? "disconnected" : "retrying", error);
        await this.#sleep(delay);
        delay = Math.min(delay * 2, this.#settings.retry.maxDelay);
      }
    }
    return false;
  }

  /** A record Kafka refuses for good: counted and logged (the first, then one per thousand). */
  #dropped(record: BridgeRecord, error: unknown): void {
    const counts = this.#counts.get(record.mapping);
    if (counts) counts.failed++;
    if (this.#failedTotal++ % LOG_EVERY === 0) {
      this.#logger.error("kafka refused a record for good: dropped", {
        mapping: record.mapping,
        kafkaTopic: record.topic,
        error: describeFailure(error),
        failed: this.#failedTotal,
      });
    }
  }

  /** Runs an outbox call until it succeeds (the backbone may be away too); undefined if stopped. */
  async #retrying<T>(operation: string, call: () => Promise<T>): Promise<T | undefined> {
    let delay = this.#settings.retry.initialDelay;
    let logged = false;
    while (!this.#stop.signal.aborted) {
      try {
        return await call();
      } catch (error) {
        if (!logged) {
          this.#logger.error("kafka bridge outbox failed; retrying", {
            operation,
            error: describeFailure(error),
          });
          logged = true;
        }
        await this.#sleep(delay);
        delay = Math.min(delay * 2, this.#settings.retry.maxDelay);
      }
    }
    return undefined;
  }

  #setState(state: KafkaBridgeState, error?: unknown): void {
    this.#error = error === undefined ? undefined : describeFailure(error);
    if (state === this.#state) return;
    this.#state = state;
    this.#since = this.#clock.now();
    const fields = {
      brokers: this.#settings.brokers.join(","),
      buffered: this.#buffered.size,
      ...(this.#error === undefined ? {} : { error: this.#error }),
    };
    if (state === "connected") this.#logger.info("kafka bridge connected", fields);
    else if (state === "disconnected") this.#logger.warn("kafka bridge disconnected", fields);
    else if (state === "retrying") this.#logger.warn("kafka bridge retrying", fields);
    if (state !== "connected") {
      // Kafka is away: publishers waiting on the memory buffer are answered, their messages kept.
      for (const resolve of this.#waiting.values()) resolve("stored");
      this.#waiting.clear();
    }
  }

  /** Waits until woken (new entries) or `ms` passed or the bridge stops. */
  #wait(ms?: number): Promise<void> {
    return new Promise((resolve) => {
      let timer: TimerId | undefined;
      const done = () => {
        if (timer !== undefined) this.#clock.clearTimeout(timer);
        this.#stop.signal.removeEventListener("abort", done);
        if (this.#wake === done) this.#wake = undefined;
        resolve();
      };
      this.#wake = done;
      this.#stop.signal.addEventListener("abort", done);
      if (ms !== undefined) timer = this.#clock.setTimeout(done, ms);
    });
  }

  /** Waits `ms` (a retry's delay) or until the bridge stops; new entries do not cut it short. */
  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        this.#clock.clearTimeout(timer);
        this.#stop.signal.removeEventListener("abort", done);
        resolve();
      };
      const timer = this.#clock.setTimeout(done, ms);
      this.#stop.signal.addEventListener("abort", done);
    });
  }

  /**
   * Stops: takes no more messages, gives the loop up to `graceMs` to hand Kafka what waits (while
   * Kafka is connected), then closes the producer. What is left stays in a durable outbox for the
   * next start, or is lost with a memory one; the log line says which and how much.
   */
  async close(graceMs = 0): Promise<void> {
    if (this.#closing) return;
    this.#closing = true;
    this.#unwatch?.();
    this.#unwatchNodes?.();
    const deadline = this.#clock.now() + graceMs;
    while (
      (this.#unread > 0 || this.#busy) && this.#state === "connected" &&
      this.#clock.now() < deadline
    ) {
      await new Promise<void>((resolve) => {
        const timer = this.#clock.setTimeout(resolve, Math.max(1, deadline - this.#clock.now()));
        this.#progress = () => {
          this.#clock.clearTimeout(timer);
          resolve();
        };
      });
    }
    this.#progress = undefined;
    this.#stop.abort();
    await this.#producer?.disconnect();
    await this.#loop;
    for (const adopted of this.#adopted.splice(0)) await adopted.lock.release().catch(() => {});
    for (const resolve of this.#waiting.values()) resolve("stored");
    this.#waiting.clear();
    const left = this.#outbox ? (await this.#outbox.size().catch(() => undefined))?.messages : 0;
    this.#setState("stopped");
    const durable = this.#outbox?.durable ?? false;
    const fields = { waiting: left ?? "unknown" };
    if (left === 0 || durable) {
      this.#logger.info(
        durable && left !== 0
          ? "kafka bridge stopped: what waits for Kafka stays in the outbox for the next start"
          : "kafka bridge stopped",
        fields,
      );
    } else {
      this.#logger.warn(
        "kafka bridge stopped: messages waiting for Kafka in memory are lost",
        fields,
      );
    }
  }

  // ---- mappings ------------------------------------------------------------------------------

  /** Applies the mappings document (at start, and after every change from any node). */
  #apply(value: Uint8Array | undefined, changed: boolean): void {
    const { mappings: stored, problems } = decodeMappings(value);
    for (const problem of problems) {
      this.#logger.error("kafka bridge: a mapping in the config store is not valid: ignored", {
        problem,
      });
    }
    const names = new Set(this.#configured.map((m) => m.name));
    const mappings: KafkaMappingView[] = this.#configured.map((m) => ({ ...m, source: "config" }));
    for (const mapping of stored) {
      if (names.has(mapping.name)) {
        this.#logger.warn(
          "kafka bridge: a mapping in the config store has the name of one in the config file: ignored",
          { mapping: mapping.name },
        );
      } else mappings.push({ ...mapping, source: "api" });
    }
    const all = new SubscriptionTrie<KafkaMapping, string>();
    const copies = new SubscriptionTrie<KafkaMapping, string>();
    const counts = new Map<string, Counts>();
    for (const mapping of mappings) {
      all.add(mapping.filter, mapping.name, mapping);
      if (mapping.copy) copies.add(mapping.filter, mapping.name, mapping);
      counts.set(
        mapping.name,
        this.#counts.get(mapping.name) ?? {
          produced: 0,
          failed: 0,
          dropped: 0,
          refused: 0,
          bufferedMessages: 0,
          bufferedBytes: 0,
        },
      );
    }
    this.#mappings = mappings;
    this.#all = all;
    this.#copies = copies;
    this.#counts = counts;
    if (changed) this.#logger.info("kafka bridge mappings applied", { mappings: mappings.length });
  }

  /** Every mapping: the config file's, then the API's in the order they were added. */
  mappings(): KafkaMappingView[] {
    return this.#mappings.map((mapping) => ({ ...mapping }));
  }

  /** One mapping by name. */
  mapping(name: string): KafkaMappingView | undefined {
    const found = this.#mappings.find((mapping) => mapping.name === name);
    return found && { ...found };
  }

  /** Every mapping's counts, by name (one pass over what waits, for the oldest ages). */
  stats(): Map<string, MappingStats> {
    const oldest = new Map<string, number>();
    for (const buffered of this.#buffered.values()) {
      for (const { mapping } of buffered.parts) {
        const at = oldest.get(mapping);
        if (at === undefined || buffered.at < at) oldest.set(mapping, buffered.at);
      }
    }
    const now = this.#clock.now();
    const stats = new Map<string, MappingStats>();
    for (const [name, counts] of this.#counts) {
      const at = oldest.get(name);
      stats.set(name, {
        ...counts,
        oldestBufferedAge: at === undefined ? 0 : Math.max(0, now - at) / 1000,
      });
    }
    return stats;
  }

  /** Where the link to Kafka stands. */
  status(): KafkaBridgeStatus {
    return {
      state: this.#state,
      since: this.#since,
      error: this.#state === "connected" ? undefined : this.#error,
      brokers: [...this.#settings.brokers],
      durable: this.#outbox?.durable ?? false,
      buffered: this.#buffered.size,
      mappings: this.#mappings.length,
    };
  }

  /** What the outbox holds, as it counts it (entries of earlier runs included). */
  outboxSize(): Promise<QueueSize> {
    return this.#outbox ? this.#outbox.size() : Promise.resolve({ messages: 0, bytes: 0 });
  }

  /** Adds a mapping (409 when the name is taken). */
  create(input: KafkaMappingInput): Promise<MappingChange<400 | 409>> {
    return this.#change<409>(input, (mappings, mapping) => {
      if (this.#inConfig(mapping.name) || mappings.some((m) => m.name === mapping.name)) {
        return { status: 409, message: `A mapping named "${mapping.name}" exists` };
      }
      if (this.#configured.length + mappings.length >= MAX_MAPPINGS) {
        return {
          status: 409,
          message: `The bridge holds ${MAX_MAPPINGS} mappings, the most it takes`,
        };
      }
      return [...mappings, mapping];
    });
  }

  /** Replaces a mapping of the API (404 when there is none of that name). */
  update(input: KafkaMappingInput): Promise<MappingChange<400 | 404 | 409>> {
    return this.#change<404 | 409>(input, (mappings, mapping) => {
      if (this.#inConfig(mapping.name)) return this.#readOnly(mapping.name);
      const i = mappings.findIndex((m) => m.name === mapping.name);
      if (i < 0) return { status: 404, message: `No mapping named "${mapping.name}"` };
      return mappings.with(i, mapping);
    });
  }

  /** Removes a mapping of the API (404 when there is none of that name). */
  delete(name: string): Promise<MappingChange<404 | 409>> {
    return this.#serially(async (): Promise<MappingChange<404 | 409>> => {
      if (this.#inConfig(name)) return { ok: false, ...this.#readOnly(name) };
      const current = await this.#read();
      const removed = current.find((m) => m.name === name);
      if (!removed) return { ok: false, status: 404, message: `No mapping named "${name}"` };
      await this.#backbone.config.put(
        MAPPINGS_KEY,
        encodeMappings(current.filter((m) => m !== removed)),
      );
      this.#logger.info("kafka bridge mapping removed", { mapping: name });
      return { ok: true, mapping: removed };
    });
  }

  #inConfig(name: string): boolean {
    return this.#configured.some((m) => m.name === name);
  }

  #readOnly(name: string): { status: 409; message: string } {
    return {
      status: 409,
      message:
        `The mapping "${name}" is in the config file (bridge.kafka.mappings): change it there`,
    };
  }

  /** Checks `input`, then writes the list `edit` makes of the stored one (or its refusal). */
  #change<Refusal extends 404 | 409>(
    input: KafkaMappingInput,
    edit: (
      mappings: KafkaMapping[],
      mapping: KafkaMapping,
    ) => KafkaMapping[] | { status: Refusal; message: string },
  ): Promise<MappingChange<400 | Refusal>> {
    const checked = checkMapping(input);
    if (checked.issues) {
      const summary = checked.issues.map((i) => `${i.field}: ${i.message}`).join("; ");
      return Promise.resolve({
        ok: false,
        status: 400,
        message: `Invalid request: ${summary}`,
        issues: checked.issues,
      });
    }
    const mapping = checked.mapping;
    return this.#serially(async () => {
      const next = edit(await this.#read(), mapping);
      if (!Array.isArray(next)) return { ok: false as const, ...next };
      await this.#backbone.config.put(MAPPINGS_KEY, encodeMappings(next));
      this.#logger.info("kafka bridge mapping written", {
        mapping: mapping.name,
        filter: mapping.filter,
        kafkaTopic: mapping.kafkaTopic,
      });
      return { ok: true, mapping: { ...mapping } };
    });
  }

  /** The stored mappings, fresh from the config store (another node may have changed them). */
  async #read(): Promise<KafkaMapping[]> {
    return decodeMappings(await this.#backbone.config.get(MAPPINGS_KEY)).mappings;
  }

  #serially<T>(change: () => Promise<T>): Promise<T> {
    const run = this.#changes.then(change);
    this.#changes = run.catch(() => {});
    return run;
  }
}
