/**
 * Outbound delivery of one connection: live QoS 0 messages straight to the socket, QoS 1/2 messages
 * pulled from the session's queue and its share groups' queues within the inflight window, the
 * acknowledgements that complete them, and retained messages sent for a new subscription.
 *
 * A QoS 1/2 message leaves its queue only when the client acknowledged it (PUBACK, or PUBCOMP
 * after PUBREC): until then it stays stored in the backbone, so a takeover, a reconnect or the loss
 * of this node sends it again [MQTT-4.4.0-1]. A QoS 2 message's packet id is recorded before it
 * is first sent and its PUBREL state before PUBREL is sent, so a resend uses the same id and a
 * released message is answered with PUBREL only [MQTT-4.3.3-9].
 *
 * @module
 */

import { encodePacket, PacketType, protocolError, ReasonCode } from "../codec/mod.ts";
import type { ProtocolVersion, PubrelPacket } from "../codec/packets.ts";
import { DONE, type QueuedDelivery, type QueueHandle } from "../backbone/backbone.ts";
import { isExpired, type Message, type SubscriptionRecord } from "../domain/types.ts";
import type { ClientInfo } from "../hooks/hooks.ts";
import { InflightTable } from "../session/inflight_table.ts";
import type { OutboundTopicAliases } from "../topic/mod.ts";
import { Fifo } from "../util/fifo.ts";
import { msSince, stamp } from "../util/stamps.ts";
import type { BrokerContext, BrokerSession, SessionOutbound } from "./context.ts";
import { type DeliveryPlan, planRetained, planShared, QueuedPlanner } from "./delivery_plan.ts";

/**
 * The connection an `Outbound` belongs to: what it writes to and the client it serves are read
 * from it, not held once more per connection.
 */
export interface OutboundOwner {
  /** The client, as the hooks see it. */
  readonly info: ClientInfo;
  /** Where outbound bytes go. */
  readonly transport: OutboundWriter;
  /** The window filled: watch for a client that is stuck. */
  outboundWindowFull(): void;
  /** The first QoS 1/2 delivery of an empty window went out: the client's acks must be read. */
  deliveriesAwaitAck(): void;
}

/** Where outbound bytes go (the client connection's socket). */
export interface OutboundWriter {
  /** Bytes written and not yet sent. */
  readonly bufferedBytes: number;
  write(bytes: Uint8Array): void;
}

/** A share group this session is a member of, with the member's own subscription. */
interface GroupMembership {
  readonly group: string;
  readonly filter: string;
  record: SubscriptionRecord;
  handle: QueueHandle | undefined;
  /** Unsubscribed: takes nothing new, and closes once what it sent is acknowledged. */
  leaving: boolean;
}

/**
 * One delivery of this connection, from when a queue hands it out (or a retained message is
 * sent for a new subscription) until it is complete: waiting for the window, then in flight
 * until acknowledged. One record for both, made once per delivery.
 */
class OutboundDelivery {
  /** The queue's sequence for it (`NO_DELIVERY_SEQ` for a retained message). */
  readonly seq: number;
  readonly message: Message;
  /** Handed out before: sent with DUP [MQTT-3.3.1-1]. */
  readonly redelivered: boolean;
  /** QoS 2: PUBREC received and PUBREL sent; waiting for PUBCOMP (only PUBREL is resent). */
  released: boolean;
  /** Recorded by the queue before (0: none) until it is sent; then the packet id in use. */
  packetId: number;
  /** The QoS it is sent at, once planned (in flight). */
  qos: 0 | 1 | 2 = 0;
  /** The queue it came from; undefined for a retained message. */
  readonly handle: QueueHandle | undefined;
  /** The group it came through, if any. */
  readonly membership: GroupMembership | undefined;
  /** A retained message's fixed plan. */
  readonly plan: DeliveryPlan | undefined;

  constructor(
    seq: number,
    message: Message,
    redelivered: boolean,
    released: boolean,
    packetId: number,
    handle: QueueHandle | undefined,
    membership: GroupMembership | undefined,
    plan: DeliveryPlan | undefined,
  ) {
    this.seq = seq;
    this.message = message;
    this.redelivered = redelivered;
    this.released = released;
    this.packetId = packetId;
    this.handle = handle;
    this.membership = membership;
    this.plan = plan;
  }
}

