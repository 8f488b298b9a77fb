/**
 * CONNECT and AUTH: the checks a CONNECT must pass (format, limits, redirection, client id, keep
 * alive, will), enhanced authentication and re-authentication (section 4.12), the authenticate
 * hook, attaching the session, and CONNACK.
 *
 * @module
 */

import {
  connackReturnCodeFor311,
  encodePacket,
  type Packet,
  PacketType,
  protocolError,
  ReasonCode,
  utf8ByteLength,
  validateAuth,
  validateConnect,
} from "../codec/mod.ts";
import type {
  AuthPacket,
  ConnectPacket,
  Properties,
  ProtocolVersion,
  UserProperty,
} from "../codec/packets.ts";
import type { AuthStep, EnhancedAuthenticator } from "../auth/enhanced.ts";
import { isWellFormedUtf8 } from "../codec/utf8.ts";
import { type AgentFacts, readAgentFacts } from "../domain/agent_facts.ts";
import { NEVER_EXPIRES, type WillRecord } from "../domain/types.ts";
import type { AuthResult } from "../hooks/hooks.ts";
import { hasControlCharacter, OutboundTopicAliases, validateTopicName } from "../topic/mod.ts";
import type { ConnectionControl } from "./connection_control.ts";
import type { BrokerSession, SessionConnection } from "./context.ts";
import { forwardedProperties } from "./inbound.ts";
import type { OutboundParameters } from "./outbound.ts";
import type { BrokerOptions } from "./options.ts";
import { AttachError } from "./session_registry.ts";

/** The maximum a two-byte Receive Maximum can express. */
const MAX_RECEIVE_MAXIMUM = 65_535;

/** What a CONNECT said beyond identity, for lifecycle events. */
export interface ConnectDetails {
  /** The Clean Session (3.1.1) or Clean Start (5) flag. */
  cleanStart: boolean;
  /** MQTT 5 user properties of the CONNECT. */
  userProperties: UserProperty[] | undefined;
  /** Host facts from user properties or the legacy trailer (`agent.legacyConnectInfo`). */
  facts: AgentFacts | undefined;
}

/** What a connection settles on at CONNACK. */
export interface ConnectedSettings {
  session: BrokerSession;
  sessionPresent: boolean;
  /** Granted keep alive in seconds. */
  keepAlive: number;
  /** Session Expiry Interval granted at CONNECT (DISCONNECT may not raise it from 0). */
  expiryAtConnect: number;
  /** Inbound topic aliases accepted (0: none). */
  topicAliasMaximum: number;
  details: ConnectDetails;
}

/** The connection as CONNECT handling sees it. */
export interface ConnectingConnection extends ConnectionControl, SessionConnection {
  /** A connection limit hit at accept time (a reason code), 0 for none. */
  readonly refusal: number;
  /** Bytes after the CONNECT's payload (only with `legacyConnectInfo`); read during CONNECT. */
  readonly connectTrailer: Uint8Array | undefined;
  /** AUTH packets may come from now on (the CONNECT named an Authentication Method). */
  acceptAuth(): void;
  /** The client's Maximum Packet Size and Request Problem Information, known before any answer. */
  setClientLimits(maxPacketSize: number, requestProblemInformation: boolean): void;
  /** Answers CONNECT with a failure code and closes [MQTT-3.2.2-6] [MQTT-3.2.2-7]. */
  refuse(reasonCode: number, reason: string, extra?: Properties): void;
  /** Attaches the session; its outbound delivery is created with `parameters` when first used. */
  bind(session: BrokerSession, parameters: OutboundParameters): void;
  /** CONNACK was sent. */
  onConnected(settings: ConnectedSettings): void;
}

/** What a CONNECT asked for, kept while its enhanced-authentication exchange runs. */
interface PendingConnect {
  packet: ConnectPacket;
  clientId: string;
  assignedClientId: string | undefined;
  keepAlive: number;
  serverKeepAlive: number | undefined;
  will: WillRecord | undefined;
  facts: AgentFacts | undefined;
}

/** CONNECT and AUTH handling of one connection. */
export class ConnectFlow {
  readonly #connection: ConnectingConnection;
  /** The CONNECT's Authentication Method, for AUTH packets and re-authentication. */
  #authMethod: string | undefined = undefined;
  /** The enhanced-authentication exchange in progress (CONNECT or re-authentication). */
  #authenticator: EnhancedAuthenticator | undefined = undefined;
  /** A CONNECT waiting for its authentication exchange to finish. */
  #pending: PendingConnect | undefined = undefined;

