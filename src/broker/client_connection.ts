/**
 * One client connection: the state machine from CONNECT to close around the packet handlers
 * (connect, inbound publish, subscribe, outbound delivery), input holds while an asynchronous step
 * runs, the connection's deadline (connect timeout, keep alive, half-received packet, a stuck
 * consumer) and closing with a reason.
 *
 * @module
 */

import {
  ConnackReturnCode,
  encodePacket,
  MqttError,
  type Packet,
  PacketDecoder,
  PacketType,
  protocolError,
  ReasonCode,
  validateDisconnect,
  validatePubAckLike,
} from "../codec/mod.ts";
import type { DisconnectPacket, Properties, ProtocolVersion } from "../codec/packets.ts";
import type { ClientInfo } from "../hooks/hooks.ts";
import type { Connection, ConnectionHandler } from "../transport/transport.ts";
import type { Schedulable } from "../util/deadlines.ts";
import { msSince, stamp } from "../util/stamps.ts";
import {
  type ConnectDetails,
  type ConnectedSettings,
  ConnectFlow,
  type ConnectingConnection,
  refusalConnack,
} from "./connect.ts";
import type { ConnectionServices } from "./connection_control.ts";
import type { BrokerSession } from "./context.ts";
import { InboundFlow } from "./inbound.ts";
import { Outbound, type OutboundParameters } from "./outbound.ts";
import { handleSubscribe, handleUnsubscribe } from "./subscriptions.ts";

const State = {
  AwaitingConnect: 0,
  Connecting: 1,
  Connected: 2,
  Closed: 3,
} as const;
type State = typeof State[keyof typeof State];

/** No Maximum Packet Size from the client (a small integer, unlike `Infinity`). */
const NO_PACKET_LIMIT = 0x7fffffff;

// Bits of `ClientConnection.#flags`: one small integer instead of a field each (every field
// costs 8 bytes on each of 100,000 connections).
/** Counted by the broker's connection limits. */
const ADMITTED = 1;
/** Reading stopped because replies passed the write bound. */
const PAUSED_FOR_OUTPUT = 2;
/** The client asked for no Reason String or User Property (MQTT 5 Request Problem Information 0). */
const NO_PROBLEM_INFORMATION = 4;
/** A normal DISCONNECT discarded the will. */
const NO_WILL_ON_CLOSE = 8;
/** The client closed with DISCONNECT. */
const CLOSED_BY_CLIENT = 16;
/** The Session Expiry Interval granted at CONNECT was 0 (DISCONNECT may not raise it). */
const EXPIRY_ZERO_AT_CONNECT = 32;
/** CONNACK was sent (`#since` is then the time it was). */
const WAS_CONNECTED = 64;
/** Reading stopped while publishes of this client wait for room in a full queue. */
const HELD_FOR_ROOM = 128;
/** The `State` sits in these bits of the flags. */
const STATE_SHIFT = 8;
const STATE_BITS = 3 << STATE_SHIFT;
/** The protocol level (3, 4 or 5) sits in these bits of the flags. */
const VERSION_SHIFT = 10;
const VERSION_BITS = 7 << VERSION_SHIFT;

/** How a connection ended, for the broker. */
export interface ClosedInfo {
  /** Whether CONNACK had been sent. */
  wasConnected: boolean;
  /** Publish the will (false after a normal DISCONNECT). */
  willOnClose: boolean;
  reasonCode: number;
  byClient: boolean;
}

/** What the broker learns from a connection's life. */
export interface ConnectionEvents {
  /** CONNACK was sent. */
  connected(connection: ClientConnection): void;
  /** The connection ended (whether or not it ever connected). */
  closed(connection: ClientConnection, info: ClosedInfo): void;
}