/**
 * The PUBREL handed to the encoder, filled in for each one (the encoder keeps nothing of it): no
 * packet object per QoS 2 delivery.
 */
const pubrelPacket: PubrelPacket = {
  type: PacketType.PUBREL,
  packetId: 0,
  reasonCode: 0,
  properties: undefined,
};

/** Connection parameters that shape what is sent. */
export interface OutboundParameters {
  protocolVersion: ProtocolVersion;
  /** QoS 1/2 window: min(our maxInflight, the client's Receive Maximum). */
  window: number;
  /** Largest packet the client accepts [MQTT-3.1.2-24]. */
  maxPacketSize: number;
  /** Server-to-client topic aliases, when both sides use them. */
  aliases: OutboundTopicAliases | undefined;
}

/** How long a delivery whose step failed (its queue's store unavailable) waits to be retried. */
const DELIVERY_RETRY_MS = 1_000;
const NO_DELIVERY_SEQ = 0;

const ignore = () => {};

/** No Maximum Packet Size from the client (a small integer, unlike `Infinity`). */
const NO_PACKET_LIMIT = 0x7fffffff;

// Bits of `Outbound.#flags`.
/** Sending started (after CONNACK). */
const STARTED = 1;
/** The connection closed. */
const CLOSED = 2;

// `Recorded.state`.
/** Its packet id is being recorded: it, and everything behind it, waits. */
const RECORDING = 0;
/** Ready to be sent (its packet id recorded, or none to record). */
const RECORDED = 1;
/** Recording its packet id failed: it went back to its queue and is skipped. */
const RECORD_FAILED = 2;

/**
 * A delivery in line behind one whose packet id a backbone records asynchronously: sent in order
 * once every one before it is recorded.
 */
interface Recorded {
  readonly entry: OutboundDelivery;
  /** Undefined for a released QoS 2 delivery, for which only PUBREL is sent again. */
  readonly plan: DeliveryPlan | undefined;
  readonly dup: boolean;
  state: typeof RECORDING | typeof RECORDED | typeof RECORD_FAILED;
}

/** Outbound delivery state of one connection. */
export class Outbound implements SessionOutbound {
  readonly #context: BrokerContext;
  readonly #session: BrokerSession;
  /**
   * The connection: written to, and told when the window fills so that it watches for a client
   * that is stuck.
   */
  readonly #owner: OutboundOwner;
  /** Plans queued deliveries (made at the first). */
  #planner: QueuedPlanner | undefined;
  readonly #version: ProtocolVersion;
  /** QoS 1/2 window: min(our maxInflight, the client's Receive Maximum). */
  readonly #window: number;
  /** Largest packet the client accepts [MQTT-3.1.2-24]; `NO_PACKET_LIMIT` for none. */
  readonly #maxPacketSize: number;
  /** Server-to-client topic aliases, when both sides use them. */
  readonly #aliases: OutboundTopicAliases | undefined;
  /** `STARTED`, `CLOSED`. */
  #flags = 0;
  #inflight: InflightTable<OutboundDelivery> | undefined = undefined;
  #ready: Fifo<OutboundDelivery> | undefined = undefined;
  /**
   * Deliveries taken into the window while the packet id of one before them is being recorded by
   * a backbone that cannot do it at once (NATS, SQLite): the records run side by side (a durable
   * store commits them together) and the deliveries go out in order as they complete.
   */
  #recording: Fifo<Recorded> | undefined = undefined;
  #nextPacketId = 1;
  #sessionQueue: QueueHandle | undefined = undefined;
  #sessionQueueOpening: Promise<void> | undefined = undefined;
  #groups: Map<string, GroupMembership> | undefined = undefined;
  /** Retained messages waiting in `#ready`, bounded. */
  #readyRetained = 0;
  /** Stamp (see `util/stamps.ts`) of the last acknowledgement, or of when the window filled. */
  #lastProgress = 0;

  constructor(
    context: BrokerContext,
    session: BrokerSession,
    parameters: OutboundParameters,
    owner: OutboundOwner,
  ) {
    this.#owner = owner;
    this.#context = context;
    this.#session = session;
    this.#version = parameters.protocolVersion;
    this.#window = parameters.window;
    this.#maxPacketSize = Math.min(parameters.maxPacketSize, NO_PACKET_LIMIT);
    this.#aliases = parameters.aliases;
  }