  constructor(connection: ConnectingConnection) {
    this.#connection = connection;
  }

  /** Whether the CONNECT named an Authentication Method: AUTH may re-authenticate later. */
  get reauthenticates(): boolean {
    return this.#authMethod !== undefined;
  }

  /** True while a CONNECT waits for its AUTH exchange. */
  get authenticating(): boolean {
    return this.#pending !== undefined;
  }

  async handleConnect(packet: ConnectPacket): Promise<void> {
    const connection = this.#connection;
    const services = connection.services;
    const options = services.context.options;
    const v5 = packet.protocolVersion === 5;
    const props = packet.properties;
    const refuse = (code: number, reason: string, extra?: Properties) =>
      connection.refuse(code, reason, extra);

    const invalid = validateConnect(packet);
    if (invalid) return refuse(invalid.reasonCode, invalid.message);
    // Read now: the trailer is a view of the chunk that carried this CONNECT.
    const facts = this.#readFacts(packet);
    if (v5) {
      connection.setClientLimits(
        props?.maximumPacketSize ?? Infinity,
        props?.requestProblemInformation !== 0,
      );
    }
    if (connection.refusal !== 0) return refuse(connection.refusal, "Connection limit reached");
    if (options.serverReference !== "") {
      // Section 4.11: send the client elsewhere, temporarily (0x9C) or for good (0x9D).
      return refuse(
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
        return refuse(ReasonCode.ClientIdentifierNotValid, "Empty client id needs clean session");
      }
      if (!options.allowEmptyClientId) {
        return refuse(ReasonCode.ClientIdentifierNotValid, "Empty client ids are not allowed");
      }
      clientId = services.assignClientId(); // [MQTT-3.1.3-6]
      if (v5) assignedClientId = clientId; // [MQTT-3.2.2-16]
    } else if (utf8ByteLength(clientId) > options.maxClientIdLength) {
      return refuse(ReasonCode.ClientIdentifierNotValid, "Client id is too long");
    } else if (options.rejectControlCharacters && hasControlCharacter(clientId)) {
      return refuse(ReasonCode.ClientIdentifierNotValid, "Client id contains a control character");
    }
    if (
      options.rejectControlCharacters && packet.username !== undefined &&
      hasControlCharacter(packet.username)
    ) {
      // MQTT 5 section 1.5.4 lets a receiver treat it as malformed.
      return refuse(ReasonCode.MalformedPacket, "User name contains a control character");
    }
    connection.info.clientId = clientId;
    connection.info.username = packet.username;

    let keepAlive = packet.keepAlive;
    let serverKeepAlive: number | undefined;
    if (keepAlive > options.maxKeepAlive || (keepAlive === 0 && options.maxKeepAlive < 65_535)) {
      if (!v5) {
        // 3.1.1 cannot tell the client another value; refuse like Mosquitto does.
        return refuse(ReasonCode.ClientIdentifierNotValid, "Keep alive exceeds the maximum");
      }
      keepAlive = options.maxKeepAlive;
      serverKeepAlive = keepAlive; // [MQTT-3.2.2-21]
    }

    let will: WillRecord | undefined;
    if (packet.will) {
      const topicInvalid = validateTopicName(packet.will.topic, services.context.topicLimits);
      if (topicInvalid) return refuse(topicInvalid.reasonCode, topicInvalid.message);
      if (packet.will.qos > options.maxQos) {
        return refuse(ReasonCode.QoSNotSupported, "Will QoS exceeds the maximum QoS"); // [MQTT-3.2.2-12]
      }
      if (packet.will.retain && !options.retainAvailable) {
        return refuse(ReasonCode.RetainNotSupported, "Retained wills are not supported"); // [MQTT-3.2.2-13]
      }
      const willProps = packet.will.properties;
      const responseTopic = willProps?.responseTopic;
      if (responseTopic !== undefined && validateTopicName(responseTopic) !== undefined) {
        // A will's Response Topic is a Topic Name (section 3.1.3.2.5): at least one character
        // [MQTT-4.7.3-1], no wildcards [MQTT-3.3.2-14].
        return refuse(ReasonCode.ProtocolError, "Will Response Topic is not a valid topic name");
      }
      if (
        options.validatePayloadFormat && willProps?.payloadFormatIndicator === 1 &&
        !isWellFormedUtf8(packet.will.payload)
      ) {
        // Section 3.1.3.2.3: a will payload marked UTF-8 that is not.
        return refuse(ReasonCode.PayloadFormatInvalid, "Will payload is not valid UTF-8");
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
      facts,
    };
    const method = v5 ? props?.authenticationMethod : undefined;
    if (method === undefined) return this.#complete(pending, undefined);
    const createAuthenticator = services.context.authMethods.get(method);
    if (!createAuthenticator) {
      // [MQTT-4.12.0-1]: an unsupported method is refused and the connection closed.
      return refuse(
        ReasonCode.BadAuthenticationMethod,
        `Authentication method "${method}" is not supported`,
      );
    }
    this.#authMethod = method;
    connection.acceptAuth();
    this.#pending = pending;
    const authenticator = createAuthenticator();
    this.#authenticator = authenticator;
    const step = await authenticator.start(props!.authenticationData, connection.info);
    await this.#connectAuthStep(step);
  }

  /**
   * Host facts from the CONNECT's user properties and legacy trailer. What cannot be used is
   * ignored, never refused; the first such CONNECT and one in a thousand after it are logged.
   */
  #readFacts(packet: ConnectPacket): AgentFacts | undefined {
    const connection = this.#connection;
    const userProperties = packet.protocolVersion === 5
      ? packet.properties?.userProperties
      : undefined;
    const trailer = connection.connectTrailer;
    if (userProperties === undefined && trailer === undefined) return undefined;
    const { facts, problem } = readAgentFacts(userProperties, trailer);
    if (problem !== undefined) {
      const context = connection.services.context;
      if (context.stats.agentFactsIgnored++ % 1000 === 0) {
        context.logger.warn("host facts of a CONNECT ignored", {
          clientId: packet.clientId,
          remote: connection.info.remoteAddress,
          problem,
          ignored: context.stats.agentFactsIgnored,
        });
      }
    }
    return facts;
  }

