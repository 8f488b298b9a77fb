/**
 * A subscribing client: acknowledges every delivery (QoS 1 PUBACK, QoS 2 PUBREC/PUBCOMP) in one write
 * per read, checks sequence numbers and, while the measuring window is open, records latency.
 *
 * @module
 */

import { type MqttConnection, writeAll } from "../mqtt_client.ts";
import { PacketType } from "../mqtt_packets.ts";
import type { PacketHandler } from "../mqtt_reader.ts";
import { MIN_PAYLOAD_SIZE, PUBLISHER_OFFSET, SENT_AT_OFFSET, SEQUENCE_OFFSET } from "../payload.ts";
import { WriteBuffer } from "../write_buffer.ts";
import type { LoadCounters } from "./counters.ts";
import type { SubscriberSpec } from "./protocol.ts";
import { type SequenceReport, SequenceTracker } from "./sequence_tracker.ts";

/** Reads smaller than this are followed by a pause of one timer tick when coalescing. */
const COALESCE_BELOW_BYTES = 16 * 1024;

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** What a subscriber needs besides its connection. */
export interface SubscriberOptions {
  /** Its spec. */
  spec: SubscriberSpec;
  /** Shared counters to report deliveries to. */
  counters: LoadCounters;
  /** Publisher count of the run. */
  publishers: number;
}

/** One subscriber connection. */
export class Subscriber {
  #client: MqttConnection;
  #spec: SubscriberSpec;
  #counters: LoadCounters;
  #tracker: SequenceTracker;
  #acks = new WriteBuffer(64 * 1024);
  #writing: Promise<void> = Promise.resolve();
  #writeFailure: unknown;
  #delivered = false;
  #latencies: number[] = [];
  #recordFrom = Infinity;
  #recordUntil = Infinity;
  #closing = false;

  /**
   * @param client The connected, subscribed client.
   * @param options Spec, shared counters and publisher count.
   */
  constructor(client: MqttConnection, options: SubscriberOptions) {
    this.#client = client;
    this.#spec = options.spec;
    this.#counters = options.counters;
    this.#tracker = new SequenceTracker(options.publishers);
  }

  /** The subscriber index. */
  get index(): number {
    return this.#spec.index;
  }

  /** Reads and acknowledges until {@link close}; rejects if the broker drops the connection. */
  async run(): Promise<void> {
    const { conn, reader } = this.#client;
    try {
      while (true) {
        const count = await reader.readFrom(conn, this.#onPacket);
        if (count === null) break;
        if (this.#writeFailure !== undefined) throw this.#writeFailure;
        if (this.#acks.length > 0) {
          // Not awaited (the next read starts at once); chained, so writes never interleave.
          const acks = this.#acks.take();
          this.#writing = this.#writing.then(() => writeAll(conn, acks)).catch((error) => {
            this.#writeFailure ??= error;
          });
        }
        if (this.#delivered) {
          this.#delivered = false;
          this.#counters.setReceived(this.#spec.index, this.#tracker.counts);
        }
        if (this.#spec.coalesce && count < COALESCE_BELOW_BYTES) await delay(0);
      }
    } catch (error) {
      if (!this.#closing) throw error;
    }
    if (!this.#closing) throw new Error(`Subscriber "${this.#spec.clientId}" lost its connection`);
  }

  /**
   * Opens (at `now`) or closes the latency window: only messages sent inside it are sampled.
   *
   * @param open Open or close.
   * @param now The time, on this thread's `performance.now()` clock.
   */
  markWindow(open: boolean, now: number): void {
    if (open) this.#recordFrom = now;
    else this.#recordUntil = now;
  }

  /** @returns Latency samples (ms) of messages sent inside the window. */
  latencies(): number[] {
    return this.#latencies;
  }

  /** @returns The sequence report. */
  report(): SequenceReport {
    return this.#tracker.report();
  }

  /** Closes the connection. */
  close(): void {
    this.#closing = true;
    try {
      this.#client.conn.close();
    } catch {
      // Already closed.
    }
  }

  #onPacket: PacketHandler = (header, bytes, view, start, end) => {
    const type = header >> 4;
    if (type === PacketType.pubrel) {
      this.#acks.ack(PacketType.pubcomp, view.getUint16(start));
      return;
    }
    if (type !== PacketType.publish) {
      throw new Error(`Subscriber "${this.#spec.clientId}" got unexpected packet type ${type}`);
    }
    const qos = (header >> 1) & 3;
    let offset = start + 2 + ((bytes[start] << 8) | bytes[start + 1]);
    let packetId = 0;
    if (qos > 0) {
      packetId = view.getUint16(offset);
      offset += 2;
    }
    if (end - offset < MIN_PAYLOAD_SIZE) {
      throw new Error(
        `Subscriber "${this.#spec.clientId}" got a foreign ${end - offset} B payload`,
      );
    }
    this.#tracker.record(
      view.getUint32(offset + PUBLISHER_OFFSET),
      view.getUint32(offset + SEQUENCE_OFFSET),
    );
    this.#delivered = true;
    if (this.#spec.recordLatency) {
      const sentAt = view.getFloat64(offset + SENT_AT_OFFSET);
      if (sentAt >= this.#recordFrom && sentAt < this.#recordUntil) {
        this.#latencies.push(performance.now() - sentAt);
      }
    }
    if (qos === 1) this.#acks.ack(PacketType.puback, packetId);
    else if (qos === 2) this.#acks.ack(PacketType.pubrec, packetId);
  };
}
