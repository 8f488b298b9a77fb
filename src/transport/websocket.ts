/**
 * MQTT over WebSocket, the part that is the same on every runtime: which requests are upgraded
 * (path, `Origin` allow-list, subprotocol), the client's address behind trusted proxies, counting
 * open connections so a listener can close once they are gone, and a listener on its own port.
 * Each runtime's HTTP server performs the upgrade itself (`deno_http.ts`, `bun_http.ts`).
 *
 * MQTT 5 section 6: the payload travels in binary frames only [MQTT-6.0.0-1]; a frame need not hold
 * exactly one packet [MQTT-6.0.0-2] (packets may span frames and a frame may carry several), which
 * the broker's streaming decoder handles since each frame is just a chunk of the byte stream; the
 * subprotocol is `mqtt` [MQTT-6.0.0-4] (`mqttv3.1` for old 3.1 clients).
 *
 * @module
 */

import { isIpAddress, normalizeAddress } from "../util/address_match.ts";
import type { HttpPeer, HttpServer, ListenAddress, Sockets, WebSocketOptions } from "./sockets.ts";
import type { AcceptHandler, Listener, TransportKind } from "./transport.ts";

/** WebSocket subprotocols accepted, in the order the server prefers them. */
export const MQTT_SUBPROTOCOLS: readonly string[] = ["mqtt", "mqttv3.1"];

/** Default bound on bytes received while reading is paused. */
export const DEFAULT_MAX_PAUSED_BYTES = 8 * 1024 * 1024;

/** A request the gate lets through: upgrade it with this subprotocol, for this client. */
export interface Admission {
  /** The subprotocol to answer with, when the client offered any. */
  protocol: string | undefined;
  remoteAddress: string;
  remotePort: number;
}

/**
 * Decides which requests become MQTT connections and counts the open ones. Requests off the MQTT
 * path are left to the server's other handler, so the admin API can share its port with MQTT.
 */
export class WebSocketGate {
  readonly kind: "ws" | "wss";
  readonly maxPausedBytes: number;
  #options: WebSocketOptions;
  #origins: ReadonlySet<string> | undefined;
  #open = 0;
  #accepting = true;
  #idle: PromiseWithResolvers<void> | undefined;

  constructor(kind: "ws" | "wss", options: WebSocketOptions) {
    this.kind = kind;
    this.#options = options;
    this.maxPausedBytes = options.maxPausedBytes ?? DEFAULT_MAX_PAUSED_BYTES;
    const origins = options.allowedOrigins;
    this.#origins = origins === undefined || origins.includes("*") ? undefined : new Set(origins);
  }

  /** Open WebSocket connections. */
  get connections(): number {
    return this.#open;
  }

