/**
 * One client connection: the MQTT state machine from CONNECT to close, inbound packet handling,
 * outbound delivery with flow control, keep alive and timeouts.
 *
 * @module
 */

import {
  ConnackReturnCode,
  connackReturnCodeFor311,
  encodePacket,
  MqttError,
  type Packet,
  PacketDecoder,
  PacketType,
  protocolError,
  ReasonCode,
  utf8ByteLength,
  validateAuth,
  validateConnect,
  validateDisconnect,
  validatePubAckLike,
  validatePublish,
  validateSubscribe,
  validateUnsubscribe,
} from "../codec/mod.ts";
import type {
  AuthPacket,
  ConnectPacket,
  DisconnectPacket,
  Properties,
  ProtocolVersion,
  PubAckLikePacket,
  PublishPacket,
  QoS,
  SubscribePacket,
  UnsubscribePacket,
} from "../codec/packets.ts";
import type { AuthStep, EnhancedAuthenticator } from "../auth/enhanced.ts";
import type { Message, SubscriptionRecord, WillRecord } from "../backbone/backbone.ts";
import { isWellFormedUtf8 } from "../codec/utf8.ts";
import type { AuthResult, ClientInfo } from "../hooks/hooks.ts";
import { type InflightMessage, NEVER_EXPIRES, type Session } from "../session/session.ts";
import {
  InboundTopicAliases,
  OutboundTopicAliases,
  parseSharedFilter,
  topicMatchesFilter,
  validateTopicFilter,
  validateTopicName,
} from "../topic/mod.ts";

import type { Connection, ConnectionHandler } from "../transport/transport.ts";
import { Deadline, type DeadlineTarget } from "../util/deadlines.ts";
import { Fifo } from "../util/fifo.ts";
import type { Throttled } from "./backpressure.ts";
import type { AttachingClient, BrokerCore } from "./broker_core.ts";
import { TokenBucket } from "./limits.ts";

const State = {
  AwaitingConnect: 0,
  Connecting: 1,
  Connected: 2,
  Closed: 3,
} as const;
type State = typeof State[keyof typeof State];

/** Packets received while input is held wait here; the socket is paused meanwhile. */
const MAX_BACKLOG = 10_000;

/** Why input processing is held (bits): packets wait in the backlog while any is set. */
const Hold = {
  /** An asynchronous step (CONNECT, an async hook or backbone call) is running. */
  Async: 1,
  /** A subscriber this client publishes to is congested (see backpressure.ts). */
  Backpressure: 2,
} as const;

/** The maximum a two-byte Receive Maximum can express. */
const MAX_RECEIVE_MAXIMUM = 65_535;

/** What a CONNECT asked for, kept while its enhanced-authentication exchange runs. */
interface PendingConnect {
  packet: ConnectPacket;
  clientId: string;
  assignedClientId: string | undefined;
  keepAlive: number;
  serverKeepAlive: number | undefined;
  will: WillRecord | undefined;
}

/** One connected (or connecting) client. */
export class Client implements ConnectionHandler, AttachingClient, Throttled, DeadlineTarget {
  readonly connection: Connection;
  readonly info: ClientInfo;
  session: Session | undefined = undefined;
  /** Epoch ms of the last bytes received. */
  lastActivity: number;
  /** Epoch ms CONNACK was sent; 0 until then. */
  connectedAt = 0;
  #core: BrokerCore;
  #decoder: PacketDecoder;
  #state: State = State.AwaitingConnect;
  #version: ProtocolVersion = 4;
  #keepAliveMs = 0;
  #acceptedAt: number;
  #partialSince = 0;
  #packetsSeen = 0;
  /** The one deadline of this connection (connect timeout, keep alive, partial packet). */
  #timer: Deadline = new Deadline(this);
  /** Created when input is first held, so a connection that never waits holds no queue. */
  #backlog: Fifo<Packet> | undefined = undefined;
  /** Bits of `Hold`. */
  #holds = 0;
  #pausedForOutput = false;
  /** Outbound QoS 1/2 window: min(our maxInflight, the client's Receive Maximum). */
  #window: number;
  /** Largest packet the client accepts [MQTT-3.1.2-24]. */
  #clientMaxPacketSize = Infinity;
  #requestProblemInformation = true;
  #aliasesIn: InboundTopicAliases | undefined = undefined;
  #aliasesOut: OutboundTopicAliases | undefined = undefined;
  /** Whether the will is published when this connection ends (false after a normal DISCONNECT). */
  #willOnClose = true;
  #closeReason = 0;
  #closedByClient = false;
  #expiryAtConnect = 0;
  /** Counted by the broker's connection limits (released when it closes). */
  admitted = false;
  /** Non-zero: a connection limit was hit; CONNECT is answered with this reason code. */
  #refusal = 0;
  /** Present when `publishRate` limits this client. */
  #publishBudget: TokenBucket | undefined;
  /** Inbound QoS 1/2 PUBLISHes not yet answered with PUBACK or PUBREC. */
  #inboundAwaitingAck = 0;
  /**
   * Inbound QoS 2 packet ids this connection answered with PUBREC and still waits to see PUBREL
   * for: with `#inboundAwaitingAck`, the client's use of our Receive Maximum. Flows left over from
   * an earlier connection do not count: each connection starts with the full quota (section 4.9).
   * Made on the first QoS 2 PUBLISH; never larger than the Receive Maximum.
   */
  #inboundQos2Open: Set<number> | undefined = undefined;
  /** The CONNECT's Authentication Method, for AUTH packets and re-authentication. */
  #authMethod: string | undefined = undefined;
  /** The enhanced-authentication exchange in progress (CONNECT or re-authentication). */
  #authenticator: EnhancedAuthenticator | undefined = undefined;
  /** A CONNECT waiting for its authentication exchange to finish. */
  #pendingConnect: PendingConnect | undefined = undefined;

  constructor(core: BrokerCore, connection: Connection) {
    this.#core = core;
    this.connection = connection;
    const now = core.clock.now();
    this.lastActivity = now;
    this.#acceptedAt = now;
    this.#window = core.options.maxInflight;
    this.info = {
      clientId: "",
      username: undefined,
      remoteAddress: connection.remoteAddress,
      remotePort: connection.remotePort,
      protocolVersion: 4,
      transport: connection.kind,
      peerCertificate: connection.peerCertificate,
      authContext: undefined,
    };
    if (core.options.publishRate > 0) {
      this.#publishBudget = new TokenBucket(core.options.publishRate, now);
    }
    this.#decoder = new PacketDecoder(this, { maximumPacketSize: core.options.maxPacketSize });
    this.#armTimer();
  }

  /** Answers this connection's CONNECT with `reasonCode` (a connection limit was hit). */
  refuseAtConnect(reasonCode: number): void {
    this.#refusal = reasonCode;
  }

  /** True while a connection-limit refusal waits for CONNECT. */
  get refusalPending(): boolean {
    return this.#refusal !== 0;
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

  // Used instead of comparing `#state` inline: TypeScript narrows the field across awaits and calls.
  #is(state: State): boolean {
    return this.#state === state;
  }

  // ---- transport events -------------------------------------------------------------------

