/**
 * Plain TCP on Deno through the native stream handle under `node:net` (the `TCP` class of the
 * `tcp_wrap` binding, reached with `process.binding`), not through `Deno.Conn`.
 *
 * Why: a `Deno.Conn` only learns of input through a pending `read()`, and one pending read per
 * idle connection costs ~3 KiB of RSS (the op's future, its promise and buffer; measured with the
 * bench's floor server, `FLOOR_STRATEGY=read` against `none`). The native handle is told by the
 * runtime when its socket is readable and then reads into a buffer of the size that arrived: an
 * idle connection holds no read, no promise and no buffer (2.4 KiB per idle connection at 10,000
 * against 5.0 for `Deno.Conn`, `FLOOR_STRATEGY=handle`). `node:net` itself sits on this handle but
 * adds a stream object per socket (4.1 KiB).
 *
 * The binding is not a public API of Deno: {@linkcode handleBinding} checks for every member used
 * and `deno_sockets.ts` falls back to `Deno.listen` when one is missing. The calling convention is
 * Node's (libuv style): callbacks with a status (0 or a negative errno), the byte count of a read
 * in a shared state array, no `oncomplete` for a write done at once.
 *
 * Out of file descriptors (Deno 2.9.6), the runtime's accept fails without calling `onconnection`
 * and the listening handle announces nothing again, even once descriptors are free. A new
 * listening handle on the same address does accept again, so the listener watches itself: see
 * {@linkcode HandleListener}.
 *
 * @module
 */

import { isIP } from "node:net";
import process from "node:process";
import type { TcpListenOptions } from "./sockets.ts";
import type {
  AcceptHandler,
  Connection,
  ConnectionHandler,
  Listener,
  TransportKind,
} from "./transport.ts";
import { WriteQueue } from "./write_queue.ts";

/** As in `deno_connection.ts`: after a close, input is drained this long before the socket closes. */
const LINGER_MS = 2_000;
const LINGER_MAX_BYTES = 64 * 1024;
/** libuv's end-of-stream status. */
const UV_EOF = -4095;
const BACKLOG = 511;
/** Read statuses that mean the peer went away: reported as a plain close. */
const PEER_GONE = new Set(["ECONNRESET", "EPIPE", "ENOTCONN", "ECANCELED", "EBADF"]);

/** The native socket handle, as far as it is used here. */
interface NativeSocket {
  onread: ((this: NativeSocket, buffer: ArrayBuffer | undefined) => void) | null;
  /** The connection reading it (set by `HandleConnection`). */
  owner?: HandleConnection;
  onconnection: ((status: number) => void) | null;
  bind(host: string, port: number): number;
  bind6(host: string, port: number, flags: number): number;
  listen(backlog: number): number;
  accept(socket: NativeSocket): number;
  getsockname(out: { address?: string; port?: number }): number;
  getpeername(out: { address?: string; port?: number }): number;
  connect(request: NativeRequest, host: string, port: number): number;
  connect6(request: NativeRequest, host: string, port: number): number;
  setNoDelay(noDelay: boolean): number;
  readStart(): number;
  readStop(): number;
  writeBuffer(request: NativeRequest, bytes: Uint8Array): number;
  shutdown(request: NativeRequest): number;
  close(callback?: () => void): void;
}

/** A write or shutdown request: `oncomplete(status)` when done. */
interface NativeRequest {
  handle: NativeSocket;
  oncomplete: (status: number) => void;
}

/** A write request: `writer` is the handle that made it, until it completed. */
interface WriteRequest extends NativeRequest {
  writer: HandleConnection | undefined;
}

/** What is used of the bindings. */
export interface HandleBinding {
  newSocket(): NativeSocket;
  newServer(): NativeSocket;
  newWrite(): NativeRequest;
  newShutdown(): NativeRequest;
  newConnect(): NativeRequest;
  /** Byte count (or negative status) of the read being delivered. */
  readResult(): number;
  /** Offset of the read's bytes in the buffer delivered. */
  readOffset(): number;
  /** Whether the last write is still in progress (its `oncomplete` will follow). */
  lastWriteAsync(): boolean;
  /** The message of a negative status. */
  message(status: number): string;
}

