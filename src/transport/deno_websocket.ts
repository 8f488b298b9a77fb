/**
 * MQTT over WebSocket on Deno (`Deno.serve` + `Deno.upgradeWebSocket`), as `Connection`s for the
 * same `broker.accept` the TCP listeners feed: same limits, authentication and ACL.
 *
 * MQTT 5 section 6: the payload travels in binary frames only [MQTT-6.0.0-1]; a frame need not hold
 * exactly one packet [MQTT-6.0.0-2] (packets may span frames and a frame may carry several), which
 * the broker's streaming decoder handles since each frame is just a chunk of the byte stream; the
 * subprotocol is `mqtt` [MQTT-6.0.0-4] (`mqttv3.1` for old 3.1 clients).
 *
 * @module
 */

import { type AddressMatcher, isIpAddress, normalizeAddress } from "../util/address_match.ts";
import { DenoHttpServer, type HttpPeer } from "./deno_http.ts";
import { WriteQueue } from "./write_queue.ts";
import type {
  AcceptHandler,
  Connection,
  ConnectionHandler,
  Listener,
  TransportKind,
} from "./transport.ts";

/** WebSocket subprotocols accepted, in the order the server prefers them. */
export const MQTT_SUBPROTOCOLS: readonly string[] = ["mqtt", "mqttv3.1"];

/** Default bound on bytes received while reading is paused (the WebSocket API cannot push back). */
export const DEFAULT_MAX_PAUSED_BYTES = 8 * 1024 * 1024;

/**
 * The WebSocket API has no drain event: while bytes are buffered, `bufferedAmount` is checked at
 * this interval to tell the broker when they are gone.
 */
const DRAIN_POLL_MS = 10;

/** How to accept MQTT WebSocket connections. */
export interface WebSocketOptions {
  /** URL path clients connect to, e.g. `/mqtt`. */
  path: string;
  /** Peers (reverse proxies) whose forwarded-address header is believed. */
  trustedProxies?: AddressMatcher;
  /**
   * Header with the client's address when the peer is a trusted proxy: a comma-separated list
   * with the nearest hop last (`x-forwarded-for`), or a single address (`x-real-ip`).
   */
  proxyHeader?: string;
  /** Bytes held while the broker pauses reading; beyond this the connection is closed. */
  maxPausedBytes?: number;
  /**
   * Browser origins allowed to connect (serialized origins, lower case, e.g.
   * `https://app.example.com`), or `*` among them for any. A request without an `Origin` header
   * (a non-browser client) is always accepted. Default: any.
   */
  allowedOrigins?: readonly string[];
}

/**
 * Upgrades HTTP requests on the MQTT path to WebSocket connections and hands them to the broker.
 * Other paths are left to the caller, so the admin API can share its port with MQTT.
 */
export class WebSocketUpgrader {
  readonly kind: TransportKind;
  #options: WebSocketOptions;
  #accept: AcceptHandler;
  #origins: ReadonlySet<string> | undefined;
  #open = 0;
  #accepting = true;
  #idle: PromiseWithResolvers<void> | undefined;

  constructor(kind: "ws" | "wss", options: WebSocketOptions, accept: AcceptHandler) {
    this.kind = kind;
    this.#options = options;
    this.#accept = accept;
    const origins = options.allowedOrigins;
    this.#origins = origins === undefined || origins.includes("*") ? undefined : new Set(origins);
  }

  /** Open WebSocket connections. */
  get connections(): number {
    return this.#open;
  }