  onData(chunk: Uint8Array): void {
    if (this.#is(State.Closed)) return;
    const core = this.#core;
    core.stats.bytesReceived += chunk.length;
    this.lastActivity = core.clock.now();
    const seenBefore = this.#packetsSeen;
    try {
      this.#decoder.push(chunk);
    } catch (err) {
      this.#fail(err);
      return;
    }
    if (this.#decoder.bufferedBytes === 0) this.#partialSince = 0;
    else if (this.#partialSince === 0 || this.#packetsSeen !== seenBefore) {
      this.#partialSince = this.lastActivity;
      if (this.#partialSince + core.options.connectTimeout < this.#timer.at) this.#armTimer();
    }
  }

  onClose(error?: Error): void {
    if (error) this.#core.logger.debug("connection error", { clientId: this.info.clientId, error });
    this.#closeNow();
  }

  /** Decoder callback: one complete packet. Returns false to stop decoding the chunk. */
  onPacket(packet: Packet): boolean {
    this.#packetsSeen++;
    if (this.#is(State.Closed)) return false;
    if (this.#holds !== 0) {
      const backlog = this.#backlog ??= new Fifo<Packet>();
      backlog.push(packet);
      if (backlog.length > MAX_BACKLOG) {
        this.#fail(new MqttError(ReasonCode.ReceiveMaximumExceeded, "Too many packets pipelined"));
        return false;
      }
      return true;
    }
    this.#dispatch(packet);
    return !this.#is(State.Closed);
  }

  // ---- dispatch -----------------------------------------------------------------------------

  #dispatch(packet: Packet): void {
    try {
      if (this.#state !== State.Connected) {
        if (packet.type === PacketType.CONNECT && this.#state === State.AwaitingConnect) {
          this.#runAsync(this.#handleConnect(packet));
          return;
        }
        if (packet.type === PacketType.CONNECT) {
          throw protocolError("Cannot accept a second CONNECT [MQTT-3.1.0-2]");
        }
        if (this.#pendingConnect) {
          if (packet.type === PacketType.AUTH) {
            this.#handleConnectAuth(packet);
            return;
          }
          if (packet.type === PacketType.DISCONNECT) {
            this.#closeNow();
            return;
          }
          throw protocolError("Only AUTH or DISCONNECT may come before CONNACK [MQTT-3.1.2-30]");
        }
        // The first packet must be CONNECT [MQTT-3.1.0-1]: close without answering.
        this.#core.logger.debug("first packet is not CONNECT", { remote: this.#remote() });
        this.#closeNow();
        return;
      }
      switch (packet.type) {
        case PacketType.PUBLISH:
          this.#handlePublish(packet);
          return;
        case PacketType.PUBACK:
        case PacketType.PUBREC:
        case PacketType.PUBREL:
        case PacketType.PUBCOMP: {
          const invalid = validatePubAckLike(packet, this.#version);
          if (invalid) throw invalid;
          if (packet.type === PacketType.PUBACK) this.#handlePuback(packet);
          else if (packet.type === PacketType.PUBREC) this.#handlePubrec(packet);
          else if (packet.type === PacketType.PUBREL) this.#handlePubrel(packet);
          else this.#handlePubcomp(packet);
          return;
        }
        case PacketType.SUBSCRIBE:
          this.#handleSubscribe(packet);
          return;
        case PacketType.UNSUBSCRIBE:
          this.#handleUnsubscribe(packet);
          return;
        case PacketType.PINGREQ:
          this.#send({ type: PacketType.PINGRESP }); // [MQTT-3.12.4-1]
          return;
        case PacketType.DISCONNECT:
          this.#handleDisconnect(packet);
          return;
        case PacketType.CONNECT:
          throw protocolError("Cannot accept a second CONNECT [MQTT-3.1.0-2]");
        case PacketType.AUTH:
          this.#handleReauthentication(packet);
          return;
        default:
          throw protocolError(`Cannot accept packet type ${packet.type} from a client`);
      }
    } catch (err) {
      this.#fail(err);
    }
  }

  /** Runs an asynchronous step with input held; later packets wait in the backlog. */
  #runAsync(step: Promise<void>): void {
    this.#hold(Hold.Async);
    step.catch((err) => this.#fail(err)).finally(() => this.#release(Hold.Async));
  }

  #hold(reason: number): void {
    if (this.#holds === 0) this.connection.pause();
    this.#holds |= reason;
  }

  #release(reason: number): void {
    if ((this.#holds & reason) === 0) return;
    this.#holds &= ~reason;
    const backlog = this.#backlog;
    while (
      backlog !== undefined && backlog.length > 0 && this.#holds === 0 && !this.#is(State.Closed)
    ) {
      this.#dispatch(backlog.shift()!);
    }
    if (this.#holds === 0 && !this.#pausedForOutput && !this.#is(State.Closed)) {
      this.#resumeInput();
    }
  }

  /**
   * Reads again after a hold. A partial packet's timeout counts from now: while the broker was not
   * reading, the client could not complete it.
   */
  #resumeInput(): void {
    if (this.#partialSince !== 0) {
      this.#partialSince = this.#core.clock.now();
      this.#armTimer();
    }
    this.connection.resume();
  }

  /** True while the broker does not read this client's input. */
  #inputHeld(): boolean {
    return this.#holds !== 0 || this.#pausedForOutput;
  }

  holdForBackpressure(): void {
    this.#hold(Hold.Backpressure);
  }

  resumeForBackpressure(): void {
    this.#release(Hold.Backpressure);
  }

  // ---- CONNECT ------------------------------------------------------------------------------

  async #handleConnect(packet: ConnectPacket): Promise<void> {
    const core = this.#core;
    const options = core.options;
    this.#state = State.Connecting;
    this.#version = packet.protocolVersion;
    this.info.protocolVersion = packet.protocolVersion;
    const v5 = packet.protocolVersion === 5;
    const props = packet.properties;

    const invalid = validateConnect(packet);
    if (invalid) return this.#refuse(invalid.reasonCode, invalid.message);
    if (v5) {
      // Known before any answer: they shape the CONNACK too.
      this.#clientMaxPacketSize = props?.maximumPacketSize ?? Infinity;
      this.#requestProblemInformation = props?.requestProblemInformation !== 0;
    }
    if (this.#refusal !== 0) return this.#refuse(this.#refusal, "Connection limit reached");
    if (options.serverReference !== "") {
      // Section 4.11: send the client elsewhere, temporarily (0x9C) or for good (0x9D).
      return this.#refuse(
        options.serverMoved ? ReasonCode.ServerMoved : ReasonCode.UseAnotherServer,
        "This server redirects its clients",
        { serverReference: options.serverReference },
      );
    }

    let clientId = packet.clientId;
    let assignedClientId: string | undefined;
    if (clientId === "") {
      // 3.1.1 accepts an empty id only with Clean Session [MQTT-3.1.3-8].
      if (!v5 && !packet.cleanStart) {
        return this.#refuse(
          ReasonCode.ClientIdentifierNotValid,
          "Empty client id needs clean session",
        );
      }
      if (!options.allowEmptyClientId) {
        return this.#refuse(
          ReasonCode.ClientIdentifierNotValid,
          "Empty client ids are not allowed",
        );
      }
      clientId = core.assignClientId(); // [MQTT-3.1.3-6]
      if (v5) assignedClientId = clientId; // [MQTT-3.2.2-16]
    } else if (utf8ByteLength(clientId) > options.maxClientIdLength) {
      return this.#refuse(ReasonCode.ClientIdentifierNotValid, "Client id is too long");
    }
    this.info.clientId = clientId;
    this.info.username = packet.username;

    let keepAlive = packet.keepAlive;
    let serverKeepAlive: number | undefined;
    if (keepAlive > options.maxKeepAlive || (keepAlive === 0 && options.maxKeepAlive < 65_535)) {
      if (!v5) {
        // 3.1.1 cannot tell the client another value; refuse like Mosquitto does.
        return this.#refuse(ReasonCode.ClientIdentifierNotValid, "Keep alive exceeds the maximum");
      }
      keepAlive = options.maxKeepAlive;
      serverKeepAlive = keepAlive; // [MQTT-3.2.2-21]
    }

    let will: WillRecord | undefined;
    if (packet.will) {
      const topicInvalid = validateTopicName(packet.will.topic, core.topicLimits);
      if (topicInvalid) return this.#refuse(ReasonCode.TopicNameInvalid, topicInvalid.message);
      if (packet.will.qos > options.maxQos) {
        return this.#refuse(ReasonCode.QoSNotSupported, "Will QoS exceeds the maximum QoS"); // [MQTT-3.2.2-12]
      }
      if (packet.will.retain && !options.retainAvailable) {
        return this.#refuse(ReasonCode.RetainNotSupported, "Retained wills are not supported"); // [MQTT-3.2.2-13]
      }
      const willProps = packet.will.properties;
      if (
        options.validatePayloadFormat && willProps?.payloadFormatIndicator === 1 &&
        !isWellFormedUtf8(packet.will.payload)
      ) {
        // Section 3.1.3.2.3: a will payload marked UTF-8 that is not.
        return this.#refuse(ReasonCode.PayloadFormatInvalid, "Will payload is not valid UTF-8");
      }
      will = {
        message: {
          topic: packet.will.topic,
          payload: packet.will.payload.slice(),
          qos: packet.will.qos,
          retain: packet.will.retain,
          properties: willProps && forwardedProperties(willProps),
          expiresAt: 0,
          origin: clientId,
        },
        delayInterval: willProps?.willDelayInterval ?? 0,
        messageExpiryInterval: willProps?.messageExpiryInterval ?? 0,
      };
    }

    const pending: PendingConnect = {
      packet,
      clientId,
      assignedClientId,
      keepAlive,
      serverKeepAlive,
      will,
    };
    const method = v5 ? props?.authenticationMethod : undefined;
    if (method === undefined) return this.#completeConnect(pending, undefined);
    const createAuthenticator = core.authMethods.get(method);
    if (!createAuthenticator) {
      // [MQTT-4.12.0-1]: an unsupported method is refused and the connection closed.
      return this.#refuse(
        ReasonCode.BadAuthenticationMethod,
        `Authentication method "${method}" is not supported`,
      );
    }
    this.#authMethod = method;
    this.#pendingConnect = pending;
    const authenticator = createAuthenticator();
    this.#authenticator = authenticator;
    const step = await authenticator.start(props!.authenticationData, this.info);
    await this.#connectAuthStep(step);
  }

  /** An AUTH during CONNECT: the client's answer to our AUTH 0x18. */
  #handleConnectAuth(packet: AuthPacket): void {
    this.#checkAuth(packet);
    if (packet.reasonCode !== ReasonCode.ContinueAuthentication || !this.#authenticator) {
      throw protocolError("AUTH before CONNACK must continue the authentication [MQTT-4.12.0-3]");
    }
    const step = this.#authenticator.continue(packet.properties?.authenticationData);
    this.#runAsync(Promise.resolve(step).then((s) => this.#connectAuthStep(s)));
  }

  async #connectAuthStep(step: AuthStep): Promise<void> {
    if (this.#is(State.Closed)) return;
    if (step.kind === "continue") {
      this.#sendAuth(ReasonCode.ContinueAuthentication, step.data); // [MQTT-4.12.0-2]
      return;
    }
    const pending = this.#pendingConnect!;
    this.#pendingConnect = undefined;
    this.#authenticator = undefined;
    if (step.kind === "failure") {
      this.#core.stats.authFailures++;
      // [MQTT-4.12.0-4]: CONNACK with a failure code, then close.
      return this.#refuse(step.reasonCode ?? ReasonCode.NotAuthorized, step.reason);
    }
    if (step.username !== undefined) this.info.username = step.username;
    await this.#completeConnect(pending, step.data);
  }

  /** An AUTH after CONNACK: re-authentication (section 4.12.1). */
  #handleReauthentication(packet: AuthPacket): void {
    if (this.#authMethod === undefined) {
      throw protocolError(
        "Cannot accept AUTH: no authentication method in CONNECT [MQTT-4.12.0-7]",
      );
    }
    this.#checkAuth(packet);
    const data = packet.properties?.authenticationData;
    let step: AuthStep | Promise<AuthStep>;
    if (packet.reasonCode === ReasonCode.ReAuthenticate && !this.#authenticator) {
      const authenticator = this.#core.authMethods.get(this.#authMethod)!();
      this.#authenticator = authenticator;
      step = authenticator.start(data, this.info);
    } else if (packet.reasonCode === ReasonCode.ContinueAuthentication && this.#authenticator) {
      step = this.#authenticator.continue(data);
    } else {
      throw protocolError(
        `Cannot accept AUTH 0x${packet.reasonCode.toString(16).padStart(2, "0")} now`,
      );
    }
    if (step instanceof Promise) this.#runAsync(step.then((s) => this.#reauthenticationStep(s)));
    else this.#reauthenticationStep(step);
  }

  #reauthenticationStep(step: AuthStep): void {
    if (this.#is(State.Closed)) return;
    if (step.kind === "continue") {
      this.#sendAuth(ReasonCode.ContinueAuthentication, step.data);
      return;
    }
    this.#authenticator = undefined;
    if (step.kind === "failure") {
      this.#core.stats.authFailures++;
      // [MQTT-4.12.1-2]: a failed re-authentication ends the connection.
      this.disconnect(step.reasonCode ?? ReasonCode.NotAuthorized, step.reason);
      return;
    }
    if (step.username !== undefined) this.info.username = step.username;
    this.#sendAuth(ReasonCode.Success, step.data);
  }

  /** A well-formed AUTH carrying the CONNECT's method [MQTT-4.12.0-5] [MQTT-4.12.1-1]. */
  #checkAuth(packet: AuthPacket): void {
    const invalid = validateAuth(packet);
    if (invalid) throw invalid;
    if (packet.properties!.authenticationMethod !== this.#authMethod) {
      throw protocolError("AUTH has another authentication method than CONNECT [MQTT-4.12.0-5]");
    }
  }

  /** Every AUTH we send carries the CONNECT's method [MQTT-4.12.0-5]; none without one [MQTT-4.12.0-6]. */
  #sendAuth(reasonCode: number, data: Uint8Array | undefined): void {
    this.#send({
      type: PacketType.AUTH,
      reasonCode,
      properties: { authenticationMethod: this.#authMethod, authenticationData: data },
    });
  }

  /** Finishes a CONNECT once it is authenticated: session, limits, CONNACK. */
  async #completeConnect(pending: PendingConnect, authData: Uint8Array | undefined): Promise<void> {
    const core = this.#core;
    const options = core.options;
    const { packet, clientId, assignedClientId, keepAlive, serverKeepAlive, will } = pending;
    const v5 = packet.protocolVersion === 5;
    const props = packet.properties;
    const hooks = core.hooks;
    // A client authenticated by an enhanced method is not asked for a password as well.
    if (hooks.authenticate && this.#authMethod === undefined) {
      const result: AuthResult = await hooks.authenticate({
        ...this.info,
        password: packet.password,
        userProperties: props?.userProperties,
      });
      if (this.#is(State.Closed)) return;
      if (!result.ok) {
        core.stats.authFailures++;
        return this.#refuse(result.reasonCode, result.reason ?? "Not authorized");
      }
      if (result.username !== undefined) this.info.username = result.username;
      if (result.context !== undefined) this.info.authContext = result.context;
    }

    let expiry: number;
    if (v5) expiry = props?.sessionExpiryInterval ?? 0;
    else expiry = packet.cleanStart ? 0 : NEVER_EXPIRES;
    const grantedExpiry = Math.min(expiry, options.maxSessionExpiryInterval);
    this.#expiryAtConnect = grantedExpiry;

    const attached = await core.attach(this, {
      clientId,
      cleanStart: packet.cleanStart,
      expiryInterval: grantedExpiry,
      protocolVersion: packet.protocolVersion,
      will,
    });
    if (!attached) return;
    const { session, sessionPresent } = attached;
    this.session = session;

    if (v5) {
      this.#window = Math.min(options.maxInflight, props?.receiveMaximum ?? MAX_RECEIVE_MAXIMUM);
      if (options.topicAliasMaximum > 0) {
        this.#aliasesIn = new InboundTopicAliases(options.topicAliasMaximum);
      }
      const clientAliasMax = props?.topicAliasMaximum ?? 0;
      if (clientAliasMax > 0 && options.outboundTopicAliases === "lru") {
        this.#aliasesOut = new OutboundTopicAliases(clientAliasMax);
      }
    }
    this.#keepAliveMs = keepAlive * 1000;

    const connackProps: Properties | undefined = v5
      ? core.connackProperties({
        assignedClientIdentifier: assignedClientId,
        serverKeepAlive,
        sessionExpiryInterval: grantedExpiry !== expiry ? grantedExpiry : undefined,
        // [MQTT-3.1.2-28]: Response Information only when asked for.
        responseInformation: props?.requestResponseInformation === 1 &&
            options.responseInformation !== ""
          ? options.responseInformation.replaceAll("%c", clientId)
          : undefined,
        authenticationMethod: this.#authMethod, // [MQTT-4.12.0-5]
        authenticationData: authData,
      })
      : undefined;
    // [MQTT-3.2.2-1] .. [MQTT-3.2.2-3]: Session Present only when resuming a session.
    this.#send({
      type: PacketType.CONNACK,
      sessionPresent,
      reasonCode: ReasonCode.Success,
      properties: connackProps,
    });
    this.#state = State.Connected;
    this.connectedAt = core.clock.now();
    core.clientConnected(this);
    this.#armTimer();
    if (sessionPresent) this.#resendInflight(); // [MQTT-4.4.0-1]
    this.pump();
  }

  /** Answers CONNECT with a failure code and closes (MQTT 5: Session Present 0 [MQTT-3.2.2-6], close [MQTT-3.2.2-7]). */
  #refuse(reasonCode: number, reason: string, extra?: Properties): void {
    const v5 = this.#version === 5;
    this.#core.logger.info("connection refused", {
      clientId: this.info.clientId,
      remote: this.#remote(),
      reason,
    });
    const code = v5 ? reasonCode : connackReturnCodeFor311(reasonCode);
    // 3.1.1 has no return code for many causes: then it closes without CONNACK [MQTT-3.2.2-6].
    if (code !== undefined) {
      this.#send({
        type: PacketType.CONNACK,
        sessionPresent: false,
        reasonCode: code,
        properties: v5
          ? (this.#requestProblemInformation ? { ...extra, reasonString: reason } : extra)
          : undefined,
      });
    }
    this.#closeReason = reasonCode;
    this.connection.close();
    this.#closeNow();
  }

  // ---- PUBLISH from the client --------------------------------------------------------------

  #handlePublish(packet: PublishPacket): void {
    const core = this.#core;
    const options = core.options;
    const session = this.session!;
    core.stats.publishReceived++;
    core.stats.publishReceivedByQos[packet.qos]++;
    core.stats.payloadBytesReceivedByQos[packet.qos] += packet.payload.length;
    if (this.#publishBudget && !this.#publishBudget.take(core.clock.now())) {
      core.stats.publishRateExceeded++;
      throw new MqttError(ReasonCode.MessageRateTooHigh, "Publish rate limit exceeded");
    }
    const invalid = validatePublish(packet, this.#version);
    if (invalid) throw invalid;
    let topic = packet.topic;
    const props = packet.properties;
    if (props?.topicAlias !== undefined) {
      if (!this.#aliasesIn) {
        throw new MqttError(ReasonCode.TopicAliasInvalid, "Topic aliases are not enabled"); // [MQTT-3.3.2-8]
      }
      const resolved = this.#aliasesIn.resolve(props.topicAlias, topic);
      if (resolved instanceof MqttError) throw resolved;
      topic = resolved;
    } else if (topic === "") {
      throw protocolError("PUBLISH has an empty topic and no topic alias [MQTT-3.3.2-1]");
    }
    const topicInvalid = validateTopicName(topic, core.topicLimits);
    if (topicInvalid) throw topicInvalid;
    const qos = packet.qos;
    if (qos > options.maxQos) {
      throw new MqttError(ReasonCode.QoSNotSupported, `QoS ${qos} is not supported`); // [MQTT-3.2.2-11]
    }
    if (packet.retain && !options.retainAvailable) {
      throw new MqttError(ReasonCode.RetainNotSupported, "Retained messages are not supported"); // [MQTT-3.2.2-14]
    }
    if (qos === 2) {
      if (session.inboundQos2.has(packet.packetId)) {
        // A resend of a message we already have: acknowledge again, never deliver twice [MQTT-4.3.3-9].
        this.#sendAck(PacketType.PUBREC, packet.packetId, ReasonCode.Success);
        return;
      }
    }
    if (qos > 0) {
      // [MQTT-3.3.4-7]: QoS 1 and 2 PUBLISHes not yet answered with PUBACK or PUBCOMP count
      // against the Receive Maximum we announced; a client that goes over gets 0x93 (section 4.9).
      const open = this.#inboundQos2Open?.size ?? 0;
      if (this.#inboundAwaitingAck + open >= options.receiveMaximum) {
        throw new MqttError(ReasonCode.ReceiveMaximumExceeded, "Receive Maximum exceeded");
      }
      this.#inboundAwaitingAck++;
    }
    if (
      options.validatePayloadFormat && props?.payloadFormatIndicator === 1 &&
      !isWellFormedUtf8(packet.payload)
    ) {
      // Section 3.3.2.3.2: PUBACK/PUBREC 0x99, or DISCONNECT 0x99 where there is no ack (QoS 0).
      const reason = "Payload is not valid UTF-8 as its Payload Format Indicator says";
      if (qos === 0) throw new MqttError(ReasonCode.PayloadFormatInvalid, reason);
      core.stats.publishDenied++;
      this.#ackInbound(packet, ReasonCode.PayloadFormatInvalid, reason);
      return;
    }

    const hooks = core.hooks;
    if (hooks.authorizePublish) {
      const allowed = hooks.authorizePublish(this.info, { topic, qos, retain: packet.retain });
      if (allowed instanceof Promise) {
        this.#runAsync(allowed.then((ok) => this.#acceptPublish(packet, topic, ok)));
        return;
      }
      this.#acceptPublish(packet, topic, allowed);
      return;
    }
    this.#acceptPublish(packet, topic, true);
  }

  #acceptPublish(packet: PublishPacket, topic: string, allowed: boolean): void | Promise<void> {
    if (this.#is(State.Closed)) return;
    const core = this.#core;
    const qos = packet.qos;
    if (!allowed) {
      if (core.stats.publishDenied++ % 1000 === 0) {
        core.logger.info("publish not authorized", {
          clientId: this.info.clientId,
          topic,
          denied: core.stats.publishDenied,
        });
      }
      // MQTT 5 says why; 3.1.1 acknowledges and drops, which its spec allows [MQTT-3.3.5-2].
      const code = this.#version === 5 ? ReasonCode.NotAuthorized : ReasonCode.Success;
      if (qos > 0) this.#ackInbound(packet, code, "Not authorized to publish to this topic");
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
      expiresAt: expiry === undefined ? 0 : core.clock.now() + expiry * 1000,
      origin: this.info.clientId,
    };
    const published = core.publish(message);
    if (qos === 0) {
      if (published instanceof Promise) published.catch((err) => this.#fail(err));
      return;
    }
    if (published instanceof Promise) {
      this.#runAsync(published.then((code) => this.#ackPublish(packet, code)));
      return;
    }
    this.#ackPublish(packet, published);
    // The message is queued for every subscriber; stop reading more while one is congested.
    core.backpressure.holdIfCongested(this);
  }

  /** Acknowledges an accepted QoS 1/2 PUBLISH once the backbone has it [MQTT-4.3.2-2]. */
  #ackPublish(packet: PublishPacket, code: number): void {
    if (this.#is(State.Closed)) return;
    if (this.#version !== 5) code = ReasonCode.Success;
    const reason = code === ReasonCode.QuotaExceeded
      ? "The retained store or a subscriber's queue is full"
      : undefined;
    this.#ackInbound(packet, code, reason);
  }

  /** Answers an inbound QoS 1/2 PUBLISH with PUBACK or PUBREC, freeing its Receive Maximum slot. */
  #ackInbound(packet: PublishPacket, code: number, reason: string | undefined): void {
    this.#inboundAwaitingAck--;
    if (packet.qos === 1) {
      this.#sendAck(PacketType.PUBACK, packet.packetId, code, reason);
    } else {
      if (code < 0x80) {
        this.session!.inboundQos2.add(packet.packetId); // [MQTT-4.3.3-8]
        (this.#inboundQos2Open ??= new Set()).add(packet.packetId);
      }
      this.#sendAck(PacketType.PUBREC, packet.packetId, code, reason);
    }
  }

  // ---- acknowledgements from the client ----------------------------------------------------

  #handlePuback(packet: PubAckLikePacket<typeof PacketType.PUBACK>): void {
    const session = this.session!;
    const entry = session.inflight.get(packet.packetId);
    if (!entry || entry.qos !== 1) return; // Unknown id: nothing to release.
    session.inflight.delete(packet.packetId);
    this.#core.stats.inflightCompleted++;
    this.#afterAck(entry);
  }

  #handlePubrec(packet: PubAckLikePacket<typeof PacketType.PUBREC>): void {
    const session = this.session!;
    const entry = session.inflight.get(packet.packetId);
    if (!entry || entry.qos !== 2) {
      this.#sendAck(PacketType.PUBREL, packet.packetId, ReasonCode.PacketIdentifierNotFound);
      return;
    }
    if (packet.reasonCode >= 0x80) {
      // The receiver refused the message: the flow ends here [MQTT-4.3.3-4].
      session.inflight.delete(packet.packetId);
      this.#afterAck(entry);
      return;
    }
    entry.released = true;
    this.#sendAck(PacketType.PUBREL, packet.packetId, ReasonCode.Success); // [MQTT-4.3.3-4]
  }

  #handlePubrel(packet: PubAckLikePacket<typeof PacketType.PUBREL>): void {
    const known = this.session!.inboundQos2.delete(packet.packetId);
    this.#inboundQos2Open?.delete(packet.packetId);
    this.#sendAck(
      PacketType.PUBCOMP,
      packet.packetId,
      known ? ReasonCode.Success : ReasonCode.PacketIdentifierNotFound,
    );
  }

  #handlePubcomp(packet: PubAckLikePacket<typeof PacketType.PUBCOMP>): void {
    const session = this.session!;
    const entry = session.inflight.get(packet.packetId);
    if (!entry || entry.qos !== 2) return;
    session.inflight.delete(packet.packetId);
    this.#core.stats.inflightCompleted++;
    this.#afterAck(entry);
  }

  #afterAck(entry: InflightMessage): void {
    this.pump();
    if (entry.group !== undefined) this.#core.router.pumpSharedFor(this.session!);
  }

  // ---- SUBSCRIBE / UNSUBSCRIBE --------------------------------------------------------------

  #handleSubscribe(packet: SubscribePacket): void {
    const core = this.#core;
    const options = core.options;
    const invalid = validateSubscribe(packet, this.#version);
    if (invalid) throw invalid;
    const subscriptionId = packet.properties?.subscriptionIdentifiers?.[0] ?? 0;
    if (subscriptionId !== 0 && !options.subscriptionIdentifierAvailable) {
      // CONNACK said so (section 3.2.2.3.12): using it anyway is a protocol error, DISCONNECT 0xA1.
      throw new MqttError(
        ReasonCode.SubscriptionIdentifiersNotSupported,
        "Subscription identifiers are not supported",
      );
    }
    const session = this.session!;
    const v5 = this.#version === 5;
    const reasonCodes: number[] = [];
    const granted: SubscriptionRecord[] = [];
    const isNew: boolean[] = [];
    let failureReason: string | undefined;
    for (const sub of packet.subscriptions) {
      const failure = (code: number, reason: string) => {
        reasonCodes.push(v5 ? code : 0x80);
        failureReason ??= `${reason}: "${sub.filter}"`;
      };
      const shared = parseSharedFilter(sub.filter);
      if (shared instanceof MqttError) {
        failure(ReasonCode.TopicFilterInvalid, "Invalid shared subscription");
        continue;
      }
      const filter = shared ? shared.filter : sub.filter;
      if (validateTopicFilter(filter, core.topicLimits)) {
        failure(ReasonCode.TopicFilterInvalid, "Invalid topic filter");
        continue;
      }
      if (shared && sub.noLocal) {
        throw protocolError("No Local on a shared subscription [MQTT-3.8.3-4]");
      }
      if (shared && !options.sharedSubscriptionAvailable) {
        // CONNACK told an MQTT 5 client so: using it is a protocol error, DISCONNECT 0x9E
        // (section 3.2.2.3.13); a 3.1.1 client was not told and gets a SUBACK failure.
        if (v5) {
          throw new MqttError(
            ReasonCode.SharedSubscriptionsNotSupported,
            "Shared subscriptions are not supported",
          );
        }
        failure(ReasonCode.SharedSubscriptionsNotSupported, "Shared subscriptions not supported");
        continue;
      }
      if (!options.wildcardSubscriptionAvailable && /[+#]/.test(filter)) {
        // As above, DISCONNECT 0xA2 for MQTT 5 (section 3.2.2.3.11).
        if (v5) {
          throw new MqttError(
            ReasonCode.WildcardSubscriptionsNotSupported,
            "Wildcard subscriptions are not supported",
          );
        }
        failure(
          ReasonCode.WildcardSubscriptionsNotSupported,
          "Wildcard subscriptions not supported",
        );
        continue;
      }
      if (
        session.subscriptionCount >= options.maxSubscriptionsPerClient &&
        !session.subscriptions.has(sub.filter)
      ) {
        failure(ReasonCode.QuotaExceeded, "Too many subscriptions");
        continue;
      }
      const authorize = core.hooks.authorizeSubscribe;
      if (authorize) {
        const ok = authorize(this.info, {
          filter,
          shareGroup: shared ? shared.group : undefined,
          qos: sub.qos,
        });
        if (ok instanceof Promise) {
          throw new TypeError("Asynchronous authorizeSubscribe is not supported");
        }
        if (!ok) {
          failure(ReasonCode.NotAuthorized, "Not authorized to subscribe");
          continue;
        }
      }
      const qos = (sub.qos < options.maxQos ? sub.qos : options.maxQos) as QoS;
      const record: SubscriptionRecord = {
        filter: sub.filter,
        qos,
        noLocal: sub.noLocal,
        retainAsPublished: sub.retainAsPublished,
        retainHandling: sub.retainHandling,
        subscriptionId,
      };
      isNew.push(core.subscribe(session, record));
      granted.push(record);
      reasonCodes.push(qos); // [MQTT-3.9.3-1]: granted QoS in request order
    }
    this.#send({
      type: PacketType.SUBACK,
      packetId: packet.packetId,
      reasonCodes,
      properties: this.#problemInformation(failureReason),
    });
    if (granted.length === 0) return;
    core.persistSession(session);
    core.hooks.onSubscribe?.(this.info, granted.map((g) => g.filter));
    for (let i = 0; i < granted.length; i++) this.sendRetained(granted[i], isNew[i]);
  }

  /**
   * Sends the retained messages a new subscription asks for [MQTT-3.3.1-9], [MQTT-3.8.4-4]; also
   * used when the admin API subscribes a connected session.
   */
  sendRetained(record: SubscriptionRecord, isNew: boolean): void {
    if (record.retainHandling === 2 || (record.retainHandling === 1 && !isNew)) return;
    if (parseSharedFilter(record.filter)) return; // Only a new non-shared subscription gets them (section 3.3.1.3).
    const core = this.#core;
    const messages = core.backbone.retained.match(record.filter);
    const send = (list: Message[]) => {
      if (this.#state !== State.Connected) return;
      const ids = record.subscriptionId === 0 ? undefined : [record.subscriptionId];
      for (const message of list) {
        // Retained messages go out with RETAIN set [MQTT-3.3.1-8].
        this.deliver(
          message,
          message.qos < record.qos ? message.qos : record.qos,
          true,
          ids,
          undefined,
        );
      }
    };
    if (messages instanceof Promise) messages.then(send, (err) => this.#fail(err));
    else send(messages);
  }

  #handleUnsubscribe(packet: UnsubscribePacket): void {
    const invalid = validateUnsubscribe(packet);
    if (invalid) throw invalid;
    const core = this.#core;
    const session = this.session!;
    const reasonCodes: number[] = [];
    const removed: string[] = [];
    for (const filter of packet.filters) {
      if (core.unsubscribe(session, filter)) {
        removed.push(filter);
        reasonCodes.push(ReasonCode.Success);
      } else reasonCodes.push(ReasonCode.NoSubscriptionExisted); // [MQTT-3.11.3-2]
    }
    this.#send({
      type: PacketType.UNSUBACK,
      packetId: packet.packetId,
      reasonCodes: this.#version === 5 ? reasonCodes : [],
      properties: undefined,
    });
    if (removed.length === 0) return;
    core.persistSession(session);
    core.hooks.onUnsubscribe?.(this.info, removed);
  }

  // ---- DISCONNECT ---------------------------------------------------------------------------

  #handleDisconnect(packet: DisconnectPacket): void {
    const invalid = validateDisconnect(packet);
    if (invalid) throw invalid;
    const session = this.session!;
    const requested = packet.properties?.sessionExpiryInterval;
    if (requested !== undefined) {
      // Cannot turn a session that ends at close into a persistent one (MQTT 5 section 3.14.2.2.2).
      if (this.#expiryAtConnect === 0 && requested !== 0) {
        throw protocolError("Session expiry cannot change from 0 in DISCONNECT");
      }
      session.expiryInterval = Math.min(requested, this.#core.options.maxSessionExpiryInterval);
    }
    // Only a normal DISCONNECT (0x00) discards the will [MQTT-3.14.4-3]; 0x04 asks for it, and a
    // client reporting an error keeps it too (MQTT 5 section 3.1.2.5).
    this.#willOnClose = packet.reasonCode !== ReasonCode.NormalDisconnection;
    this.#closedByClient = true;
    this.#closeReason = packet.reasonCode;
    this.connection.close();
    this.#closeNow();
  }

  // ---- outbound delivery --------------------------------------------------------------------

  /** True when a message at this QoS could be sent right now. */
  canSendNow(qos: QoS): boolean {
    if (this.#state !== State.Connected) return false;
    if (qos === 0) return this.connection.bufferedBytes <= this.#core.options.writeBufferLimit;
    return this.session!.queued === 0 && this.session!.inflightCount < this.#window;
  }

  /**
   * Delivers a message to this client: QoS 0 is written (or dropped when the client does not keep
   * up); QoS 1/2 is sent inside the window or queued for later.
   */
  deliver(
    message: Message,
    qos: QoS,
    retain: boolean,
    subscriptionIds: number[] | undefined,
    group: object | undefined,
  ): void {
    const core = this.#core;
    if (message.expiresAt !== 0 && message.expiresAt <= core.clock.now()) {
      core.stats.droppedExpired++; // [MQTT-3.3.2-5]
      return;
    }
    if (!this.#is(State.Connected)) {
      // Attached but CONNACK not sent yet: nothing may precede it; QoS 1/2 wait in the queue.
      if (qos > 0) core.enqueue(this.session!, message);
      return;
    }
    if (!this.#mayRead(message.topic)) return;
    if (qos === 0) {
      if (this.connection.bufferedBytes > core.options.writeBufferLimit) {
        // QoS 0 has no acknowledgement to carry a reason: a counter and a log line show the loss.
        if (core.stats.droppedSlowConsumer++ % 1000 === 0) {
          core.logger.warn("slow consumer: QoS 0 message dropped", {
            clientId: this.info.clientId,
            dropped: core.stats.droppedSlowConsumer,
          });
        }
        return;
      }
      this.#sendPublish(message, 0, retain, subscriptionIds, 0, false);
      return;
    }
    const session = this.session!;
    if (session.queued > 0 || session.inflightCount >= this.#window) {
      core.enqueue(session, message);
      return;
    }
    this.#sendInflight(message, qos, retain, subscriptionIds, group);
  }

  /** Asks `authorizeRead`; a refusal is counted. */
  #mayRead(topic: string): boolean {
    const authorizeRead = this.#core.hooks.authorizeRead;
    if (authorizeRead === undefined || authorizeRead(this.info, topic)) return true;
    this.#core.stats.droppedNotAuthorized++;
    return false;
  }

  #sendInflight(
    message: Message,
    qos: 1 | 2,
    retain: boolean,
    subscriptionIds: number[] | undefined,
    group: object | undefined,
  ): void {
    const session = this.session!;
    const packetId = session.allocatePacketId();
    session.addInflight(packetId, message, qos, retain, subscriptionIds).group = group;
    if (!this.#sendPublish(message, qos, retain, subscriptionIds, packetId, false)) {
      // Too large for this client: behave as if it was delivered [MQTT-3.1.2-25].
      session.inflight.delete(packetId);
    }
  }

  /** Moves queued messages into the window as it opens. */
  pump(): void {
    const session = this.session;
    if (!session || this.#state !== State.Connected || session.queued === 0) return;
    const core = this.#core;
    while (session.queued > 0 && session.inflightCount < this.#window) {
      const batch = core.takeQueued(session, this.#window - session.inflightCount);
      if (batch instanceof Promise) {
        this.#runAsync(batch.then((messages) => {
          this.#sendQueued(messages);
          core.releaseIfDrained(session);
        }));
        return;
      }
      if (batch.length === 0) break;
      this.#sendQueued(batch);
    }
    // Only now: a publisher let go here delivers behind what was just sent [MQTT-4.6.0-6].
    core.releaseIfDrained(session);
  }

  #sendQueued(messages: Message[]): void {
    const now = this.#core.clock.now();
    for (const message of messages) {
      if (message.expiresAt !== 0 && message.expiresAt <= now) {
        this.#core.stats.droppedExpired++;
        continue;
      }
      // A queued message is delivered per the subscriptions and the rules in force now.
      if (!this.#mayRead(message.topic)) continue;
      const match = this.#matchSubscriptions(message);
      if (!match) continue;
      if (match.qos === 0) this.#sendPublish(message, 0, match.retain, match.ids, 0, false);
      else this.#sendInflight(message, match.qos, match.retain, match.ids, undefined);
    }
  }

  /** The delivery QoS, RETAIN flag and identifiers of a message for this session's subscriptions. */
  #matchSubscriptions(
    message: Message,
  ): { qos: QoS; retain: boolean; ids: number[] | undefined } | undefined {
    let found: { qos: QoS; retain: boolean; ids: number[] | undefined } | undefined;
    for (const record of this.session!.subscriptions.values()) {
      const shared = parseSharedFilter(record.filter);
      const filter = shared && !(shared instanceof MqttError) ? shared.filter : record.filter;
      if (!topicMatchesFilter(message.topic, filter)) continue;
      if (record.noLocal && message.origin === this.info.clientId) continue;
      const qos = (message.qos < record.qos ? message.qos : record.qos) as QoS;
      found ??= { qos, retain: false, ids: undefined };
      if (qos > found.qos) found.qos = qos;
      found.retain ||= record.retainAsPublished && message.retain;
      if (record.subscriptionId !== 0) (found.ids ??= []).push(record.subscriptionId);
    }
    return found;
  }

  /** Resends unacknowledged messages after a session resumes, in their original order. */
  #resendInflight(): void {
    const session = this.session!;
    if (session.inflightCount === 0) return;
    const now = this.#core.clock.now();
    for (const entry of [...session.inflight.values()]) {
      if (entry.released) {
        this.#sendAck(PacketType.PUBREL, entry.packetId, ReasonCode.Success);
        continue;
      }
      if (!this.#mayRead(entry.message.topic)) {
        // The rules changed while the client was away: the message is not resent.
        session.inflight.delete(entry.packetId);
        continue;
      }
      const expiresAt = entry.message.expiresAt;
      if (expiresAt !== 0 && expiresAt <= now) {
        // Expired while unacknowledged: not resent, its packet id is free again [MQTT-3.3.2-5].
        session.inflight.delete(entry.packetId);
        this.#core.stats.droppedExpired++;
        continue;
      }
      const sent = this.#sendPublish(
        entry.message,
        entry.qos,
        entry.retain,
        entry.subscriptionIds,
        entry.packetId,
        true, // [MQTT-3.3.1-1]: DUP on a resend
      );
      if (!sent) session.inflight.delete(entry.packetId);
    }
  }

  /**
   * Encodes and writes one PUBLISH. Returns false when the packet exceeds the client's Maximum
   * Packet Size and was dropped [MQTT-3.1.2-25].
   */
  #sendPublish(
    message: Message,
    qos: QoS,
    retain: boolean,
    subscriptionIds: number[] | undefined,
    packetId: number,
    dup: boolean,
  ): boolean {
    const core = this.#core;
    const v5 = this.#version === 5;
    let bytes: Uint8Array;
    if (
      !dup && (!v5 || (subscriptionIds === undefined && this.#aliasesOut === undefined)) &&
      message.expiresAt === 0
    ) {
      bytes = core.fanout.encode(message, v5, qos, retain, packetId);
    } else {
      let topic = message.topic;
      let properties = v5 ? message.properties : undefined;
      if (v5) {
        if (message.expiresAt !== 0 || subscriptionIds !== undefined || this.#aliasesOut) {
          properties = { ...properties };
          if (message.expiresAt !== 0) {
            // The receiver sees the time left, not the original interval [MQTT-3.3.2-6].
            const left = Math.max(0, Math.ceil((message.expiresAt - core.clock.now()) / 1000));
            properties.messageExpiryInterval = left;
          }
          if (subscriptionIds !== undefined) properties.subscriptionIdentifiers = subscriptionIds;
          if (this.#aliasesOut) {
            // Peek only: the alias is recorded once the packet is known to fit the client.
            const alias = this.#aliasesOut.peek(topic);
            if (alias) {
              properties.topicAlias = alias.alias;
              if (!alias.isNew) topic = "";
            }
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
        core.encodeOptions,
      );
    }
    if (bytes.length > this.#clientMaxPacketSize) {
      if (core.stats.droppedTooLarge++ % 1000 === 0) {
        core.logger.warn("message larger than the client's Maximum Packet Size dropped", {
          clientId: this.info.clientId,
          dropped: core.stats.droppedTooLarge,
        });
      }
      return false;
    }
    if (v5) this.#aliasesOut?.lookup(message.topic);
    core.stats.publishSent++;
    core.stats.publishSentByQos[qos]++;
    core.stats.payloadBytesSentByQos[qos] += message.payload.length;
    core.stats.bytesSent += bytes.length;
    this.connection.write(bytes);
    return true;
  }

  #sendAck(
    type:
      | typeof PacketType.PUBACK
      | typeof PacketType.PUBREC
      | typeof PacketType.PUBREL
      | typeof PacketType.PUBCOMP,
    packetId: number,
    reasonCode: number,
    reason?: string,
  ): void {
    this.#send({ type, packetId, reasonCode, properties: this.#problemInformation(reason) });
  }

  /**
   * A Reason String for an acknowledgement, unless the client asked for none with Request Problem
   * Information 0 [MQTT-3.1.2-29] or speaks 3.1.1.
   */
  #problemInformation(reason: string | undefined): Properties | undefined {
    if (reason === undefined || this.#version !== 5 || !this.#requestProblemInformation) {
      return undefined;
    }
    return { reasonString: reason };
  }

  #send(packet: Packet): void {
    const encodeOptions = this.#core.encodeOptions;
    let bytes = encodePacket(packet, this.#version, encodeOptions);
    if (bytes.length > this.#clientMaxPacketSize && "properties" in packet && packet.properties) {
      // A Reason String or User Property must not make a packet exceed the client's Maximum
      // Packet Size [MQTT-3.2.2-19] [MQTT-3.2.2-20] [MQTT-3.4.2-2] [MQTT-3.14.2-3]: drop them.
      const { reasonString: _reason, userProperties: _user, ...rest } = packet.properties;
      bytes = encodePacket({ ...packet, properties: rest } as Packet, this.#version, encodeOptions);
    }
    this.#core.stats.bytesSent += bytes.length;
    this.connection.write(bytes);
    // Replies pile up when a client sends but does not read: stop reading until they drain.
    if (
      !this.#pausedForOutput &&
      this.connection.bufferedBytes > this.#core.options.writeBufferLimit
    ) {
      this.#pausedForOutput = true;
      this.connection.pause();
    }
  }

  onDrain(): void {
    if (!this.#pausedForOutput) return;
    this.#pausedForOutput = false;
    if (this.#holds === 0) this.#resumeInput();
  }

  // ---- closing ------------------------------------------------------------------------------

  /**
   * Ends the connection from the server side: MQTT 5 clients get DISCONNECT with the reason
   * [MQTT-4.13.2-1]; 3.1.1 clients are just closed.
   */
  disconnect(reasonCode: number, reason?: string, extra?: Properties): void {
    if (this.#is(State.Closed)) return;
    if (this.#version === 5 && this.#state === State.Connected) {
      const properties: Properties | undefined = reason && this.#requestProblemInformation
        ? { ...extra, reasonString: reason }
        : extra;
      this.#send({ type: PacketType.DISCONNECT, reasonCode, properties });
    }
    this.#closeReason = reasonCode;
    this.connection.close();
    this.#closeNow();
  }

  /** Closes because another connection took the session over [MQTT-3.1.4-3]. */
  takeOver(): void {
    this.disconnect(ReasonCode.SessionTakenOver, "Another connection uses this client id");
  }

  /** Handles an error raised while processing this client's input: log once, answer, close. */
  #fail(err: unknown): void {
    if (this.#is(State.Closed)) return;
    if (!(err instanceof MqttError)) {
      this.#core.logger.error("unexpected error handling client", {
        clientId: this.info.clientId,
        remote: this.#remote(),
        error: err,
      });
      err = new MqttError(ReasonCode.ImplementationSpecificError, "Internal error");
    }
    const mqttError = err as MqttError;
    this.#core.stats.protocolErrors++;
    this.#core.logger.info("closing connection on bad input", {
      clientId: this.info.clientId,
      remote: this.#remote(),
      reasonCode: mqttError.reasonCode,
      reason: mqttError.message,
    });
    if (mqttError.reasonCode === ReasonCode.UnsupportedProtocolVersion) {
      // Answer in the 3.1.1 format every client level can read [MQTT-3.1.2-2].
      this.#version = 4;
      this.#send({
        type: PacketType.CONNACK,
        sessionPresent: false,
        reasonCode: ConnackReturnCode.UnacceptableProtocolVersion,
        properties: undefined,
      });
      this.connection.close();
      this.#closeNow();
      return;
    }
    if (this.#state === State.Connecting && this.#version === 5) {
      this.#refuse(mqttError.reasonCode, mqttError.message);
      return;
    }
    this.disconnect(mqttError.reasonCode, mqttError.message);
  }

  #closeNow(): void {
    if (this.#is(State.Closed)) return;
    const wasConnected = this.#state === State.Connected;
    this.#state = State.Closed;
    this.#backlog = undefined;
    this.#clearTimer();
    this.connection.close();
    this.#core.clientClosed(this, this.session, {
      wasConnected,
      willOnClose: this.#willOnClose,
      reasonCode: this.#closeReason,
      byClient: this.#closedByClient,
    });
  }

  // ---- timers -------------------------------------------------------------------------------

  /** Schedules the one deadline of this connection at its nearest one (on the broker's heap). */
  #armTimer(): void {
    const deadline = this.#nextDeadline();
    if (deadline === Infinity) this.#clearTimer();
    else this.#core.deadlines.schedule(this.#timer, deadline);
  }

  #clearTimer(): void {
    this.#core.deadlines.cancel(this.#timer);
  }

  #nextDeadline(): number {
    const options = this.#core.options;
    let deadline = Infinity;
    if (this.#state === State.AwaitingConnect || this.#state === State.Connecting) {
      deadline = this.#acceptedAt + options.connectTimeout;
    } else if (this.#state === State.Connected && this.#keepAliveMs > 0) {
      // [MQTT-3.1.2-24]: one and a half keep alive periods without a packet.
      deadline = this.lastActivity + this.#keepAliveMs * options.keepAliveMultiplier;
    }
    if (this.#partialSince !== 0 && !this.#inputHeld()) {
      deadline = Math.min(deadline, this.#partialSince + options.connectTimeout);
    }
    return deadline;
  }

  /** The deadline is due: close on a missed connect, keep alive or partial packet, else re-arm. */
  onDeadline(): void {
    if (this.#is(State.Closed)) return;
    const now = this.#core.clock.now();
    const options = this.#core.options;
    if (this.#state !== State.Connected) {
      if (now >= this.#acceptedAt + options.connectTimeout) {
        this.#core.logger.debug("no CONNECT in time", { remote: this.#remote() });
        this.#closeReason = ReasonCode.MaximumConnectTime;
        this.#closeNow();
        return;
      }
    } else if (
      this.#keepAliveMs > 0 &&
      now >= this.lastActivity + this.#keepAliveMs * options.keepAliveMultiplier
    ) {
      this.disconnect(ReasonCode.KeepAliveTimeout, "Keep alive timeout");
      return;
    }
    if (
      this.#partialSince !== 0 && !this.#inputHeld() &&
      now >= this.#partialSince + options.connectTimeout
    ) {
      this.disconnect(ReasonCode.MalformedPacket, "Incomplete packet timed out");
      return;
    }
    this.#armTimer();
  }

  #remote(): string {
    return `${this.connection.remoteAddress}:${this.connection.remotePort}`;
  }
}

/**
 * The properties of a PUBLISH or will that travel on to subscribers unaltered [MQTT-3.3.2-4]
 * [MQTT-3.3.2-15] [MQTT-3.3.2-16] [MQTT-3.3.2-17] [MQTT-3.3.2-20], user properties in order
 * [MQTT-3.3.2-18] [MQTT-3.1.3-10].
 */
function forwardedProperties(props: Properties): Properties | undefined {
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
