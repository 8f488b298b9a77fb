/**
 * Client lifecycle for operators: an info line per connect and disconnect (client id, user,
 * address, listener, protocol level, and why it ended), a debug line per subscribe and unsubscribe,
 * and counters kept from the same events for `/metrics`: connected clients and connects by
 * listener, disconnects by reason.
 *
 * Built on the broker's lifecycle hooks, so it costs the message path nothing.
 * The listener is the connection's transport (`tcp`, `tls`, `ws`, `wss`): the hooks do not say
 * which listener of a transport accepted it (MQTT over WebSocket on the admin port counts as `ws`).
 *
 * @module
 */

import { reasonCodeName } from "../codec/reason_codes.ts";
import type { BrokerHooks, ClientInfo, DisconnectInfo } from "../hooks/hooks.ts";
import type { TransportKind } from "../transport/transport.ts";
import type { Logger } from "../util/logger.ts";

/** Counters of client connects and disconnects, read by `/metrics`. */
export class ClientEvents {
  /** Clients connected now, by listener (transport). */
  readonly connected = new Map<TransportKind, number>();
  /** Completed CONNECTs since start, by listener. */
  readonly connects = new Map<TransportKind, number>();
  /**
   * Disconnects since start, by reason (a few dozen values at most: one per reason code, see
   * {@linkcode disconnectReason}).
   */
  readonly disconnects = new Map<string, number>();
  #logger: Logger;

  constructor(logger: Logger) {
    this.#logger = logger;
  }

  /** The lifecycle hooks that log and count. */
  hooks(): Required<
    Pick<BrokerHooks, "onConnect" | "onDisconnect" | "onSubscribe" | "onUnsubscribe">
  > {
    return {
      onConnect: (client) => {
        add(this.connected, client.transport, 1);
        add(this.connects, client.transport, 1);
        this.#logger.info("client connected", describe(client));
      },
      onDisconnect: (client, info) => {
        add(this.connected, client.transport, -1);
        const reason = disconnectReason(info);
        add(this.disconnects, reason, 1);
        this.#logger.info("client disconnected", {
          ...describe(client),
          reason,
          reasonCode: `0x${info.reasonCode.toString(16).padStart(2, "0")}`,
          byClient: info.byClient,
        });
      },
      onSubscribe: (client, filters) => {
        this.#logger.debug("client subscribed", { clientId: client.clientId, filters });
      },
      onUnsubscribe: (client, filters) => {
        this.#logger.debug("client unsubscribed", { clientId: client.clientId, filters });
      },
    };
  }
}

function add<K>(map: Map<K, number>, key: K, delta: number): void {
  map.set(key, (map.get(key) ?? 0) + delta);
}

function describe(client: ClientInfo) {
  return {
    clientId: client.clientId,
    username: client.username,
    remote: client.remoteAddress,
    listener: client.transport,
    protocol: client.protocolVersion,
  };
}

/**
 * Why a connection ended, in snake case: `client_disconnect` (DISCONNECT 0x00 from the client),
 * `connection_lost` (closed without DISCONNECT), the server's reason code otherwise (e.g.
 * `keep_alive_timeout`, `session_taken_over`, `administrative_action`), and `client_<reason>` for a
 * client's DISCONNECT with another code (e.g. `client_disconnect_with_will_message`).
 */
export function disconnectReason(info: DisconnectInfo): string {
  if (info.reasonCode === 0) return info.byClient ? "client_disconnect" : "connection_lost";
  const name = reasonCodeName(info.reasonCode)
    .replace(/([a-z0-9])([A-Z])/g, "$1_$2")
    .toLowerCase();
  return info.byClient ? `client_${name}` : name;
}