/** One connected (or connecting) client. */
export class ClientConnection implements ConnectionHandler, ConnectingConnection, Schedulable {
  readonly services: ConnectionServices;
  readonly transport: Connection;
  readonly info: ClientInfo;
  session: BrokerSession | undefined = undefined;
  /** The connection's one deadline, on the broker's scheduler (its field; see `Schedulable`). */
  deadlineAt = 0;
  /** The deadline's place in the scheduler (its field; see `Schedulable`). */
  deadlineIndex = -1;
  #events: ConnectionEvents;
  /** Created when first used (a subscription, a resumed session): an idle connection has none. */
  #outbound: Outbound | undefined = undefined;
  /** What the outbound delivery is created with, from CONNECT until it is. */
  #outboundParameters: OutboundParameters | undefined = undefined;
  /** Created at the first PUBLISH or PUBREL: an idle connection holds none. */
  #inbound: InboundFlow | undefined = undefined;
  /**
   * Created at CONNECT; dropped after CONNACK unless the CONNECT named an Authentication Method
   * (re-authentication needs it).
   */
  #connect: ConnectFlow | undefined = undefined;
  #decoder: PacketDecoder;
  /** The bits above, the `State` (`AwaitingConnect` at first) and the protocol level (4 at first). */
  #flags = 4 << VERSION_SHIFT;
  #keepAliveMs = 0;
  /** Stamp (see `util/stamps.ts`) of the last bytes received. */
  #lastActivity: number;
  /** Epoch ms the connection was accepted; once `WAS_CONNECTED`, when CONNACK was sent. */
  #since: number;
  /** Stamp of when the partial packet held began; -1 while none is held. */
  #partialSince = -1;
  #packetsSeen = 0;
  /**
   * The packet that arrived while input was held; the bytes after it wait undecoded in the
   * decoder, and the socket is paused meanwhile.
   */
  #parked: Packet | undefined = undefined;
  /** Asynchronous steps running (input is held while any is). */
  #asyncSteps = 0;
  #clientMaxPacketSize = NO_PACKET_LIMIT;
  #closeReason = 0;
  /** Non-zero: a connection limit was hit; CONNECT is answered with this reason code. */
  #refusal = 0;
  #details: ConnectDetails | undefined = undefined;

