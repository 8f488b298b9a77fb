/**
 * PUBLISH and PUBREL from a client: validation, topic aliases, rate and Receive Maximum
 * accounting, authorization, then the publish pipeline; acknowledgements go out in the order the
 * PUBLISH packets arrived, each once its message is stored [MQTT-4.3.2-2] [MQTT-4.3.3-2].
 *
 * Storing is pipelined: several QoS 1/2 messages of one client may be on their way to the store
 * at once (up to the Receive Maximum), so a remote store's latency does not cap a publisher's
 * rate.
 *
 * @module
 */

import { MqttError, PacketType, protocolError, ReasonCode, validatePublish } from "../codec/mod.ts";
import type { Properties, PubAckLikePacket, PublishPacket } from "../codec/packets.ts";
import { isWellFormedUtf8 } from "../codec/utf8.ts";
import type { Message } from "../domain/types.ts";
import { InboundTopicAliases, validateTopicName } from "../topic/mod.ts";
import { Fifo } from "../util/fifo.ts";
import type { Pending } from "../util/pending.ts";
import type { ConnectionControl } from "./connection_control.ts";
import { TokenBucket } from "./limits.ts";
import { type PublishResult, ResultWait } from "./publish_pipeline.ts";

/**
 * How long a publisher's input is held when queues are near their global ceiling: long enough to
 * let subscribers drain, short enough that a publisher is slowed, never stalled.
 */
const CONGESTION_PAUSE_MS = 50;

/**
 * Most acknowledgements waiting for their turn before the client's input is held: PUBRELs and
 * resent QoS 2 PUBLISHes are answered in order behind a message still being stored, and a client
 * sending them in a flood must not grow the list without bound.
 */
const MAX_WAITING_ACKS = 4096;

/** An acknowledgement waiting for its turn (and, until then, for its outcome). */
interface PendingAck {
  /** 0: not an acknowledgement but the connection's end, once the ones before it are sent. */
  readonly type:
    | typeof PacketType.PUBACK
    | typeof PacketType.PUBREC
    | typeof PacketType.PUBCOMP
    | 0;
  readonly packetId: number;
  /** Undefined until the outcome is known. */
  reasonCode: number | undefined;
  reason: string | undefined;
  /** The message could not be stored (a 3.1.1 client is disconnected instead). */
  notStored: boolean;
  /** For the connection's end: closes it. */
  failure?: () => void;
}

/** The inbound side of one connected client. */
export class InboundFlow {
  readonly #connection: ConnectionControl;
  #aliases: InboundTopicAliases | undefined;
  #publishBudget: TokenBucket | undefined;
  /** Inbound QoS 1/2 PUBLISHes not yet answered with PUBACK or PUBREC. */
  #awaitingAck = 0;
  /**
   * Inbound QoS 2 packet ids this connection answered with PUBREC and still waits to see PUBREL
   * for: with `#awaitingAck`, the client's use of our Receive Maximum. Flows left over from an
   * earlier connection do not count: each connection starts with the full quota (section 4.9).
   */
  #qos2Open: Set<number> | undefined = undefined;
  /** Acknowledgements in arrival order; sent from the head as outcomes come in. */
  #acks: Fifo<PendingAck> | undefined = undefined;
  /**
   * Publishes of this client waiting for room in a full queue (see `#waitForRoom`), and queues
   * holding it back (see `#holdUntil`): it is not read while there are any.
   */
  #waitingForRoom = 0;
  /** The last queue hold this client is held on (one listener per hold). */
  #heldOn: Pending<void> | undefined = undefined;
  /** True while input is held because the queues are congested. */
  #slowed = false;
  /** Resolves the hold on input taken when too many acknowledgements were waiting. */
  #roomForAcks: (() => void) | undefined = undefined;
  /** Resolves the hold on a 3.1.1 client's input taken at our Receive Maximum. */
  #roomForAnswers: (() => void) | undefined = undefined;
  /**
   * The last topic name that passed validation: publishers mostly repeat one topic, and a string
   * comparison is cheaper than validating it again.
   */
  #validTopic = "";