let binding: HandleBinding | null | undefined;

/**
 * The native handle's bindings, or `null` when this runtime does not have them all (not Deno, or a
 * Deno whose internals changed).
 */
export function handleBinding(): HandleBinding | null {
  if (binding !== undefined) return binding;
  binding = null;
  try {
    if (!("Deno" in globalThis) || "Bun" in globalThis) return null;
    const bind = (process as unknown as { binding?: (name: string) => Record<string, unknown> })
      .binding;
    if (typeof bind !== "function") return null;
    const tcp = bind("tcp_wrap");
    const stream = bind("stream_wrap");
    const uv = bind("uv");
    const TCP = tcp.TCP as new (type: number) => NativeSocket;
    const constants = tcp.constants as { SOCKET: number; SERVER: number };
    const WriteWrap = stream.WriteWrap as new () => NativeRequest;
    const ShutdownWrap = stream.ShutdownWrap as new () => NativeRequest;
    const ConnectWrap = tcp.TCPConnectWrap as new () => NativeRequest;
    const state = stream.streamBaseState as Int32Array;
    const readBytes = stream.kReadBytesOrError as number;
    const readOffset = stream.kArrayBufferOffset as number;
    const lastAsync = stream.kLastWriteWasAsync as number;
    const errname = uv.errname as ((status: number) => string) | undefined;
    if (
      typeof TCP !== "function" || typeof WriteWrap !== "function" ||
      typeof ShutdownWrap !== "function" || typeof ConnectWrap !== "function" ||
      !(state instanceof Int32Array) ||
      typeof constants?.SOCKET !== "number" || typeof constants?.SERVER !== "number" ||
      ![readBytes, readOffset, lastAsync].every((i) => Number.isInteger(i))
    ) return null;
    const proto = TCP.prototype as Record<string, unknown>;
    const methods = [
      "bind",
      "bind6",
      "listen",
      "accept",
      "getsockname",
      "getpeername",
      "connect",
      "connect6",
      "setNoDelay",
      "readStart",
      "readStop",
      "writeBuffer",
      "shutdown",
      "close",
    ];
    if (!methods.every((name) => typeof proto[name] === "function")) return null;
    binding = {
      newSocket: () => new TCP(constants.SOCKET),
      newServer: () => new TCP(constants.SERVER),
      newWrite: () => new WriteWrap(),
      newShutdown: () => new ShutdownWrap(),
      newConnect: () => new ConnectWrap(),
      readResult: () => state[readBytes],
      readOffset: () => state[readOffset],
      lastWriteAsync: () => state[lastAsync] !== 0,
      message: (status) => {
        try {
          return errname?.(status) ?? `error ${status}`;
        } catch {
          return `error ${status}`;
        }
      },
    };
  } catch {
    binding = null;
  }
  return binding;
}

/**
 * Whether {@linkcode HandleListener} can listen with these options: asked for
 * (`nativeHandle: true`), the bindings are there, the host is an IP address (the handle does not
 * resolve names) and no PROXY header is expected (that path reads through `Deno.Conn`).
 */
export function handleListenerSupports(options: TcpListenOptions): boolean {
  return options.nativeHandle === true && handleBinding() !== null &&
    isIP(options.hostname) !== 0 && options.proxyProtocol === undefined;
}

/**
 * How long a listener may go without a new connection before it checks it still accepts. Only a
 * listener with nothing to accept checks: one that accepted since the last look is known to work.
 */
const WATCH_MS = 5_000;
/** How long the check's own connection may wait to be accepted before the listener is renewed. */
const PROBE_MS = 2_000;

/** The address a listener's check connects from and to: loopback for a wildcard address. */
function probeHost(host: string): string {
  if (host === "0.0.0.0") return "127.0.0.1";
  if (host === "::" || host === "::0") return "::1";
  return host;
}