  constructor(services: ConnectionServices, transport: Connection, events: ConnectionEvents) {
    this.services = services;
    this.transport = transport;
    this.#events = events;
    const now = services.context.clock.now();
    this.#lastActivity = stamp(now);
    this.#since = now;
    this.info = {
      clientId: "",
      username: undefined,
      remoteAddress: transport.remoteAddress,
      remotePort: transport.remotePort,
      protocolVersion: 4,
      transport: transport.kind,
      peerCertificate: transport.peerCertificate,
      authContext: undefined,
    };
    this.#decoder = new PacketDecoder(this, {
      maximumPacketSize: services.context.options.maxPacketSize,
      role: "server",
      allowConnectTrailingData: services.context.options.legacyConnectInfo,
    });
    this.#armTimer();
  }

  /** Counted by the broker's connection limits (released when it closes). */
  get admitted(): boolean {
    return (this.#flags & ADMITTED) !== 0;
  }

  set admitted(admitted: boolean) {
    this.#setFlag(ADMITTED, admitted);
  }

  /** Epoch ms CONNACK was sent; 0 until then. */
  get connectedAt(): number {
    return (this.#flags & WAS_CONNECTED) !== 0 ? this.#since : 0;
  }

  get #state(): State {
    return ((this.#flags & STATE_BITS) >> STATE_SHIFT) as State;
  }

  set #state(state: State) {
    this.#flags = (this.#flags & ~STATE_BITS) | (state << STATE_SHIFT);
  }

  get #version(): ProtocolVersion {
    return ((this.#flags & VERSION_BITS) >> VERSION_SHIFT) as ProtocolVersion;
  }

  set #version(version: ProtocolVersion) {
    this.#flags = (this.#flags & ~VERSION_BITS) | (version << VERSION_SHIFT);
  }

  #setFlag(flag: number, on: boolean): void {
    this.#flags = on ? this.#flags | flag : this.#flags & ~flag;
  }

  /** What the CONNECT said beyond the client id and user name; set at CONNACK. */
  get connectDetails(): ConnectDetails | undefined {
    return this.#details;
  }

  get connectTrailer(): Uint8Array | undefined {
    return this.#decoder.connectTrailingData;
  }

  /** Answers this connection's CONNECT with `reasonCode` (a connection limit was hit). */
  refuseAtConnect(reasonCode: number): void {
    this.#refusal = reasonCode;
  }

  get refusal(): number {
    return this.#refusal;
  }

  /** Protocol level of the connection (4 until CONNECT says otherwise). */
  get protocolVersion(): ProtocolVersion {
    return this.#version;
  }

  /** Keep alive in seconds as granted (0: none). */
  get keepAlive(): number {
    return this.#keepAliveMs / 1000;
  }

  /** True once CONNACK was sent and until the connection closes. */
  get connected(): boolean {
    return this.#state === State.Connected;
  }

  /** True once the connection is gone. */
  get closed(): boolean {
    return this.#state === State.Closed;
  }

  get frame(): Uint8Array | undefined {
    return this.#decoder.frame;
  }

  /**
   * Outbound delivery, created at its first use once the session is attached (a connection that
   * never subscribes and resumes no session never has one).
   */
  get outbound(): Outbound {
    return this.#outbound ?? this.#createOutbound();
  }

  /** The outbound delivery if it was created. */
  get createdOutbound(): Outbound | undefined {
    return this.#outbound;
  }

  #createOutbound(): Outbound {
    const outbound = new Outbound(
      this.services.context,
      this.session!,
      this.#outboundParameters!,
      this,
    );
    this.#outbound = outbound;
    this.#outboundParameters = undefined;
    if (this.#state === State.Connected) outbound.start();
    else if (this.#state === State.Closed) outbound.close().catch(() => {});
    return outbound;
  }

  // Used instead of comparing `#state` inline: TypeScript narrows the field across awaits and calls.
  #is(state: State): boolean {
    return this.#state === state;
  }

  // ---- transport events -------------------------------------------------------------------

  onData(chunk: Uint8Array): void {
    if (this.#is(State.Closed)) return;
    const context = this.services.context;
    context.stats.bytesReceived += chunk.length;
    const now = context.clock.now();
    this.#lastActivity = stamp(now);
    const seenBefore = this.#packetsSeen;
    try {
      this.#decoder.push(chunk);
    } catch (err) {
      this.fail(err);
      return;
    }
    if (this.#decoder.bufferedBytes === 0) this.#partialSince = -1;
    else if (this.#partialSince === -1 || this.#packetsSeen !== seenBefore) {
      this.#partialSince = this.#lastActivity;
      const deadlines = context.deadlines;
      if (now + context.options.connectTimeout < deadlines.dueAt(this)) this.#armTimer();
    }
  }

  onClose(error?: Error): void {
    if (error) {
      this.services.context.logger.debug("connection error", {
        clientId: this.info.clientId,
        error,
      });
    }
    this.#closeNow();
  }

  /** Whether reading stopped because replies passed the write bound (until they are sent). */
  get readingPausedForOutput(): boolean {
    return (this.#flags & PAUSED_FOR_OUTPUT) !== 0;
  }

  onDrain(): void {
    this.#outbound?.pump();
    if ((this.#flags & PAUSED_FOR_OUTPUT) === 0) return;
    this.#flags &= ~PAUSED_FOR_OUTPUT;
    if (this.#asyncSteps === 0) this.#resumeInput();
  }

  /** Decoder callback: one complete packet. Returns false to stop decoding the chunk. */
  onPacket(packet: Packet): boolean {
    this.#packetsSeen++;
    if (this.#is(State.Closed)) return false;
    if (this.#asyncSteps !== 0) {
      // Held: this packet waits decoded, the bytes after it stay undecoded in the decoder (a
      // chunk's worth of decoded packets, waiting out a hold, outlived young collections).
      this.#parked = packet;
      return false;
    }
    this.#dispatch(packet);
    return !this.#is(State.Closed);
  }

  // ---- dispatch -----------------------------------------------------------------------------

  #dispatch(packet: Packet): void {
    try {
      if (this.#state !== State.Connected) {
        this.#dispatchBeforeConnack(packet);
        return;
      }
      switch (packet.type) {
        case PacketType.PUBLISH:
          (this.#inbound ?? this.#createInbound()).handlePublish(packet);
          return;
        case PacketType.PUBACK:
        case PacketType.PUBREC:
        case PacketType.PUBREL:
        case PacketType.PUBCOMP: {
          const invalid = validatePubAckLike(packet, this.#version);
          if (invalid) throw invalid;
          // Without an outbound delivery nothing was sent: PUBACK and PUBCOMP are ignored, and
          // a PUBREC is answered (creating it) with PUBREL 0x92.
          if (packet.type === PacketType.PUBACK) this.#outbound?.puback(packet.packetId);
          else if (packet.type === PacketType.PUBREC) {
            this.outbound.pubrec(packet.packetId, packet.reasonCode);
          } else if (packet.type === PacketType.PUBREL) {
            (this.#inbound ?? this.#createInbound()).handlePubrel(packet.packetId);
          } else this.#outbound?.pubcomp(packet.packetId);
          return;
        }
        case PacketType.SUBSCRIBE:
          handleSubscribe(this, packet);
          return;
        case PacketType.UNSUBSCRIBE:
          handleUnsubscribe(this, packet);
          return;
        case PacketType.PINGREQ:
          this.send({ type: PacketType.PINGRESP }); // [MQTT-3.12.4-1]
          return;
        case PacketType.DISCONNECT:
          this.#handleDisconnect(packet);
          return;
        case PacketType.CONNECT:
          throw protocolError("Cannot accept a second CONNECT [MQTT-3.1.0-2]");
        case PacketType.AUTH:
          if (this.#connect === undefined) throw noReauthentication();
          this.#connect.handleReauthentication(packet);
          return;
        default:
          throw protocolError(`Cannot accept packet type ${packet.type} from a client`);
      }
    } catch (err) {
      this.fail(err);
    }
  }

  #dispatchBeforeConnack(packet: Packet): void {
    if (packet.type === PacketType.CONNECT && this.#state === State.AwaitingConnect) {
      this.#state = State.Connecting;
      this.#version = packet.protocolVersion;
      this.info.protocolVersion = packet.protocolVersion;
      const connect = this.#connect = new ConnectFlow(this);
      this.runAsync(connect.handleConnect(packet));
      return;
    }
    if (packet.type === PacketType.CONNECT) {
      throw protocolError("Cannot accept a second CONNECT [MQTT-3.1.0-2]");
    }
    const connect = this.#connect;
    if (connect !== undefined && connect.authenticating) {
      if (packet.type === PacketType.AUTH) {
        connect.handleConnectAuth(packet);
        return;
      }
      if (packet.type === PacketType.DISCONNECT) {
        this.#closeNow();
        return;
      }
      throw protocolError("Only AUTH or DISCONNECT may come before CONNACK [MQTT-3.1.2-30]");
    }
    // The first packet must be CONNECT [MQTT-3.1.0-1]: close without answering.
    this.services.context.logger.debug("first packet is not CONNECT", { remote: this.#remote() });
    this.#closeNow();
  }

  /** The inbound side, at the first PUBLISH or PUBREL. */
  #createInbound(): InboundFlow {
    return this.#inbound = new InboundFlow(
      this,
      this.#version === 5 ? this.services.context.options.topicAliasMaximum : 0,
    );
  }

  runAsync(step: Promise<void>): void {
    if (this.#asyncSteps++ === 0 && (this.#flags & PAUSED_FOR_OUTPUT) === 0) {
      this.transport.pause();
    }
    step.catch((err) => this.fail(err)).finally(() => this.#asyncDone());
  }

  holdForRoom(): boolean {
    if ((this.#flags & HELD_FOR_ROOM) !== 0) return true;
    if (this.#is(State.Closed)) return false;
    // Its acknowledgements may be what makes room (it subscribes to what it publishes, or two
    // clients publish to each other): a client whose deliveries await them is never held.
    if ((this.#outbound?.inflightCount ?? 0) > 0) return false;
    this.#flags |= HELD_FOR_ROOM;
    this.services.context.stats.publishersHeld++;
    if (this.#asyncSteps++ === 0 && (this.#flags & PAUSED_FOR_OUTPUT) === 0) {
      this.transport.pause();
    }
    return true;
  }

  releaseForRoom(): void {
    if ((this.#flags & HELD_FOR_ROOM) === 0) return;
    this.#flags &= ~HELD_FOR_ROOM;
    // Nothing could be heard from the client while it was not read: keep alive counts from now.
    this.#lastActivity = stamp(this.services.context.clock.now());
    this.#armTimer();
    // In a turn of its own: the room was made inside another client's acknowledgement, which must
    // not run this client's waiting packets.
    queueMicrotask(this.#asyncDoneNow);
  }

  /** Called when this client's first QoS 1/2 delivery goes out: it must be read (its ack). */
  deliveriesAwaitAck(): void {
    if ((this.#flags & HELD_FOR_ROOM) !== 0) this.releaseForRoom();
  }

  readonly #asyncDoneNow = () => this.#asyncDone();

  #asyncDone(): void {
    if (--this.#asyncSteps !== 0) return;
    const parked = this.#parked;
    if (parked !== undefined && !this.#is(State.Closed)) {
      this.#parked = undefined;
      this.#dispatch(parked);
    }
    if (this.#asyncSteps === 0 && !this.#is(State.Closed)) {
      try {
        this.#decoder.resume();
      } catch (err) {
        this.fail(err);
        return;
      }
      // The held bytes may end in a partial packet: it is timed like one that just arrived
      // (from when reading resumes, below).
      if (this.#decoder.bufferedBytes === 0) this.#partialSince = -1;
      else if (this.#partialSince === -1) this.#partialSince = this.#lastActivity;
    }
    if (
      this.#asyncSteps === 0 && (this.#flags & PAUSED_FOR_OUTPUT) === 0 &&
      !this.#is(State.Closed)
    ) {
      this.#resumeInput();
    }
  }

  /**
   * Reads again after a hold. A partial packet's timeout counts from now: while the broker was not
   * reading, the client could not complete it.
   */
  #resumeInput(): void {
    if (this.#partialSince !== -1) {
      this.#partialSince = stamp(this.services.context.clock.now());
      this.#armTimer();
    }
    this.transport.resume();
  }

  /** True while the broker does not read this client's input. */
  #inputHeld(): boolean {
    return this.#asyncSteps !== 0 || (this.#flags & PAUSED_FOR_OUTPUT) !== 0;
  }

  // ---- CONNECT outcome ----------------------------------------------------------------------

  acceptAuth(): void {
    this.#decoder.acceptAuth = true;
  }

  setClientLimits(maxPacketSize: number, requestProblemInformation: boolean): void {
    this.#clientMaxPacketSize = Math.min(maxPacketSize, NO_PACKET_LIMIT);
    this.#setFlag(NO_PROBLEM_INFORMATION, !requestProblemInformation);
  }

  bind(session: BrokerSession, parameters: OutboundParameters): void {
    this.session = session;
    this.#outboundParameters = parameters;
  }

  /** The outbound window filled (see `OutboundOwner`). */
  outboundWindowFull(): void {
    this.#armTimer();
  }

  onConnected(settings: ConnectedSettings): void {
    this.#state = State.Connected;
    this.#keepAliveMs = settings.keepAlive * 1000;
    this.#setFlag(EXPIRY_ZERO_AT_CONNECT, settings.expiryAtConnect === 0);
    this.#details = settings.details;
    if (!this.#connect!.reauthenticates) this.#connect = undefined;
    this.#since = this.services.context.clock.now();
    this.#flags |= WAS_CONNECTED;
    this.#events.connected(this);
    this.#armTimer();
    this.#outbound?.start();
  }

  refuse(reasonCode: number, reason: string, extra?: Properties): void {
    this.services.context.logger.info("connection refused", {
      clientId: this.info.clientId,
      remote: this.#remote(),
      reason,
    });
    const properties = (this.#flags & NO_PROBLEM_INFORMATION) === 0
      ? { ...extra, reasonString: reason }
      : extra;
    const connack = refusalConnack(this.#version, reasonCode, properties);
    // 3.1.1 has no return code for many causes: then it closes without CONNACK [MQTT-3.2.2-6].
    if (connack) this.send(connack);
    this.#closeReason = reasonCode;
    this.transport.close();
    this.#closeNow();
  }

  // ---- DISCONNECT ---------------------------------------------------------------------------

  #handleDisconnect(packet: DisconnectPacket): void {
    const invalid = validateDisconnect(packet);
    if (invalid) throw invalid;
    const session = this.session!;
    const requested = packet.properties?.sessionExpiryInterval;
    if (requested !== undefined) {
      // Cannot turn a session that ends at close into a persistent one (MQTT 5 section 3.14.2.2.2).
      if ((this.#flags & EXPIRY_ZERO_AT_CONNECT) !== 0 && requested !== 0) {
        throw protocolError("Session expiry cannot change from 0 in DISCONNECT");
      }
      session.expiryInterval = Math.min(
        requested,
        this.services.context.options.maxSessionExpiryInterval,
      );
    }
    // Only a normal DISCONNECT (0x00) discards the will [MQTT-3.14.4-3]; 0x04 asks for it, and a
    // client reporting an error keeps it too (MQTT 5 section 3.1.2.5).
    this.#setFlag(NO_WILL_ON_CLOSE, packet.reasonCode === ReasonCode.NormalDisconnection);
    this.#flags |= CLOSED_BY_CLIENT;
    this.#closeReason = packet.reasonCode;
    this.transport.close();
    this.#closeNow();
  }

  // ---- sending ------------------------------------------------------------------------------

  problemInformation(reason: string | undefined): Properties | undefined {
    if (
      reason === undefined || this.#version !== 5 || (this.#flags & NO_PROBLEM_INFORMATION) !== 0
    ) {
      return undefined;
    }
    return { reasonString: reason };
  }

  send(packet: Packet): void {
    const context = this.services.context;
    const encodeOptions = context.encodeOptions;
    let bytes = encodePacket(packet, this.#version, encodeOptions);
    if (bytes.length > this.#clientMaxPacketSize && "properties" in packet && packet.properties) {
      // A Reason String or User Property must not make a packet exceed the client's Maximum
      // Packet Size [MQTT-3.2.2-19] [MQTT-3.2.2-20] [MQTT-3.4.2-2] [MQTT-3.14.2-3]: drop them.
      const { reasonString: _reason, userProperties: _user, ...rest } = packet.properties;
      bytes = encodePacket({ ...packet, properties: rest } as Packet, this.#version, encodeOptions);
    }
    context.stats.bytesSent += bytes.length;
    this.transport.write(bytes);
    // Replies pile up when a client sends but does not read: stop reading until they drain.
    if (
      (this.#flags & PAUSED_FOR_OUTPUT) === 0 &&
      this.transport.bufferedBytes > context.options.writeBufferLimit
    ) {
      this.#flags |= PAUSED_FOR_OUTPUT;
      this.transport.pause();
    }
  }

  // ---- closing ------------------------------------------------------------------------------

  /**
   * Ends the connection from the server side: MQTT 5 clients get DISCONNECT with the reason
   * [MQTT-4.13.2-1]; 3.1.1 clients are just closed.
   */
  disconnect(reasonCode: number, reason?: string, extra?: Properties): void {
    if (this.#is(State.Closed)) return;
    if (this.#version === 5 && this.#state === State.Connected) {
      const properties: Properties | undefined =
        reason && (this.#flags & NO_PROBLEM_INFORMATION) === 0
          ? { ...extra, reasonString: reason }
          : extra;
      this.send({ type: PacketType.DISCONNECT, reasonCode, properties });
    }
    this.#closeReason = reasonCode;
    this.transport.close();
    this.#closeNow();
  }

  takeOver(): void {
    this.disconnect(ReasonCode.SessionTakenOver, "Another connection uses this client id");
  }

  fail(err: unknown): void {
    if (this.#is(State.Closed)) return;
    if (this.#inbound?.acknowledging) {
      // Messages before the bad packet are answered first, in order; input waits meanwhile.
      this.runAsync(this.#inbound.failAfterPending(err));
      return;
    }
    const context = this.services.context;
    if (!(err instanceof MqttError)) {
      context.logger.error("unexpected error handling client", {
        clientId: this.info.clientId,
        remote: this.#remote(),
        error: err,
      });
      err = new MqttError(ReasonCode.ImplementationSpecificError, "Internal error");
    }
    const mqttError = err as MqttError;
    context.stats.protocolErrors++;
    context.logger.info("closing connection on bad input", {
      clientId: this.info.clientId,
      remote: this.#remote(),
      reasonCode: mqttError.reasonCode,
      reason: mqttError.message,
    });
    if (mqttError.reasonCode === ReasonCode.UnsupportedProtocolVersion) {
      // Answer in the 3.1.1 format every client level can read [MQTT-3.1.2-2].
      this.#version = 4;
      this.send({
        type: PacketType.CONNACK,
        sessionPresent: false,
        reasonCode: ConnackReturnCode.UnacceptableProtocolVersion,
        properties: undefined,
      });
      this.transport.close();
      this.#closeNow();
      return;
    }
    if (this.#state === State.AwaitingConnect && mqttError.connectLevel === 5) {
      // An MQTT 5 CONNECT that does not decode is answered before the close, as the spec allows
      // (section 3.1.4): CONNACK 0x81 or 0x82 says why [MQTT-3.2.2-7].
      this.#version = 5;
      this.info.protocolVersion = 5;
      this.#state = State.Connecting;
    }
    if (this.#state === State.Connecting && this.#version === 5) {
      this.refuse(mqttError.reasonCode, mqttError.message);
      return;
    }
    this.disconnect(mqttError.reasonCode, mqttError.message);
  }

  #closeNow(): void {
    if (this.#is(State.Closed)) return;
    const wasConnected = this.#state === State.Connected;
    if (!wasConnected && isProtocolRefusal(this.#closeReason)) {
      this.services.context.stats.connectsRefusedProtocol++;
    }
    this.#state = State.Closed;
    this.#parked = undefined;
    this.#clearTimer();
    this.transport.close();
    this.#events.closed(this, {
      wasConnected,
      willOnClose: (this.#flags & NO_WILL_ON_CLOSE) === 0,
      reasonCode: this.#closeReason,
      byClient: (this.#flags & CLOSED_BY_CLIENT) !== 0,
    });
  }

  // ---- timers -------------------------------------------------------------------------------

  /** Schedules the one deadline of this connection at its nearest one (on the broker's heap). */
  #armTimer(): void {
    const deadline = this.#nextDeadline();
    if (deadline === Infinity) this.#clearTimer();
    else this.services.context.deadlines.schedule(this, deadline);
  }

  #clearTimer(): void {
    this.services.context.deadlines.cancel(this);
  }

  #nextDeadline(): number {
    const context = this.services.context;
    const options = context.options;
    let deadline = Infinity;
    let now = 0;
    if (this.#state === State.AwaitingConnect || this.#state === State.Connecting) {
      deadline = this.#since + options.connectTimeout;
    } else if (this.#state === State.Connected) {
      // [MQTT-3.1.2-24]: one and a half keep alive periods without a packet (not counted while
      // the client is not read because its publishes wait for room).
      if (this.#keepAliveMs > 0 && (this.#flags & HELD_FOR_ROOM) === 0) {
        now = context.clock.now();
        deadline = now - msSince(now, this.#lastActivity) +
          this.#keepAliveMs * options.keepAliveMultiplier;
      }
      if (options.slowConsumerTimeout > 0 && this.#outbound !== undefined) {
        deadline = Math.min(deadline, this.#outbound.stuckDeadline);
      }
    }
    if (this.#partialSince !== -1 && !this.#inputHeld()) {
      if (now === 0) now = context.clock.now();
      deadline = Math.min(
        deadline,
        now - msSince(now, this.#partialSince) + options.connectTimeout,
      );
    }
    return deadline;
  }

  /** The deadline is due: close on a missed connect, keep alive, partial packet or stuck consumer. */
  onDeadline(): void {
    if (this.#is(State.Closed)) return;
    const context = this.services.context;
    const now = context.clock.now();
    const options = context.options;
    if (this.#state !== State.Connected) {
      if (now >= this.#since + options.connectTimeout) {
        context.logger.debug("no CONNECT in time", { remote: this.#remote() });
        this.#closeReason = ReasonCode.MaximumConnectTime;
        this.#closeNow();
        return;
      }
    } else {
      if (
        this.#keepAliveMs > 0 && (this.#flags & HELD_FOR_ROOM) === 0 &&
        msSince(now, this.#lastActivity) >= this.#keepAliveMs * options.keepAliveMultiplier
      ) {
        this.disconnect(ReasonCode.KeepAliveTimeout, "Keep alive timeout");
        return;
      }
      if (
        options.slowConsumerTimeout > 0 && this.#outbound !== undefined &&
        now >= this.#outbound.stuckDeadline
      ) {
        context.stats.slowConsumerDisconnects++;
        context.logger.warn("disconnecting a client that acknowledges nothing", {
          clientId: this.info.clientId,
          inflight: this.#outbound.inflightCount,
        });
        this.disconnect(ReasonCode.QuotaExceeded, "Messages not acknowledged in time");
        return;
      }
    }
    if (
      this.#partialSince !== -1 && !this.#inputHeld() &&
      msSince(now, this.#partialSince) >= options.connectTimeout
    ) {
      this.disconnect(ReasonCode.MalformedPacket, "Incomplete packet timed out");
      return;
    }
    this.#armTimer();
  }

  #remote(): string {
    return `${this.transport.remoteAddress}:${this.transport.remotePort}`;
  }
}

/** AUTH after CONNACK on a connection whose CONNECT named no Authentication Method. */
function noReauthentication(): Error {
  return protocolError("Cannot accept AUTH: no authentication method in CONNECT [MQTT-4.12.0-7]");
}

/** Codes a CONNECT is refused with that are not about a limit, authentication or the store. */
const NOT_PROTOCOL_REFUSALS: ReadonlySet<number> = new Set([
  ReasonCode.BadUserNameOrPassword,
  ReasonCode.NotAuthorized,
  ReasonCode.ServerUnavailable,
  ReasonCode.ServerBusy,
  ReasonCode.Banned,
  ReasonCode.BadAuthenticationMethod,
  ReasonCode.QuotaExceeded,
  ReasonCode.ConnectionRateExceeded,
  ReasonCode.UseAnotherServer,
  ReasonCode.ServerMoved,
  ReasonCode.ServerShuttingDown,
  ReasonCode.MaximumConnectTime,
]);

/** Whether a connection closed before CONNACK with this code was refused for breaking the protocol. */
function isProtocolRefusal(code: number): boolean {
  return code >= 0x80 && !NOT_PROTOCOL_REFUSALS.has(code);
}