  constructor(connection: ConnectionControl, topicAliasMaximum: number) {
    this.#connection = connection;
    const options = connection.services.context.options;
    if (topicAliasMaximum > 0) this.#aliases = new InboundTopicAliases(topicAliasMaximum);
    if (options.publishRate > 0) {
      this.#publishBudget = new TokenBucket(
        options.publishRate,
        connection.services.context.clock.now(),
      );
    }
  }

  /** True while acknowledgements wait for their messages to be stored. */
  get acknowledging(): boolean {
    return (this.#acks?.length ?? 0) > 0;
  }

  /**
   * Closes the connection for `error` once every acknowledgement before it is sent, so the client
   * learns the fate of each message it sent before the one that ended the connection. Resolves
   * then; the caller holds input until it does.
   */
  failAfterPending(error: unknown): Promise<void> {
    const { promise, resolve } = Promise.withResolvers<void>();
    const end = this.#queueAck(0, 0);
    end.reasonCode = 0;
    end.failure = () => {
      this.#connection.fail(error);
      resolve();
    };
    this.#flush();
    return promise;
  }

  handlePublish(packet: PublishPacket): void {
    const connection = this.#connection;
    const context = connection.services.context;
    const { options, stats } = context;
    const version = connection.protocolVersion;
    stats.publishReceived++;
    stats.publishReceivedByQos[packet.qos]++;
    stats.payloadBytesReceivedByQos[packet.qos] += packet.payload.length;
    if (this.#publishBudget && !this.#publishBudget.take(context.clock.now())) {
      stats.publishRateExceeded++;
      throw new MqttError(ReasonCode.MessageRateTooHigh, "Publish rate limit exceeded");
    }
    const invalid = validatePublish(packet, version);
    if (invalid) throw invalid;
    let topic = packet.topic;
    const props = packet.properties;
    if (props?.topicAlias !== undefined) {
      if (!this.#aliases) {
        throw new MqttError(ReasonCode.TopicAliasInvalid, "Topic aliases are not enabled"); // [MQTT-3.3.2-8]
      }
      const resolved = this.#aliases.resolve(props.topicAlias, topic);
      if (resolved instanceof MqttError) throw resolved;
      topic = resolved;
    } else if (topic === "") {
      throw protocolError("PUBLISH has an empty topic and no topic alias [MQTT-3.3.2-1]");
    }
    if (topic !== this.#validTopic) {
      const topicInvalid = validateTopicName(topic, context.topicLimits);
      if (topicInvalid) throw topicInvalid;
      this.#validTopic = topic;
    }
    if (props?.responseTopic !== undefined && validateTopicName(props.responseTopic)) {
      // At least one character [MQTT-4.7.3-1], no wildcards [MQTT-3.3.2-14].
      throw protocolError("PUBLISH has a Response Topic that is not a valid topic name");
    }
    const qos = packet.qos;
    if (qos > options.maxQos) {
      throw new MqttError(ReasonCode.QoSNotSupported, `QoS ${qos} is not supported`); // [MQTT-3.2.2-11]
    }
    if (packet.retain && !options.retainAvailable) {
      throw new MqttError(ReasonCode.RetainNotSupported, "Retained messages are not supported"); // [MQTT-3.2.2-14]
    }
    if (qos === 2 && connection.session!.inboundQos2.has(packet.packetId)) {
      // A resend of a message we already have: acknowledge again, never deliver twice [MQTT-4.3.3-9].
      this.#queueAck(PacketType.PUBREC, packet.packetId).reasonCode = ReasonCode.Success;
      this.#flush();
      return;
    }
    if (qos > 0) {
      // [MQTT-3.3.4-7]: QoS 1 and 2 PUBLISHes not yet answered with PUBACK or PUBCOMP count
      // against the Receive Maximum we announced; a client that goes over gets 0x93 (section 4.9).
      // A 3.1.1 client was never told one: its input is held instead until answers go out.
      const open = this.#qos2Open?.size ?? 0;
      if (this.#awaitingAck + open >= options.receiveMaximum) {
        if (connection.protocolVersion === 5) {
          throw new MqttError(ReasonCode.ReceiveMaximumExceeded, "Receive Maximum exceeded");
        }
        this.#holdUntilAnswered();
      }
      this.#awaitingAck++;
    }
    if (
      options.validatePayloadFormat && props?.payloadFormatIndicator === 1 &&
      !isWellFormedUtf8(packet.payload)
    ) {
      // Section 3.3.2.3.2: PUBACK/PUBREC 0x99, or DISCONNECT 0x99 where there is no ack (QoS 0).
      const reason = "Payload is not valid UTF-8 as its Payload Format Indicator says";
      if (qos === 0) throw new MqttError(ReasonCode.PayloadFormatInvalid, reason);
      stats.publishDenied++;
      this.#answer(packet, ReasonCode.PayloadFormatInvalid, reason);
      return;
    }
    // Only a live QoS 0 message may be forwarded as it came (see `#accept`): no view of its bytes
    // is made for any other.
    const frame = qos === 0 && !packet.retain ? connection.frame : undefined;
    const authorize = context.hooks.authorizePublish;
    if (authorize) {
      const allowed = authorize(connection.info, { topic, qos, retain: packet.retain });
      if (allowed instanceof Promise) {
        this.#acceptWhenAuthorized(allowed, packet, topic);
        return;
      }
      this.#accept(packet, topic, allowed, frame);
      return;
    }
    this.#accept(packet, topic, true, frame);
  }

  /**
   * A method of its own: its closure in `handlePublish` had V8 allocate a context at every
   * PUBLISH, authorized at once or not.
   */
  #acceptWhenAuthorized(allowed: Promise<boolean>, packet: PublishPacket, topic: string): void {
    this.#connection.runAsync(allowed.then((ok) => this.#accept(packet, topic, ok, undefined)));
  }

  #accept(
    packet: PublishPacket,
    topic: string,
    allowed: boolean,
    frame: Uint8Array | undefined,
  ): void {
    const connection = this.#connection;
    if (connection.closed) return;
    const context = connection.services.context;
    const qos = packet.qos;
    if (!allowed) {
      if (context.stats.publishDenied++ % 1000 === 0) {
        context.logger.info("publish not authorized", {
          clientId: connection.info.clientId,
          topic,
          denied: context.stats.publishDenied,
        });
      }
      // MQTT 5 says why; 3.1.1 acknowledges and drops, which its spec allows [MQTT-3.3.5-2].
      const code = connection.protocolVersion === 5 ? ReasonCode.NotAuthorized : ReasonCode.Success;
      if (qos > 0) this.#answer(packet, code, "Not authorized to publish to this topic");
      return;
    }
    const props = packet.properties;
    const expiry = props?.messageExpiryInterval;
    // QoS 0 live messages are encoded before this turn ends, so they may keep viewing the read
    // chunk; anything stored or queued gets its own copy.
    const keep = qos > 0 || packet.retain;
    const message: Message = {
      topic,
      payload: keep ? packet.payload.slice() : packet.payload,
      qos,
      retain: packet.retain,
      properties: props && forwardedProperties(props),
      expiresAt: expiry === undefined ? 0 : context.clock.now() + expiry * 1000,
      origin: connection.info.clientId,
      // A live QoS 0 message whose bytes a subscriber at the same level can take unchanged: no
      // topic alias to resolve, no expiry to count down, nothing to strip.
      frame: frame !== undefined && !keep && expiry === undefined &&
          props?.topicAlias === undefined
        ? { bytes: frame, v5: connection.protocolVersion === 5 }
        : undefined,
    };
    const pipeline = connection.services.pipeline;
    if (qos === 0) {
      pipeline.publishLive(message, connection.info);
      return;
    }
    const ack = this.#queueAck(qos === 1 ? PacketType.PUBACK : PacketType.PUBREC, packet.packetId);
    const inbound = qos === 2
      ? { clientId: connection.info.clientId, packetId: packet.packetId }
      : undefined;
    const result = pipeline.publishStored(message, inbound, connection.info);
    if (result instanceof ResultWait) this.#waitForRoom(ack, result);
    else if (result instanceof Promise) this.#answerWhenStored(ack, result);
    else this.#answered(ack, result);
  }

  /**
   * A method of its own: its closure in `#accept` had V8 allocate a context at every entry,
   * answered at once or not.
   */
  #answerWhenStored(ack: PendingAck, result: Promise<PublishResult>): void {
    result.then((result) => this.#answered(ack, result));
  }

  /**
   * A publish waits for room in a full queue: the client is not read until every one of its
   * publishes that waits is answered. Its next publishes stay in its socket meanwhile instead of
   * joining the line, each with its message and answer alive in the heap; the queue takes the
   * waiting ones in together (see `roomForWaiting`), and the client's next ones come in then.
   */
  #waitForRoom(ack: PendingAck, wait: ResultWait): void {
    this.#waitingForRoom++;
    this.#connection.holdForRoom();
    wait.onSettled((result) => {
      this.#answered(ack, result);
      if (--this.#waitingForRoom === 0) this.#connection.releaseForRoom();
    });
  }

  /** The pipeline's answer to a QoS 1/2 PUBLISH: its acknowledgement goes out in order. */
  #answered(ack: PendingAck, result: PublishResult): void {
    const connection = this.#connection;
    // MQTT 5 says why; 3.1.1 has only success, or the connection closing when nothing was stored.
    ack.reasonCode = connection.protocolVersion === 5 ? result.reasonCode : ReasonCode.Success;
    ack.reason = result.reason;
    ack.notStored = result.notStored;
    this.#flush();
    if (result.congested) this.#slowDown();
    if (result.hold !== undefined && result.hold !== this.#heldOn) this.#holdUntil(result.hold);
  }

  /**
   * A queue this client's message went to asks its publishers to hold back: the client is not
   * read until it settles (once per hold, however many of its messages brought the answer).
   */
  #holdUntil(hold: Pending<void>): void {
    // A client that cannot be held now (its own deliveries await acknowledgement) registers
    // nothing: it could publish on and add a listener to the same hold again and again.
    if (!this.#connection.holdForRoom()) return;
    this.#heldOn = hold;
    this.#waitingForRoom++;
    hold.onSettled(() => {
      if (this.#heldOn === hold) this.#heldOn = undefined;
      if (--this.#waitingForRoom === 0) this.#connection.releaseForRoom();
    });
  }

  /** Holds a 3.1.1 client's input until half its unanswered messages are answered. */
  #holdUntilAnswered(): void {
    if (this.#roomForAnswers !== undefined) return;
    this.#connection.runAsync(new Promise((resolve) => this.#roomForAnswers = resolve));
  }

  /** Holds this publisher's input for a moment: the queues are near their global ceiling. */
  #slowDown(): void {
    if (this.#slowed || this.#connection.closed) return;
    this.#slowed = true;
    this.#connection.runAsync(
      new Promise<void>((resolve) => setTimeout(resolve, CONGESTION_PAUSE_MS)).finally(() => {
        this.#slowed = false;
      }),
    );
  }

  /** Answers a QoS 1/2 PUBLISH at once (refused before it reached the pipeline). */
  #answer(packet: PublishPacket, code: number, reason: string): void {
    const ack = this.#queueAck(
      packet.qos === 1 ? PacketType.PUBACK : PacketType.PUBREC,
      packet.packetId,
    );
    ack.reasonCode = code;
    ack.reason = reason;
    this.#flush();
  }

  /** PUBREL: the QoS 2 flow ends once its packet id is closed in the store [MQTT-4.3.3-11]. */
  handlePubrel(packetId: number): void {
    const connection = this.#connection;
    const session = connection.session!;
    const known = session.inboundQos2.delete(packetId);
    this.#qos2Open?.delete(packetId);
    const ack = this.#queueAck(PacketType.PUBCOMP, packetId);
    if (!known) {
      ack.reasonCode = ReasonCode.PacketIdentifierNotFound;
      this.#flush();
      return;
    }
    const completed = connection.services.context.backbone.messages.completeInbound({
      clientId: connection.info.clientId,
      packetId,
    });
    if (!(completed instanceof Promise)) {
      // Closed at once (in process): PUBCOMP goes out in this turn, with no reaction to wait for.
      ack.reasonCode = ReasonCode.Success;
      this.#flush();
      return;
    }
    this.#completeWhenClosed(completed, ack);
  }

  /**
   * PUBCOMP once the packet id is closed asynchronously. A method of its own: its closures in
   * `handlePubrel` had V8 allocate a context at every PUBREL.
   */
  #completeWhenClosed(completed: Promise<boolean>, ack: PendingAck): void {
    completed.then(() => {
      ack.reasonCode = ReasonCode.Success;
    }, () => {
      // Still open in the store: a PUBCOMP now would let the client reuse the id for a message
      // the store would take for a duplicate. The client sends PUBREL again after reconnecting.
      ack.reasonCode = ReasonCode.UnspecifiedError;
      ack.notStored = true;
    }).finally(() => this.#flush());
  }

  #queueAck(type: PendingAck["type"], packetId: number): PendingAck {
    const ack: PendingAck = {
      type,
      packetId,
      reasonCode: undefined,
      reason: undefined,
      notStored: false,
    };
    const acks = this.#acks ??= new Fifo();
    acks.push(ack);
    if (acks.length >= MAX_WAITING_ACKS && this.#roomForAcks === undefined) this.#holdForAcks();
    return ack;
  }

  /**
   * Holds input until the acknowledgements waiting drop to half. A method of its own: its
   * closure in `#queueAck` had V8 allocate a context for every acknowledgement.
   */
  #holdForAcks(): void {
    this.#connection.runAsync(new Promise((resolve) => this.#roomForAcks = resolve));
  }

  /** Sends the acknowledgements at the head whose outcome is known, in arrival order. */
  #flush(): void {
    const acks = this.#acks;
    const connection = this.#connection;
    if (!acks) return;
    this.#sendReady(acks, connection);
    if (this.#roomForAcks !== undefined && acks.length < MAX_WAITING_ACKS / 2) {
      const resume = this.#roomForAcks;
      this.#roomForAcks = undefined;
      resume();
    }
    const receiveMaximum = connection.services.context.options.receiveMaximum;
    if (this.#roomForAnswers !== undefined && this.#awaitingAck < receiveMaximum / 2) {
      const resume = this.#roomForAnswers;
      this.#roomForAnswers = undefined;
      resume();
    }
  }

  #sendReady(acks: Fifo<PendingAck>, connection: ConnectionControl): void {
    while (acks.length > 0 && acks.peek()!.reasonCode !== undefined) {
      if (connection.closed) return;
      const ack = acks.shift()!;
      if (ack.type === 0) {
        ack.failure!();
        return;
      }
      if (ack.type !== PacketType.PUBCOMP) this.#awaitingAck--;
      if (ack.notStored) {
        // Never acknowledged as a success: MQTT 5 gets a failure code, 3.1.1 (which has none)
        // loses the connection, and a PUBREL that could not complete is asked for again.
        if (connection.protocolVersion !== 5 || ack.type === PacketType.PUBCOMP) {
          connection.disconnect(ReasonCode.UnspecifiedError, ack.reason);
          return;
        }
      }
      const code = ack.reasonCode!;
      if (ack.type === PacketType.PUBREC && code < 0x80) {
        this.#connection.session!.inboundQos2.add(ack.packetId); // [MQTT-4.3.3-8]
        (this.#qos2Open ??= new Set()).add(ack.packetId);
      }
      // A success needs no reason string (and some clients reject a longer PUBACK).
      const reason = code >= 0x80 ? ack.reason : undefined;
      const packet = ackPacket;
      packet.type = ack.type;
      packet.packetId = ack.packetId;
      packet.reasonCode = code;
      packet.properties = connection.problemInformation(reason);
      connection.send(packet);
      packet.properties = undefined;
    }
  }
}