  /** Answers a request on the MQTT path; `undefined` for any other path. */
  handle(request: Request, peer: HttpPeer): Response | undefined {
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
    // Read before upgrading: the request's headers are gone once it is upgraded.
    const address = this.#clientAddress(request, peer);
    const { socket, response } = Deno.upgradeWebSocket(request, protocol ? { protocol } : {});
    const connection = new DenoWebSocketConnection(socket, {
      kind: this.kind,
      remoteAddress: address.address,
      remotePort: address.port,
      maxPausedBytes: this.#options.maxPausedBytes ?? DEFAULT_MAX_PAUSED_BYTES,
      onClosed: () => this.#closed(),
    });
    this.#open++;
    connection.start(this.#accept);
    return response;
  }

  /** Refuses new connections from now on; resolves when the open ones have all closed. */
  stopAccepting(): Promise<void> {
    this.#accepting = false;
    if (this.#open === 0) return Promise.resolve();
    this.#idle ??= Promise.withResolvers<void>();
    return this.#idle.promise;
  }

  #closed(): void {
    this.#open--;
    if (this.#open === 0) this.#idle?.resolve();
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

function problem(status: number, message: string, headers: Record<string, string> = {}): Response {
  return Response.json({ error: message }, { status, headers });
}

/** How a WebSocket connection came about. */
interface WebSocketConnectionOptions {
  kind: TransportKind;
  remoteAddress: string;
  remotePort: number;
  maxPausedBytes: number;
  onClosed: () => void;
}

/**
 * A `Connection` over a server-side WebSocket. Each binary message is one fresh chunk (the
 * zero-copy contract holds: the runtime allocates a new ArrayBuffer per message). Writes go through
 * the same `WriteQueue` as TCP: small packets are copied into batches as they are written (they may
 * be views into the broker's shared slab), and each batch goes out as one binary frame. The WebSocket API cannot stop the peer from sending, so
 * `pause()` holds incoming frames, up to a bound.
 */
export class DenoWebSocketConnection implements Connection {
  readonly kind: TransportKind;
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly peerCertificate = undefined;
  #socket: WebSocket;
  #options: WebSocketConnectionOptions;
  #handler: ConnectionHandler | undefined;
  #queue = new WriteQueue();
  #flushScheduled = false;
  #drainTimer: ReturnType<typeof setTimeout> | undefined;
  #open = false;
  #closing = false;
  #closed = false;
  #paused = false;
  #held: Uint8Array[] = [];
  #heldBytes = 0;
  #flush = () => this.#flushQueue();
  #watchDrain = () => this.#checkDrain();

  constructor(socket: WebSocket, options: WebSocketConnectionOptions) {
    this.#socket = socket;
    this.#options = options;
    this.kind = options.kind;
    this.remoteAddress = options.remoteAddress;
    this.remotePort = options.remotePort;
  }

  get bufferedBytes(): number {
    return this.#queue.bytes + (this.#open ? this.#socket.bufferedAmount : 0);
  }

  /** Wires the socket's events to the handler the broker returns. */
  start(accept: AcceptHandler): void {
    const socket = this.#socket;
    socket.binaryType = "arraybuffer";
    this.#handler = accept(this);
    socket.onopen = () => {
      this.#open = true;
      if (this.#queue.bytes > 0) this.#flushQueue();
    };
    socket.onmessage = (event: MessageEvent) => this.#receive(event.data);
    socket.onclose = () => this.#ended();
    socket.onerror = () => {}; // A close event follows.
  }

  write(bytes: Uint8Array): void {
    if (this.#closing || this.#closed) return;
    this.#queue.push(bytes);
    if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      queueMicrotask(this.#flush);
    }
  }

  pause(): void {
    this.#paused = true;
  }

  resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    while (this.#held.length > 0 && !this.#paused && !this.#closed) {
      const chunk = this.#held.shift()!;
      this.#heldBytes -= chunk.length;
      this.#handler!.onData(chunk);
    }
  }

  close(): void {
    if (this.#closing || this.#closed) return;
    this.#closing = true;
    if (this.#queue.bytes > 0) this.#flushQueue();
    else this.#closeWhenSent();
  }

  destroy(): void {
    this.#queue.clear();
    this.#closing = true;
    this.#closeSocket(1000);
  }

  #receive(data: unknown): void {
    if (this.#closed) return;
    if (!(data instanceof ArrayBuffer)) {
      // [MQTT-6.0.0-1]: MQTT travels in binary frames; a text frame closes the connection.
      this.#closeSocket(1003, "MQTT needs binary frames");
      return;
    }
    const chunk = new Uint8Array(data);
    if (!this.#paused) {
      this.#handler!.onData(chunk);
      return;
    }
    this.#held.push(chunk);
    this.#heldBytes += chunk.length;
    if (this.#heldBytes > this.#options.maxPausedBytes) {
      // The peer keeps sending while it is held back: a WebSocket cannot push back like TCP does.
      this.#closeSocket(1008, "Too much data while paused");
    }
  }

  #flushQueue(): void {
    this.#flushScheduled = false;
    if (!this.#open || this.#closed || this.#queue.bytes === 0) return;
    try {
      // One frame per batch of small packets (or per large packet); the runtime keeps each
      // buffer until it is sent, so a batch buffer is handed back only once everything drained.
      for (let data = this.#queue.take(); data !== undefined; data = this.#queue.take()) {
        this.#socket.send(data);
      }
    } catch {
      this.destroy(); // The socket is closing under us; the close event reports it.
      return;
    }
    if (this.#closing) this.#closeWhenSent();
    else if (this.#drainTimer === undefined) this.#checkDrain();
  }

  /** Reports a drain once the runtime has sent everything, polling while it has not. */
  #checkDrain(): void {
    this.#drainTimer = undefined;
    if (this.#closed) return;
    if (this.#socket.bufferedAmount > 0) {
      this.#drainTimer = setTimeout(this.#watchDrain, DRAIN_POLL_MS);
      return;
    }
    this.#queue.written();
    if (this.#closing) this.#closeSocket(1000);
    else if (this.#queue.bytes === 0) this.#handler?.onDrain?.();
  }

  #closeWhenSent(): void {
    if (!this.#open || this.#socket.bufferedAmount === 0) this.#closeSocket(1000);
    else if (this.#drainTimer === undefined) this.#checkDrain();
  }

  #closeSocket(code: number, reason?: string): void {
    if (this.#drainTimer !== undefined) clearTimeout(this.#drainTimer);
    this.#drainTimer = undefined;
    const state = this.#socket.readyState;
    if (state === WebSocket.CONNECTING || state === WebSocket.OPEN) {
      try {
        this.#socket.close(code, reason);
      } catch {
        // Already closing.
      }
    }
    // A socket that never opened may never fire close: report the end here in that case.
    if (state === WebSocket.CONNECTING) this.#ended();
  }

  #ended(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#open = false;
    if (this.#drainTimer !== undefined) clearTimeout(this.#drainTimer);
    this.#drainTimer = undefined;
    this.#queue.clear();
    this.#held = [];
    this.#heldBytes = 0;
    this.#options.onClosed();
    this.#handler?.onClose();
  }
}

/** Options of {@linkcode DenoWebSocketListener.listen}. */
export interface WebSocketListenOptions extends WebSocketOptions {
  hostname: string;
  /** 0 picks a free port; read it back from `port`. */
  port: number;
  /** PEM certificate chain and key: serve `wss://`. */
  cert?: string;
  key?: string;
  /** Called when serving a request fails unexpectedly. */
  onError?: (error: unknown) => void;
}

/** An MQTT over WebSocket listener on its own port (`ws://`, or `wss://` with a certificate). */
export class DenoWebSocketListener implements Listener {
  readonly kind: TransportKind;
  readonly hostname: string;
  readonly port: number;
  #server: DenoHttpServer;
  #upgrader: WebSocketUpgrader;
  #closed: Promise<void> | undefined;

  private constructor(server: DenoHttpServer, upgrader: WebSocketUpgrader) {
    this.#server = server;
    this.#upgrader = upgrader;
    this.kind = upgrader.kind;
    this.hostname = server.hostname;
    this.port = server.port;
  }

  /** Binds and starts accepting; throws when the address cannot be bound. */
  static listen(options: WebSocketListenOptions, accept: AcceptHandler): DenoWebSocketListener {
    const secure = options.cert !== undefined && options.key !== undefined;
    const upgrader = new WebSocketUpgrader(secure ? "wss" : "ws", options, accept);
    const server = DenoHttpServer.serve(
      options,
      (request, peer) =>
        upgrader.handle(request, peer) ?? problem(404, `MQTT is served at ${options.path}`),
    );
    return new DenoWebSocketListener(server, upgrader);
  }

  /**
   * Stops accepting connections; open ones stay until they close (shutting the HTTP server down
   * at once would drop them), then the port is released.
   */
  close(): void {
    this.#closed ??= this.#upgrader.stopAccepting().then(() => this.#server.close());
  }

  /** Resolves once the listener has closed and released its port (after `close()`). */
  get finished(): Promise<void> {
    return this.#closed ?? Promise.resolve();
  }
}