/**
 * A plain TCP listener over the native handle, feeding each connection to `accept`.
 *
 * It watches itself, because the runtime's listening handle stops accepting for good once an
 * accept failed for want of file descriptors (above): every {@linkcode WATCH_MS} in which nothing
 * was accepted it connects to itself, from a port it knows before connecting (a socket bound
 * first); the connection it then accepts from that port is closed at once and never reaches the
 * broker. When that connection is not accepted within {@linkcode PROBE_MS} and nothing else was
 * either, the listening handle is replaced by a new one on the same address, which accepts again
 * (connections waiting in the old one's queue are refused), and the renewal is reported through
 * `onAcceptError`. While descriptors are still exhausted the check cannot connect and tries again
 * later. An idle broker pays one loopback connection per {@linkcode WATCH_MS}.
 */
export class HandleListener implements Listener {
  readonly kind: TransportKind = "tcp";
  readonly hostname: string;
  readonly port: number;
  #native: HandleBinding;
  #accept: AcceptHandler;
  #onAcceptError: (error: Error) => void;
  #server: NativeSocket;
  #closed = false;
  /** Connections accepted so far (the check's own included): what shows the listener works. */
  #accepted = 0;
  #acceptedAtLastLook = 0;
  #watch: ReturnType<typeof setInterval>;
  /** The check in progress: its socket, the port it connects from, when it began. */
  #probe: { socket: NativeSocket; port: number; since: number; accepted: number } | undefined;
  /** Listening handles renewed (for tests and the log). */
  renewals = 0;

  private constructor(
    native: HandleBinding,
    server: NativeSocket,
    hostname: string,
    port: number,
    accept: AcceptHandler,
    onAcceptError: (error: Error) => void,
  ) {
    this.#native = native;
    this.#server = server;
    this.hostname = hostname;
    this.port = port;
    this.#accept = accept;
    this.#onAcceptError = onAcceptError;
    server.onconnection = (status) => this.#onConnection(server, status);
    this.#watch = setInterval(() => this.#look(), WATCH_MS);
    // The check never keeps the process alive (Deno's timers are numbers).
    Deno.unrefTimer(this.#watch as unknown as number);
  }

  /**
   * Listens for plain TCP connections; throws when the address cannot be bound.
   * Check {@linkcode handleListenerSupports} first.
   */
  static tcp(options: TcpListenOptions, accept: AcceptHandler): HandleListener {
    const native = handleBinding();
    if (native === null) throw new Error("the native TCP handle is not available");
    const server = listenOn(native, options.hostname, options.port);
    if (typeof server === "string") throw new Error(server);
    const address: { address?: string; port?: number } = {};
    server.getsockname(address);
    return new HandleListener(
      native,
      server,
      address.address ?? options.hostname,
      address.port ?? 0,
      accept,
      options.onAcceptError ?? (() => {}),
    );
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#watch);
    this.#endProbe();
    this.#server.onconnection = null;
    this.#server.close();
  }

  #onConnection(server: NativeSocket, status: number): void {
    if (status !== 0) {
      return this.#onAcceptError(new Error(`accept failed: ${this.#native.message(status)}`));
    }
    const socket = this.#native.newSocket();
    const accepted = server.accept(socket);
    if (accepted !== 0) {
      return this.#onAcceptError(
        new Error(`accept failed: ${this.#native.message(accepted)}`),
      );
    }
    this.#accepted++;
    const peer: { address?: string; port?: number } = {};
    socket.getpeername(peer);
    const probe = this.#probe;
    if (
      probe !== undefined && peer.port === probe.port && peer.address === probeHost(this.hostname)
    ) {
      // The check's own connection: the listener works.
      socket.close();
      this.#endProbe();
      return;
    }
    try {
      new HandleConnection(this.#native, socket, peer).start(this.#accept);
    } catch (err) {
      // One bad connection must not stop the listener.
      socket.close();
      this.#onAcceptError(err as Error);
    }
  }