  /** An AUTH during CONNECT: the client's answer to our AUTH 0x18. */
  handleConnectAuth(packet: AuthPacket): void {
    this.#checkAuth(packet);
    if (packet.reasonCode !== ReasonCode.ContinueAuthentication || !this.#authenticator) {
      throw protocolError("AUTH before CONNACK must continue the authentication [MQTT-4.12.0-3]");
    }
    const step = this.#authenticator.continue(packet.properties?.authenticationData);
    this.#connection.runAsync(Promise.resolve(step).then((s) => this.#connectAuthStep(s)));
  }

  async #connectAuthStep(step: AuthStep): Promise<void> {
    const connection = this.#connection;
    if (connection.closed) return;
    if (step.kind === "continue") {
      this.#sendAuth(ReasonCode.ContinueAuthentication, step.data); // [MQTT-4.12.0-2]
      return;
    }
    const pending = this.#pending!;
    this.#pending = undefined;
    this.#authenticator = undefined;
    if (step.kind === "failure") {
      connection.services.context.stats.authFailures++;
      // [MQTT-4.12.0-4]: CONNACK with a failure code, then close.
      return connection.refuse(step.reasonCode ?? ReasonCode.NotAuthorized, step.reason);
    }
    if (step.username !== undefined) connection.info.username = step.username;
    await this.#complete(pending, step.data);
  }

  /** An AUTH after CONNACK: re-authentication (section 4.12.1). */
  handleReauthentication(packet: AuthPacket): void {
    const connection = this.#connection;
    if (this.#authMethod === undefined) {
      throw protocolError(
        "Cannot accept AUTH: no authentication method in CONNECT [MQTT-4.12.0-7]",
      );
    }
    this.#checkAuth(packet);
    const data = packet.properties?.authenticationData;
    let step: AuthStep | Promise<AuthStep>;
    if (packet.reasonCode === ReasonCode.ReAuthenticate && !this.#authenticator) {
      const authenticator = connection.services.context.authMethods.get(this.#authMethod)!();
      this.#authenticator = authenticator;
      step = authenticator.start(data, connection.info);
    } else if (packet.reasonCode === ReasonCode.ContinueAuthentication && this.#authenticator) {
      step = this.#authenticator.continue(data);
    } else {
      throw protocolError(
        `Cannot accept AUTH 0x${packet.reasonCode.toString(16).padStart(2, "0")} now`,
      );
    }
    if (step instanceof Promise) {
      connection.runAsync(step.then((s) => this.#reauthenticationStep(s)));
    } else this.#reauthenticationStep(step);
  }

  #reauthenticationStep(step: AuthStep): void {
    const connection = this.#connection;
    if (connection.closed) return;
    if (step.kind === "continue") {
      this.#sendAuth(ReasonCode.ContinueAuthentication, step.data);
      return;
    }
    this.#authenticator = undefined;
    if (step.kind === "failure") {
      connection.services.context.stats.authFailures++;
      // [MQTT-4.12.1-2]: a failed re-authentication ends the connection.
      connection.disconnect(step.reasonCode ?? ReasonCode.NotAuthorized, step.reason);
      return;
    }
    if (step.username !== undefined) connection.info.username = step.username;
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
    this.#connection.send({
      type: PacketType.AUTH,
      reasonCode,
      properties: { authenticationMethod: this.#authMethod, authenticationData: data },
    });
  }

  /** Finishes a CONNECT once it is authenticated: authenticate hook, session, CONNACK. */
  async #complete(pending: PendingConnect, authData: Uint8Array | undefined): Promise<void> {
    const connection = this.#connection;
    const services = connection.services;
    const context = services.context;
    const options = context.options;
    const { packet, clientId, assignedClientId, keepAlive, serverKeepAlive, will, facts } = pending;
    const v5 = packet.protocolVersion === 5;
    const props = packet.properties;
    const hooks = context.hooks;
    // A client authenticated by an enhanced method is not asked for a password as well.
    if (hooks.authenticate && this.#authMethod === undefined) {
      const result: AuthResult = await hooks.authenticate({
        ...connection.info,
        password: packet.password,
        userProperties: props?.userProperties,
      });
      if (connection.closed) return;
      if (!result.ok) {
        context.stats.authFailures++;
        return connection.refuse(result.reasonCode, result.reason ?? "Not authorized");
      }
      if (result.username !== undefined) connection.info.username = result.username;
      if (result.context !== undefined) connection.info.authContext = result.context;
    }

    let expiry: number;
    if (v5) expiry = props?.sessionExpiryInterval ?? 0;
    else expiry = packet.cleanStart ? 0 : NEVER_EXPIRES;
    const grantedExpiry = Math.min(expiry, options.maxSessionExpiryInterval);

    const clientAliasMax = v5 ? props?.topicAliasMaximum ?? 0 : 0;
    const window = v5
      ? Math.min(options.maxInflight, props?.receiveMaximum ?? MAX_RECEIVE_MAXIMUM)
      : options.maxInflight;
    const maxPacketSize = v5 ? props?.maximumPacketSize ?? Infinity : Infinity;
    const aliases = clientAliasMax > 0 && options.outboundTopicAliases === "lru"
      ? new OutboundTopicAliases(clientAliasMax)
      : undefined;
    const parameters: OutboundParameters =
      window === options.maxInflight && maxPacketSize === Infinity && aliases === undefined
        ? plainParameters(options, packet.protocolVersion)
        : { protocolVersion: packet.protocolVersion, window, maxPacketSize, aliases };
    let attached;
    try {
      attached = await services.sessions.attach(connection, {
        clientId,
        cleanStart: packet.cleanStart,
        expiryInterval: grantedExpiry,
        protocolVersion: packet.protocolVersion,
        will,
        bind: (session) => connection.bind(session, parameters),
      });
    } catch (error) {
      if (!(error instanceof AttachError)) throw error;
      context.logger.warn("session not attached", {
        clientId,
        reason: error.message,
        ...(error.cause instanceof Error ? { cause: error.cause.message } : {}),
      });
      return connection.refuse(error.reasonCode, error.message);
    }
    if (!attached) return;

    const connackProps: Properties | undefined = v5
      ? services.connackProperties({
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
    const connack = fitToClient({
      type: PacketType.CONNACK,
      sessionPresent: attached.sessionPresent,
      reasonCode: ReasonCode.Success,
      properties: connackProps,
    }, v5 ? props?.maximumPacketSize ?? Infinity : Infinity);
    if (connack === undefined) {
      // [MQTT-3.1.2-24]: nothing larger than the client's Maximum Packet Size is sent, and a
      // CONNACK without its required properties would mislead the client.
      context.logger.info("CONNACK larger than the client's Maximum Packet Size: closing", {
        clientId,
      });
      connection.disconnect(ReasonCode.PacketTooLarge);
      return;
    }
    connection.send(connack);
    connection.onConnected({
      session: attached.session,
      sessionPresent: attached.sessionPresent,
      keepAlive,
      expiryAtConnect: grantedExpiry,
      topicAliasMaximum: v5 ? options.topicAliasMaximum : 0,
      details: connectDetails(packet.cleanStart, v5 ? props?.userProperties : undefined, facts),
    });
  }
}

/** Per broker options, the outbound parameters of a client that asked for nothing, by version. */
const PLAIN_PARAMETERS = new WeakMap<BrokerOptions, Map<number, OutboundParameters>>();

/**
 * The outbound parameters of a client that asked for no Receive Maximum, Maximum Packet Size or
 * topic aliases: one object for all of them (a connection holds it until its outbound delivery is
 * created, for an idle connection for good).
 */
function plainParameters(options: BrokerOptions, version: ProtocolVersion): OutboundParameters {
  let byVersion = PLAIN_PARAMETERS.get(options);
  if (byVersion === undefined) PLAIN_PARAMETERS.set(options, byVersion = new Map());
  let parameters = byVersion.get(version);
  if (parameters === undefined) {
    parameters = Object.freeze({
      protocolVersion: version,
      window: options.maxInflight,
      maxPacketSize: Infinity,
      aliases: undefined,
    });
    byVersion.set(version, parameters);
  }
  return parameters;
}

/** The details of a CONNECT with no user properties and no facts, one object for all. */
const PLAIN_DETAILS: readonly [ConnectDetails, ConnectDetails] = [
  Object.freeze({ cleanStart: false, userProperties: undefined, facts: undefined }),
  Object.freeze({ cleanStart: true, userProperties: undefined, facts: undefined }),
];

/** What a CONNECT said beyond identity; shared by the connections whose CONNECT said nothing more. */
function connectDetails(
  cleanStart: boolean,
  userProperties: UserProperty[] | undefined,
  facts: AgentFacts | undefined,
): ConnectDetails {
  if (userProperties === undefined && facts === undefined) return PLAIN_DETAILS[cleanStart ? 1 : 0];
  return { cleanStart, userProperties, facts };
}

/** CONNACK properties the client can do without, dropped in this order to fit its maximum size. */
const DROPPABLE_CONNACK_PROPERTIES = [
  "reasonString",
  "userProperties",
  "responseInformation",
  "serverReference",
  "topicAliasMaximum",
] as const;

type ConnackPacket = Extract<Packet, { type: typeof PacketType.CONNACK }>;

/**
 * A CONNACK that fits the client's Maximum Packet Size [MQTT-3.1.2-24]: optional properties are
 * left out until it does; undefined when even the rest is too large.
 */
function fitToClient(connack: ConnackPacket, maxPacketSize: number): ConnackPacket | undefined {
  if (maxPacketSize === Infinity || connack.properties === undefined) return connack;
  const properties: Properties = { ...connack.properties };
  const fitted = { ...connack, properties };
  for (const key of [undefined, ...DROPPABLE_CONNACK_PROPERTIES]) {
    if (key !== undefined) delete properties[key];
    if (encodePacket(fitted, 5).length <= maxPacketSize) return fitted;
  }
  return undefined;
}

/**
 * The CONNACK that refuses a CONNECT: MQTT 5 with the reason code (and a Reason String unless the
 * client asked for none); 3.1.1 with the closest return code, or none where 3.1.1 has none
 * [MQTT-3.2.2-6].
 */
export function refusalConnack(
  protocolVersion: number,
  reasonCode: number,
  properties: Properties | undefined,
): {
  type: typeof PacketType.CONNACK;
  sessionPresent: false;
  reasonCode: number;
  properties: Properties | undefined;
} | undefined {
  const code = protocolVersion === 5 ? reasonCode : connackReturnCodeFor311(reasonCode);
  if (code === undefined) return undefined;
  return {
    type: PacketType.CONNACK,
    sessionPresent: false,
    reasonCode: code,
    properties: protocolVersion === 5 ? properties : undefined,
  };
}
