/**
 * The broker of one node: it accepts connections and wires the engine's parts (session
 * registry, publish pipeline, router, outbound delivery) to the backbone, and offers the
 * operations the admin API needs.
 *
 * @module
 */

import type { EnhancedAuthMethods } from "../auth/enhanced.ts";
import { type EncodeOptions, MqttError, SlabAllocator } from "../codec/mod.ts";
import { ReasonCode } from "../codec/reason_codes.ts";
import type { Properties, QoS } from "../codec/packets.ts";
import type { Backbone, BrokerEvent } from "../backbone/backbone.ts";
import type { BackboneError } from "../backbone/errors.ts";
import type { MessageSink } from "../domain/sink.ts";
import type { Message, SessionRecord, SubscriptionRecord } from "../domain/types.ts";
import type { BrokerHooks, ClientInfo } from "../hooks/hooks.ts";
import { Session } from "../session/session.ts";
import { parseSharedFilter, type TopicLimits, validateTopicFilter } from "../topic/mod.ts";
import type { AcceptHandler, Connection } from "../transport/transport.ts";
import type { Clock } from "../util/clock.ts";
import { DeadlineScheduler } from "../util/deadlines.ts";
import type { Logger } from "../util/logger.ts";
import { ClientConnection, type ClosedInfo, type ConnectionEvents } from "./client_connection.ts";
import type { ConnectionServices } from "./connection_control.ts";
import type { BrokerContext, BrokerSession } from "./context.ts";
import { FanoutEncoder } from "./fanout.ts";
import { guardBackbone, type GuardedBackbone } from "./guarded_backbone.ts";
import { ConnectionLimits } from "./limits.ts";
import type { BrokerOptions } from "./options.ts";
import { PublishPipeline, type PublishResult } from "./publish_pipeline.ts";
import { Router } from "./router.ts";
import { SessionRegistry } from "./session_registry.ts";
import { BrokerStats } from "./stats.ts";
import { sendRetained } from "./subscriptions.ts";
import { SysPublisher } from "./sys.ts";

/** Over-limit connections held open to be told why at CONNECT; beyond this they are just closed. */
const MAX_REFUSED_PENDING = 256;

/** A backbone failure of one operation is logged again after this long, at the earliest. */
const FAILURE_LOG_INTERVAL_MS = 10_000;

/** What a broker is built from. */
export interface BrokerDeps {
  options: BrokerOptions;
  backbone: Backbone;
  clock: Clock;
  logger: Logger;
  hooks?: BrokerHooks;
  /** MQTT 5 enhanced-authentication methods by name (e.g. `SCRAM-SHA-256`); none by default. */
  authMethods?: EnhancedAuthMethods;
  /** Version string for `$SYS/broker/version`. */
  version?: string;
  /**
   * Parts that take copies of accepted messages or take some over (the Kafka bridge), asked in
   * this order; none by default.
   */
  sinks?: MessageSink[];
}

/** A snapshot of one session for listings. */
export interface SessionInfo {
  clientId: string;
  connected: boolean;
  /** The node holding its connection, undefined while offline. */
  node: string | undefined;
  protocolVersion: number;
  expiryInterval: number;
  subscriptions: SubscriptionRecord[];
  inflight: number;
  queued: number;
  disconnectedAt: number | undefined;
}

/** A connected client as the admin API lists it. */
export interface ConnectedClientInfo extends ClientInfo {
  /** Epoch ms CONNACK was sent. */
  connectedAt: number;
  /** Granted keep alive in seconds (0: none). */
  keepAlive: number;
  /** Session Expiry Interval in seconds. */
  expiryInterval: number;
  subscriptions: number;
  inflight: number;
  queued: number;
  /** Bytes written to the connection and not yet sent. */
  bufferedBytes: number;
  /** The broker stopped reading the client: its replies passed the write bound unread. */
  readingPaused: boolean;
}

/** Outbound QoS 1/2 messages awaiting acknowledgement and messages queued, over all sessions. */
export interface DeliveryTotals {
  inflight: number;
  queued: number;
  queuedBytes: number;
}