  /** The periodic look: nothing to do after accepting; else check, or judge the check. */
  #look(): void {
    if (this.#closed) return;
    const probe = this.#probe;
    if (probe !== undefined) {
      if (this.#accepted !== probe.accepted) return this.#endProbe(); // Accepting others.
      if (Date.now() - probe.since < PROBE_MS) return;
      this.#endProbe();
      this.#renew();
      return;
    }
    if (this.#accepted !== this.#acceptedAtLastLook) {
      this.#acceptedAtLastLook = this.#accepted;
      return;
    }
    this.#startProbe();
  }

  /** Connects to the listener from a port bound first, so its accept can be recognised. */
  #startProbe(): void {
    const native = this.#native;
    const host = probeHost(this.hostname);
    const v6 = isIP(host) === 6;
    const socket = native.newSocket();
    const local: { address?: string; port?: number } = {};
    // Out of descriptors the bind fails: try again at the next look.
    if (
      (v6 ? socket.bind6(host, 0, 0) : socket.bind(host, 0)) !== 0 ||
      socket.getsockname(local) !== 0
    ) {
      socket.close();
      return;
    }
    const request = native.newConnect();
    request.handle = socket;
    request.oncomplete = () => {};
    if (
      (v6
        ? socket.connect6(request, host, this.port)
        : socket.connect(request, host, this.port)) !== 0
    ) {
      socket.close();
      return;
    }
    this.#probe = { socket, port: local.port ?? 0, since: Date.now(), accepted: this.#accepted };
    // A look soon after the check's time is up, not a whole watch period later.
    Deno.unrefTimer(setTimeout(() => this.#look(), PROBE_MS + 10) as unknown as number);
  }

  #endProbe(): void {
    const probe = this.#probe;
    if (probe === undefined) return;
    this.#probe = undefined;
    this.#acceptedAtLastLook = this.#accepted;
    probe.socket.close();
  }

  /** Replaces the listening handle by a new one on the same address (retried at the next look). */
  #renew(): void {
    this.#server.onconnection = null;
    this.#server.close();
    const server = listenOn(this.#native, this.hostname, this.port);
    if (typeof server === "string") {
      // Not listening now: the next look tries again.
      this.#server = { onconnection: null, close() {} } as unknown as NativeSocket;
      this.#probe = undefined;
      this.#onAcceptError(
        new Error(`the listener stopped accepting and cannot listen again yet: ${server}`),
      );
      return;
    }
    this.renewals++;
    this.#server = server;
    server.onconnection = (status) => this.#onConnection(server, status);
    this.#acceptedAtLastLook = this.#accepted;
    this.#onAcceptError(
      new Error("the listener stopped accepting (out of file descriptors?): listening again"),
    );
  }
}

/** A listening handle on `host:port`, or why there is none. */
function listenOn(native: HandleBinding, host: string, port: number): NativeSocket | string {
  const server = native.newServer();
  const failed = (status: number, what: string) => {
    server.close();
    return `${what} ${host}:${port}: ${native.message(status)}`;
  };
  let status = isIP(host) === 6 ? server.bind6(host, port, 0) : server.bind(host, port);
  if (status !== 0) return failed(status, "cannot bind");
  status = server.listen(BACKLOG);
  if (status !== 0) return failed(status, "cannot listen on");
  return server;
}

/**
 * A `Connection` over the native handle. Reads are pushed by the runtime (`onread`), each into a
 * fresh buffer of the size read, so chunks are never reused (the zero-copy contract) and an idle
 * connection holds no buffer. `pause()` stops reading at the socket (TCP pushes back). Writes are
 * queued as in `DenoConnection`: collected during a turn, flushed once from a microtask, at most one
 * native write in flight.
 */
