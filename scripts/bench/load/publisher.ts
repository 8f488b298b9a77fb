/**
 * A publishing client. Closed loop: keeps `window` messages in flight (QoS 1/2: unacknowledged;
 * QoS 0: written but not yet received by the slowest delivery group). Paced: additionally never ahead
 * of `rate` messages per second. Messages are copies of one pre-encoded PUBLISH, patched in place
 * (sequence number, send time, packet id) and written in large batches.
 *
 * @module
 */

import { type MqttConnection, writeAll } from "../mqtt_client.ts";
import { ACK_LENGTH, encodePublishTemplate, PacketType } from "../mqtt_packets.ts";
import type { PacketHandler } from "../mqtt_reader.ts";
import { PUBLISHER_OFFSET, SENT_AT_OFFSET, SEQUENCE_OFFSET } from "../payload.ts";
import { WriteBuffer } from "../write_buffer.ts";
import type { LoadCounters } from "./counters.ts";
import type { PublisherSpec } from "./protocol.ts";

const BATCH_BYTES = 64 * 1024;
const MAX_BATCH_MESSAGES = 512;
const DRAIN_TIMEOUT_MS = 5000;
const PACKET_ID_SPACE = 65535;
const QOS0_POLL_MS = 1;
const DRAIN_POLL_MS = 50;

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** What a publisher needs besides its connection. */
export interface PublisherOptions {
  /** What to publish. */
  spec: PublisherSpec;
  /** Shared counters (QoS 0 flow control, rates). */
  counters: LoadCounters;
  /** Subscriber indices per delivery group. */
  groups: number[][];
}

/** One publisher connection. */
export class Publisher {
  #client: MqttConnection;
  #spec: PublisherSpec;
  #counters: LoadCounters;
  #groups: number[][];
  #batch: Uint8Array;
  #view: DataView;
  #packetLength: number;
  #packetIdOffset: number;
  #payloadOffset: number;
  #capacity: number;
  /** PUBRELs waiting to go out, copied in front of the next batch (QoS 2 only). */
  #pubrels = new WriteBuffer();
  /** Room reserved in front of the batch for them: at most one per message in flight. */
  #pubrelRoom: number;
  #sent = 0;
  #completed = 0;
  #startedAt = 0;
  #stopping = false;
  #drainDeadline = Infinity;
  #closing = false;
  #failure: Error | undefined;
  #wake: (() => void) | undefined;

