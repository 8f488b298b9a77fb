/**
 * TCP and TLS on Bun (`Bun.listen`), with the PROXY protocol on TCP and client certificates on
 * TLS. Bun calls one set of handlers for every socket of a listener, with data pushed to it: each
 * socket carries its state (a connection, or a PROXY header being read) in `socket.data`.
 *
 * @module
 */

import type { BunSocket, BunSocketHandler, BunTcpListener } from "./bun_api.ts";
import { Bun } from "./bun_api.ts";
import { peerCertificateOf, unmapIpv4 } from "./peer_certificate.ts";
import {
  DEFAULT_MAX_V2_BLOCK_BYTES,
  MAX_V1_HEADER_BYTES,
  parseProxyHeader,
} from "./proxy_protocol.ts";
import type { ProxyProtocolOptions, TcpListenOptions, TlsListenOptions } from "./sockets.ts";
import type {
  AcceptHandler,
  Connection,
  ConnectionHandler,
  Listener,
  PeerCertificate,
  TransportKind,
} from "./transport.ts";
import { WriteQueue } from "./write_queue.ts";

/**
 * What a socket of ours carries in `socket.data`: its connection once the broker has it, or the
 * PROXY header being read before that (one object per socket, not a holder of either).
 */
type SocketState = BunConnection | ProxyHeaderReader | undefined;

type Socket = BunSocket<SocketState>;

/** What the listener learned before handing the socket over (e.g. from a PROXY header). */
interface Origin {
  remoteAddress?: string;
  remotePort?: number;
  peerCertificate?: PeerCertificate;
}

/**
 * A `Connection` over a Bun socket. Bun hands each read to the `data` handler as a fresh buffer
 * (the zero-copy contract of `ConnectionHandler.onData` holds). Bun does not buffer writes: a
 * write takes what the kernel accepts, so frames wait in the `WriteQueue` (batched as on Deno),
 * and a partly written batch keeps its rest until the `drain` handler says the kernel has room.
 */
export class BunConnection implements Connection {
  readonly kind: TransportKind;
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly peerCertificate: PeerCertificate | undefined;
  #socket: Socket;
  #handler: ConnectionHandler | undefined;
  /** Created on the first write and dropped when empty: an idle connection holds none. */
  #queue: WriteQueue | undefined;
  /** The unwritten rest of the batch being written, waiting for `drain`. */
  #pending: Uint8Array | undefined;
  #flushScheduled = false;
  #closing = false;
  #closed = false;
  #paused = false;
  /** Chunks that arrived while paused (at most what Bun had read when `pause()` came). */
  #held: Uint8Array[] | undefined;

  constructor(socket: Socket, kind: TransportKind, origin: Origin = {}) {
    this.#socket = socket;
    this.kind = kind;
    this.remoteAddress = origin.remoteAddress ?? unmapIpv4(socket.remoteAddress ?? "");
    this.remotePort = origin.remotePort ?? socket.remotePort ?? 0;
    this.peerCertificate = origin.peerCertificate;
    if (kind === "tcp") socket.setNoDelay(true);
  }