export class HandleConnection implements Connection {
  readonly kind: TransportKind = "tcp";
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly peerCertificate = undefined;
  #native: HandleBinding;
  #socket: NativeSocket;
  #handler: ConnectionHandler | undefined;
  /** Created on the first write: an idle connection that never wrote holds none. */
  #queue: WriteQueue | undefined;
  #writingBytes = 0;
  #flushScheduled = false;
  #paused = false;
  /** 0 open; 1 closing (flushing, then lingering); 2 closed. */
  #state = 0;
  #lingering = false;
  #discarded = 0;
  #lingerTimer: ReturnType<typeof setTimeout> | undefined;
  #error: Error | undefined;

  constructor(
    native: HandleBinding,
    socket: NativeSocket,
    peer: { address?: string; port?: number },
  ) {
    this.#native = native;
    this.#socket = socket;
    this.remoteAddress = peer.address ?? "";
    this.remotePort = peer.port ?? 0;
    socket.setNoDelay(true);
  }

  get bufferedBytes(): number {
    return (this.#queue?.bytes ?? 0) + this.#writingBytes;
  }

  /** Starts reading, delivering events to the handler the broker returns. */
  start(accept: AcceptHandler): void {
    this.#handler = accept(this);
    // One function for every socket rather than a closure each: it finds its connection.
    this.#socket.owner = this;
    this.#socket.onread = onHandleRead;
    if (this.#state === 0 && !this.#paused) this.#socket.readStart();
  }

  write(bytes: Uint8Array): void {
    if (this.#state !== 0) return;
    (this.#queue ??= new WriteQueue()).push(bytes);
    unflushedBytes += bytes.length;
    this.#scheduleFlush();
  }

  pause(): void {
    if (this.#paused) return;
    this.#paused = true;
    if (this.#state !== 2) this.#socket.readStop();
  }

  resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    if (this.#state !== 2 && this.#handler !== undefined) this.#socket.readStart();
  }

  close(): void {
    if (this.#state !== 0) return;
    this.#state = 1;
    if (this.bufferedBytes === 0) this.#linger();
    else this.#scheduleFlush();
  }

  destroy(): void {
    this.#queue?.clear();
    this.#finish();
  }

  #scheduleFlush(): void {
    if (this.#flushScheduled || this.#writingBytes !== 0) return;
    this.#flushScheduled = true;
    toFlush.push(this);
    if (toFlush.length === 1) queueMicrotask(flushAll);
  }

  /**
   * Writes queued buffers one at a time, synchronously while the native writes complete at once.
   * Called by {@linkcode flushAll}.
   */
  flush(): void {
    if (!this.#flushScheduled) return;
    this.#flushScheduled = false;
    this.#flushNow();
  }

  /**
   * A write's `oncomplete`, one function for every write: a closure per write (and the context
   * V8 makes for it at every call of `#flushNow`) was an allocation per flush.
   */
  static readonly #writeDone = function (this: WriteRequest, status: number): void {
    const handle = this.writer;
    if (handle === undefined) return; // Completed already (at once, or failed to start).
    this.writer = undefined;
    handle.#written(status);
    if (status === 0) handle.#flushNow();
  };

  #flushNow(): void {
    const queue = this.#queue;
    while (this.#state !== 2 && this.#writingBytes === 0) {
      const data = queue?.take();
      if (data === undefined) break;
      this.#writingBytes = data.length;
      const request = this.#native.newWrite() as WriteRequest;
      request.handle = this.#socket;
      request.writer = this;
      request.oncomplete = HandleConnection.#writeDone;
      const status = this.#socket.writeBuffer(request, data);
      if (status !== 0) {
        request.writer = undefined;
        this.#written(status);
        return;
      }
      if (this.#native.lastWriteAsync()) return; // oncomplete follows.
      request.writer = undefined;
      this.#written(0);
    }
    if (this.#state === 2 || this.#writingBytes !== 0) return;
    if (this.#queue?.bytes === 0) {
      // An idle connection keeps no queue.
      this.#queue = undefined;
      this.#handler?.onDrain?.();
    }
    if (this.#state === 1) this.#linger();
  }

  #written(status: number): void {
    this.#writingBytes = 0;
    if (status !== 0) {
      // A failed write means the peer is gone.
      this.destroy();
      return;
    }
    this.#queue?.written();
  }

  /** Bytes arrived, or the stream ended (`buffer` undefined). Called by {@linkcode onHandleRead}. */
  onRead(buffer: ArrayBuffer | undefined): void {
    if (this.#state === 2) return;
    const n = this.#native.readResult();
    if (buffer === undefined || n < 0) {
      const reason = n < 0 ? this.#native.message(n) : "";
      // As for `Deno.Conn`: the peer going away is a close, not an error.
      if (n !== UV_EOF && n < 0 && !PEER_GONE.has(reason)) {
        this.#error = new Error(`read failed: ${reason}`);
      }
      this.#finish();
      return;
    }
    if (n === 0) return;
    if (this.#state === 1) {
      // Closing: what the peer still sends is read only so it does not turn into a reset.
      this.#discarded += n;
      if (this.#discarded > LINGER_MAX_BYTES) this.#finish();
      return;
    }
    try {
      this.#handler!.onData(new Uint8Array(buffer, this.#native.readOffset(), n));
    } catch (err) {
      this.#error = err as Error;
      this.destroy();
    }
  }

  /** Everything was sent: shut the write side, drain input for a bounded while, then close. */
  #linger(): void {
    if (this.#state === 2 || this.#lingering) return;
    this.#lingering = true;
    const request = this.#native.newShutdown();
    request.handle = this.#socket;
    request.oncomplete = () => {};
    if (this.#socket.shutdown(request) !== 0) {
      this.#finish(); // The peer is gone already.
      return;
    }
    this.#lingerTimer = setTimeout(() => this.#finish(), LINGER_MS);
    // Input held back by a pause would otherwise stay unread.
    if (this.#paused) {
      this.#paused = false;
      this.#socket.readStart();
    }
  }

  /** Closes the socket and reports the close once. */
  #finish(): void {
    if (this.#state === 2) return;
    this.#state = 2;
    if (this.#lingerTimer !== undefined) clearTimeout(this.#lingerTimer);
    this.#queue = undefined;
    this.#writingBytes = 0;
    this.#socket.onread = null;
    this.#socket.owner = undefined;
    this.#socket.close();
    const handler = this.#handler;
    const error = this.#error;
    this.#error = undefined;
    // Later, as a `Deno.Conn` read loop would: not from inside the broker's own destroy().
    if (handler !== undefined) queueMicrotask(() => handler.onClose(error));
  }
}

/** Connections with writes queued since the last flush. */
let toFlush: HandleConnection[] = [];
/** Bytes written by the broker since the last flush, over all connections. */
let unflushedBytes = 0;
/**
 * Past this many unflushed bytes a read flushes at once. Below it the writes wait for the microtask
 * that follows the poll, so the answers to several reads (a subscriber's messages from several
 * publishers) leave in one write per connection.
 */
export const FLUSH_AFTER_READ_BYTES = 64 * 1024;

/**
 * Flushes every connection written to since the last flush. Runs from a microtask, and after a
 * read once {@linkcode FLUSH_AFTER_READ_BYTES} wait: the runtime delivers all reads of one poll (up
 * to a megabyte and more over many connections) before it runs microtasks, and what they answer
 * must go out between them, as with `Deno.Conn` (where every read resumes a promise), or write
 * queues pass their bounds.
 */
function flushAll(): void {
  unflushedBytes = 0;
  while (toFlush.length > 0) {
    const connections = toFlush;
    toFlush = [];
    for (const connection of connections) connection.flush();
  }
}

/** The `onread` of every socket: hands the read to the socket's connection, then maybe flushes. */
function onHandleRead(this: NativeSocket, buffer: ArrayBuffer | undefined): void {
  this.owner?.onRead(buffer);
  if (unflushedBytes >= FLUSH_AFTER_READ_BYTES) flushAll();
}