  /**
   * Looks at a request: `undefined` when it is not for the MQTT path, a `Response` refusing it,
   * or the admission to upgrade it with.
   */
  admit(request: Request, peer: HttpPeer): Admission | Response | undefined {
    if (new URL(request.url).pathname !== this.#options.path) return undefined;
    if (!this.#accepting) return problem(503, "The listener is closing");
    if (request.headers.get("upgrade")?.toLowerCase() !== "websocket") {
      return problem(426, "MQTT is served over WebSocket here", { upgrade: "websocket" });
    }
    // A web page of another site must not reach the broker from a visitor's browser (which
    // always sends Origin); non-browser clients send none.
    const origin = request.headers.get("origin");
    if (origin !== null && this.#origins && !this.#origins.has(origin.toLowerCase())) {
      return problem(403, `Origin not allowed: ${origin}`);
    }
    const offered = request.headers.get("sec-websocket-protocol");
    let protocol: string | undefined;
    if (offered !== null) {
      const wanted = offered.split(",").map((p) => p.trim());
      protocol = wanted.find((p) => MQTT_SUBPROTOCOLS.includes(p));
      if (protocol === undefined) {
        return problem(
          400,
          `Unsupported WebSocket subprotocol: expected ${MQTT_SUBPROTOCOLS.join(" or ")}`,
        );
      }
    }
    const address = this.#clientAddress(request, peer);
    return { protocol, remoteAddress: address.address, remotePort: address.port };
  }

  /** A connection was upgraded. */
  opened(): void {
    this.#open++;
  }

  /** An upgraded connection has ended. */
  closed(): void {
    this.#open--;
    if (this.#open === 0) this.#idle?.resolve();
  }

  /** Refuses new connections from now on; resolves when the open ones have all closed. */
  stopAccepting(): Promise<void> {
    this.#accepting = false;
    if (this.#open === 0) return Promise.resolve();
    this.#idle ??= Promise.withResolvers<void>();
    return this.#idle.promise;
  }

  /** The client's address: the socket peer's, or a trusted proxy's report of it. */
  #clientAddress(request: Request, peer: HttpPeer): HttpPeer {
    const trusted = this.#options.trustedProxies;
    const header = this.#options.proxyHeader;
    const direct = { address: normalizeAddress(peer.address), port: peer.port };
    if (!trusted || !header || !trusted(direct.address)) return direct;
    const value = request.headers.get(header);
    if (value === null) return direct;
    // Walk from the nearest hop outwards while the hops are trusted proxies.
    const hops = value.split(",").map((hop) => stripPort(hop.trim()));
    let client = direct.address;
    for (let i = hops.length - 1; i >= 0; i--) {
      const hop = normalizeAddress(hops[i]);
      if (!isIpAddress(hop)) break;
      client = hop;
      if (!trusted(hop)) break;
    }
    return client === direct.address ? direct : { address: client, port: 0 };
  }
}

/** `1.2.3.4:80` -> `1.2.3.4`, `[::1]:80` -> `::1`; other text unchanged. */
function stripPort(hop: string): string {
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(hop);
  if (bracketed) return bracketed[1];
  const v4 = /^(\d{1,3}(?:\.\d{1,3}){3}):\d+$/.exec(hop);
  return v4 ? v4[1] : hop;
}

/** A JSON error reply. */
export function problem(
  status: number,
  message: string,
  headers: Record<string, string> = {},
): Response {
  return Response.json({ error: message }, { status, headers });
}

/** Options of {@linkcode WebSocketListener.listen}. */
export interface WebSocketListenOptions extends WebSocketOptions, ListenAddress {
  /** PEM certificate chain and key: serve `wss://`. */
  cert?: string;
  key?: string;
  /** Called when serving a request fails unexpectedly. */
  onError?: (error: unknown) => void;
}

/** An MQTT over WebSocket listener on its own port (`ws://`, or `wss://` with a certificate). */
export class WebSocketListener implements Listener {
  readonly kind: TransportKind;
  readonly hostname: string;
  readonly port: number;
  #server: HttpServer;
  #closed: Promise<void> | undefined;

  private constructor(server: HttpServer) {
    this.#server = server;
    this.kind = server.secure ? "wss" : "ws";
    this.hostname = server.hostname;
    this.port = server.port;
  }

  /** Binds and starts accepting on `sockets`; throws when the address cannot be bound. */
  static listen(
    sockets: Sockets,
    options: WebSocketListenOptions,
    accept: AcceptHandler,
  ): WebSocketListener {
    const { hostname, port, cert, key, onError, ...webSocket } = options;
    const server = sockets.serveHttp(
      { hostname, port, cert, key, onError, webSocket: { options: webSocket, accept } },
      () => problem(404, `MQTT is served at ${options.path}`),
    );
    return new WebSocketListener(server);
  }

  /**
   * Stops accepting connections; open ones stay until they close (shutting the HTTP server down
   * at once would drop them), then the server is closed.
   */
  close(): void {
    this.#closed ??= this.#server.stopWebSockets().then(() => this.#server.close());
  }

  /** Resolves once the listener has closed and released its port (after `close()`). */
  get finished(): Promise<void> {
    return this.#closed ?? Promise.resolve();
  }
}
