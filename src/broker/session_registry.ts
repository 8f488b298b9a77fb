/**
 * The one owner of session state on this node: attaching a connection to its session (claiming
 * the client id cluster-wide, taking it over from another connection or node), the session's
 * subscriptions (live routing, its queue's filters, share groups, its record), detaching, wills,
 * and expiry.
 *
 * A session is held in memory only while a connection of this node is attached to it; an offline
 * session is its record and its queue in the backbone. The node that detached a session keeps
 * timers for its will delay and expiry; a periodic sweep (under a cluster-wide lock) catches
 * sessions whose timers died with their node, and exactly one survivor handles the sessions of a
 * lost node.
 *
 * @module
 */

import { ReasonCode } from "../codec/mod.ts";
import type { ProtocolVersion } from "../codec/packets.ts";
import type { NodeInfo, QueueLimits, StoredSession } from "../backbone/backbone.ts";
import {
  type Message,
  NEVER_EXPIRES,
  type SessionRecord,
  type SubscriptionRecord,
  type WillRecord,
} from "../domain/types.ts";
import { Session } from "../session/session.ts";
import { parseSharedFilter, type SharedFilter } from "../topic/mod.ts";
import type { TimerId } from "../util/clock.ts";
import type {
  BrokerContext,
  BrokerSession,
  SessionConnection,
  SessionOutbound,
} from "./context.ts";
import type { PublishPipeline } from "./publish_pipeline.ts";
import type { Router } from "./router.ts";

/** What a connection asks for when its CONNECT is accepted. */
export interface AttachRequest {
  clientId: string;
  cleanStart: boolean;
  /** Granted Session Expiry Interval in seconds. */
  expiryInterval: number;
  protocolVersion: ProtocolVersion;
  will: WillRecord | undefined;
  /** Attaches the session to the connection (its outbound delivery is created when first used). */
  bind(session: BrokerSession): void;
}

/** A session attached to a connection. */
export interface Attached {
  session: BrokerSession;
  sessionPresent: boolean;
}

/** Why a CONNECT could not be given its session (answered with CONNACK `reasonCode`). */
export class AttachError extends Error {
  readonly reasonCode: number;

  constructor(reasonCode: number, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "AttachError";
    this.reasonCode = reasonCode;
  }
}

/** How a connection ended. */
export interface CloseInfo {
  /** Publish the will (false after a normal DISCONNECT). */
  willOnClose: boolean;
}

/** A subscription a SUBSCRIBE (or the admin API) grants. */
export interface Grant {
  record: SubscriptionRecord;
  /** Its parsed share prefix, if any. */
  share: SharedFilter | undefined;
}

/** Timers of an offline session this node detached. */
interface OfflineTimers {
  revision: number;
  will: TimerId | undefined;
  expiry: TimerId | undefined;
}

/** The request another node sends to take a session over. */
const TAKEOVER = "session.takeover";
/** Claim attempts before a CONNECT is refused (each one may wait for a takeover). */
const CLAIM_ATTEMPTS = 3;
/** How long the lock of a sweep or of a lost node's clean-up is held at most. */
const CLEANUP_LOCK_MS = 60_000;

/** Sessions of this node. */
export class SessionRegistry {
  readonly #context: BrokerContext;
  readonly #router: Router;
  readonly #pipeline: PublishPipeline;
  readonly #attached = new Map<string, BrokerSession>();
  /** Detaching sessions: resolves once the record is written and the queue handed back. */
  readonly #detaching = new Map<string, Promise<void>>();
  readonly #offline = new Map<string, OfflineTimers>();
  /** CONNECTs for one client id run one at a time, in arrival order. */
  readonly #attachQueue = new Map<string, Promise<unknown>>();
  /** The last record write of each session, so writes apply in order. */
  readonly #writes = new WeakMap<BrokerSession, Promise<void>>();
  #stopServing: (() => void) | undefined;
  #stopWatching: (() => void) | undefined;
  #sweepTimer: TimerId | undefined;
  #closing = false;

