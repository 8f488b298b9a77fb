/**
 * Agent mode: which clients are agents, whether each is online, and what it told about its host.
 *
 * A client is an online agent while it is connected and subscribed to `agents/{its own client
 * id}` (exactly that topic, as smq checks it); it goes offline when it unsubscribes or its
 * connection ends. A resumed session that already holds the subscription makes the agent online
 * at CONNECT. Subscribing to another client's `agents/...` topic is an ordinary subscription (the
 * ACL decides) and changes no agent's state.
 *
 * Each change is decided by the node holding the connection, from the engine's events of that
 * node (the node that takes a lost node's sessions decides for that node's agents), and written to
 * the backbone's config store under `agents/{client id}`: every node follows the store (a list at
 * start, then its watch), so each one lists the agents of the whole cluster, and offline agents
 * survive any one node. The store holds at most `agent.maxAgents` agents: a new one replaces the
 * one offline longest, or is not recorded while all are online (its notifications still go out).
 *
 * @module
 */

import type { BrokerEvent, ConfigStore, EventListenerKind } from "../backbone/backbone.ts";
import type { AgentFacts } from "../domain/agent_facts.ts";
import { disconnectReason } from "../ops/client_events.ts";
import type { Clock } from "../util/clock.ts";
import type { Logger } from "../util/logger.ts";
import type { Notifier } from "./notifier.ts";
import { CLIENT_CONNECTED, CLIENT_DISCONNECTED, clientRecord, note } from "./records.ts";

/** The topic an agent subscribes to, to be online and receive its jobs. */
export function agentTopic(clientId: string): string {
  return `agents/${clientId}`;
}

/** Keys of agent records in the config store. */
export const AGENT_KEY_PREFIX = "agents/";

/** An agent as the cluster remembers it. */
export interface AgentRecord {
  clientId: string;
  state: "online" | "offline";
  /** The node holding its connection (online), or that held it last (offline). */
  node: string;
  facts: AgentFacts;
  username: string | undefined;
  remoteAddress: string;
  /** The transport it connected over. */
  listener: EventListenerKind;
  protocolVersion: number;
  keepAlive: number;
  cleanStart: boolean;
  /** Epoch ms its (last) connection completed CONNECT. */
  connectedAt: number;
  /** Epoch ms of the last change of state. */
  since: number;
  /** Offline: why (`unsubscribed`, a disconnect reason, `node_lost`). */
  reason?: string;
}

/** A connection of this node, as its `connected` event described it. */
type Connection = Omit<AgentRecord, "state" | "since" | "reason">;

/** What the registry works with. */
export interface AgentRegistryDeps {
  /** The backbone's config store (cluster-wide). */
  store: ConfigStore;
  notifier: Notifier;
  nodeId: string;
  clock: Clock;
  logger: Logger;
  maxAgents: number;
  /** Whether a session attached here holds a subscription with this exact filter. */
  isSubscribed(clientId: string, filter: string): boolean;
}

/** A repeated problem is logged again after this long at the earliest. */
const LOG_INTERVAL_MS = 10_000;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** The agents of the cluster, and the decisions of this node about its own connections. */
export class AgentRegistry {
  readonly #deps: AgentRegistryDeps;
  /** Every agent the store holds (bounded by `maxAgents`, give or take concurrent writers). */
  readonly #agents = new Map<string, AgentRecord>();
  /** Connections of this node (bounded by its connections): their facts for a later subscribe. */
  readonly #connections = new Map<string, Connection>();
  /** Agents online on this node. */
  readonly #online = new Set<string>();
  /** The last write of each record, so one agent's writes apply in order. */
  readonly #writes = new Map<string, Promise<void>>();
  #stopWatching: (() => void) | undefined;
  #notRecorded = 0;
  #loggedAt = -Infinity;

  constructor(deps: AgentRegistryDeps) {
    this.#deps = deps;
  }

