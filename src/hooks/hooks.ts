/**
 * The broker's extension surface: policy hooks (authentication and authorization) and lifecycle
 * events. Every member is optional. Policy hooks return a plain value where they can and a Promise
 * only when they must; the broker awaits only when it actually receives a Promise, which keeps the
 * QoS 0 path synchronous.
 *
 * @module
 */

import type { ProtocolVersion, QoS, UserProperty } from "../codec/packets.ts";
import type { PeerCertificate, TransportKind } from "../transport/transport.ts";

/** Who a connected client is, as hooks see it. */
export interface ClientInfo {
  clientId: string;
  /** The authenticated user name, if any (a provider may replace the one the client sent). */
  username: string | undefined;
  remoteAddress: string;
  remotePort: number;
  protocolVersion: ProtocolVersion;
  transport: TransportKind;
  peerCertificate: PeerCertificate | undefined;
  /**
   * What the authenticating provider attached (`AuthResult.context`, e.g. a token's ACL claims),
   * for the authorization hooks; undefined otherwise.
   */
  authContext?: unknown;
}

/** What a client presented in CONNECT. */
export interface AuthenticateRequest extends ClientInfo {
  password: Uint8Array | undefined;
  /** MQTT 5 user properties of CONNECT (e.g. agent host facts). */
  userProperties: UserProperty[] | undefined;
}

/** The outcome of authentication. */
export type AuthResult =
  /**
   * Accept; `username` replaces the presented one (e.g. a certificate CN); `context` becomes
   * `ClientInfo.authContext`.
   */
  | { ok: true; username?: string; context?: unknown }
  /** Refuse with an MQTT 5 CONNACK reason code (mapped to a 3.1.1 return code when needed). */
  | { ok: false; reasonCode: number; reason?: string };

/** A publish as authorization sees it. */
export interface PublishRequest {
  topic: string;
  qos: QoS;
  retain: boolean;
}

/** A subscription as authorization sees it. */
export interface SubscribeRequest {
  /** The filter without any `$share/{group}/` prefix. */
  filter: string;
  /** The share group, when the subscription is shared. */
  shareGroup: string | undefined;
  qos: QoS;
}

/** Why a connection ended, for `onDisconnect`. */
export interface DisconnectInfo {
  /** MQTT 5 reason code of the DISCONNECT sent or received, or 0 for a clean close. */
  reasonCode: number;
  /** True when the client sent DISCONNECT itself. */
  byClient: boolean;
}

/** Hooks the broker calls. All optional. */
export interface BrokerHooks {
  /**
   * Decides whether a CONNECT is accepted. Without it every client is accepted. Not called for a
   * client that authenticated with an MQTT 5 enhanced-authentication method (AUTH packets).
   */
  authenticate?(request: AuthenticateRequest): AuthResult | Promise<AuthResult>;
  /** May this client publish this message? A deny is a return value, never a throw. */
  authorizePublish?(client: ClientInfo, request: PublishRequest): boolean | Promise<boolean>;
  /** May this client subscribe to this filter? */
  authorizeSubscribe?(client: ClientInfo, request: SubscribeRequest): boolean | Promise<boolean>;
  /**
   * May this message be delivered to this client? Checked on every delivery (live, retained and
   * queued), so a wildcard subscription never yields a topic the client may not read. Synchronous:
   * it sits on the fan-out path.
   */
  authorizeRead?(client: ClientInfo, topic: string): boolean;
  /** A client completed CONNECT. */
  onConnect?(client: ClientInfo): void;
  /** A connected client's connection ended. */
  onDisconnect?(client: ClientInfo, info: DisconnectInfo): void;
  /** A client subscribed (after SUBACK), with the granted filters. */
  onSubscribe?(client: ClientInfo, filters: string[]): void;
  /** A client unsubscribed. */
  onUnsubscribe?(client: ClientInfo, filters: string[]): void;
}