  get bufferedBytes(): number {
    return (this.#queue?.bytes ?? 0) + (this.#pending?.length ?? 0);
  }

  /** Hands the connection to the broker; `initialData` (read with a PROXY header) goes first. */
  start(accept: AcceptHandler, initialData?: Uint8Array): void {
    this.#socket.data = this;
    this.#handler = accept(this);
    if (initialData !== undefined && initialData.length > 0) this.receive(initialData);
  }

  write(bytes: Uint8Array): void {
    if (this.#closing || this.#closed) return;
    (this.#queue ??= new WriteQueue()).push(bytes);
    this.#scheduleFlush();
  }

  pause(): void {
    if (this.#paused || this.#closed) return;
    this.#paused = true;
    this.#socket.pause();
  }

  resume(): void {
    if (!this.#paused || this.#closed) return;
    this.#paused = false;
    const held = this.#held;
    while (held !== undefined && held.length > 0 && !this.#paused && !this.#closed) {
      this.#handler!.onData(held.shift()!);
    }
    if (held?.length === 0) this.#held = undefined;
    if (!this.#paused && !this.#closed) this.#socket.resume();
  }

  close(): void {
    if (this.#closing || this.#closed) return;
    this.#closing = true;
    if (this.bufferedBytes === 0) this.#end();
    else this.#scheduleFlush();
  }

  destroy(): void {
    this.#queue = undefined;
    this.#pending = undefined;
    this.#closing = true;
    this.#end();
  }

  /** Bytes arrived (the `data` handler). */
  receive(chunk: Uint8Array): void {
    if (this.#closed) return;
    if (this.#paused) (this.#held ??= []).push(chunk);
    else this.#handler!.onData(chunk);
  }

  /** The kernel has room again (the `drain` handler). */
  drained(): void {
    if (this.#pending !== undefined) this.#flushQueue();
  }

  /** The socket closed (the `close` handler), by either side. */
  ended(error?: Error): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#queue = undefined;
    this.#pending = undefined;
    this.#held = undefined;
    // Bun runs the close handler inside end(): the broker hears of it after its own call returns.
    queueMicrotask(() => this.#handler?.onClose(isPeerGone(error) ? undefined : error));
  }

  #scheduleFlush(): void {
    if (this.#flushScheduled || this.#pending !== undefined) return;
    this.#flushScheduled = true;
    toFlush.push(this);
    if (toFlush.length === 1) queueMicrotask(flushAll);
  }

  /** Writes what is queued (from {@linkcode flushAll}). */
  flush(): void {
    if (this.#flushScheduled) this.#flushQueue();
  }

  #flushQueue(): void {
    this.#flushScheduled = false;
    while (!this.#closed) {
      const data = this.#pending ?? this.#queue?.take();
      if (data === undefined) break;
      const written = this.#socket.write(data);
      if (written < 0) {
        this.destroy(); // Closed under us; the close handler reports it.
        return;
      }
      if (written < data.length) {
        this.#pending = data.subarray(written);
        return; // The drain handler resumes.
      }
      this.#pending = undefined;
      this.#queue!.written();
    }
    if (this.#closed) return;
    if (this.#queue?.bytes === 0) this.#queue = undefined;
    if (this.#closing) this.#end();
    else this.#handler?.onDrain?.();
  }

  #end(): void {
    if (this.#closed) return;
    this.#socket.end();
  }
}

/** Connections with writes queued since the last flush: one microtask flushes them all. */
let toFlush: BunConnection[] = [];

function flushAll(): void {
  while (toFlush.length > 0) {
    const connections = toFlush;
    toFlush = [];
    for (const connection of connections) connection.flush();
  }
}

/** A PROXY header arriving in pieces, bounded by the largest header either version can have. */
class ProxyHeaderReader {
  readonly buffer: Uint8Array;
  received = 0;
  readonly timer: ReturnType<typeof setTimeout>;

  constructor(maxV2BlockBytes: number, timeout: number, onTimeout: () => void) {
    this.buffer = new Uint8Array(
      PROXY_V2_FIXED_BYTES + Math.max(maxV2BlockBytes, MAX_V1_HEADER_BYTES),
    );
    this.timer = setTimeout(onTimeout, timeout);
  }
}

/** The fixed part of a version 2 header: signature, version/command, family, length. */
const PROXY_V2_FIXED_BYTES = 16;

/** A listener over `Bun.listen`, feeding each connection to `accept`. */
export class BunListener implements Listener {
  readonly kind: TransportKind;
  readonly hostname: string;
  readonly port: number;
  #listener: BunTcpListener;
  #closed = false;

  private constructor(listener: BunTcpListener, kind: TransportKind) {
    this.#listener = listener;
    this.kind = kind;
    this.hostname = listener.hostname;
    this.port = listener.port;
  }

  /** Listens for plain TCP connections, reading a PROXY header first when configured. */
  static tcp(options: TcpListenOptions, accept: AcceptHandler): BunListener {
    const proxy = options.proxyProtocol;
    const onProxyHeaderError = options.onProxyHeaderError ?? (() => {});
    const start = (socket: Socket, origin: Origin, initialData?: Uint8Array) => {
      try {
        new BunConnection(socket, "tcp", origin).start(accept, initialData);
      } catch (error) {
        // One bad connection must not stop the listener.
        socket.end();
        options.onAcceptError?.(error as Error);
      }
    };
    const handler: BunSocketHandler<SocketState> = {
      ...connectionEvents,
      open(socket) {
        socket.data = undefined;
        if (!proxy) return start(socket, {});
        const remote = unmapIpv4(socket.remoteAddress ?? "");
        if (proxy.trustedSources === undefined || proxy.trustedSources(remote)) {
          socket.data = readProxyHeader(socket, proxy, remote, onProxyHeaderError);
        } else start(socket, {});
      },
      data(socket, chunk) {
        const state = socket.data;
        if (state instanceof BunConnection) return state.receive(chunk);
        const reader = state;
        if (reader === undefined) return;
        const result = proxyHeaderData(reader, chunk, proxy!);
        if (result === undefined) return;
        socket.data = undefined;
        clearTimeout(reader.timer);
        const remote = unmapIpv4(socket.remoteAddress ?? "");
        if ("reason" in result) {
          onProxyHeaderError(result.reason, remote);
          socket.end();
          return;
        }
        start(socket, result.origin, result.rest);
      },
      close(socket, error) {
        const state = socket.data;
        socket.data = undefined;
        if (state instanceof BunConnection) state.ended(error);
        else if (state !== undefined) clearTimeout(state.timer);
      },
    };
    const listener = Bun.listen<SocketState>({
      hostname: options.hostname,
      port: options.port,
      socket: handler,
    });
    return new BunListener(listener, "tcp");
  }

  /**
   * Listens for TLS connections. With a CA, every client must present a certificate chaining to
   * it (Bun refuses the handshake otherwise) and connections carry the verified certificate.
   */
  static tls(options: TlsListenOptions, accept: AcceptHandler): BunListener {
    const mutual = options.ca !== undefined;
    const onHandshakeError = options.onHandshakeError ?? (() => {});
    const handler: BunSocketHandler<SocketState> = {
      ...connectionEvents,
      open(socket) {
        socket.data = undefined;
      },
      // The connection starts once the handshake is done: no byte of MQTT arrives before it.
      handshake(socket, success, authorizationError) {
        if (!success || (mutual && !socket.authorized)) {
          onHandshakeError(authorizationError ?? new Error("TLS handshake failed"));
          socket.end();
          return;
        }
        const peerCertificate = mutual ? peerCertificateOf(socket.getPeerCertificate()) : undefined;
        try {
          new BunConnection(socket, "tls", { peerCertificate }).start(accept);
        } catch (error) {
          socket.end();
          options.onAcceptError?.(error as Error);
        }
      },
    };
    const listener = Bun.listen<SocketState>({
      hostname: options.hostname,
      port: options.port,
      tls: {
        cert: options.cert,
        key: options.key,
        ...(mutual ? { ca: options.ca, requestCert: true, rejectUnauthorized: true } : {}),
      },
      socket: handler,
    });
    return new BunListener(listener, "tls");
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    // Existing connections stay open: the broker closes them.
    this.#listener.stop(false);
  }
}

/** The handlers that only forward to a socket's connection. */
const connectionEvents: BunSocketHandler<SocketState> = {
  data(socket, chunk) {
    const state = socket.data;
    if (state instanceof BunConnection) state.receive(chunk);
  },
  drain(socket) {
    const state = socket.data;
    if (state instanceof BunConnection) state.drained();
  },
  close(socket, error) {
    const state = socket.data;
    if (state instanceof BunConnection) state.ended(error);
  },
  // Errors end in a close; the close handler reports them.
  error() {},
};

/** Starts reading a PROXY header, closing the socket when it is not complete in time. */
function readProxyHeader(
  socket: Socket,
  proxy: ProxyProtocolOptions,
  remote: string,
  onError: (reason: string, remoteAddress: string) => void,
): ProxyHeaderReader {
  return new ProxyHeaderReader(
    proxy.maxV2BlockBytes ?? DEFAULT_MAX_V2_BLOCK_BYTES,
    proxy.timeout,
    () => {
      if (socket.data instanceof BunConnection || socket.data === undefined) return;
      socket.data = undefined;
      onError("no complete PROXY header in time", remote);
      socket.end();
    },
  );
}

/**
 * Adds a chunk to a PROXY header being read: undefined while it is incomplete, else the client's
 * origin and the bytes after the header, or why the header is refused. Never buffers past the
 * header's bound: bytes of the chunk beyond it are handed over as they are.
 */
function proxyHeaderData(
  reader: ProxyHeaderReader,
  chunk: Uint8Array,
  proxy: ProxyProtocolOptions,
): { origin: Origin; rest: Uint8Array } | { reason: string } | undefined {
  const room = reader.buffer.length - reader.received;
  const taken = Math.min(room, chunk.length);
  reader.buffer.set(chunk.subarray(0, taken), reader.received);
  reader.received += taken;
  const bytes = reader.buffer.subarray(0, reader.received);
  const result = parseProxyHeader(bytes, {
    maxV2BlockBytes: proxy.maxV2BlockBytes ?? DEFAULT_MAX_V2_BLOCK_BYTES,
  });
  if (result.kind === "incomplete") {
    return reader.received < reader.buffer.length
      ? undefined
      : { reason: "PROXY header exceeds its bound" };
  }
  if (result.kind === "invalid") return { reason: result.reason };
  // A copy of the buffered rest (the buffer is not handed over), then the chunk's own rest.
  const buffered = reader.buffer.slice(result.length, reader.received);
  const unread = chunk.subarray(taken);
  let rest = unread;
  if (buffered.length > 0) {
    rest = new Uint8Array(buffered.length + unread.length);
    rest.set(buffered);
    rest.set(unread, buffered.length);
  }
  return {
    origin: { remoteAddress: result.source?.address, remotePort: result.source?.port },
    rest,
  };
}

function isPeerGone(error: Error | undefined): boolean {
  const code = (error as { code?: string } | undefined)?.code;
  return code === "ECONNRESET" || code === "EPIPE";
}
