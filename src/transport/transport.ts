/**
 * The only contract between the broker and a runtime's sockets. Listeners and connections know
 * nothing about MQTT: they move bytes. The seam is push-based (the listener calls the handler for
 * each chunk) so a chunk costs no promise, and the same broker runs on Deno and on Bun.
 *
 * @module
 */

/** The kind of listener a connection arrived on. */
export type TransportKind = "tcp" | "tls" | "ws" | "wss" | "memory";

/** Details of the peer's TLS client certificate, when one was presented and verified. */
export interface PeerCertificate {
  /** Subject common name. */
  commonName: string | undefined;
  /** Full subject distinguished name, as the runtime reports it. */
  subject: string;
}

/** One accepted client connection. */
export interface Connection {
  /** The kind of listener that accepted it. */
  readonly kind: TransportKind;
  /** Remote IP address (as reported by the socket or a trusted proxy header). */
  readonly remoteAddress: string;
  /** Remote port, 0 when unknown. */
  readonly remotePort: number;
  /** The verified TLS client certificate, when the listener requested one. */
  readonly peerCertificate: PeerCertificate | undefined;
  /** Bytes accepted by `write()` and not yet handed to the operating system. */
  readonly bufferedBytes: number;
  /**
   * Queues bytes for sending. Never blocks and never throws; writes issued during one turn of the
   * event loop are coalesced into one OS write. After `close()` it does nothing.
   */
  write(bytes: Uint8Array): void;
  /** Stops delivering `onData` until `resume()` (the read loop waits; TCP pushes back). */
  pause(): void;
  /** Resumes delivering `onData` after `pause()`. */
  resume(): void;
  /** Sends what is queued, then closes. Idempotent. */
  close(): void;
  /** Closes at once, dropping queued bytes. Idempotent. */
  destroy(): void;
}

/**
 * Callbacks a connection makes into the broker.
 *
 * Contract: a chunk passed to `onData` is never reused or written to by the transport afterwards,
 * so the decoder may keep views into it (zero-copy payloads).
 */
export interface ConnectionHandler {
  /** Bytes arrived. */
  onData(chunk: Uint8Array): void;
  /** The connection closed (by either side). Called exactly once, after the last `onData`. */
  onClose(error?: Error): void;
  /** Everything queued has been handed to the operating system (`bufferedBytes` is 0 again). */
  onDrain?(): void;
}

/** Called by a listener for each accepted connection; returns the handler for its events. */
export type AcceptHandler = (connection: Connection) => ConnectionHandler;

/** A bound listening socket. */
export interface Listener {
  readonly kind: TransportKind;
  /** Bound address (the actual port when 0 was requested). */
  readonly hostname: string;
  readonly port: number;
  /** Stops accepting new connections. Existing connections stay open. */
  close(): void;
}
