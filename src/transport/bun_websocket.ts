/**
 * MQTT over WebSocket on Bun: a `Connection` over a `ServerWebSocket` of `Bun.serve`, for the same
 * `broker.accept` the TCP listeners feed. Which requests are upgraded is decided in
 * `websocket.ts`, the same on every runtime; `bun_http.ts` performs the upgrade.
 *
 * @module
 */

import type { BunServerWebSocket } from "./bun_api.ts";
import type { Admission, WebSocketGate } from "./websocket.ts";
import { WriteQueue } from "./write_queue.ts";
import type { AcceptHandler, Connection, ConnectionHandler, TransportKind } from "./transport.ts";

/** What a Bun WebSocket carries: its connection. */
export interface BunWebSocketData {
  connection: BunWebSocketConnection;
}

/**
 * A `Connection` over a Bun server WebSocket. Each binary message is one fresh chunk (Bun copies
 * it out of its receive buffer). Writes go through the same `WriteQueue` as TCP, one binary
 * message per batch; `send()` copies the bytes, so a batch buffer is free at once, and a send
 * that meets backpressure stops the flush until the `drain` handler. `pause()` stops Bun reading
 * the socket (TCP pushes back); messages Bun had already read are held, up to a bound.
 */
export class BunWebSocketConnection implements Connection {
  readonly kind: TransportKind;
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly peerCertificate = undefined;
  #gate: WebSocketGate;
  #accept: AcceptHandler;
  #ws: BunServerWebSocket<BunWebSocketData> | undefined;
  #handler: ConnectionHandler | undefined;
  #queue = new WriteQueue();
  #flushScheduled = false;
  /** A send met backpressure: wait for `drain`. */
  #blocked = false;
  #closing = false;
  #closed = false;
  #paused = false;
  #held: Uint8Array[] = [];
  #heldBytes = 0;
  #flush = () => this.#flushQueue();

  constructor(admission: Admission, gate: WebSocketGate, accept: AcceptHandler) {
    this.kind = gate.kind;
    this.remoteAddress = admission.remoteAddress;
    this.remotePort = admission.remotePort;
    this.#gate = gate;
    this.#accept = accept;
  }

  get bufferedBytes(): number {
    return this.#queue.bytes + (this.#ws?.getBufferedAmount() ?? 0);
  }

  /** The upgrade completed (the `open` handler): the broker gets the connection. */
  opened(ws: BunServerWebSocket<BunWebSocketData>): void {
    this.#ws = ws;
    ws.binaryType = "uint8array";
    this.#gate.opened();
    this.#handler = this.#accept(this);
  }

  write(bytes: Uint8Array): void {
    if (this.#closing || this.#closed) return;
    this.#queue.push(bytes);
    if (!this.#flushScheduled && !this.#blocked) {
      this.#flushScheduled = true;
      queueMicrotask(this.#flush);
    }
  }

  pause(): void {
    if (this.#paused || this.#closed) return;
    this.#paused = true;
    this.#ws?.pause();
  }

  resume(): void {
    if (!this.#paused || this.#closed) return;
    this.#paused = false;
    while (this.#held.length > 0 && !this.#paused && !this.#closed) {
      const chunk = this.#held.shift()!;
      this.#heldBytes -= chunk.length;
      this.#handler!.onData(chunk);
    }
    if (!this.#paused && !this.#closed) this.#ws?.resume();
  }

  close(): void {
    if (this.#closing || this.#closed) return;
    this.#closing = true;
    if (this.bufferedBytes === 0) this.#ws?.close(1000);
    else if (!this.#blocked) this.#flushQueue();
  }

  destroy(): void {
    this.#queue.clear();
    this.#closing = true;
    this.#ws?.close(1000);
  }

  /** A message arrived (the `message` handler). */
  received(message: string | Uint8Array): void {
    if (this.#closed) return;
    if (typeof message === "string") {
      // [MQTT-6.0.0-1]: MQTT travels in binary frames; a text frame closes the connection.
      this.#ws?.close(1003, "MQTT needs binary frames");
      return;
    }
    if (!this.#paused) {
      this.#handler!.onData(message);
      return;
    }
    this.#held.push(message);
    this.#heldBytes += message.length;
    if (this.#heldBytes > this.#gate.maxPausedBytes) {
      this.#ws?.close(1008, "Too much data while paused");
    }
  }

  /** Bun has sent what backpressure held (the `drain` handler). */
  drained(): void {
    this.#blocked = false;
    this.#flushQueue();
  }

  /** The socket closed (the `close` handler). */
  ended(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#queue.clear();
    this.#held = [];
    this.#heldBytes = 0;
    if (this.#ws === undefined) return; // Closed before it opened: the broker never had it.
    this.#ws = undefined;
    this.#gate.closed();
    this.#handler?.onClose();
  }

  #flushQueue(): void {
    this.#flushScheduled = false;
    const ws = this.#ws;
    if (ws === undefined || this.#closed || this.#blocked) return;
    for (let data = this.#queue.take(); data !== undefined; data = this.#queue.take()) {
      const sent = ws.send(data);
      this.#queue.written();
      if (sent === 0) {
        this.destroy(); // Dropped: past Bun's own backpressure limit, the peer is gone or stuck.
        return;
      }
      if (sent < 0) {
        this.#blocked = true;
        return;
      }
    }
    if (this.#closing) {
      if (ws.getBufferedAmount() === 0) ws.close(1000);
      else this.#blocked = true; // Close after the drain.
    } else if (ws.getBufferedAmount() === 0) this.#handler?.onDrain?.();
    else this.#blocked = true;
  }
}

/** Starts an upgrade: the connection object the `open` handler will receive. */
export function bunWebSocketData(
  admission: Admission,
  gate: WebSocketGate,
  accept: AcceptHandler,
): BunWebSocketData {
  return { connection: new BunWebSocketConnection(admission, gate, accept) };
}