/** The MQTT broker engine of one node. */
export class Broker implements BrokerContext, ConnectionServices {
  readonly options: BrokerOptions;
  readonly clock: Clock;
  readonly deadlines: DeadlineScheduler;
  readonly logger: Logger;
  readonly hooks: BrokerHooks;
  readonly stats: BrokerStats;
  /** The backbone, every call bounded in time and every failure counted. */
  readonly backbone: GuardedBackbone;
  readonly router: Router = new Router();
  readonly pipeline: PublishPipeline;
  readonly sessions: SessionRegistry;
  /**
   * Encoded packets are carved out of one shared slab: allocating an `ArrayBuffer` per packet cost
   * more than encoding it. Transports copy small frames or write them within the turn, so a slab
   * is not pinned by a slow connection's queue.
   */
  readonly encodeOptions: EncodeOptions = { allocator: new SlabAllocator() };
  readonly fanout: FanoutEncoder = new FanoutEncoder(this.encodeOptions);
  readonly topicLimits: TopicLimits;
  readonly connectionLimits: ConnectionLimits;
  readonly version: string;
  readonly authMethods: EnhancedAuthMethods;
  readonly context: BrokerContext = this;
  #connections = new Set<ClientConnection>();
  /** Connected clients by client id (CONNACK sent, not closed). */
  #connected = new Map<string, ClientConnection>();
  #connackProperties: Properties;
  #sys: SysPublisher | undefined;
  #assignedIds = 0;
  #closing = false;
  /** Connections over a limit, kept open until their CONNECT is answered with the reason. */
  #refusedPending = 0;
  #failureLoggedAt = new Map<string, number>();
  #eventListeners = new Set<(event: BrokerEvent) => void>();

  constructor(deps: BrokerDeps) {
    this.options = deps.options;
    this.clock = deps.clock;
    this.deadlines = new DeadlineScheduler(this.clock);
    this.logger = deps.logger;
    this.hooks = deps.hooks ?? {};
    this.authMethods = deps.authMethods ?? new Map();
    this.version = deps.version ?? "perch";
    this.stats = new BrokerStats(this.clock.now());
    this.backbone = guardBackbone(deps.backbone, {
      timeoutMs: this.options.backboneTimeout,
      clock: this.clock,
      onFailure: (operation, error) => this.#backboneFailed(operation, error),
    });
    this.topicLimits = {
      maxLength: this.options.maxTopicLength,
      maxLevels: this.options.maxTopicLevels,
      rejectControlCharacters: this.options.rejectControlCharacters,
    };
    this.connectionLimits = new ConnectionLimits(this.options, this.clock);
    this.#connackProperties = staticConnackProperties(this.options);
    this.pipeline = new PublishPipeline(this, this.router, deps.sinks);
    this.sessions = new SessionRegistry(this, this.router, this.pipeline);
    this.backbone.messages.listen((message, target) => {
      if (target.group === undefined) this.router.route(message);
      else this.router.routeToGroup(message, target.group, target.filter!);
    });
  }

