/**
 * The broker: the one owner of this node's protocol state. It accepts connections, binds them to
 * sessions, routes messages, keeps wills and expiry timers, and publishes `$SYS`.
 *
 * @module
 */

import { MqttError } from "../codec/errors.ts";
import type { EnhancedAuthMethods } from "../auth/enhanced.ts";
import { type EncodeOptions, SlabAllocator } from "../codec/mod.ts";
import { ReasonCode } from "../codec/reason_codes.ts";
import type { Properties, QoS } from "../codec/packets.ts";
import type { Backbone, Message, SubscriptionRecord } from "../backbone/backbone.ts";
import type { BrokerHooks, ClientInfo } from "../hooks/hooks.ts";
import { NEVER_EXPIRES, Session } from "../session/session.ts";
import { parseSharedFilter, type TopicLimits, validateTopicFilter } from "../topic/mod.ts";
import type { AcceptHandler, Connection } from "../transport/transport.ts";
import type { Clock, TimerId } from "../util/clock.ts";
import { DeadlineScheduler } from "../util/deadlines.ts";
import type { Logger } from "../util/logger.ts";
import type { AttachingClient, AttachRequest, BrokerCore, CloseInfo } from "./broker_core.ts";
import { Backpressure } from "./backpressure.ts";
import { Client } from "./client.ts";
import { FanoutEncoder } from "./fanout.ts";
import { ConnectionLimits } from "./limits.ts";
import type { BrokerOptions } from "./options.ts";
import { type DeliveryTarget, Router, type SharedSubscription } from "./router.ts";
import { BrokerStats } from "./stats.ts";
import { SysPublisher } from "./sys.ts";

/** Over-limit connections held open to be told why at CONNECT; beyond this they are just closed. */
const MAX_REFUSED_PENDING = 256;

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
}

/** A snapshot of one session for listings. */
export interface SessionInfo {
  clientId: string;
  connected: boolean;
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
}

/** Outbound QoS 1/2 messages awaiting acknowledgement and messages queued, over all sessions. */
export interface DeliveryTotals {
  inflight: number;
  queued: number;
  queuedBytes: number;
}

/** The MQTT broker engine of one node. */
export class Broker implements BrokerCore, DeliveryTarget {
  readonly options: BrokerOptions;
  readonly clock: Clock;
  readonly deadlines: DeadlineScheduler;
  readonly logger: Logger;
  readonly hooks: BrokerHooks;
  readonly stats: BrokerStats;
  readonly backbone: Backbone;
  readonly router: Router;
  /**
   * Encoded packets are carved out of one shared slab: allocating an `ArrayBuffer` per packet cost
   * more than encoding it. Transports copy small frames or write them within the turn, so a slab
   * is not pinned by a slow connection's queue.
   */
  readonly encodeOptions: EncodeOptions = { allocator: new SlabAllocator() };
  readonly fanout: FanoutEncoder = new FanoutEncoder(this.encodeOptions);
  readonly backpressure: Backpressure;
  readonly topicLimits: TopicLimits;
  readonly connectionLimits: ConnectionLimits;
  readonly version: string;
  readonly authMethods: EnhancedAuthMethods;
  #sessions = new Map<string, Session>();
  #clients = new Set<Client>();
  #attachQueue = new Map<string, Promise<unknown>>();
  #connackProperties: Properties;
  #sys: SysPublisher | undefined;
  #assignedIds = 0;
  #closing = false;
  /** Connections over a limit, kept open until their CONNECT is answered with the reason. */
  #refusedPending = 0;
  /** Queue levels at which publishers are held back, and let go again. */
  #highWaterMessages: number;
  #highWaterBytes: number;

  constructor(deps: BrokerDeps) {
    this.options = deps.options;
    this.backbone = deps.backbone;
    this.clock = deps.clock;
    this.deadlines = new DeadlineScheduler(this.clock);
    this.logger = deps.logger;
    this.hooks = deps.hooks ?? {};
    this.authMethods = deps.authMethods ?? new Map();
    this.version = deps.version ?? "perch";
    this.stats = new BrokerStats(this.clock.now());
    this.router = new Router(this, { maxSharedPending: this.options.maxQueuedMessages });
    this.topicLimits = {
      maxLength: this.options.maxTopicLength,
      maxLevels: this.options.maxTopicLevels,
    };
    this.connectionLimits = new ConnectionLimits(this.options, this.clock);
    this.#connackProperties = staticConnackProperties(this.options);
    this.#highWaterMessages = Math.max(1, Math.floor(this.options.maxQueuedMessages / 2));
    this.#highWaterBytes = Math.max(1, Math.floor(this.options.maxQueuedBytes / 2));
    this.backpressure = new Backpressure(
      this.clock,
      this.options.slowConsumerTimeout,
      (target) => this.#stalled(target),
    );
    this.backbone.bus.listen((message) => {
      this.router.route(message);
    });
  }

