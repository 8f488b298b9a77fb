/**
 * MQTT over WebSocket on Deno: `Deno.upgradeWebSocket` turns a request the gate admitted into a
 * `Connection` for the same `broker.accept` the TCP listeners feed (same limits, authentication
 * and ACL). Which requests are admitted is decided in `websocket.ts`, the same on every runtime.
 *
 * @module
 */

import type { Admission, WebSocketGate } from "./websocket.ts";
import { WriteQueue } from "./write_queue.ts";
import type { AcceptHandler, Connection, ConnectionHandler, TransportKind } from "./transport.ts";

/**
 * The WebSocket API has no drain event: while bytes are buffered, `bufferedAmount` is checked at
 * this interval to tell the broker when they are gone.
 */
const DRAIN_POLL_MS = 10;

/** Upgrades an admitted request and hands the connection to the broker; returns the 101 reply. */
export function upgradeDenoWebSocket(
  request: Request,
  admission: Admission,
  gate: WebSocketGate,
  accept: AcceptHandler,
): Response {
  const { protocol } = admission;
  const { socket, response } = Deno.upgradeWebSocket(request, protocol ? { protocol } : {});
  const connection = new DenoWebSocketConnection(socket, {
    kind: gate.kind,
    remoteAddress: admission.remoteAddress,
    remotePort: admission.remotePort,
    maxPausedBytes: gate.maxPausedBytes,
    onClosed: () => gate.closed(),
  });
  gate.opened();
  connection.start(accept);
  return response;
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