  /** One events object for every connection (not two closures per connection). */
  readonly #connectionEvents: ConnectionEvents = {
    connected: (c) => this.#onConnected(c),
    closed: (c, info) => this.#onClosed(c, info),
  };

  /** Accepts a connection from any listener. */
  readonly accept: AcceptHandler = (transport: Connection) => {
    this.stats.connectionsAccepted++;
    const connection = new ClientConnection(this, transport, this.#connectionEvents);
    this.#connections.add(connection);
    if (this.#closing) {
      connection.disconnect(ReasonCode.ServerShuttingDown, "Server shutting down");
      return connection;
    }
    const refusal = this.connectionLimits.admit(transport.remoteAddress);
    if (refusal === 0) connection.admitted = true;
    else {
      this.stats.connectionsRefused++;
      if (this.#refusedPending >= MAX_REFUSED_PENDING) {
        // A flood: no socket is kept open just to say why.
        connection.disconnect(refusal);
        return connection;
      }
      this.#refusedPending++;
      connection.refuseAtConnect(refusal);
      this.#logRefusal(transport.remoteAddress, refusal);
    }
    return connection;
  };

  /**
   * Starts the session registry (takeovers from other nodes, lost nodes, the expiry sweep) and
   * `$SYS`. The backbone must have been started by the caller.
   */
  start(): void {
    this.sessions.start();
    if (this.options.sysInterval > 0) {
      this.#sys = new SysPublisher(this, this.options.sysInterval);
      this.#sys.start();
    }
  }

  /**
   * Stops the broker: MQTT 5 clients are told "server shutting down" (0x8B), every connection is
   * closed after its queued bytes are written, and every session is released to the backbone.
   * Resolves when all are closed or `graceMs` passed.
   */
  async close(graceMs = 5000): Promise<void> {
    this.#closing = true;
    this.#sys?.stop();
    for (const connection of [...this.#connections]) {
      connection.disconnect(ReasonCode.ServerShuttingDown, "Server shutting down");
    }
    const deadline = Date.now() + graceMs;
    while (this.#connections.size > 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    for (const connection of this.#connections) connection.transport.destroy();
    await this.sessions.close();
    this.deadlines.clear();
    this.backbone.stopGuard();
  }

  /** Sessions held by this node (attached to a connection). */
  get sessionCount(): number {
    return this.sessions.size;
  }

  /** Subscriptions on this node, shared group members included. */
  get subscriptionCount(): number {
    return this.router.size;
  }

  /** Live connections, including ones that have not completed CONNECT. */
  get connections(): ReadonlySet<ClientConnection> {
    return this.#connections;
  }

  /** Publishes a message made by the broker or an administrator; the reason code of the outcome. */
  async publish(message: Message): Promise<number> {
    const result: PublishResult = await this.pipeline.publish(message);
    return result.reasonCode;
  }

  // ---- ConnectionServices ---------------------------------------------------------------------

  assignClientId(): string {
    const random = crypto.getRandomValues(new Uint8Array(6));
    let suffix = "";
    for (const byte of random) suffix += byte.toString(16).padStart(2, "0");
    return `perch-${this.options.nodeId}-${(++this.#assignedIds).toString(36)}-${suffix}`;
  }

  connackProperties(perClient: Properties): Properties {
    const properties: Properties = { ...this.#connackProperties };
    for (const [key, value] of Object.entries(perClient)) {
      if (value !== undefined) (properties as Record<string, unknown>)[key] = value;
    }
    return properties;
  }

  /**
   * Calls `listener` with every lifecycle event this node emits, synchronously and before the
   * backbone carries it to other nodes: each event reaches the listeners of exactly one node.
   * A listener must not block (notifiers queue). Returns an unsubscribe.
   */
  onEvent(listener: (event: BrokerEvent) => void): () => void {
    this.#eventListeners.add(listener);
    return () => this.#eventListeners.delete(listener);
  }

  emit(event: BrokerEvent): void {
    for (const listener of this.#eventListeners) {
      try {
        listener(event);
      } catch (error) {
        this.logger.error("event listener failed", { event: event.type, error });
      }
    }
    this.backbone.events.emit(event);
  }

  #onConnected(connection: ClientConnection): void {
    const stats = this.stats;
    const info = connection.info;
    this.#connected.set(info.clientId, connection);
    stats.clientsConnected++;
    stats.clientsConnectedTotal++;
    stats.clientsConnectedByVersion[info.protocolVersion]++;
    stats.clientsConnectedTotalByVersion[info.protocolVersion]++;
    this.logger.debug("client connected", {
      clientId: info.clientId,
      remote: info.remoteAddress,
      protocol: info.protocolVersion,
    });
    this.hooks.onConnect?.(info);
    const details = connection.connectDetails;
    this.emit({
      type: "connected",
      node: this.options.nodeId,
      clientId: info.clientId,
      username: info.username,
      remoteAddress: info.remoteAddress,
      listener: info.transport,
      protocolVersion: info.protocolVersion,
      keepAlive: connection.keepAlive,
      cleanStart: details?.cleanStart ?? false,
      userProperties: details?.userProperties,
      facts: details?.facts,
      at: this.clock.now(),
    });
  }

  #onClosed(connection: ClientConnection, info: ClosedInfo): void {
    this.#connections.delete(connection);
    if (this.#connected.get(connection.info.clientId) === connection) {
      this.#connected.delete(connection.info.clientId);
    }
    const transport = connection.transport;
    if (connection.admitted) this.connectionLimits.release(transport.remoteAddress);
    else if (connection.refusal !== 0) this.#refusedPending--;
    const session = connection.session;
    if (session && session.connection === connection) {
      this.sessions.detach(session, { willOnClose: info.willOnClose });
    }
    if (info.wasConnected) {
      const client = connection.info;
      this.stats.clientsConnected--;
      this.stats.clientsConnectedByVersion[client.protocolVersion]--;
      this.hooks.onDisconnect?.(client, { reasonCode: info.reasonCode, byClient: info.byClient });
      const details = connection.connectDetails;
      this.emit({
        type: "disconnected",
        node: this.options.nodeId,
        clientId: client.clientId,
        username: client.username,
        reasonCode: info.reasonCode,
        byClient: info.byClient,
        remoteAddress: client.remoteAddress,
        listener: client.transport,
        protocolVersion: client.protocolVersion,
        keepAlive: connection.keepAlive,
        cleanStart: details?.cleanStart,
        userProperties: details?.userProperties,
        facts: details?.facts,
        connectedAt: connection.connectedAt,
        at: this.clock.now(),
      });
    }
  }

  #logRefusal(address: string, reasonCode: number): void {
    // The first refusal and then one in a thousand: a flood stays visible without flooding the log.
    if (this.stats.connectionsRefused % 1000 !== 1) return;
    this.logger.warn("connection over a limit refused", {
      remote: address,
      reasonCode,
      refused: this.stats.connectionsRefused,
    });
  }

  /** Counts a failed backbone call and logs it, once per operation per interval. */
  #backboneFailed(operation: string, error: BackboneError): void {
    const failures = this.stats.backboneFailures;
    failures.set(operation, (failures.get(operation) ?? 0) + 1);
    if (error.failure === "full") return; // A bound reached is answered to the client, not a fault.
    const now = this.clock.now();
    const last = this.#failureLoggedAt.get(operation);
    if (last !== undefined && now - last < FAILURE_LOG_INTERVAL_MS) return;
    this.#failureLoggedAt.set(operation, now);
    this.logger.error("backbone operation failed", {
      operation,
      failure: error.failure,
      failures: failures.get(operation),
      error: error.message,
    });
  }

  // ---- admin operations -------------------------------------------------------------------------

  /** Every client that completed CONNECT and is still connected here. */
  listClients(): ConnectedClientInfo[] {
    const clients: ConnectedClientInfo[] = [];
    for (const connection of this.#connections) {
      if (connection.connected) clients.push(clientInfo(connection));
    }
    return clients;
  }

  /** One client connected here, by id. */
  getClient(clientId: string): ConnectedClientInfo | undefined {
    const connection = this.#connectedClient(clientId);
    return connection && clientInfo(connection);
  }

  /**
   * Disconnects a client from the server side: MQTT 5 clients get DISCONNECT with `reasonCode`
   * (0x98 Administrative action by default) and a Reason String, plus a Server Reference when one
   * is given (for 0x9C/0x9D, section 4.11); 3.1.1 clients are just closed. The will is published
   * as for any close without DISCONNECT, and the session stays per its expiry.
   *
   * @returns false when the client is not connected here.
   * @throws {RangeError} When `reasonCode` is not one a server may send in DISCONNECT
   * [MQTT-3.14.2-1].
   */
  disconnectClient(
    clientId: string,
    reasonCode: number = ReasonCode.AdministrativeAction,
    options: { reason?: string; serverReference?: string } = {},
  ): boolean {
    if (!SERVER_DISCONNECT_CODES.has(reasonCode)) {
      throw new RangeError(
        `Cannot disconnect client: 0x${
          reasonCode.toString(16)
        } is not a server DISCONNECT reason code`,
      );
    }
    const connection = this.#connectedClient(clientId);
    if (!connection) return false;
    this.logger.info("client disconnected by the server", { clientId, reasonCode });
    const properties = options.serverReference === undefined
      ? undefined
      : { serverReference: options.serverReference };
    connection.disconnect(
      reasonCode,
      options.reason ?? "Disconnected by an administrator",
      properties,
    );
    return true;
  }

  /** Every session in the backbone, connected or not. */
  async listSessions(): Promise<SessionInfo[]> {
    const stored = await this.backbone.sessions.list();
    return await Promise.all(stored.map(({ record }) => this.#sessionInfo(record)));
  }

  /** One session. */
  async getSession(clientId: string): Promise<SessionInfo | undefined> {
    const stored = await this.backbone.sessions.get(clientId);
    return stored && await this.#sessionInfo(stored.record);
  }

  /**
   * Ends a session now: a connected client is disconnected first (0x98), a pending will is
   * published, its subscriptions and queue go away. False when there is no such session.
   */
  deleteSession(clientId: string): Promise<boolean> {
    return this.sessions.endSession(clientId, (session) => {
      this.logger.info("client disconnected by the server", {
        clientId: session.clientId,
        reasonCode: ReasonCode.AdministrativeAction,
      });
      session.connection?.disconnect(
        ReasonCode.AdministrativeAction,
        "Disconnected by an administrator",
      );
    });
  }

  /**
   * Subscribes a session on behalf of an administrator, with the same checks a SUBSCRIBE gets
   * (filter syntax, features, the per-client limit); a connected client is sent the retained
   * messages the subscription asks for. Undefined when there is no such session, else whether
   * the subscription is new. Throws `MqttError` with the reason a SUBACK would carry.
   */
  async subscribeSession(
    clientId: string,
    record: SubscriptionRecord,
  ): Promise<boolean | undefined> {
    const options = this.options;
    const shared = parseSharedFilter(record.filter);
    if (shared instanceof MqttError) throw shared;
    const invalid = validateTopicFilter(shared ? shared.filter : record.filter, this.topicLimits);
    if (invalid) throw invalid;
    if (shared && record.noLocal) {
      throw new MqttError(ReasonCode.ProtocolError, "No Local is not allowed on a shared filter");
    }
    if (shared && !options.sharedSubscriptionAvailable) {
      throw new MqttError(
        ReasonCode.SharedSubscriptionsNotSupported,
        "Shared subscriptions are not supported",
      );
    }
    if (!options.wildcardSubscriptionAvailable && /[+#]/.test(record.filter)) {
      throw new MqttError(
        ReasonCode.WildcardSubscriptionsNotSupported,
        "Wildcard subscriptions are not supported",
      );
    }
    if (record.subscriptionId !== 0 && !options.subscriptionIdentifierAvailable) {
      throw new MqttError(
        ReasonCode.SubscriptionIdentifiersNotSupported,
        "Subscription identifiers are not supported",
      );
    }
    const granted = { ...record, qos: Math.min(record.qos, options.maxQos) as QoS };
    return await this.#withSession(clientId, async (session) => {
      if (
        !session.subscriptions.has(granted.filter) &&
        session.subscriptionCount >= options.maxSubscriptionsPerClient
      ) {
        throw new MqttError(ReasonCode.QuotaExceeded, "The session has too many subscriptions");
      }
      const [isNew] = await this.sessions.subscribe(session, [{ record: granted, share: shared }]);
      const connection = session.connection;
      if (connection?.connected) {
        this.hooks.onSubscribe?.(connection.info, [granted.filter]);
        sendRetained(this, session, granted, isNew);
      }
      return isNew;
    });
  }

  /**
   * Removes a session's subscription on behalf of an administrator. Undefined when there is no
   * such session, else whether the subscription existed.
   */
  async unsubscribeSession(clientId: string, filter: string): Promise<boolean | undefined> {
    return await this.#withSession(clientId, async (session) => {
      const removed = await this.sessions.unsubscribe(session, [filter]);
      if (removed.length === 0) return false;
      const connection = session.connection;
      if (connection?.connected) this.hooks.onUnsubscribe?.(connection.info, [filter]);
      return true;
    });
  }

  /**
   * Runs an admin change on a session: the attached one, or an offline one claimed for the
   * change and released after it. Undefined when there is no such session.
   */
  async #withSession<T>(
    clientId: string,
    change: (session: BrokerSession) => Promise<T>,
  ): Promise<T | undefined> {
    const attached = this.sessions.attached(clientId);
    if (attached) return await change(attached);
    const stored = await this.backbone.sessions.get(clientId);
    if (!stored) return undefined;
    if (stored.record.owner !== undefined) {
      throw new MqttError(ReasonCode.ServerBusy, "The session is connected to another node");
    }
    const session: BrokerSession = Session.fromRecord(stored.record, stored.revision);
    return await change(session);
  }

  /** Inflight and queued messages over all sessions (a walk: for scrapes, not hot paths). */
  async deliveryTotals(): Promise<DeliveryTotals> {
    let inflight = 0;
    for (const connection of this.#connections) {
      if (connection.connected) inflight += connection.createdOutbound?.inflightCount ?? 0;
    }
    const queued = await this.backbone.queues.totals();
    return { inflight, queued: queued.messages, queuedBytes: queued.bytes };
  }

  #connectedClient(clientId: string): ClientConnection | undefined {
    return this.#connected.get(clientId);
  }

  async #sessionInfo(record: SessionRecord): Promise<SessionInfo> {
    const connection = this.sessions.attached(record.clientId)?.connection;
    const stored = await this.backbone.queues.size({ kind: "session", clientId: record.clientId });
    // Sent and unacknowledged messages stay stored until acknowledged: they are inflight here.
    const inflight = connection?.createdOutbound?.inflightCount ?? 0;
    return {
      clientId: record.clientId,
      connected: record.owner !== undefined,
      node: record.owner,
      protocolVersion: record.protocolVersion,
      expiryInterval: record.expiryInterval,
      subscriptions: record.subscriptions,
      inflight,
      queued: Math.max(0, stored.messages - inflight),
      disconnectedAt: record.disconnectedAt,
    };
  }
}