  /** Accepts a connection from any listener. */
  readonly accept: AcceptHandler = (connection: Connection) => {
    this.stats.connectionsAccepted++;
    const client = new Client(this, connection);
    this.#clients.add(client);
    if (this.#closing) {
      client.disconnect(ReasonCode.ServerShuttingDown, "Server shutting down");
      return client;
    }
    const refusal = this.connectionLimits.admit(connection.remoteAddress);
    if (refusal === 0) client.admitted = true;
    else {
      this.stats.connectionsRefused++;
      if (this.#refusedPending >= MAX_REFUSED_PENDING) {
        // A flood: no socket is kept open just to say why.
        client.disconnect(refusal);
        return client;
      }
      this.#refusedPending++;
      client.refuseAtConnect(refusal);
      this.#logRefusal(connection.remoteAddress, refusal);
    }
    return client;
  };

  /** Starts periodic work (`$SYS`). */
  start(): void {
    if (this.options.sysInterval > 0) {
      this.#sys = new SysPublisher(this, this.options.sysInterval);
      this.#sys.start();
    }
  }

  /**
   * Stops the broker: MQTT 5 clients are told "server shutting down" (0x8B), every connection is
   * closed after its queued bytes are written. Resolves when all are closed or `graceMs` passed.
   */
  async close(graceMs = 5000): Promise<void> {
    this.#closing = true;
    this.#sys?.stop();
    this.backpressure.clear();
    for (const client of [...this.#clients]) {
      client.disconnect(ReasonCode.ServerShuttingDown, "Server shutting down");
    }
    const deadline = Date.now() + graceMs;
    while (this.#clients.size > 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    for (const client of this.#clients) client.connection.destroy();
    for (const session of this.#sessions.values()) this.#clearTimers(session);
    this.deadlines.clear();
  }

  /** Number of sessions held by this node, connected or not. */
  get sessionCount(): number {
    return this.#sessions.size;
  }

  /** Subscriptions on this node, shared group members included. */
  get subscriptionCount(): number {
    return this.router.size;
  }

  /** Live connections, including ones that have not completed CONNECT. */
  get connections(): ReadonlySet<Client> {
    return this.#clients;
  }

  /** A snapshot of every session. */
  listSessions(): SessionInfo[] {
    return [...this.#sessions.values()].map((s) => this.#sessionInfo(s));
  }

  /** A snapshot of one session. */
  getSession(clientId: string): SessionInfo | undefined {
    const session = this.#sessions.get(clientId);
    return session && this.#sessionInfo(session);
  }

  // ---- admin operations ---------------------------------------------------------------------

  /** Every client that completed CONNECT and is still connected. */
  listClients(): ConnectedClientInfo[] {
    const clients: ConnectedClientInfo[] = [];
    for (const client of this.#clients) if (client.connected) clients.push(clientInfo(client));
    return clients;
  }

  /** One connected client by id. */
  getClient(clientId: string): ConnectedClientInfo | undefined {
    const client = this.#connectedClient(clientId);
    return client && clientInfo(client);
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
    const client = this.#connectedClient(clientId);
    if (!client) return false;
    this.logger.info("client disconnected by the server", { clientId, reasonCode });
    const properties = options.serverReference === undefined
      ? undefined
      : { serverReference: options.serverReference };
    client.disconnect(reasonCode, options.reason ?? "Disconnected by an administrator", properties);
    return true;
  }

  /**
   * Ends a session now: a connected client is disconnected first (0x98), a pending will is
   * published, its subscriptions and queue go away. False when there is no such session.
   */
  deleteSession(clientId: string): boolean {
    if (!this.#sessions.has(clientId)) return false;
    this.disconnectClient(clientId);
    // Disconnecting may already have ended a session that expires at close.
    const session = this.#sessions.get(clientId);
    if (session) this.#endSession(session);
    return true;
  }

  /**
   * Subscribes a session on behalf of an administrator, with the same checks a SUBSCRIBE gets
   * (filter syntax, features, the per-client limit); a connected client is sent the retained
   * messages the subscription asks for. Returns undefined when there is no such session, else
   * whether the subscription is new. Throws `MqttError` with the reason a SUBACK would carry.
   */
  subscribeSession(clientId: string, record: SubscriptionRecord): boolean | undefined {
    const session = this.#sessions.get(clientId);
    if (!session) return undefined;
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
    if (
      !session.subscriptions.has(record.filter) &&
      session.subscriptions.size >= options.maxSubscriptionsPerClient
    ) {
      throw new MqttError(ReasonCode.QuotaExceeded, "The session has too many subscriptions");
    }
    const granted = { ...record, qos: Math.min(record.qos, options.maxQos) as QoS };
    const isNew = this.subscribe(session, granted);
    this.#persist(session);
    const client = session.client as Client | undefined;
    if (client?.connected) {
      this.hooks.onSubscribe?.(client.info, [granted.filter]);
      client.sendRetained(granted, isNew);
    }
    return isNew;
  }

  /**
   * Removes a session's subscription on behalf of an administrator. Undefined when there is no
   * such session, else whether the subscription existed.
   */
  unsubscribeSession(clientId: string, filter: string): boolean | undefined {
    const session = this.#sessions.get(clientId);
    if (!session) return undefined;
    if (!this.unsubscribe(session, filter)) return false;
    this.#persist(session);
    const client = session.client as Client | undefined;
    if (client?.connected) this.hooks.onUnsubscribe?.(client.info, [filter]);
    return true;
  }

  /** Inflight and queued messages over all sessions of this node (a walk: for scrapes, not hot paths). */
  deliveryTotals(): DeliveryTotals {
    const totals: DeliveryTotals = { inflight: 0, queued: 0, queuedBytes: 0 };
    for (const session of this.#sessions.values()) {
      totals.inflight += session.inflight.size;
      totals.queued += session.queued;
      totals.queuedBytes += session.queuedBytes;
    }
    return totals;
  }

  #connectedClient(clientId: string): Client | undefined {
    const client = this.#sessions.get(clientId)?.client as Client | undefined;
    return client?.connected ? client : undefined;
  }

  #sessionInfo(session: Session): SessionInfo {
    return {
      clientId: session.clientId,
      connected: session.client !== undefined,
      protocolVersion: session.protocolVersion,
      expiryInterval: session.expiryInterval,
      subscriptions: [...session.subscriptions.values()],
      inflight: session.inflightCount,
      queued: session.queued,
      disconnectedAt: session.disconnectedAt,
    };
  }

  // ---- BrokerCore ---------------------------------------------------------------------------

  assignClientId(): string {
    const random = crypto.getRandomValues(new Uint8Array(6));
    let suffix = "";
    for (const byte of random) suffix += byte.toString(16).padStart(2, "0");
    return `perch-${this.options.nodeId}-${(++this.#assignedIds).toString(36)}-${suffix}`;
  }

  attach(
    client: AttachingClient,
    request: AttachRequest,
  ): Promise<{ session: Session; sessionPresent: boolean } | undefined> {
    // Connects for one client id run one at a time, in arrival order.
    const previous = this.#attachQueue.get(request.clientId) ?? Promise.resolve();
    const result = previous.then(() => this.#attachNow(client, request));
    const settled = result.catch(() => {});
    this.#attachQueue.set(request.clientId, settled);
    settled.then(() => {
      if (this.#attachQueue.get(request.clientId) === settled) {
        this.#attachQueue.delete(request.clientId);
      }
    });
    return result;
  }

  async #attachNow(
    client: AttachingClient,
    request: AttachRequest,
  ): Promise<{ session: Session; sessionPresent: boolean } | undefined> {
    if (client.closed || this.#closing) return undefined;
    const { clientId } = request;
    let session = this.#sessions.get(clientId);
    if (session?.client && session.client !== client) {
      // [MQTT-3.1.4-3]: the existing connection is closed; closing it runs clientClosed, which
      // handles its will and may end its session.
      this.logger.info("session taken over", { clientId });
      session.client.takeOver();
      session = this.#sessions.get(clientId);
    }
    if (session && request.cleanStart) {
      this.#endSession(session); // [MQTT-3.1.2-4]
      session = undefined;
    }
    const sessionPresent = session !== undefined;
    if (session) {
      this.#clearTimers(session); // A delayed will is cancelled by the reconnection [MQTT-3.1.3-9].
      session.protocolVersion = request.protocolVersion;
    } else {
      session = new Session(clientId, request.protocolVersion, request.expiryInterval);
      this.#sessions.set(clientId, session);
    }
    session.expiryInterval = request.expiryInterval;
    session.will = request.will;
    session.client = client;
    session.disconnectedAt = undefined;
    const persisted = this.#persist(session);
    if (persisted instanceof Promise) await persisted;
    if (client.closed) {
      this.clientClosed(client, session, {
        wasConnected: false,
        willOnClose: true,
        reasonCode: 0,
        byClient: false,
      });
      return undefined;
    }
    return { session, sessionPresent };
  }

  clientConnected(client: AttachingClient): void {
    this.stats.clientsConnected++;
    this.stats.clientsConnectedTotal++;
    this.stats.clientsConnectedByVersion[client.info.protocolVersion]++;
    this.stats.clientsConnectedTotalByVersion[client.info.protocolVersion]++;
    this.logger.debug("client connected", {
      clientId: client.info.clientId,
      remote: client.info.remoteAddress,
      protocol: client.info.protocolVersion,
    });
    this.hooks.onConnect?.(client.info);
  }

  clientClosed(client: AttachingClient, session: Session | undefined, info: CloseInfo): void {
    this.#clients.delete(client as Client);
    const connection = (client as Client).connection;
    if ((client as Client).admitted) this.connectionLimits.release(connection.remoteAddress);
    else if ((client as Client).refusalPending) this.#refusedPending--;
    this.backpressure.forget(client as Client);
    if (session && session.client === client) this.#detach(session, info);
    if (info.wasConnected) {
      this.stats.clientsConnected--;
      this.stats.clientsConnectedByVersion[client.info.protocolVersion]--;
      this.hooks.onDisconnect?.(client.info, {
        reasonCode: info.reasonCode,
        byClient: info.byClient,
      });
    }
  }

  /** The session's connection is gone: will, shared messages and expiry take over. */
  #detach(session: Session, info: CloseInfo): void {
    session.client = undefined;
    session.disconnectedAt = this.clock.now();
    // Offline sessions queue up to their bound and then drop; they never hold publishers back.
    this.backpressure.release(session);
    this.#returnSharedInflight(session);
    const will = session.will;
    if (will && !info.willOnClose) session.will = undefined; // [MQTT-3.1.2-10]
    else if (will) {
      const delay = Math.min(will.delayInterval, session.expiryInterval);
      if (delay === 0) this.#publishWill(session);
      else {
        // [MQTT-3.1.3-9]: at the earlier of the will delay and the end of the session.
        session.willTimer = this.clock.setTimeout(() => {
          session.willTimer = undefined;
          this.#publishWill(session);
        }, delay * 1000);
      }
    }
    if (session.expiryInterval === 0) {
      this.#endSession(session);
      return;
    }
    this.#persist(session);
    if (session.expiryInterval !== NEVER_EXPIRES) {
      session.expiryTimer = this.clock.setTimeout(() => {
        session.expiryTimer = undefined;
        this.logger.debug("session expired", { clientId: session.clientId });
        this.#endSession(session);
      }, session.expiryInterval * 1000);
    }
  }

  publish(message: Message): number | Promise<number> {
    this.backpressure.beginPublish();
    let code: number = ReasonCode.Success;
    let stored: void | boolean | Promise<void | boolean> = undefined;
    if (message.retain) {
      try {
        // An empty payload clears the topic's retained message [MQTT-3.3.1-6], [MQTT-3.3.1-7].
        stored = message.payload.length === 0
          ? this.backbone.retained.delete(message.topic)
          : this.backbone.retained.set(message); // [MQTT-3.3.1-5]
      } catch (err) {
        this.stats.retainedRejected++;
        this.logger.warn("retained message not stored", { topic: message.topic, error: err });
        code = ReasonCode.QuotaExceeded;
      }
    }
    const droppedBefore = this.stats.droppedQueueFull;
    const routed = this.backbone.bus.publish(message);
    if (stored instanceof Promise || routed instanceof Promise) {
      return Promise.all([stored, routed]).then(() => code);
    }
    // A subscriber's full queue dropped this message: the publisher is told (MQTT 5 0x97), never
    // acknowledged as if every subscriber had it.
    if (code === ReasonCode.Success && this.stats.droppedQueueFull !== droppedBefore) {
      return ReasonCode.QuotaExceeded;
    }
    if (code === ReasonCode.Success && !this.backbone.shared && this.router.lastDeliveries === 0) {
      return ReasonCode.NoMatchingSubscribers;
    }
    return code;
  }

  subscribe(session: Session, record: SubscriptionRecord): boolean {
    const isNew = session.subscribe(record);
    this.router.add(session, record);
    if (isNew) this.backbone.bus.addInterest(interestFilter(record.filter));
    return isNew;
  }

  unsubscribe(session: Session, filter: string): boolean {
    if (!session.unsubscribe(filter)) return false;
    this.#releaseSubscription(session, filter);
    return true;
  }

  persistSession(session: Session): void {
    this.#persist(session);
  }

  enqueue(session: Session, message: Message): void {
    const rejected = this.backbone.queues.push(session.clientId, message, {
      maxMessages: this.options.maxQueuedMessages,
      maxBytes: this.options.maxQueuedBytes,
    });
    if (rejected instanceof Promise) {
      session.queued++;
      session.queuedBytes += message.payload.length;
      rejected.then((r) => {
        if (r) this.#queueFull(session);
      });
      return;
    }
    if (rejected) {
      this.#queueFull(session);
      return;
    }
    session.queued++;
    session.queuedBytes += message.payload.length;
    if (
      session.client !== undefined &&
      (session.queued >= this.#highWaterMessages || session.queuedBytes >= this.#highWaterBytes)
    ) this.backpressure.note(session);
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

  #queueFull(session: Session): void {
    this.stats.droppedQueueFull++;
    // One line per thousand drops keeps a flood visible without flooding the log.
    if (this.stats.droppedQueueFull % 1000 === 1) {
      this.logger.warn("session queue full, message dropped", {
        clientId: session.clientId,
        dropped: this.stats.droppedQueueFull,
      });
    }
  }

  takeQueued(session: Session, max: number): Message[] | Promise<Message[]> {
    const taken = this.backbone.queues.take(session.clientId, max);
    if (taken instanceof Promise) return taken.then((messages) => this.#taken(session, messages));
    return this.#taken(session, taken);
  }

  #taken(session: Session, messages: Message[]): Message[] {
    if (messages.length === 0) {
      session.queued = 0;
      session.queuedBytes = 0;
    } else {
      session.queued = Math.max(0, session.queued - messages.length);
      for (const message of messages) session.queuedBytes -= message.payload.length;
      if (session.queuedBytes < 0 || session.queued === 0) session.queuedBytes = 0;
    }
    return messages;
  }

  releaseIfDrained(session: Session): void {
    if (
      this.backpressure.isWaitedOn(session) &&
      session.queued < this.#highWaterMessages / 2 &&
      session.queuedBytes < this.#highWaterBytes / 2
    ) this.backpressure.release(session);
  }

  /** A congested target held publishers back for too long. */
  #stalled(target: object): void {
    if (!(target instanceof Session)) {
      this.logger.warn("shared group stayed congested; publishers released", {});
      return;
    }
    const client = target.client;
    if (!client) return;
    this.stats.slowConsumerDisconnects++;
    this.logger.warn("disconnecting slow consumer", {
      clientId: target.clientId,
      queued: target.queued,
    });
    client.disconnect(ReasonCode.QuotaExceeded, "Messages not acknowledged in time");
  }

  connackProperties(perClient: Properties): Properties {
    const properties: Properties = { ...this.#connackProperties };
    for (const [key, value] of Object.entries(perClient)) {
      if (value !== undefined) (properties as Record<string, unknown>)[key] = value;
    }
    return properties;
  }

  // ---- DeliveryTarget -----------------------------------------------------------------------

  deliver(
    session: Session,
    message: Message,
    qos: QoS,
    retain: boolean,
    subscriptionIds: number[] | undefined,
    group: SharedSubscription | undefined,
  ): void {
    const client = session.client;
    if (client) {
      client.deliver(message, qos, retain, subscriptionIds, group);
      return;
    }
    // Offline: QoS 1/2 wait in the session's queue; QoS 0 is not kept for offline sessions.
    if (qos > 0) this.enqueue(session, message);
  }

  canSendNow(session: Session, qos: QoS): boolean {
    return session.client !== undefined && session.client.canSendNow(qos);
  }

  isOnline(session: Session): boolean {
    return session.client !== undefined;
  }

  congested(group: SharedSubscription): void {
    this.backpressure.note(group);
  }

  drained(group: SharedSubscription): void {
    if (this.backpressure.isWaitedOn(group)) this.backpressure.release(group);
  }

  // ---- internals ----------------------------------------------------------------------------

  /** Publishes a session's will and forgets it. */
  #publishWill(session: Session): void {
    const will = session.will;
    if (!will) return;
    session.will = undefined;
    const message: Message = will.messageExpiryInterval === 0 ? will.message : {
      ...will.message,
      expiresAt: this.clock.now() + will.messageExpiryInterval * 1000,
    };
    this.logger.debug("publishing will", { clientId: session.clientId, topic: message.topic });
    const result = this.publish(message);
    if (result instanceof Promise) {
      result.catch((err) => this.logger.error("will not published", { error: err }));
    }
  }

  /** Ends a session: its pending will goes out, its subscriptions and queue go away. */
  #endSession(session: Session): void {
    this.#clearTimers(session);
    this.backpressure.release(session);
    if (session.will && session.client === undefined) this.#publishWill(session);
    this.#returnSharedInflight(session);
    if (session.subscriptionCount > 0) {
      for (const filter of session.subscriptions.keys()) this.#releaseSubscription(session, filter);
    }
    session.clearState();
    this.backbone.queues.drop(session.clientId);
    if (this.#sessions.get(session.clientId) === session) {
      this.#sessions.delete(session.clientId);
      this.backbone.sessions.delete(session.clientId);
    }
  }

  #releaseSubscription(session: Session, filter: string): void {
    this.router.remove(session, filter);
    this.backbone.bus.removeInterest(interestFilter(filter));
  }

  /**
   * Hands unacknowledged QoS 1 shared-subscription messages back to their groups for another
   * member. QoS 2 ones stay: their delivery completes with this session [MQTT-4.8.2-4] and never
   * goes to another client [MQTT-4.8.2-5].
   */
  #returnSharedInflight(session: Session): void {
    if (session.inflightCount === 0) return;
    for (const entry of [...session.inflight.values()]) {
      if (entry.group === undefined || entry.qos !== 1) continue;
      session.inflight.delete(entry.packetId);
      this.router.requeueShared(entry.group as SharedSubscription, entry.message);
    }
  }

  #clearTimers(session: Session): void {
    if (session.expiryTimer !== undefined) this.clock.clearTimeout(session.expiryTimer as TimerId);
    if (session.willTimer !== undefined) this.clock.clearTimeout(session.willTimer as TimerId);
    session.expiryTimer = undefined;
    session.willTimer = undefined;
  }

  /** Writes the session record with compare-and-set on its revision. */
  #persist(session: Session): void | Promise<void> {
    const record = session.toRecord(session.client ? this.options.nodeId : undefined);
    const written = this.backbone.sessions.put(record, session.revision);
    const apply = (revision: number | undefined) => {
      if (revision === undefined) {
        this.logger.error("session record changed by another writer", {
          clientId: session.clientId,
        });
        return;
      }
      session.revision = revision;
    };
    if (written instanceof Promise) return written.then(apply);
    apply(written);
  }
}

function clientInfo(client: Client): ConnectedClientInfo {
  const session = client.session;
  return {
    ...client.info,
    connectedAt: client.connectedAt,
    keepAlive: client.keepAlive,
    expiryInterval: session?.expiryInterval ?? 0,
    subscriptions: session?.subscriptions.size ?? 0,
    inflight: session?.inflight.size ?? 0,
    queued: session?.queued ?? 0,
    bufferedBytes: client.connection.bufferedBytes,
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

/** The filter a subscription needs routed to this node (without any share prefix). */
function interestFilter(filter: string): string {
  const shared = parseSharedFilter(filter);
  return shared && !(shared instanceof Error) ? shared.filter : filter;
}

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
