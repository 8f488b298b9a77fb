/**
 * A TLS listener that asks clients for a certificate and verifies it against a CA (mutual TLS),
 * built on `node:tls`: `Deno.listenTls` can neither request a client certificate nor show the
 * peer's certificate, while Deno's `node:tls` does both (`requestCert`, `ca`,
 * `getPeerCertificate()`). The handshake refuses a client without a certificate that chains to
 * the CA, so every connection that reaches the broker carries a verified certificate.
 *
 * @module
 */

import tls from "node:tls";
import { peerCertificateOf, unmapIpv4 } from "./peer_certificate.ts";
import type { TlsListenOptions } from "./sockets.ts";
import type {
  AcceptHandler,
  Connection,
  ConnectionHandler,
  Listener,
  PeerCertificate,
  TransportKind,
} from "./transport.ts";

/** Options of {@linkcode NodeTlsListener}: a TLS listener with the client CA. */
export type MutualTlsOptions = TlsListenOptions & { ca: string };

/** A mutual-TLS listener; connections carry the verified client certificate. */
export class NodeTlsListener implements Listener {
  readonly kind: TransportKind = "tls";
  readonly hostname: string;
  readonly port: number;
  #server: tls.Server;
  #closed = false;

  private constructor(server: tls.Server, hostname: string, port: number) {
    this.#server = server;
    this.hostname = hostname;
    this.port = port;
  }

  /** Binds and starts accepting. Rejects when the address cannot be bound or the PEM is bad. */
  static listen(options: MutualTlsOptions, accept: AcceptHandler): Promise<NodeTlsListener> {
    const server = tls.createServer({
      cert: options.cert,
      key: options.key,
      ca: options.ca,
      requestCert: true,
      rejectUnauthorized: true,
    }, (socket) => new NodeTlsConnection(socket).start(accept));
    const onHandshakeError = options.onHandshakeError ?? (() => {});
    server.on("tlsClientError", (error: Error) => onHandshakeError(error));
    const { promise, resolve, reject } = Promise.withResolvers<NodeTlsListener>();
    server.once("error", reject);
    server.listen(options.port, options.hostname, () => {
      server.off("error", reject);
      const address = server.address() as { address: string; port: number };
      resolve(new NodeTlsListener(server, address.address, address.port));
    });
    return promise;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#server.close();
  }
}

/** A `Connection` over a verified `tls.TLSSocket`. */
export class NodeTlsConnection implements Connection {
  readonly kind: TransportKind = "tls";
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly peerCertificate: PeerCertificate | undefined;
  #socket: tls.TLSSocket;
  #closing = false;
  #closed = false;

  constructor(socket: tls.TLSSocket) {
    this.#socket = socket;
    this.remoteAddress = unmapIpv4(socket.remoteAddress ?? "");
    this.remotePort = socket.remotePort ?? 0;
    this.peerCertificate = socket.authorized
      ? peerCertificateOf(socket.getPeerCertificate())
      : undefined;
    socket.setNoDelay(true);
  }

  get bufferedBytes(): number {
    return this.#socket.writableLength;
  }

  /** Delivers the socket's events to the handler the broker returns. */
  start(accept: AcceptHandler): void {
    const handler: ConnectionHandler = accept(this);
    let failure: Error | undefined;
    // Each chunk is a fresh buffer from the socket, never reused: the zero-copy contract holds.
    this.#socket.on("data", (chunk: Uint8Array) => handler.onData(chunk));
    this.#socket.on("drain", () => handler.onDrain?.());
    this.#socket.on("error", (error: Error) => {
      failure ??= error;
    });
    this.#socket.on("close", () => {
      this.#closed = true;
      handler.onClose(isPeerGone(failure) ? undefined : failure);
    });
  }

  write(bytes: Uint8Array): void {
    if (this.#closing || this.#closed) return;
    // The socket keeps what it is given until sent: a view into a larger buffer (the broker's
    // shared slab) is copied, so a slow client cannot pin whole slabs.
    this.#socket.write(bytes.byteLength === bytes.buffer.byteLength ? bytes : bytes.slice());
  }

  pause(): void {
    this.#socket.pause();
  }

  resume(): void {
    if (!this.#closed) this.#socket.resume();
  }

  close(): void {
    if (this.#closing || this.#closed) return;
    this.#closing = true;
    this.#socket.end();
  }

  destroy(): void {
    this.#closing = true;
    this.#socket.destroy();
  }
}

function isPeerGone(error: Error | undefined): boolean {
  const code = (error as { code?: string } | undefined)?.code;
  return code === "ECONNRESET" || code === "EPIPE";
}
