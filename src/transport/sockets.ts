/**
 * What a runtime's socket APIs must offer the composition root: TCP and TLS listeners and an
 * HTTP(S) server that can also take MQTT over WebSocket. `deno_sockets.ts` and `bun_sockets.ts`
 * implement it over each runtime's own APIs; `runtime.ts` picks the one the process runs on. The
 * options here are plain data, the same on every runtime.
 *
 * @module
 */

import type { AddressMatcher } from "../util/address_match.ts";
import type { AcceptHandler, Listener } from "./transport.ts";

/** Where to listen. */
export interface ListenAddress {
  hostname: string;
  /** 0 picks a free port; read it back from the listener's `port`. */
  port: number;
}

/** PROXY protocol (v1 or v2) expected before the client's first byte. */
export interface ProxyProtocolOptions {
  /**
   * Sources that must send a header (the balancers); connections from other addresses are read
   * as plain MQTT, so a header they send is a malformed packet. Undefined: every source.
   */
  trustedSources?: AddressMatcher;
  /** Ms allowed to receive the whole header before the connection is closed. */
  timeout: number;
  /** Largest version 2 address-and-TLV block accepted, in bytes. */
  maxV2BlockBytes?: number;
}

/** A plain TCP listener. */
export interface TcpListenOptions extends ListenAddress {
  /** Called when accepting fails (e.g. out of file descriptors); the listener keeps going. */
  onAcceptError?: (error: Error) => void;
  /**
   * On Deno: move connections onto the runtime's native stream handle where possible (false when
   * not given here; `listeners.tcp.nativeHandle` defaults to true; see `deno_handle.ts`). Ignored
   * on Bun.
   */
  nativeHandle?: boolean;
  /** Read a PROXY protocol header first (TCP only: on TLS it would precede the handshake). */
  proxyProtocol?: ProxyProtocolOptions;
  /** Called when a connection is closed for a missing, malformed or late PROXY header. */
  onProxyHeaderError?: (reason: string, remoteAddress: string) => void;
}

/** A TLS listener; PEM text throughout. */
export interface TlsListenOptions extends ListenAddress {
  cert: string;
  key: string;
  /**
   * CA certificates: ask every client for a certificate chaining to them (mutual TLS) and refuse
   * the handshake without one; connections carry the verified certificate.
   */
  ca?: string;
  /** Called when accepting fails; the listener keeps going. */
  onAcceptError?: (error: Error) => void;
  /** Called when a client fails the handshake (no or an untrusted certificate, not TLS at all). */
  onHandshakeError?: (error: Error) => void;
}

/** How to accept MQTT over WebSocket on an HTTP server. */
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

/** The peer of an HTTP request, as the socket reports it. */
export interface HttpPeer {
  address: string;
  port: number;
}

/** Answers one request. */
export type HttpHandler = (request: Request, peer: HttpPeer) => Response | Promise<Response>;

/** An HTTP(S) server. */
export interface HttpServeOptions extends ListenAddress {
  /** PEM certificate chain and key: serve HTTPS (and `wss://`) instead of HTTP. */
  cert?: string;
  key?: string;
  /** Called when a handler throws; the request gets a 500. */
  onError?: (error: unknown) => void;
  /** Also upgrade requests on `webSocket.path` to MQTT connections handed to `accept`. */
  webSocket?: { options: WebSocketOptions; accept: AcceptHandler };
}

/** A bound HTTP server. */
export interface HttpServer {
  readonly hostname: string;
  readonly port: number;
  /** True when serving HTTPS. */
  readonly secure: boolean;
  /**
   * Refuses new MQTT WebSocket connections from now on (503); resolves once the open ones have
   * all closed. Other requests are still served.
   */
  stopWebSockets(): Promise<void>;
  /**
   * Stops accepting, lets in-flight requests finish and closes the socket; open MQTT WebSocket
   * connections are closed too. Idempotent; resolves when the server is down.
   */
  close(): Promise<void>;
}

/** One runtime's sockets. Each call binds at once and throws (or rejects) when it cannot. */
export interface Sockets {
  /** The runtime, as logged at start-up: `deno` or `bun`. */
  readonly runtime: string;
  listenTcp(options: TcpListenOptions, accept: AcceptHandler): Listener;
  listenTls(options: TlsListenOptions, accept: AcceptHandler): Promise<Listener>;
  serveHttp(options: HttpServeOptions, handler: HttpHandler): HttpServer;
}
