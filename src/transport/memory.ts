/**
 * An in-process `Connection` with no socket: a test or tool pushes bytes in and reads what the
 * broker wrote. It follows the transport contract (push-based, pause holds input, each pushed
 * chunk is never reused), so the broker cannot tell it from a socket; fuzzing uses it to run
 * many thousands of sessions a second.
 *
 * @module
 */

import type { AcceptHandler, Connection, ConnectionHandler, TransportKind } from "./transport.ts";

/** Options for {@linkcode MemoryConnection}. */
export interface MemoryConnectionOptions {
  remoteAddress?: string;
  remotePort?: number;
  /** Receives every frame the broker writes; without it writes are only counted. */
  onWrite?: (bytes: Uint8Array) => void;
}

/** One in-memory connection. */
export class MemoryConnection implements Connection {
  readonly kind: TransportKind = "memory";
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly peerCertificate = undefined;
  readonly bufferedBytes = 0;
  /** Bytes the broker wrote. */
  bytesWritten = 0;
  #handler: ConnectionHandler | undefined;
  #onWrite: ((bytes: Uint8Array) => void) | undefined;
  #held: Uint8Array[] = [];
  #paused = false;
  #closed = false;

  constructor(options: MemoryConnectionOptions = {}) {
    this.remoteAddress = options.remoteAddress ?? "127.0.0.1";
    this.remotePort = options.remotePort ?? 0;
    this.#onWrite = options.onWrite;
  }

  /** True once either side closed it. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Hands the connection to the broker. */
  start(accept: AcceptHandler): void {
    this.#handler = accept(this);
  }

  /** Delivers bytes as if they arrived from the network (held while paused). */
  push(chunk: Uint8Array): void {
    if (this.#closed) return;
    if (this.#paused) this.#held.push(chunk);
    else this.#handler!.onData(chunk);
  }

  /** The client side closes: the broker sees the connection end. */
  end(): void {
    this.#close();
  }

  write(bytes: Uint8Array): void {
    if (this.#closed) return;
    this.bytesWritten += bytes.length;
    this.#onWrite?.(bytes);
  }

  pause(): void {
    this.#paused = true;
  }

  resume(): void {
    this.#paused = false;
    while (this.#held.length > 0 && !this.#paused && !this.#closed) {
      this.#handler!.onData(this.#held.shift()!);
    }
  }

  close(): void {
    this.#close();
  }

  destroy(): void {
    this.#close();
  }

  #close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#held = [];
    this.#handler?.onClose();
  }
}
