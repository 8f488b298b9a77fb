/**
 * The server's storage: topics of partitions, each an append-only log of the record batches
 * producers sent (kept as received, with the broker's base offset written in, so Fetch hands back
 * what was produced) and of their decoded records, plus the idempotent-producer state Kafka keeps
 * per partition: each producer id's epoch and the sequence ranges of its last five batches.
 *
 * @module
 */

import { ErrorCode } from "./protocol.ts";
import type { BatchHeader, BatchRecord, KafkaHeader } from "./records.ts";

/** A record as stored, with the offset the server gave it. */
export interface KafkaRecord {
  topic: string;
  partition: number;
  offset: number;
  timestamp: number;
  key: Uint8Array | null;
  value: Uint8Array | null;
  headers: KafkaHeader[];
  /** The batch's producer id and epoch (-1 when the producer is not idempotent). */
  producerId: number;
  producerEpoch: number;
  /** This record's sequence number (-1 when the producer is not idempotent). */
  sequence: number;
  /** The batch's compression codec (0 none, 1 gzip). */
  compression: number;
}

/** A stored batch: its bytes with the assigned base offset, and its offset range. */
export interface StoredBatch {
  baseOffset: number;
  lastOffset: number;
  bytes: Uint8Array;
}

/** Batches Kafka remembers per producer for spotting a retried batch (max.in.flight is 5). */
const PRODUCER_BATCHES_KEPT = 5;

interface ProducerBatch {
  firstSequence: number;
  lastSequence: number;
  baseOffset: number;
}

interface ProducerState {
  epoch: number;
  batches: ProducerBatch[];
}

/** What appending a batch came to: its base offset (the original one for a duplicate). */
export type AppendResult =
  | { ok: true; baseOffset: number; duplicate: boolean }
  | { ok: false; errorCode: number; message: string };

/** Sequence numbers wrap from 2^31-1 to 0. */
function nextSequence(sequence: number, step: number): number {
  return (sequence + step) % 2 ** 31;
}

/** One partition's log. */
export class PartitionLog {
  readonly topic: string;
  readonly index: number;
  readonly batches: StoredBatch[] = [];
  readonly records: KafkaRecord[] = [];
  #producers = new Map<number, ProducerState>();

  constructor(topic: string, index: number) {
    this.topic = topic;
    this.index = index;
  }

  /** The offset the next record gets: the high watermark (every write is committed at once). */
  get highWatermark(): number {
    return this.records.length;
  }

  /**
   * Appends a checked, decoded batch, first applying Kafka's idempotent-producer rules: an older
   * epoch is INVALID_PRODUCER_EPOCH; a batch whose sequence range matches one of the producer's last
   * five is a retry, answered with its original offset and not stored again; otherwise the first
   * sequence must follow the last one (or be 0 with a new epoch), else
   * OUT_OF_ORDER_SEQUENCE_NUMBER. A producer id this partition has no state for is accepted at any
   * sequence, as Kafka does since KIP-360.
   */
  append(batch: BatchHeader, decoded: BatchRecord[]): AppendResult {
    const idempotent = batch.producerId >= 0;
    const state = idempotent ? this.#producers.get(batch.producerId) : undefined;
    const firstSequence = batch.baseSequence;
    const lastSequence = nextSequence(firstSequence, batch.lastOffsetDelta);
    if (state) {
      if (batch.producerEpoch < state.epoch) {
        return {
          ok: false,
          errorCode: ErrorCode.INVALID_PRODUCER_EPOCH,
          message: `epoch ${batch.producerEpoch} is older than ${state.epoch}`,
        };
      }
      if (batch.producerEpoch === state.epoch) {
        const retried = state.batches.find((b) =>
          b.firstSequence === firstSequence && b.lastSequence === lastSequence
        );
        if (retried) return { ok: true, baseOffset: retried.baseOffset, duplicate: true };
        const expected = nextSequence(state.batches.at(-1)!.lastSequence, 1);
        if (firstSequence !== expected) {
          return {
            ok: false,
            errorCode: ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER,
            message: `sequence ${firstSequence}, expected ${expected}`,
          };
        }
      } else if (firstSequence !== 0) {
        return {
          ok: false,
          errorCode: ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER,
          message: `sequence ${firstSequence} for new epoch ${batch.producerEpoch}, expected 0`,
        };
      }
    }

    const baseOffset = this.highWatermark;
    const bytes = batch.bytes.slice();
    const view = new DataView(bytes.buffer);
    view.setBigInt64(0, BigInt(baseOffset));
    view.setInt32(12, 0); // partitionLeaderEpoch: this broker has led since epoch 0
    this.batches.push({ baseOffset, lastOffset: baseOffset + batch.lastOffsetDelta, bytes });
    for (const record of decoded) {
      this.records.push({
        topic: this.topic,
        partition: this.index,
        offset: baseOffset + record.offsetDelta,
        timestamp: record.timestamp,
        key: record.key,
        value: record.value,
        headers: record.headers,
        producerId: batch.producerId,
        producerEpoch: batch.producerEpoch,
        sequence: idempotent ? nextSequence(firstSequence, record.offsetDelta) : -1,
        compression: batch.compression,
      });
    }
    if (idempotent) {
      const kept = state?.epoch === batch.producerEpoch ? state.batches : [];
      kept.push({ firstSequence, lastSequence, baseOffset });
      if (kept.length > PRODUCER_BATCHES_KEPT) kept.shift();
      this.#producers.set(batch.producerId, { epoch: batch.producerEpoch, batches: kept });
    }
    return { ok: true, baseOffset, duplicate: false };
  }

  /** The first offset whose record has a timestamp at or after `timestamp`, if any. */
  offsetForTimestamp(timestamp: number): KafkaRecord | undefined {
    return this.records.find((record) => record.timestamp >= timestamp);
  }
}

/** Topic names Kafka accepts: 1-249 of [a-zA-Z0-9._-], not "." or "..". */
export function validTopicName(name: string): boolean {
  return /^[a-zA-Z0-9._-]{1,249}$/.test(name) && name !== "." && name !== "..";
}

/** All topics, and the events of appends for the waiters of Fetch and waitForRecords. */
export class Store {
  readonly topics = new Map<string, PartitionLog[]>();
  #listeners = new Set<() => void>();

  /** Creates a topic with `partitions` partitions; an existing topic is left as it is. */
  create(name: string, partitions: number): PartitionLog[] {
    let logs = this.topics.get(name);
    if (!logs) {
      logs = Array.from({ length: partitions }, (_, i) => new PartitionLog(name, i));
      this.topics.set(name, logs);
    }
    return logs;
  }

  partition(topic: string, index: number): PartitionLog | undefined {
    return this.topics.get(topic)?.[index];
  }

  /** Calls `listener` after every append until the returned function is called. */
  onAppend(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  appended(): void {
    for (const listener of [...this.#listeners]) listener();
  }
}