function clientInfo(connection: ClientConnection): ConnectedClientInfo {
  const session = connection.session;
  return {
    ...connection.info,
    connectedAt: connection.connectedAt,
    keepAlive: connection.keepAlive,
    expiryInterval: session?.expiryInterval ?? 0,
    subscriptions: session?.subscriptionCount ?? 0,
    inflight: connection.createdOutbound?.inflightCount ?? 0,
    queued: connection.createdOutbound?.waitingCount ?? 0,
    bufferedBytes: connection.transport.bufferedBytes,
    readingPaused: connection.readingPausedForOutput,
  };
}

/** DISCONNECT reason codes a server may send (section 3.14.2.1). */
const SERVER_DISCONNECT_CODES: ReadonlySet<number> = new Set([
  0x00,
  0x80,
  0x81,
  0x82,
  0x83,
  0x87,
  0x89,
  0x8b,
  0x8d,
  0x8e,
  0x8f,
  0x90,
  0x93,
  0x94,
  0x95,
  0x96,
  0x97,
  0x98,
  0x99,
  0x9a,
  0x9b,
  0x9c,
  0x9d,
  0x9e,
  0x9f,
  0xa0,
  0xa1,
  0xa2,
]);

/** CONNACK properties that follow from the configuration alone (section 3.2.2.3) [MQTT-3.2.2-9]. */
function staticConnackProperties(options: BrokerOptions): Properties {
  const properties: Properties = {};
  if (options.receiveMaximum < 65_535) properties.receiveMaximum = options.receiveMaximum;
  if (options.maxQos < 2) properties.maximumQos = options.maxQos;
  if (!options.retainAvailable) properties.retainAvailable = 0;
  properties.maximumPacketSize = options.maxPacketSize;
  if (options.topicAliasMaximum > 0) properties.topicAliasMaximum = options.topicAliasMaximum;
  if (!options.wildcardSubscriptionAvailable) properties.wildcardSubscriptionAvailable = 0;
  if (!options.subscriptionIdentifierAvailable) properties.subscriptionIdentifiersAvailable = 0;
  if (!options.sharedSubscriptionAvailable) properties.sharedSubscriptionAvailable = 0;
  return properties;
}