  get #closed(): boolean {
    return (this.#flags & CLOSED) !== 0;
  }

  /** QoS 1/2 messages sent and not yet acknowledged. */
  get inflightCount(): number {
    return this.#inflight?.size ?? 0;
  }

  /** Messages handed out by queues and waiting for the window. */
  get waitingCount(): number {
    return this.#ready?.length ?? 0;
  }

  /**
   * Epoch ms at which a client that fills its window and acknowledges nothing is cut off, or
   * Infinity while it makes progress (see `mqtt.slowConsumerTimeout`).
   */
  get stuckDeadline(): number {
    if ((this.#flags & STARTED) === 0 || this.inflightCount < this.#window) return Infinity;
    const now = this.#context.clock.now();
    return now - msSince(now, this.#lastProgress) + this.#context.options.slowConsumerTimeout;
  }

  // ---- queues --------------------------------------------------------------------------------

  /** Opens the session's own queue for delivery (once; later calls wait for the first). */
  openSessionQueue(): Promise<void> {
    return this.#sessionQueueOpening ??= this.#context.backbone.queues.open(
      { kind: "session", clientId: this.#session.clientId },
      (deliveries) => this.#accept(deliveries, this.#sessionQueue, undefined),
    ).then((handle) => {
      if (this.#closed) {
        handle.close().catch(() => {});
        return;
      }
      this.#sessionQueue = handle;
      handle.request(this.#window);
    }, (error) => {
      this.#sessionQueueOpening = undefined;
      throw error;
    });
  }

  /** Whether the session's own queue is open here. */
  get sessionQueueOpen(): boolean {
    return this.#sessionQueueOpening !== undefined;
  }

  /** Opens a share group's queue for this member (idempotent per group). */
  async openGroup(group: string, filter: string, record: SubscriptionRecord): Promise<void> {
    const key = `${group}\u0000${filter}`;
    const groups = this.#groups ??= new Map();
    const existing = groups.get(key);
    if (existing) {
      existing.record = record;
      return;
    }
    const membership: GroupMembership = {
      group,
      filter,
      record,
      handle: undefined,
      leaving: false,
    };
    groups.set(key, membership);
    try {
      const handle = await this.#context.backbone.queues.open(
        { kind: "group", group, filter },
        (deliveries) => this.#accept(deliveries, membership.handle, membership),
      );
      if (this.#closed || groups.get(key) !== membership) {
        await handle.close();
        return;
      }
      membership.handle = handle;
      handle.request(this.#window);
    } catch (error) {
      if (groups.get(key) === membership) groups.delete(key);
      throw error;
    }
  }

  /**
   * Stops taking a group's messages (the member unsubscribed): what waits for the window goes
   * back to the group now; what was sent completes first, then the group's handle closes.
   */
  async closeGroup(group: string, filter: string): Promise<void> {
    const key = `${group}\u0000${filter}`;
    const membership = this.#groups?.get(key);
    if (!membership) return;
    this.#groups!.delete(key);
    membership.leaving = true;
    const ready = this.#ready;
    if (ready !== undefined) {
      const kept = new Fifo<OutboundDelivery>();
      const returned: Promise<void>[] = [];
      for (const item of ready) {
        if (item.membership !== membership) kept.push(item);
        else if (membership.handle) returned.push(membership.handle.nak(item.seq));
      }
      this.#ready = kept;
      await Promise.all(returned);
    }
    await this.#closeIfDone(membership);
  }

  async #closeIfDone(membership: GroupMembership): Promise<void> {
    for (const entry of this.#inflight?.values() ?? []) {
      if (entry.membership === membership) return;
    }
    await membership.handle?.close();
  }

  /**
   * Starts sending (after CONNACK: nothing may precede it). Deliveries handed out before wait in
   * order.
   */
  start(): void {
    this.#flags |= STARTED;
    this.#progress();
    this.pump();
  }

  /**
   * The connection closed: stop, and hand every queue back what is unacknowledged. QoS 2
   * messages a group sent to this member stay this session's [MQTT-4.8.2-4] [MQTT-4.8.2-5].
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#flags |= CLOSED;
    const closing: Promise<void>[] = [];
    if (this.#sessionQueueOpening) {
      closing.push(
        this.#sessionQueueOpening.then(() => this.#sessionQueue?.close(), () => {}),
      );
    }
    for (const membership of this.#groups?.values() ?? []) {
      if (membership.handle) closing.push(membership.handle.close(this.#pins(membership)));
    }
    this.#ready = undefined;
    this.#inflight = undefined;
    this.#recording = undefined;
    await Promise.all(closing);
  }

  /** QoS 2 deliveries of a group inflight to this member: they move to the session's queue. */
  #pins(membership: GroupMembership): { clientId: string; seqs: number[] } {
    const seqs: number[] = [];
    for (const entry of this.#inflight?.values() ?? []) {
      if (entry.membership === membership && entry.qos === 2) seqs.push(entry.seq);
    }
    return { clientId: this.#session.clientId, seqs };
  }

  #accept(
    deliveries: QueuedDelivery[],
    handle: QueueHandle | undefined,
    membership: GroupMembership | undefined,
  ): void {
    if (this.#closed) return;
    const ready = this.#ready ??= new Fifo();
    for (const { seq, message, redelivered, released, packetId } of deliveries) {
      ready.push(
        new OutboundDelivery(
          seq,
          message,
          redelivered,
          released,
          packetId,
          handle,
          membership,
          undefined,
        ),
      );
    }
    this.pump();
  }

  // ---- sending ---------------------------------------------------------------------------------

  /** A live message (QoS 0 delivery): written now, or dropped when the client does not keep up. */
  live(message: Message, plan: DeliveryPlan): void {
    if ((this.#flags & (STARTED | CLOSED)) !== STARTED) return;
    const context = this.#context;
    if (message.expiresAt !== 0 && isExpired(message, context.clock.now())) {
      context.stats.droppedExpired++; // [MQTT-3.3.2-5]
      return;
    }
    if (!this.#mayRead(message.topic)) return;
    if (this.#owner.transport.bufferedBytes > context.options.writeBufferLimit) {
      // QoS 0 has no acknowledgement to carry a reason: a counter and a log line show the loss.
      if (context.stats.droppedSlowConsumer++ % 1000 === 0) {
        context.logger.warn("slow consumer: QoS 0 message dropped", {
          clientId: this.#owner.info.clientId,
          dropped: context.stats.droppedSlowConsumer,
        });
      }
      return;
    }
    this.#sendPublish(message, 0, plan.retain, plan.subscriptionIds, 0, false);
  }

  /** A retained message for a new subscription [MQTT-3.3.1-9] [MQTT-3.8.4-4]. */
  retained(message: Message, record: SubscriptionRecord): void {
    if (this.#closed) return;
    const plan = planRetained(message, record);
    const ready = this.#ready ??= new Fifo();
    if (this.#readyRetained >= this.#context.options.maxQueuedMessages) {
      this.#context.stats.droppedQueueFull++;
      return;
    }
    this.#readyRetained++;
    ready.push(
      new OutboundDelivery(NO_DELIVERY_SEQ, message, false, false, 0, undefined, undefined, plan),
    );
    this.pump();
  }

  /** Sends what waits, within the window and while the socket keeps up. */
  pump(): void {
    const ready = this.#ready;
    if ((this.#flags & (STARTED | CLOSED)) !== STARTED || ready === undefined) return;
    const context = this.#context;
    const window = this.#window;
    const writer = this.#owner.transport;
    while (ready.length > 0) {
      if (this.inflightCount >= window) return;
      if (writer.bufferedBytes > context.options.writeBufferLimit) return; // onDrain resumes
      const delivery = ready.peek()!;
      const message = delivery.message;
      if (message.expiresAt !== 0 && isExpired(message, context.clock.now())) {
        this.#take(ready);
        context.stats.droppedExpired++; // [MQTT-3.3.2-5]
        this.#complete(delivery.handle, delivery.seq);
        continue;
      }
      const plan = delivery.plan ??
        (delivery.membership
          ? planShared(message, delivery.membership.record)
          : (this.#planner ??= new QueuedPlanner()).plan(
            message,
            this.#session.directSubscriptions,
            this.#session.clientId,
          ));
      // Delivered per the subscriptions and rules in force now: unsubscribed or no longer
      // readable messages are acknowledged and dropped.
      if (plan === undefined || !this.#mayRead(message.topic)) {
        this.#take(ready);
        this.#complete(delivery.handle, delivery.seq);
        continue;
      }
      if (plan.qos === 0) {
        // Behind deliveries waiting for their records: it waits too, to keep the queue's order.
        if (this.#recording !== undefined && this.#recording.length > 0) return;
        this.#take(ready);
        this.#sendPublish(message, 0, plan.retain, plan.subscriptionIds, 0, false);
        this.#complete(delivery.handle, delivery.seq);
        continue;
      }
      const inflight = this.#inflight ??= new InflightTable();
      const recordedId = delivery.packetId;
      let packetId = recordedId;
      if (packetId === 0) {
        packetId = inflight.freeId(this.#nextPacketId);
        this.#nextPacketId = packetId === 0xffff ? 1 : packetId + 1;
      } else if (inflight.has(packetId)) {
        return; // Its recorded id is still in use: it waits for that acknowledgement.
      }
      this.#take(ready);
      delivery.packetId = packetId;
      delivery.qos = plan.qos;
      inflight.set(delivery);
      if (inflight.size === 1) this.#owner.deliveriesAwaitAck();
      if (inflight.size === window) {
        this.#progress();
        this.#owner.outboundWindowFull();
      }
      const dup = delivery.redelivered;
      const released = delivery.released;
      if (!released && plan.qos === 2 && recordedId === 0 && delivery.handle) {
        // The id is recorded before the first send, so a resend after a takeover reuses it.
        const recorded = delivery.handle.recordPacketId(delivery.seq, packetId);
        // Recorded at once (in process): sent in this turn, with the rest of the window. Waiting
        // a reaction for each made every QoS 2 delivery a socket write of its own.
        if (recorded !== DONE) {
          this.#sendWhenRecorded(recorded, delivery, plan, dup);
          continue;
        }
      }
      const recording = this.#recording;
      if (recording !== undefined && recording.length > 0) {
        recording.push({
          entry: delivery,
          plan: released ? undefined : plan,
          dup,
          state: RECORDED,
        });
        continue;
      }
      if (released) {
        this.#sendAck(PacketType.PUBREL, packetId, ReasonCode.Success); // [MQTT-4.4.0-1]
        continue;
      }
      this.#sendInflight(delivery, plan, dup);
    }
  }

  /**
   * A packet id a backbone records asynchronously: this delivery and the ones behind it wait in
   * line, in order, while the pump goes on taking the window's deliveries (their records run
   * side by side). A method of its own: its closures in `pump` had V8 allocate a context for
   * every delivery, recorded at once or not.
   */
  #sendWhenRecorded(
    recorded: Promise<void>,
    entry: OutboundDelivery,
    plan: DeliveryPlan,
    dup: boolean,
  ): void {
    const waiting: Recorded = { entry, plan, dup, state: RECORDING };
    (this.#recording ??= new Fifo()).push(waiting);
    recorded.then(() => {
      waiting.state = RECORDED;
      this.#sendRecorded();
    }, (error) => {
      waiting.state = RECORD_FAILED;
      this.#deliveryFailed(entry, error);
      this.#sendRecorded();
    });
  }

  /** Sends the deliveries at the head of the line whose records are done, then pumps on. */
  #sendRecorded(): void {
    const recording = this.#recording;
    if (recording === undefined) return; // Closed.
    while (recording.length > 0) {
      const head = recording.peek()!;
      if (head.state === RECORDING) return;
      recording.shift();
      if (head.state === RECORD_FAILED) continue;
      const entry = head.entry;
      if (head.plan !== undefined) this.#sendInflight(entry, head.plan, head.dup);
      else if (this.#inflight?.get(entry.packetId) === entry) {
        this.#sendAck(PacketType.PUBREL, entry.packetId, ReasonCode.Success); // [MQTT-4.4.0-1]
      }
    }
    // A failure freed a place in the window, or a QoS 0 delivery waited for the line to empty.
    this.pump();
  }

  #sendInflight(entry: OutboundDelivery, plan: DeliveryPlan, dup: boolean): void {
    if (this.#closed || this.#inflight?.get(entry.packetId) !== entry) return;
    const sent = this.#sendPublish(
      entry.message,
      entry.qos,
      plan.retain,
      plan.subscriptionIds,
      entry.packetId,
      dup, // [MQTT-3.3.1-1]: DUP on a resend
    );
    if (!sent) {
      // Too large for this client: behave as if it was delivered [MQTT-3.1.2-25].
      this.#inflight.delete(entry.packetId);
      this.#completeEntry(entry);
    }
  }

  /** A backbone step for a delivery failed: it stays stored and goes out again later. */
  #deliveryFailed(entry: OutboundDelivery, error: unknown): void {
    if (this.#inflight?.get(entry.packetId) === entry) this.#inflight.delete(entry.packetId);
    this.#context.logger.debug("delivery step failed; the message stays queued", {
      clientId: this.#owner.info.clientId,
      error,
    });
    const handle = entry.handle;
    if (handle === undefined) return;
    handle.nak(entry.seq).catch(ignore);
    // The place it held in the window is free again, after a pause: a store that fails now
    // (a NATS election) would otherwise fail every retry at once. Without it, each failure took
    // one place for good, and a window's worth of failures stopped the session's deliveries.
    this.#context.clock.setTimeout(() => {
      if (!this.#closed) handle.request(1);
    }, DELIVERY_RETRY_MS);
  }

  /** Removes the head of the ready list. */
  #take(ready: Fifo<OutboundDelivery>): void {
    if (ready.shift()!.plan !== undefined) this.#readyRetained--;
  }

  /** A delivery is done with: its queue forgets it and may hand out one more. */
  #complete(handle: QueueHandle | undefined, seq: number): void {
    if (handle === undefined) return; // A retained message: no queue holds it.
    const acked = handle.ack(seq);
    // A failure is logged by the guard; it is resent later. DONE cannot fail.
    if (acked !== DONE) acked.catch(ignore);
    handle.request(1);
  }

  /** An inflight delivery completed. */
  #completeEntry(entry: OutboundDelivery): void {
    if (entry.membership?.leaving) {
      entry.handle?.ack(entry.seq).catch(() => {});
      this.#closeIfDone(entry.membership).catch(() => {});
      return;
    }
    this.#complete(entry.handle, entry.seq);
  }

  // ---- acknowledgements from the client --------------------------------------------------------

  /**
   * PUBACK: a QoS 1 delivery is complete. An unknown id is ignored (a late answer); a PUBACK for a
   * QoS 2 message is a protocol error (QoS 2 is acknowledged by PUBREC, section 4.3.3).
   */
  puback(packetId: number): void {
    const entry = this.#inflight?.get(packetId);
    if (!entry) return;
    if (entry.qos !== 1) throw protocolError(`PUBACK for the QoS 2 message ${packetId}`);
    this.#finish(entry);
  }

  /**
   * PUBREC: a QoS 2 delivery was received; PUBREL follows once the release is recorded. A PUBREC
   * for a QoS 1 message is a protocol error (QoS 1 is acknowledged by PUBACK, section 4.3.2).
   */
  pubrec(packetId: number, reasonCode: number): void {
    const entry = this.#inflight?.get(packetId);
    if (!entry) {
      this.#sendAck(PacketType.PUBREL, packetId, ReasonCode.PacketIdentifierNotFound);
      return;
    }
    if (entry.qos !== 2) throw protocolError(`PUBREC for the QoS 1 message ${packetId}`);
    if (reasonCode >= 0x80) {
      // The receiver refused the message: the flow ends here [MQTT-4.3.3-4].
      this.#finish(entry);
      return;
    }
    if (entry.released) {
      this.#sendAck(PacketType.PUBREL, packetId, ReasonCode.Success);
      return;
    }
    entry.released = true;
    this.#progress();
    const released = entry.handle === undefined ? DONE : entry.handle.release(entry.seq);
    if (released === DONE) {
      // Recorded at once (in process), or nothing to record (a retained message).
      this.#sendAck(PacketType.PUBREL, packetId, ReasonCode.Success); // [MQTT-4.3.3-4]
      return;
    }
    this.#releaseWhenRecorded(released, entry);
  }

  /**
   * PUBREL once the release is recorded asynchronously. A method of its own: its closures in
   * `pubrec` had V8 allocate a context at every PUBREC.
   */
  #releaseWhenRecorded(released: Promise<void>, entry: OutboundDelivery): void {
    const packetId = entry.packetId;
    released.then(() => {
      if (this.#inflight?.get(packetId) === entry) {
        this.#sendAck(PacketType.PUBREL, packetId, ReasonCode.Success);
      }
    }, (error) => this.#deliveryFailed(entry, error));
  }

  /**
   * PUBCOMP: a QoS 2 delivery is complete. It answers our PUBREL, so one for a QoS 1 message or
   * before PUBREL was sent is a protocol error (section 4.3.3).
   */
  pubcomp(packetId: number): void {
    const entry = this.#inflight?.get(packetId);
    if (!entry) return;
    if (entry.qos !== 2 || !entry.released) {
      throw protocolError(`PUBCOMP for message ${packetId}, to which no PUBREL was sent`);
    }
    this.#finish(entry);
  }

  #finish(entry: OutboundDelivery): void {
    this.#inflight!.delete(entry.packetId);
    this.#context.stats.inflightCompleted++;
    this.#progress();
    this.#completeEntry(entry);
    this.pump();
  }

  #progress(): void {
    this.#lastProgress = stamp(this.#context.clock.now());
  }

  // ---- encoding --------------------------------------------------------------------------------

  /** Asks `authorizeRead`; a refusal is counted. */
  #mayRead(topic: string): boolean {
    const authorizeRead = this.#context.hooks.authorizeRead;
    if (authorizeRead === undefined || authorizeRead(this.#owner.info, topic)) return true;
    this.#context.stats.droppedNotAuthorized++;
    return false;
  }

  /**
   * Encodes and writes one PUBLISH. Returns false when the packet exceeds the client's Maximum
   * Packet Size and was dropped [MQTT-3.1.2-25].
   */
  #sendPublish(
    message: Message,
    qos: 0 | 1 | 2,
    retain: boolean,
    subscriptionIds: number[] | undefined,
    packetId: number,
    dup: boolean,
  ): boolean {
    const context = this.#context;
    const v5 = this.#version === 5;
    const aliases = this.#aliases;
    let bytes: Uint8Array;
    if (
      !dup && (!v5 || (subscriptionIds === undefined && aliases === undefined)) &&
      message.expiresAt === 0
    ) {
      bytes = context.fanout.encode(message, v5, qos, retain, packetId);
    } else {
      let topic = message.topic;
      let properties = v5 ? message.properties : undefined;
      if (v5 && (message.expiresAt !== 0 || subscriptionIds !== undefined || aliases)) {
        properties = { ...properties };
        if (message.expiresAt !== 0) {
          // The receiver sees the time left, not the original interval [MQTT-3.3.2-6].
          const left = Math.max(0, Math.ceil((message.expiresAt - context.clock.now()) / 1000));
          properties.messageExpiryInterval = left;
        }
        if (subscriptionIds !== undefined) properties.subscriptionIdentifiers = subscriptionIds;
        if (aliases) {
          // Peek only: the alias is recorded once the packet is known to fit the client.
          const alias = aliases.peek(topic);
          if (alias) {
            properties.topicAlias = alias.alias;
            if (!alias.isNew) topic = "";
          }
        }
      }
      bytes = encodePacket(
        {
          type: PacketType.PUBLISH,
          dup,
          qos,
          retain,
          topic,
          packetId,
          properties,
          payload: message.payload,
        },
        this.#version,
        context.encodeOptions,
      );
    }
    if (bytes.length > this.#maxPacketSize) {
      if (context.stats.droppedTooLarge++ % 1000 === 0) {
        context.logger.warn("message larger than the client's Maximum Packet Size dropped", {
          clientId: this.#owner.info.clientId,
          dropped: context.stats.droppedTooLarge,
        });
      }
      return false;
    }
    if (v5) aliases?.lookup(message.topic);
    const stats = context.stats;
    stats.publishSent++;
    stats.publishSentByQos[qos]++;
    stats.payloadBytesSentByQos[qos] += message.payload.length;
    stats.bytesSent += bytes.length;
    this.#owner.transport.write(bytes);
    return true;
  }

  #sendAck(type: typeof PacketType.PUBREL, packetId: number, reasonCode: number): void {
    const packet = pubrelPacket;
    packet.type = type;
    packet.packetId = packetId;
    packet.reasonCode = reasonCode;
    const bytes = encodePacket(packet, this.#version, this.#context.encodeOptions);
    this.#context.stats.bytesSent += bytes.length;
    this.#owner.transport.write(bytes);
  }
}