/**
 * The acknowledgement handed to the encoder, filled in for each one (the encoder keeps nothing of
 * it): a packet object per acknowledgement was a good part of what a QoS 1 message allocated.
 */
const ackPacket: PubAckLikePacket<PendingAck["type"] & PacketType> = {
  type: PacketType.PUBACK,
  packetId: 0,
  reasonCode: 0,
  properties: undefined,
};

/**
 * The properties of a PUBLISH or will that travel on to subscribers unaltered [MQTT-3.3.2-4]
 * [MQTT-3.3.2-15] [MQTT-3.3.2-16] [MQTT-3.3.2-17] [MQTT-3.3.2-20], user properties in order
 * [MQTT-3.3.2-18] [MQTT-3.1.3-10].
 */
export function forwardedProperties(props: Properties): Properties | undefined {
  const {
    payloadFormatIndicator,
    contentType,
    responseTopic,
    correlationData,
    userProperties,
  } = props;
  if (
    payloadFormatIndicator === undefined && contentType === undefined &&
    responseTopic === undefined && correlationData === undefined && userProperties === undefined
  ) return undefined;
  const forwarded: Properties = {};
  if (payloadFormatIndicator !== undefined) {
    forwarded.payloadFormatIndicator = payloadFormatIndicator;
  }
  if (contentType !== undefined) forwarded.contentType = contentType;
  if (responseTopic !== undefined) forwarded.responseTopic = responseTopic;
  if (correlationData !== undefined) forwarded.correlationData = correlationData.slice();
  if (userProperties !== undefined) forwarded.userProperties = userProperties;
  return forwarded;
}
