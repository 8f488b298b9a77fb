/**
 * Outboxes on JetStream: one stream per outbox (`{prefix}-outbox-{hash}`, one subject
 * `{prefix}.outbox.{hash}`), with the outbox's bounds as the stream's `max_msgs` and `max_bytes`
 * and discard-new, so the server itself refuses an append past them (error 10077) and nothing is
 * dropped silently. Entries are read in order by direct get from a sequence (a batch per request,
 * no consumer state on the server) and removed by purging below a sequence.
 *
 * `max_bytes` counts what the server stores per message: the payload plus its subject and some
 * tens of bytes of overhead, so an outbox holds somewhat fewer payload bytes than its bound.
 *
 * @module
 */

import type { JetStreamManager } from "@nats-io/jetstream";
import type {
  Outbox,
  OutboxAppend,
  OutboxEntry,
  OutboxLimits,
  OutboxStore,
  QueueSize,
} from "../src/mod.ts";
import { guarded, shortHash } from "./names.ts";
import type { NatsShared } from "./nats_parts.ts";

/** JetStream's "maximum messages/bytes exceeded" (a discard-new stream at its limits). */
const LIMIT_EXCEEDED = 10077;

function isFull(error: unknown): boolean {
  const e = error as { code?: number; message?: string };
  return e?.code === LIMIT_EXCEEDED && /maximum (messages|bytes) exceeded/.test(e.message ?? "");
}

function isStreamNotFound(error: unknown): boolean {
  return /stream not found|10059/i.test(String(error));
}

/** Whether a direct get found nothing at or after the sequence asked for. */
function isNotFound(error: unknown): boolean {
  return /message not found|404/.test(error instanceof Error ? error.message : String(error));
}

/** The outboxes of a NATS backbone. */
export class NatsOutboxStore implements OutboxStore {
  readonly #shared: NatsShared;
  readonly #jsm: JetStreamManager;
  readonly #replicas: number;
  readonly #storage: "file" | "memory";

  constructor(
    shared: NatsShared,
    jsm: JetStreamManager,
    settings: { replicas: number; storage: "file" | "memory" },
  ) {
    this.#shared = shared;
    this.#jsm = jsm;
    this.#replicas = settings.replicas;
    this.#storage = settings.storage;
  }

  /** The stream and subject of the outbox `name`. */
  #names(name: string): { stream: string; subject: string } {
    const prefix = this.#shared.prefix;
    const hash = shortHash(`outbox\n${name}`);
    return { stream: `${prefix}-outbox-${hash}`, subject: `${prefix}.outbox.${hash}` };
  }

  find(name: string): Promise<Outbox | undefined> {
    return guarded("outbox.find", async () => {
      const { stream, subject } = this.#names(name);
      try {
        const info = await this.#jsm.streams.info(stream);
        const first = Math.max(1, info.state.first_seq);
        return new NatsOutbox(this.#shared, this.#jsm, stream, subject, first);
      } catch (error) {
        if (isStreamNotFound(error)) return undefined;
        throw error;
      }
    });
  }

  open(name: string, limits: OutboxLimits): Promise<Outbox> {
    return guarded("outbox.open", async () => {
      const { stream, subject } = this.#names(name);
      const bounds = { max_msgs: limits.maxMessages, max_bytes: limits.maxBytes };
      let first: number;
      try {
        const info = await this.#jsm.streams.info(stream);
        if (
          info.config.max_msgs !== bounds.max_msgs || info.config.max_bytes !== bounds.max_bytes
        ) {
          await this.#jsm.streams.update(stream, { ...info.config, ...bounds });
        }
        first = info.state.first_seq;
      } catch (error) {
        if (!isStreamNotFound(error)) throw error;
        await this.#jsm.streams.add({
          name: stream,
          subjects: [subject],
          retention: "limits" as never,
          discard: "new" as never,
          storage: this.#storage as never,
          num_replicas: this.#replicas,
          allow_direct: true,
          ...bounds,
        });
        first = 1;
      }
      return new NatsOutbox(this.#shared, this.#jsm, stream, subject, Math.max(1, first));
    });
  }
}

/** One outbox: a stream read from a sequence on. */
class NatsOutbox implements Outbox {
  /** Entries live in NATS: they survive this process (and, with file storage, NATS restarts). */
  readonly durable = true;
  readonly #shared: NatsShared;
  readonly #jsm: JetStreamManager;
  readonly #stream: string;
  readonly #subject: string;
  /** The sequence the next read starts from. */
  #next: number;

  constructor(
    shared: NatsShared,
    jsm: JetStreamManager,
    stream: string,
    subject: string,
    first: number,
  ) {
    this.#shared = shared;
    this.#jsm = jsm;
    this.#stream = stream;
    this.#subject = subject;
    this.#next = first;
  }

  append(payload: Uint8Array): Promise<OutboxAppend> {
    return guarded("outbox.append", async () => {
      try {
        const ack = await this.#shared.js.publish(this.#subject, payload, {
          timeout: this.#shared.timeoutMs,
        });
        return { status: "stored", seq: ack.seq };
      } catch (error) {
        if (isFull(error)) return { status: "full" };
        throw error;
      }
    });
  }

  read(max: number): Promise<OutboxEntry[]> {
    return guarded("outbox.read", async () => {
      const entries: OutboxEntry[] = [];
      try {
        const batch = await this.#jsm.direct.getBatch(this.#stream, {
          seq: this.#next,
          batch: max,
        });
        for await (const stored of batch) {
          entries.push({
            seq: stored.seq,
            payload: stored.data,
            appendedAt: stored.time.getTime(),
          });
        }
      } catch (error) {
        if (!isNotFound(error)) throw error;
      }
      if (entries.length > 0) this.#next = entries[entries.length - 1].seq + 1;
      return entries;
    });
  }

  remove(upTo: number): Promise<void> {
    return guarded("outbox.remove", async () => {
      await this.#jsm.streams.purge(this.#stream, { seq: upTo + 1 });
    });
  }

  size(): Promise<QueueSize> {
    return guarded("outbox.size", async () => {
      const { state } = await this.#jsm.streams.info(this.#stream);
      return { messages: state.messages, bytes: state.bytes };
    });
  }
}
