/**
 * The part of Bun's socket API the Bun transport uses, typed here because Deno's type checker
 * does not load Bun's own declarations (`bun-types` would bring Bun's globals in conflict with
 * Deno's). Shapes follow Bun's reference for `Bun.listen` (TCP and TLS sockets) and `Bun.serve`
 * (HTTP and `ServerWebSocket`); only what is called is declared. On Deno `Bun` is undefined and
 * nothing here is called.
 *
 * @module
 */

/** TLS material of a listener or server (PEM text). */
export interface BunTlsOptions {
  cert: string;
  key: string;
  /** CA certificates peer certificates are verified against. */
  ca?: string;
  /** Ask the client for a certificate. */
  requestCert?: boolean;
  /** Refuse a client whose certificate does not verify (with `requestCert`). */
  rejectUnauthorized?: boolean;
}

/** A TCP or TLS socket of `Bun.listen`; `data` is whatever the handlers keep on it. */
export interface BunSocket<Data> {
  data: Data;
  readonly remoteAddress: string;
  readonly remotePort: number;
  /** TLS: whether the peer's certificate verified against the CA. */
  readonly authorized: boolean;
  /**
   * Writes what the kernel takes now and returns that many bytes (fewer than given when its
   * buffer is full: the rest must be written after `drain`), or -1 when the socket is closed.
   * Bun keeps nothing.
   */
  write(data: Uint8Array): number;
  /** Closes once the kernel has sent what it holds (the `close` handler runs at once). */
  end(): void;
  /** Stops reading; the peer sees TCP backpressure. */
  pause(): void;
  resume(): void;
  setNoDelay(noDelay?: boolean): boolean;
  /** TLS: the peer's certificate, `node:tls` style. */
  getPeerCertificate(): { subject?: unknown } | null | undefined;
}

/** Handlers shared by every socket of a listener. */
export interface BunSocketHandler<Data> {
  open?(socket: BunSocket<Data>): void;
  /** TLS: the handshake ended; `authorizationError` says why a peer certificate did not verify. */
  handshake?(socket: BunSocket<Data>, success: boolean, authorizationError: Error | null): void;
  /** Each chunk is a fresh buffer. */
  data?(socket: BunSocket<Data>, data: Uint8Array): void;
  /** The kernel can take more bytes. */
  drain?(socket: BunSocket<Data>): void;
  close?(socket: BunSocket<Data>, error?: Error): void;
  error?(socket: BunSocket<Data>, error: Error): void;
}

/** A listening socket of `Bun.listen`. */
export interface BunTcpListener {
  readonly hostname: string;
  readonly port: number;
  /** Stops accepting; open sockets stay unless `closeActiveConnections`. */
  stop(closeActiveConnections?: boolean): void;
}

/** A server-side WebSocket of `Bun.serve`. */
export interface BunServerWebSocket<Data> {
  readonly data: Data;
  binaryType: "nodebuffer" | "arraybuffer" | "uint8array";
  /**
   * Sends one binary message: the bytes sent, -1 when it was queued behind backpressure (wait
   * for `drain`), 0 when it was dropped. The bytes are copied before it returns.
   */
  send(data: Uint8Array): number;
  close(code?: number, reason?: string): void;
  /** Bytes queued behind backpressure. */
  getBufferedAmount(): number;
  /** Stops reading from the socket (TCP backpressure); messages already read still arrive. */
  pause(): void;
  resume(): void;
}

/** `Bun.serve`'s WebSocket handlers and limits. */
export interface BunWebSocketHandler<Data> {
  open?(ws: BunServerWebSocket<Data>): void;
  message(ws: BunServerWebSocket<Data>, message: string | Uint8Array): void;
  drain?(ws: BunServerWebSocket<Data>): void;
  close?(ws: BunServerWebSocket<Data>, code: number, reason: string): void;
  /** Largest message taken, in bytes; a larger one closes the connection (1009). */
  maxPayloadLength?: number;
  /** Seconds without traffic before Bun closes the connection; 0: never. */
  idleTimeout?: number;
  /** Whether Bun pings idle clients by itself. */
  sendPings?: boolean;
}

/** A server of `Bun.serve`. */
export interface BunServer<Data> {
  readonly hostname: string;
  readonly port: number;
  requestIP(request: Request): { address: string; port: number } | null;
  /** Upgrades the request to a WebSocket carrying `data`; false when it is not an upgrade. */
  upgrade(request: Request, options: { data: Data; headers?: HeadersInit }): boolean;
  /** Stops accepting; resolves once the open connections have closed (at once with `true`). */
  stop(closeActiveConnections?: boolean): Promise<void>;
}

/** `Bun.serve`'s options. */
export interface BunServeOptions<Data> {
  hostname: string;
  port: number;
  tls?: BunTlsOptions;
  /** Whether errors are answered with a page of details; never for the broker. */
  development?: boolean;
  fetch(
    request: Request,
    server: BunServer<Data>,
  ): Response | Promise<Response> | undefined;
  /** Answers a request whose handler threw. */
  error?(error: Error): Response;
  websocket: BunWebSocketHandler<Data>;
}

/** The global `Bun`, as far as the transport uses it. */
export interface BunGlobal {
  listen<Data>(options: {
    hostname: string;
    port: number;
    tls?: BunTlsOptions;
    socket: BunSocketHandler<Data>;
  }): BunTcpListener;
  serve<Data>(options: BunServeOptions<Data>): BunServer<Data>;
}

/** Bun's global object; undefined on other runtimes. */
export const Bun: BunGlobal = (globalThis as unknown as { Bun: BunGlobal }).Bun;