  /**
   * @param client The connected client.
   * @param options Spec, shared counters and delivery groups.
   */
  constructor(client: MqttConnection, options: PublisherOptions) {
    const { spec } = options;
    this.#client = client;
    this.#spec = spec;
    this.#counters = options.counters;
    this.#groups = options.groups;
    const template = encodePublishTemplate(spec);
    this.#packetLength = template.bytes.length;
    this.#packetIdOffset = template.packetIdOffset;
    this.#payloadOffset = template.payloadOffset;
    this.#capacity = Math.max(
      1,
      Math.min(MAX_BATCH_MESSAGES, Math.floor(BATCH_BYTES / template.bytes.length)),
    );
    this.#pubrelRoom = spec.qos === 2 ? spec.window * ACK_LENGTH : 0;
    this.#batch = new Uint8Array(this.#pubrelRoom + this.#capacity * this.#packetLength);
    this.#view = new DataView(this.#batch.buffer);
    for (let i = 0; i < this.#capacity; i++) {
      const offset = this.#pubrelRoom + i * this.#packetLength;
      this.#batch.set(template.bytes, offset);
      this.#view.setUint32(offset + this.#payloadOffset + PUBLISHER_OFFSET, spec.index);
    }
  }

  /** The publisher index. */
  get index(): number {
    return this.#spec.index;
  }

  /** Messages written so far. */
  get published(): number {
    return this.#sent;
  }

  /** Publishes not (yet) acknowledged, or at QoS 2 not completed. */
  get unacked(): number {
    return this.#spec.qos === 0 ? 0 : this.#sent - this.#completed;
  }

  /** Publishes until {@link stop}, then waits (bounded) for outstanding acknowledgements. */
  async run(): Promise<void> {
    this.#startedAt = performance.now();
    this.#readLoop();
    while (true) {
      if (this.#failure) throw this.#failure;
      const count = this.#stopping ? 0 : this.#allowance();
      if (count > 0 || this.#pubrels.length > 0) {
        await this.#send(count);
      } else if (this.#drained()) {
        return;
      } else {
        await this.#idle();
      }
    }
  }

  /** Stops publishing; {@link run} returns once in-flight messages complete or time runs out. */
  stop(): void {
    this.#stopping = true;
    this.#drainDeadline = performance.now() + DRAIN_TIMEOUT_MS;
    this.#wakeUp();
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

  #drained(): boolean {
    return this.#stopping &&
      (this.unacked === 0 || performance.now() >= this.#drainDeadline);
  }

  #allowance(): number {
    const spec = this.#spec;
    const inFlight = spec.qos > 0
      ? this.#sent - this.#completed
      : this.#sent - this.#counters.slowestGroupReceived(spec.index, this.#groups);
    // Refill as soon as one slot is free, as client libraries do: waiting for several acks would
    // stall against brokers that leave Nagle's algorithm on (acks held back until our TCP ACK).
    let room = spec.window - inFlight;
    if (spec.rate !== undefined) {
      const due = Math.floor((performance.now() - this.#startedAt) * spec.rate / 1000) - this.#sent;
      room = Math.min(room, due);
    }
    return Math.max(0, Math.min(room, this.#capacity));
  }

  #idle(): Promise<void> {
    if (this.#spec.rate !== undefined) return delay(1);
    if (this.#spec.qos === 0) return delay(QOS0_POLL_MS);
    return new Promise((resolve) => {
      this.#wake = resolve;
      if (this.#stopping) setTimeout(resolve, DRAIN_POLL_MS);
    });
  }

  #wakeUp(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  async #send(count: number): Promise<void> {
    const base = this.#pubrelRoom;
    const view = this.#view;
    const now = performance.now();
    for (let i = 0; i < count; i++) {
      const offset = base + i * this.#packetLength;
      const sequence = this.#sent + i;
      view.setUint32(offset + this.#payloadOffset + SEQUENCE_OFFSET, sequence);
      view.setFloat64(offset + this.#payloadOffset + SENT_AT_OFFSET, now);
      if (this.#packetIdOffset >= 0) {
        view.setUint16(offset + this.#packetIdOffset, (sequence % PACKET_ID_SPACE) + 1);
      }
    }
    const pubrels = this.#pubrels.take();
    const start = base - pubrels.length;
    this.#batch.set(pubrels, start);
    // Counted before the write resolves: acknowledgements may arrive before it does.
    this.#sent += count;
    this.#counters.setPublished(this.#spec.index, this.#sent);
    await writeAll(
      this.#client.conn,
      this.#batch.subarray(start, base + count * this.#packetLength),
    );
  }

  #onPacket: PacketHandler = (header, _bytes, view, start) => {
    const type = header >> 4;
    const packetId = view.getUint16(start);
    if (type === PacketType.puback || type === PacketType.pubcomp) {
      this.#completed++;
    } else if (type === PacketType.pubrec) {
      if (this.#pubrels.length === this.#pubrelRoom) {
        throw new Error(
          `Publisher "${this.#spec.clientId}" got more PUBRECs than it has in flight`,
        );
      }
      this.#pubrels.ack(PacketType.pubrel, packetId);
    } else {
      throw new Error(`Publisher "${this.#spec.clientId}" got unexpected packet type ${type}`);
    }
    this.#wakeUp();
  };

  async #readLoop(): Promise<void> {
    const { conn, reader } = this.#client;
    try {
      while (await reader.readFrom(conn, this.#onPacket) !== null);
      if (!this.#closing) throw new Error(`Publisher "${this.#spec.clientId}" lost its connection`);
    } catch (error) {
      if (!this.#closing) this.#failure = error instanceof Error ? error : new Error(String(error));
    }
    this.#wakeUp();
  }
}
