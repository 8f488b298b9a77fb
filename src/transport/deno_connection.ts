import type {
  AcceptHandler,
  Connection,
  ConnectionHandler,
  PeerCertificate,
  TransportKind,
} from "./transport.ts";
import { WriteQueue } from "./write_queue.ts";

/** Smallest read buffer: an idle connection pins only this much while its read is pending. */
const MIN_READ_SIZE = 64;
/** Largest read buffer, reached after a few consecutive full reads (each one grows it 4x). */
const MAX_READ_SIZE = 64 * 1024;
/** Read size for a fresh connection: enough for a typical CONNECT in one read. */
const INITIAL_READ_SIZE = 1024;
/**
 * After `close()` has sent everything, the write side is shut and input is read and discarded for
 * at most this long (and {@linkcode LINGER_MAX_BYTES}) before the socket closes: closing a socket
 * with unread input makes the kernel answer with a reset, and a client still sending when the
 * broker's DISCONNECT or CONNACK went out would then never read why it was closed.
 */
const LINGER_MS = 2_000;
const LINGER_MAX_BYTES = 64 * 1024;

/** What the listener learned before handing the socket over (e.g. from a PROXY header). */
export interface DenoConnectionOrigin {
  /** The client's address when a trusted balancer reported it. */
  remoteAddress?: string;
  remotePort?: number;
  /** Bytes already read after the header; delivered first. */
  initialData?: Uint8Array;
}

/**
 * A `Connection` over a `Deno.Conn` (TCP or TLS).
 *
 * Reads use a fresh buffer each time (the zero-copy contract of `ConnectionHandler.onData`); its
 * size adapts to the traffic so idle connections stay small and busy ones read 64 KiB at once.
 * Writes are collected during a turn, flushed once from a microtask, and at most one OS write is in
 * flight; frames queued meanwhile go out together when it completes. Small frames are copied into
 * batches as they are written (see `WriteQueue`), so a caller's buffer is free when `write()`
 * returns unless it is large.
 */