  constructor(context: BrokerContext, router: Router, pipeline: PublishPipeline) {
    this.#context = context;
    this.#router = router;
    this.#pipeline = pipeline;
  }

  get #nodeId(): string {
    return this.#context.options.nodeId;
  }

  get #limits(): QueueLimits {
    const options = this.#context.options;
    return {
      maxMessages: options.maxQueuedMessages,
      maxBytes: options.maxQueuedBytes,
      whenFull: options.queueFullPolicy,
      stuckAfterMs: options.stuckSubscriberTimeout,
    };
  }

  /** Sessions held by this node (attached to a connection). */
  get size(): number {
    return this.#attached.size;
  }

  /** The session of a client attached here. */
  attached(clientId: string): BrokerSession | undefined {
    return this.#attached.get(clientId);
  }

  /** Every session attached here. */
  attachedSessions(): IterableIterator<BrokerSession> {
    return this.#attached.values();
  }

  /** Serves takeovers from other nodes, handles lost nodes and starts the periodic sweep. */
  start(): void {
    const backbone = this.#context.backbone;
    this.#stopServing = backbone.nodes.serve(TAKEOVER, (body) => this.#releaseFor(body));
    this.#stopWatching = backbone.nodes.onNodeLost((node) => {
      this.#handleLostNode(node).catch((error) =>
        this.#context.logger.error("sessions of a lost node not handled", {
          node: node.id,
          error,
        })
      );
    });
    this.sweep().catch(() => {}); // Logged by the guard; the next sweep tries again.
    this.#scheduleSweep();
  }

  /** Stops timers and serving; sessions are detached by their connections closing. */
  async close(): Promise<void> {
    this.#closing = true;
    this.#stopServing?.();
    this.#stopWatching?.();
    const clock = this.#context.clock;
    if (this.#sweepTimer !== undefined) clock.clearTimeout(this.#sweepTimer);
    for (const timers of this.#offline.values()) this.#clearTimers(timers);
    this.#offline.clear();
    await Promise.allSettled([...this.#detaching.values()]);
  }

  // ---- attach ----------------------------------------------------------------------------------

  /**
   * Binds a connection to its session: takes over a connected one (here or on another node),
   * discards or resumes an existing session, claims it cluster-wide. Undefined when the
   * connection closed meanwhile; throws {@linkcode AttachError} when the session cannot be had.
   */
  attach(connection: SessionConnection, request: AttachRequest): Promise<Attached | undefined> {
    const previous = this.#attachQueue.get(request.clientId) ?? Promise.resolve();
    const result = previous.then(() => this.#attachNow(connection, request));
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
    connection: SessionConnection,
    request: AttachRequest,
  ): Promise<Attached | undefined> {
    if (connection.closed || this.#closing) return undefined;
    const { clientId } = request;
    const local = this.#attached.get(clientId);
    if (local?.connection) {
      // [MQTT-3.1.4-3]: the existing connection is closed; its will and session are handled by
      // its detach, which the claim below waits for.
      this.#context.logger.info("session taken over", { clientId });
      local.connection.takeOver();
    }
    await this.#detaching.get(clientId);
    const timers = this.#offline.get(clientId);
    if (timers) {
      // A delayed will is cancelled by the reconnection [MQTT-3.1.3-9].
      this.#clearTimers(timers);
      this.#offline.delete(clientId);
    }

    const now = this.#context.clock.now();
    let present = false;
    let ended: SessionRecord | undefined;
    const build = (stored: StoredSession | undefined): SessionRecord => {
      const previous = stored?.record;
      const live = previous !== undefined && !hasExpired(previous, now);
      present = live && !request.cleanStart;
      ended = previous !== undefined && !present ? previous : undefined;
      const base = present ? previous! : undefined;
      return {
        clientId,
        protocolVersion: request.protocolVersion,
        expiryInterval: request.expiryInterval,
        subscriptions: base ? base.subscriptions : [],
        will: request.will,
        owner: this.#nodeId,
        disconnectedAt: undefined,
      };
    };
    let claimed: { revision: number; record: SessionRecord };
    try {
      claimed = await this.#claim(clientId, build);
    } catch (error) {
      if (error instanceof AttachError) throw error;
      throw new AttachError(ReasonCode.ServerUnavailable, "The session store is unavailable", {
        cause: error,
      });
    }
    if (ended) await this.#endStored(ended, true);

    const session = present
      ? Session.fromRecord<SessionConnection>(claimed.record, claimed.revision)
      : new Session<SessionConnection>(clientId, request.protocolVersion, request.expiryInterval);
    session.revision = claimed.revision;
    session.will = request.will;
    session.expiryInterval = request.expiryInterval;
    session.protocolVersion = request.protocolVersion;
    session.connection = connection;
    this.#attached.set(clientId, session);
    request.bind(session);
    try {
      if (present) await this.#resume(session, connection.outbound);
    } catch (error) {
      this.#forget(session);
      await connection.createdOutbound?.close().catch(() => {});
      await this.#release(session, undefined).catch(() => {});
      throw new AttachError(
        ReasonCode.ServerUnavailable,
        "The session could not be resumed: the message store is unavailable",
        { cause: error },
      );
    }
    if (connection.closed) {
      // Closed while attaching: its close found no session to detach, so detach it here.
      this.detach(session, { willOnClose: true });
      return undefined;
    }
    return { session, sessionPresent: present };
  }

  /** Claims the client id, taking the session over from another live node if needed. */
  async #claim(
    clientId: string,
    build: (stored: StoredSession | undefined) => SessionRecord,
  ): Promise<{ revision: number; record: SessionRecord }> {
    const backbone = this.#context.backbone;
    let force = false;
    let record: SessionRecord | undefined;
    const building = (stored: StoredSession | undefined) => record = build(stored);
    for (let attempt = 0; attempt < CLAIM_ATTEMPTS; attempt++) {
      const claim = await backbone.sessions.claim(clientId, this.#nodeId, building, { force });
      if (claim.status === "claimed") return { revision: claim.revision, record: record! };
      const owner = claim.owner;
      if (owner === this.#nodeId || !(await backbone.nodes.isAlive(owner))) {
        // Our own stale record (this node restarted), or a node whose lease ran out.
        force = true;
        continue;
      }
      this.#context.logger.info("taking a session over from another node", { clientId, owner });
      await backbone.nodes.request(owner, TAKEOVER, { clientId }).catch(() => {});
    }
    throw new AttachError(
      ReasonCode.ServerUnavailable,
      "The session is held by another node that did not let it go",
    );
  }

  /** Restores a resumed session's routes, queues and open QoS 2 ids. */
  async #resume(session: BrokerSession, outbound: SessionOutbound): Promise<void> {
    const backbone = this.#context.backbone;
    const steps: Promise<unknown>[] = [outbound.openSessionQueue()];
    for (const record of session.subscriptions.values()) {
      const share = session.shareOf(record.filter);
      this.#router.add(session, record, share);
      steps.push(this.#addInterest(record, share));
      if (share) steps.push(outbound.openGroup(share.group, share.filter, record));
    }
    const [, open] = await Promise.all([
      Promise.all(steps),
      backbone.messages.openInbound(session.clientId),
    ]);
    for (const packetId of open) session.inboundQos2.add(packetId);
  }

  /** Serves another node's takeover: close our connection and let the session go. */
  async #releaseFor(body: unknown): Promise<unknown> {
    const clientId = (body as { clientId?: unknown })?.clientId;
    if (typeof clientId !== "string") return { released: false };
    const session = this.#attached.get(clientId);
    if (session?.connection) session.connection.takeOver();
    await this.#detaching.get(clientId);
    if (!session) {
      // Not held here; a record still naming this node is stale: clear the owner.
      const stored = await this.#context.backbone.sessions.get(clientId);
      if (stored?.record.owner === this.#nodeId) {
        await this.#context.backbone.sessions.put(
          { ...stored.record, owner: undefined, disconnectedAt: this.#context.clock.now() },
          stored.revision,
        );
      }
    }
    return { released: true };
  }

  // ---- subscriptions ---------------------------------------------------------------------------

  /**
   * Adds or replaces subscriptions: live routes, the session's queue filters, share groups and
   * the record, all or nothing. Returns which grants are new for the session; throws when the
   * change could not be stored (the SUBSCRIBE is answered 0x80 for each filter).
   */
  async subscribe(session: BrokerSession, grants: Grant[]): Promise<boolean[]> {
    const queueFiltersBefore = session.queueFilters().join("\n");
    const previous: (SubscriptionRecord | undefined)[] = [];
    const isNew: boolean[] = [];
    // An offline session (changed by an administrator) has no routes on this node.
    const online = session.connection !== undefined;
    for (const { record, share } of grants) {
      previous.push(session.subscriptions.get(record.filter));
      isNew.push(session.subscribe(record));
      if (online) this.#router.add(session, record, share);
    }
    const outbound = session.connection?.outbound;
    const filtersChanged = session.queueFilters().join("\n") !== queueFiltersBefore;
    try {
      const steps: Promise<unknown>[] = [];
      grants.forEach(({ record, share }, i) => {
        if (isNew[i] && online) steps.push(this.#addInterest(record, share));
        else if (online && takesStoredLive(previous[i]!) !== takesStoredLive(record)) {
          // A new QoS changes which messages it takes live: the interest follows it.
          steps.push(this.#addInterest(record, share), this.#removeInterest(previous[i]!, share));
        }
        if (share) {
          steps.push(
            this.#context.backbone.queues.joinGroup(
              share.group,
              share.filter,
              session.clientId,
              this.#limits,
            ).then(() => outbound?.openGroup(share.group, share.filter, record)),
          );
        }
      });
      if (filtersChanged) steps.push(this.#setQueueFilters(session, outbound));
      await Promise.all(steps);
      await this.#persist(session);
    } catch (error) {
      await this.#undoSubscribe(session, grants, previous, isNew, filtersChanged);
      throw error;
    }
    const at = this.#context.clock.now();
    for (const { record } of grants) {
      this.#context.emit({
        type: "subscribed",
        node: this.#nodeId,
        clientId: session.clientId,
        filter: record.filter,
        qos: record.qos,
        at,
      });
    }
    return isNew;
  }

  /** Puts back what a failed subscribe changed, here and (as far as it can) in the backbone. */
  async #undoSubscribe(
    session: BrokerSession,
    grants: Grant[],
    previous: (SubscriptionRecord | undefined)[],
    isNew: boolean[],
    filtersChanged: boolean,
  ): Promise<void> {
    const online = session.connection !== undefined;
    const outbound = session.connection?.outbound;
    const backbone = this.#context.backbone;
    const undoing: Promise<unknown>[] = [];
    // Newest first, so a filter granted twice in one packet ends as it started.
    for (let i = grants.length - 1; i >= 0; i--) {
      const { record, share } = grants[i];
      const before = previous[i];
      if (before) {
        session.subscribe(before);
        if (online) this.#router.add(session, before, share);
        if (online && takesStoredLive(before) !== takesStoredLive(record)) {
          undoing.push(this.#addInterest(before, share), this.#removeInterest(record, share));
        }
      } else {
        session.unsubscribe(record.filter);
        if (share) {
          undoing.push(
            (outbound?.closeGroup(share.group, share.filter) ?? Promise.resolve()).then(() =>
              backbone.queues.leaveGroup(share.group, share.filter, session.clientId)
            ),
          );
        }
        if (!online) continue;
        this.#router.remove(session, record.filter, share);
        if (isNew[i]) undoing.push(this.#removeInterest(record, share));
      }
    }
    if (filtersChanged) {
      undoing.push(
        backbone.queues.setFilters(session.clientId, session.queueFilters(), this.#limits),
      );
    }
    // Best effort: the store failed once already; what stays behind is logged by the guard.
    await Promise.allSettled(undoing);
  }

  /**
   * Removes subscriptions; returns the filters that existed. A failure to store the change is
   * thrown after the subscriptions were removed here (the next write of the record carries it).
   */
  async unsubscribe(session: BrokerSession, filters: string[]): Promise<string[]> {
    const queueFiltersBefore = session.queueFilters().join("\n");
    const removed: string[] = [];
    const steps: Promise<unknown>[] = [];
    const outbound = session.connection?.outbound;
    for (const filter of filters) {
      const share = session.shareOf(filter);
      const record = session.unsubscribe(filter);
      if (!record) continue;
      removed.push(filter);
      this.#emitUnsubscribed(session.clientId, record);
      if (outbound) {
        this.#router.remove(session, filter, share);
        steps.push(this.#removeInterest(record, share));
      }
      if (share) {
        steps.push(
          (outbound?.closeGroup(share.group, share.filter) ?? Promise.resolve()).then(() =>
            this.#context.backbone.queues.leaveGroup(share.group, share.filter, session.clientId)
          ),
        );
      }
    }
    if (removed.length === 0) return removed;
    if (session.queueFilters().join("\n") !== queueFiltersBefore) {
      steps.push(this.#setQueueFilters(session, outbound));
    }
    await Promise.all(steps);
    await this.#persist(session);
    return removed;
  }

  #emitUnsubscribed(clientId: string, record: SubscriptionRecord): void {
    this.#context.emit({
      type: "unsubscribed",
      node: this.#nodeId,
      clientId,
      filter: record.filter,
      qos: record.qos,
      at: this.#context.clock.now(),
    });
  }

  async #setQueueFilters(
    session: BrokerSession,
    outbound: SessionOutbound | undefined,
  ): Promise<void> {
    await this.#context.backbone.queues.setFilters(
      session.clientId,
      session.queueFilters(),
      this.#limits,
    );
    await outbound?.openSessionQueue();
  }

  #addInterest(record: SubscriptionRecord, share: SharedFilter | undefined): Promise<void> {
    const messages = this.#context.backbone.messages;
    return share
      ? messages.addInterest(share.filter, share.group)
      : messages.addInterest(record.filter, undefined, takesStoredLive(record));
  }

  #removeInterest(record: SubscriptionRecord, share: SharedFilter | undefined): Promise<void> {
    const messages = this.#context.backbone.messages;
    const removing = share
      ? messages.removeInterest(share.filter, share.group)
      : messages.removeInterest(record.filter, undefined, takesStoredLive(record));
    return removing.catch(() => {}); // Logged by the guard; a stale interest only costs traffic.
  }

  /**
   * Runs a write of a session's record after the ones before it, so that each compare-and-set
   * sees the revision the previous one produced.
   */
  #serial<T>(session: BrokerSession, write: () => Promise<T>): Promise<T> {
    const previous = this.#writes.get(session) ?? Promise.resolve();
    const next = previous.then(write);
    const settled = next.then(() => {}, () => {});
    this.#writes.set(session, settled);
    settled.then(() => {
      if (this.#writes.get(session) === settled) this.#writes.delete(session);
    });
    return next;
  }

  /**
   * Writes the session record (owned by this node while a connection is attached, offline
   * otherwise); a lost compare-and-set means another node took it over.
   */
  async #persist(session: BrokerSession): Promise<void> {
    const online = session.connection !== undefined;
    const revision = await this.#serial(session, () =>
      this.#context.backbone.sessions.put(
        session.toRecord(
          online ? this.#nodeId : undefined,
          online ? undefined : session.disconnectedAt,
        ),
        session.revision,
      ));
    if (revision === undefined) {
      this.#context.logger.warn("session record changed by another node: closing", {
        clientId: session.clientId,
      });
      session.connection?.takeOver();
      throw new AttachError(ReasonCode.SessionTakenOver, "The session was taken over");
    }
    session.revision = revision;
  }

  // ---- detach, wills, expiry -------------------------------------------------------------------

  /** The session's connection is gone: its will, its queue and its expiry take over. */
  detach(session: BrokerSession, info: CloseInfo): void {
    if (session.connection === undefined) return;
    const connection = session.connection;
    session.connection = undefined;
    const clientId = session.clientId;
    const detaching = this.#detachNow(session, connection, info).catch((error) => {
      this.#context.logger.warn("session not released cleanly", { clientId, error });
    }).finally(() => {
      if (this.#detaching.get(clientId) === detaching) this.#detaching.delete(clientId);
    });
    this.#detaching.set(clientId, detaching);
  }

  async #detachNow(
    session: BrokerSession,
    connection: SessionConnection,
    info: CloseInfo,
  ): Promise<void> {
    this.#forget(session);
    await connection.createdOutbound?.close();
    if (!info.willOnClose) session.will = undefined; // [MQTT-3.1.2-10]
    const now = this.#context.clock.now();
    const will = session.will;
    if (session.expiryInterval === 0) {
      // The session ends with its connection, and a pending will goes out now: the will is sent at
      // the earlier of its delay and the end of the session [MQTT-3.1.3-9].
      await this.#serial(
        session,
        () => this.#context.backbone.sessions.delete(session.clientId, session.revision),
      );
      await this.#endStored(session.toRecord(undefined, now), true);
      return;
    }
    const willNow = will !== undefined && will.delayInterval === 0;
    if (willNow) session.will = undefined;
    const revision = await this.#release(session, now);
    if (willNow) this.#publishWill(session.clientId, will!);
    if (revision === undefined) return; // Taken over meanwhile: the new owner has it.
    this.#scheduleOffline(session.clientId, revision, session.toRecord(undefined, now));
  }

  /** Stops routing to a session here. */
  #forget(session: BrokerSession): void {
    if (this.#attached.get(session.clientId) === session) this.#attached.delete(session.clientId);
    for (const record of session.subscriptions.values()) {
      const share = session.shareOf(record.filter);
      this.#router.remove(session, record.filter, share);
      this.#removeInterest(record, share);
    }
  }

  /** Writes the record as offline; the new revision, or undefined when another node owns it. */
  #release(
    session: BrokerSession,
    disconnectedAt: number | undefined,
  ): Promise<number | undefined> {
    return this.#serial(session, async () => {
      const revision = await this.#context.backbone.sessions.put(
        session.toRecord(undefined, disconnectedAt ?? this.#context.clock.now()),
        session.revision,
      );
      if (revision !== undefined) session.revision = revision;
      return revision;
    });
  }

  /** Will delay and expiry timers of an offline session this node released. */
  #scheduleOffline(clientId: string, revision: number, record: SessionRecord): void {
    if (this.#closing) return;
    const clock = this.#context.clock;
    const timers: OfflineTimers = { revision, will: undefined, expiry: undefined };
    const disconnectedAt = record.disconnectedAt ?? clock.now();
    const elapsed = clock.now() - disconnectedAt;
    if (record.will) {
      // [MQTT-3.1.3-9]: at the earlier of the will delay and the end of the session.
      const delay = Math.min(record.will.delayInterval, record.expiryInterval) * 1000 - elapsed;
      timers.will = clock.setTimeout(() => {
        timers.will = undefined;
        this.#willDue(clientId, timers).catch(() => {});
      }, delay);
    }
    if (record.expiryInterval !== NEVER_EXPIRES) {
      timers.expiry = clock.setTimeout(() => {
        timers.expiry = undefined;
        this.#offline.delete(clientId);
        this.#expire(clientId, timers.revision).catch(() => {});
      }, record.expiryInterval * 1000 - elapsed);
    }
    if (timers.will !== undefined || timers.expiry !== undefined) {
      this.#offline.set(clientId, timers);
    }
  }

  #clearTimers(timers: OfflineTimers): void {
    const clock = this.#context.clock;
    if (timers.will !== undefined) clock.clearTimeout(timers.will);
    if (timers.expiry !== undefined) clock.clearTimeout(timers.expiry);
    timers.will = undefined;
    timers.expiry = undefined;
  }

  /** An offline session's will delay passed: whoever clears the will from the record sends it. */
  async #willDue(clientId: string, timers: OfflineTimers): Promise<void> {
    const sessions = this.#context.backbone.sessions;
    const stored = await sessions.get(clientId);
    if (!stored || stored.record.owner !== undefined || !stored.record.will) return;
    const revision = await sessions.put({ ...stored.record, will: undefined }, stored.revision);
    if (revision === undefined) return;
    timers.revision = revision;
    this.#publishWill(clientId, stored.record.will);
  }

  /** An offline session's expiry passed: it ends, unless someone resumed it meanwhile. */
  async #expire(clientId: string, revision: number | undefined): Promise<void> {
    const sessions = this.#context.backbone.sessions;
    const stored = await sessions.get(clientId);
    if (!stored || stored.record.owner !== undefined) return;
    if (revision !== undefined && stored.revision !== revision) return;
    if (!(await sessions.delete(clientId, stored.revision))) return;
    this.#context.logger.debug("session expired", { clientId });
    await this.#endStored(stored.record, true);
  }

  /**
   * Ends a stored session's state beyond its record: its queue, its share-group memberships and
   * (when `publishWill`) its pending will.
   */
  async #endStored(record: SessionRecord, publishWill: boolean): Promise<void> {
    const backbone = this.#context.backbone;
    const steps: Promise<unknown>[] = [backbone.queues.drop(record.clientId)];
    for (const subscription of record.subscriptions) {
      // The subscriptions end with the session (a persistent one's stayed while it was offline).
      this.#emitUnsubscribed(record.clientId, subscription);
      const share = parseSharedFilter(subscription.filter);
      if (share && !(share instanceof Error)) {
        steps.push(backbone.queues.leaveGroup(share.group, share.filter, record.clientId));
      }
    }
    if (publishWill && record.will) this.#publishWill(record.clientId, record.will);
    await Promise.all(steps);
  }

  #publishWill(clientId: string, will: WillRecord): void {
    const message: Message = will.messageExpiryInterval === 0 ? will.message : {
      ...will.message,
      expiresAt: this.#context.clock.now() + will.messageExpiryInterval * 1000,
    };
    this.#context.logger.debug("publishing will", { clientId, topic: message.topic });
    this.#pipeline.publish(message).then((result) => {
      if (result.notStored) {
        this.#context.logger.error("will not published: the message store is unavailable", {
          clientId,
        });
      }
    });
  }

  /**
   * Ends a session now, whatever its state: a connection attached here is disconnected first
   * (0x98 unless given), a pending will is published, its subscriptions and queue go away. False
   * when there is no such session.
   */
  async endSession(
    clientId: string,
    disconnect: (session: BrokerSession) => void,
  ): Promise<boolean> {
    const session = this.#attached.get(clientId);
    if (session?.connection) disconnect(session);
    await this.#detaching.get(clientId);
    const timers = this.#offline.get(clientId);
    if (timers) {
      this.#clearTimers(timers);
      this.#offline.delete(clientId);
    }
    const stored = await this.#context.backbone.sessions.get(clientId);
    if (!stored) return false;
    if (stored.record.owner !== undefined && stored.record.owner !== this.#nodeId) {
      throw new AttachError(ReasonCode.ServerBusy, "The session is held by another node");
    }
    if (!(await this.#context.backbone.sessions.delete(clientId, stored.revision))) return false;
    await this.#endStored(stored.record, true);
    return true;
  }

  // ---- the sweep and lost nodes ----------------------------------------------------------------

  #scheduleSweep(): void {
    const interval = this.#context.options.sessionSweepInterval;
    if (interval <= 0 || this.#closing) return;
    this.#sweepTimer = this.#context.clock.setTimeout(() => {
      this.sweep().catch(() => {}).finally(() => this.#scheduleSweep());
    }, interval);
  }

  /**
   * Ends or releases what nobody looks after: offline sessions whose will delay or expiry passed
   * without a timer of this node (their node died, or this node restarted), and records still
   * naming a node that is gone (or this node, from before a restart). Under a cluster-wide lock,
   * so one node sweeps at a time.
   */
  async sweep(): Promise<void> {
    const backbone = this.#context.backbone;
    const lock = await backbone.nodes.lock("sessions.sweep", CLEANUP_LOCK_MS);
    if (!lock) return;
    try {
      const now = this.#context.clock.now();
      const alive = new Map<string, boolean>();
      for (const { record, revision } of await backbone.sessions.list()) {
        const clientId = record.clientId;
        if (this.#offline.has(clientId) || this.#attached.has(clientId)) continue;
        if (this.#detaching.has(clientId) || this.#attachQueue.has(clientId)) continue;
        if (record.owner !== undefined) {
          let ownerAlive = alive.get(record.owner);
          if (ownerAlive === undefined) {
            ownerAlive = record.owner !== this.#nodeId &&
              await backbone.nodes.isAlive(record.owner);
            alive.set(record.owner, ownerAlive);
          }
          if (!ownerAlive) await this.#takeOrphan(record, revision, now);
          continue;
        }
        if (hasExpired(record, now)) await this.#expire(clientId, revision);
        else if (record.will && willDue(record, now)) {
          const timers: OfflineTimers = { revision, will: undefined, expiry: undefined };
          await this.#willDue(clientId, timers);
        }
      }
    } finally {
      await lock.release();
    }
  }

  /** A lost node's sessions: exactly one survivor (holding the lock) marks them offline. */
  async #handleLostNode(node: NodeInfo): Promise<void> {
    const backbone = this.#context.backbone;
    const lock = await backbone.nodes.lock(
      `node.lost.${node.id}.${node.startedAt}`,
      CLEANUP_LOCK_MS,
    );
    if (!lock) return;
    this.#context.logger.warn("node lost: taking care of its sessions", { node: node.id });
    try {
      const now = this.#context.clock.now();
      for (const { record, revision } of await backbone.sessions.list()) {
        if (record.owner === node.id) await this.#takeOrphan(record, revision, now);
      }
    } catch (error) {
      // Another survivor may try; after success the lock is kept until it expires, so that a
      // survivor that hears of the loss later does not take care of the node a second time.
      await lock.release();
      throw error;
    }
  }

  /**
   * A record whose owner is gone: its connection ended without DISCONNECT, so it goes offline
   * now with its will pending, and this node keeps its timers.
   */
  async #takeOrphan(record: SessionRecord, revision: number, now: number): Promise<void> {
    const sessions = this.#context.backbone.sessions;
    if (record.expiryInterval === 0) {
      if (!(await sessions.delete(record.clientId, revision))) return;
      this.#emitOrphanDisconnected(record, now);
      await this.#endStored(record, true);
      return;
    }
    const offline: SessionRecord = { ...record, owner: undefined, disconnectedAt: now };
    const written = await sessions.put(offline, revision);
    if (written === undefined) return;
    this.#emitOrphanDisconnected(record, now);
    this.#scheduleOffline(record.clientId, written, offline);
  }

  /**
   * An orphan's node died with its connection and never said so: this node does, once (it won
   * the record's compare-and-set under the lost node's or the sweep's lock).
   */
  #emitOrphanDisconnected(record: SessionRecord, now: number): void {
    this.#context.emit({
      type: "disconnected",
      node: this.#nodeId,
      clientId: record.clientId,
      username: undefined,
      reasonCode: 0,
      byClient: false,
      lostNode: record.owner,
      protocolVersion: record.protocolVersion,
      at: now,
    });
  }
}

/** Whether an offline session's expiry has passed at `now`. */
function hasExpired(record: SessionRecord, now: number): boolean {
  if (record.owner !== undefined || record.disconnectedAt === undefined) return false;
  if (record.expiryInterval === NEVER_EXPIRES) return false;
  return record.disconnectedAt + record.expiryInterval * 1000 <= now;
}

/** Whether an offline session's will is due at `now`. */
function willDue(record: SessionRecord, now: number): boolean {
  if (!record.will || record.disconnectedAt === undefined) return false;
  const delay = Math.min(record.will.delayInterval, record.expiryInterval);
  return record.disconnectedAt + delay * 1000 <= now;
}

/**
 * Whether a subscription takes QoS 1/2 messages live: granted QoS 0 it does, granted QoS 1/2 it
 * gets them from its session's queue (the router sends live only what plans to QoS 0).
 */
function takesStoredLive(record: SubscriptionRecord): boolean {
  return record.qos === 0;
}