  /** Agents whose records the full store refused. */
  get notRecorded(): number {
    return this.#notRecorded;
  }

  /** Follows the store: its watch first, then what it holds (changes seen meanwhile win). */
  async start(): Promise<void> {
    const seen = new Set<string>();
    this.#stopWatching = this.#deps.store.watch((key, value) => {
      if (!key.startsWith(AGENT_KEY_PREFIX)) return;
      const clientId = key.slice(AGENT_KEY_PREFIX.length);
      seen.add(clientId);
      const record = value && parse(value);
      if (record) this.#agents.set(clientId, record);
      else this.#agents.delete(clientId);
    });
    for (const { key, value } of await this.#deps.store.list(AGENT_KEY_PREFIX)) {
      const clientId = key.slice(AGENT_KEY_PREFIX.length);
      const record = parse(value);
      if (record && !seen.has(clientId)) this.#agents.set(clientId, record);
    }
  }

  /** Stops following the store and waits for pending writes. */
  async stop(): Promise<void> {
    this.#stopWatching?.();
    await Promise.allSettled([...this.#writes.values()]);
  }

  /** Every agent of the cluster, by client id. */
  list(): AgentRecord[] {
    return [...this.#agents.values()].sort((a, b) =>
      a.clientId < b.clientId ? -1 : a.clientId > b.clientId ? 1 : 0
    );
  }

  get(clientId: string): AgentRecord | undefined {
    return this.#agents.get(clientId);
  }

  /** Forgets an offline agent; false when there is none, throws when it is online. */
  async forget(clientId: string): Promise<boolean> {
    const record = this.#agents.get(clientId);
    if (!record) return false;
    if (record.state === "online") throw new Error(`Agent "${clientId}" is online`);
    await this.#serial(clientId, () => this.#deps.store.delete(AGENT_KEY_PREFIX + clientId));
    return true;
  }

  /** A lifecycle event of this node. Never throws; store writes go on in the background. */
  event(event: BrokerEvent): void {
    switch (event.type) {
      case "connected": {
        const connection: Connection = {
          clientId: event.clientId,
          node: event.node,
          facts: event.facts ?? {},
          username: event.username,
          remoteAddress: event.remoteAddress,
          listener: event.listener,
          protocolVersion: event.protocolVersion,
          keepAlive: event.keepAlive,
          cleanStart: event.cleanStart,
          connectedAt: event.at,
        };
        this.#connections.set(event.clientId, connection);
        if (this.#deps.isSubscribed(event.clientId, agentTopic(event.clientId))) {
          this.#goOnline(connection, event.at);
        }
        return;
      }
      case "subscribed": {
        if (event.filter !== agentTopic(event.clientId)) return;
        const connection = this.#connections.get(event.clientId);
        if (connection && !this.#online.has(event.clientId)) {
          this.#goOnline(connection, event.at);
        }
        return;
      }
      case "unsubscribed":
        if (event.filter === agentTopic(event.clientId)) {
          this.#goOffline(event.clientId, "unsubscribed", event.at);
        }
        return;
      case "disconnected":
        if (event.lostNode !== undefined) {
          this.#lostNodeAgent(event.clientId, event.lostNode, event.at);
          return;
        }
        this.#goOffline(event.clientId, disconnectReason(event), event.at);
        this.#connections.delete(event.clientId);
        return;
    }
  }

  #goOnline(connection: Connection, at: number): void {
    this.#online.add(connection.clientId);
    const record: AgentRecord = { ...connection, state: "online", since: at };
    this.#notify(record);
    this.#store(record, () => true);
  }

  #goOffline(clientId: string, reason: string, at: number): void {
    if (!this.#online.delete(clientId)) return;
    const connection = this.#connections.get(clientId)!;
    const record: AgentRecord = { ...connection, state: "offline", since: at, reason };
    // Another node may hold a newer connection of this agent by now: its record stays.
    const current = () => this.#agents.get(clientId);
    const ours = (stored: AgentRecord | undefined) =>
      stored === undefined ||
      (stored.node === connection.node && stored.connectedAt === connection.connectedAt);
    if (!ours(current()) && current()!.state === "online") return;
    this.#notify(record);
    this.#store(record, ours);
  }

  /**
   * A client of a lost node went offline without its node saying so: an agent the store has
   * online there goes offline, told by this node (which took the lost node's sessions).
   */
  #lostNodeAgent(clientId: string, lostNode: string, at: number): void {
    const stored = this.#agents.get(clientId);
    if (!stored || stored.state !== "online" || stored.node !== lostNode) return;
    const record: AgentRecord = { ...stored, state: "offline", since: at, reason: "node_lost" };
    this.#notify(record);
    this.#store(
      record,
      (now) =>
        now?.state === "online" && now.node === lostNode && now.connectedAt === stored.connectedAt,
    );
  }

  #notify(record: AgentRecord): void {
    const online = record.state === "online";
    const body = clientRecord(
      online ? { type: "connected", ...record, at: record.since } : {
        type: "disconnected",
        ...record,
        reasonCode: 0,
        byClient: false,
        at: record.since,
      },
    );
    body.status = online ? CLIENT_CONNECTED : CLIENT_DISCONNECTED;
    body.node_id = record.node;
    if (!online) body.reason = record.reason;
    else delete body.reason;
    delete body.reason_code;
    this.#deps.notifier.notify(
      note(online ? "OnAgentConnect" : "OnAgentDisconnected", record.clientId, body),
    );
  }

  /**
   * Writes a record, after the agent's earlier writes, if `still` holds for what the store has
   * by then; a new agent in a full store replaces the one offline longest.
   */
  #store(record: AgentRecord, still: (stored: AgentRecord | undefined) => boolean): void {
    const key = AGENT_KEY_PREFIX + record.clientId;
    this.#serial(record.clientId, async () => {
      if (!still(this.#agents.get(record.clientId))) return;
      if (!this.#agents.has(record.clientId) && this.#agents.size >= this.#deps.maxAgents) {
        const oldest = this.#oldestOffline();
        if (oldest === undefined) {
          this.#notRecorded++;
          this.#log("agent not recorded: agent.maxAgents agents are online", record.clientId);
          return;
        }
        await this.#deps.store.delete(AGENT_KEY_PREFIX + oldest);
      }
      await this.#deps.store.put(key, encoder.encode(JSON.stringify(record)));
    }).catch((error) => this.#log("agent record not written", record.clientId, error));
  }

  #oldestOffline(): string | undefined {
    let oldest: AgentRecord | undefined;
    for (const record of this.#agents.values()) {
      if (record.state === "offline" && (!oldest || record.since < oldest.since)) oldest = record;
    }
    return oldest?.clientId;
  }

  #serial(clientId: string, write: () => Promise<void>): Promise<void> {
    const next = (this.#writes.get(clientId) ?? Promise.resolve()).then(write);
    const settled = next.catch(() => {});
    this.#writes.set(clientId, settled);
    settled.then(() => {
      if (this.#writes.get(clientId) === settled) this.#writes.delete(clientId);
    });
    return next;
  }

  #log(message: string, clientId: string, error?: unknown): void {
    const now = this.#deps.clock.now();
    if (now - this.#loggedAt < LOG_INTERVAL_MS) return;
    this.#loggedAt = now;
    this.#deps.logger.warn(message, {
      clientId,
      ...(error === undefined ? {} : { error }),
      notRecorded: this.#notRecorded,
    });
  }
}

function parse(value: Uint8Array): AgentRecord | undefined {
  try {
    const record = JSON.parse(decoder.decode(value));
    return typeof record === "object" && record !== null && typeof record.clientId === "string"
      ? record as AgentRecord
      : undefined;
  } catch {
    return undefined;
  }
}