export class DenoConnection implements Connection {
  readonly kind: TransportKind;
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly peerCertificate: PeerCertificate | undefined;
  #conn: Deno.Conn;
  #handler: ConnectionHandler | undefined;
  #queue = new WriteQueue();
  #writingBytes = 0;
  #flushScheduled = false;
  #closing = false;
  #closed = false;
  #flush = () => this.#flushQueue();
  #paused: PromiseWithResolvers<void> | undefined;
  #initialData: Uint8Array | undefined;
  /** Set once the write side is shut: input is discarded until the peer closes or time is up. */
  #lingering = false;
  #discarded = 0;
  #lingerTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    conn: Deno.Conn,
    kind: TransportKind,
    peerCertificate: PeerCertificate | undefined = undefined,
    origin: DenoConnectionOrigin = {},
  ) {
    this.#conn = conn;
    this.kind = kind;
    const addr = conn.remoteAddr as Deno.NetAddr;
    this.remoteAddress = origin.remoteAddress ?? addr.hostname ?? "";
    this.remotePort = origin.remotePort ?? addr.port ?? 0;
    this.#initialData = origin.initialData;
    this.peerCertificate = peerCertificate;
    if (kind === "tcp") (conn as Deno.TcpConn).setNoDelay(true);
  }

  get bufferedBytes(): number {
    return this.#queue.bytes + this.#writingBytes;
  }

  /** Starts the read loop, delivering events to the handler the broker returns. */
  start(accept: AcceptHandler): void {
    this.#handler = accept(this);
    this.#readLoop();
  }

  write(bytes: Uint8Array): void {
    if (this.#closing || this.#closed) return;
    this.#queue.push(bytes);
    if (!this.#flushScheduled && this.#writingBytes === 0) {
      this.#flushScheduled = true;
      queueMicrotask(this.#flush);
    }
  }

  pause(): void {
    this.#paused ??= Promise.withResolvers<void>();
  }

  resume(): void {
    const paused = this.#paused;
    this.#paused = undefined;
    paused?.resolve();
  }

  close(): void {
    if (this.#closing || this.#closed) return;
    this.#closing = true;
    if (this.#writingBytes === 0 && this.#queue.bytes === 0) this.#linger();
    else if (!this.#flushScheduled && this.#writingBytes === 0) {
      this.#flushScheduled = true;
      queueMicrotask(this.#flush);
    }
  }

  /** Everything was sent: shut the write side, drain input for a bounded while, then close. */
  #linger(): void {
    if (this.#closed || this.#lingering) return;
    this.#lingering = true;
    try {
      (this.#conn as Deno.TcpConn).closeWrite();
    } catch {
      this.#closeSocket(); // The peer is gone already.
      return;
    }
    this.#lingerTimer = setTimeout(() => this.#closeSocket(), LINGER_MS);
    this.resume(); // Input held by the broker would otherwise stay unread.
  }

  destroy(): void {
    this.#queue.clear();
    this.#closing = true;
    this.#closeSocket();
  }

  #closeSocket(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#lingerTimer !== undefined) clearTimeout(this.#lingerTimer);
    this.resume();
    try {
      this.#conn.close();
    } catch {
      // Already closed by the peer or a failed write; nothing left to release.
    }
  }

  async #readLoop(): Promise<void> {
    const handler = this.#handler!;
    let size = INITIAL_READ_SIZE;
    let error: Error | undefined;
    try {
      const initial = this.#initialData;
      this.#initialData = undefined;
      if (initial !== undefined && initial.length > 0) handler.onData(initial);
      while (!this.#closed) {
        if (this.#paused) await this.#paused.promise;
        if (this.#closed) break;
        const buffer = new Uint8Array(size);
        const n = await this.#conn.read(buffer);
        if (n === null || this.#closed) break;
        if (this.#closing) {
          // Closing: what the peer still sends is read only so it does not turn into a reset.
          this.#discarded += n;
          if (this.#discarded > LINGER_MAX_BYTES) break;
          continue;
        }
        // A read already waiting when pause() was called delivers only after resume().
        if (this.#paused) await this.#paused.promise;
        if (this.#closed) break;
        handler.onData(buffer.subarray(0, n));
        if (n === size) size = Math.min(size * 4, MAX_READ_SIZE);
        else if (n < size >>> 2) size = nextReadSize(n);
      }
    } catch (err) {
      if (!this.#closed && !isClosedError(err)) error = err as Error;
    }
    this.#queue.clear();
    this.#closeSocket();
    handler.onClose(error);
  }

  async #flushQueue(): Promise<void> {
    this.#flushScheduled = false;
    try {
      while (!this.#closed) {
        const data = this.#queue.take();
        if (data === undefined) break;
        this.#writingBytes = data.length;
        let offset = 0;
        while (offset < data.length) {
          offset += await this.#conn.write(offset === 0 ? data : data.subarray(offset));
        }
        this.#writingBytes = 0;
        this.#queue.written();
      }
      this.#handler?.onDrain?.();
    } catch {
      // A failed write means the peer is gone; the read loop reports the close.
      this.#writingBytes = 0;
      this.destroy();
      return;
    }
    if (this.#closing) this.#linger();
  }
}

/**
 * The read size after a short read of `n` bytes: twice `n` rounded up to a power of two. After
 * CONNECT an idle client's pending read then holds 64 bytes instead of a kilobyte or more.
 */
function nextReadSize(n: number): number {
  let size = MIN_READ_SIZE;
  while (size < n * 2 && size < MAX_READ_SIZE) size *= 2;
  return size;
}

function isClosedError(err: unknown): boolean {
  return err instanceof Deno.errors.BadResource ||
    err instanceof Deno.errors.Interrupted ||
    err instanceof Deno.errors.ConnectionReset ||
    err instanceof Deno.errors.BrokenPipe ||
    err instanceof Deno.errors.NotConnected;
}
