/**
 * A WebSocket client written against the wire format (RFC 6455), so tests control every frame:
 * MQTT packets split across frames, several packets in one frame, fragmented messages, text
 * frames, and request headers such as `X-Forwarded-For`. It implements the `ByteStream` a
 * `TestClient` talks over: `write()` sends one binary frame, `read()` returns one message.
 *
 * @module
 */

import type { ByteStream } from "./test_client.ts";

/** Frame opcodes (RFC 6455 section 5.2). */
export const Opcode = {
  Continuation: 0x0,
  Text: 0x1,
  Binary: 0x2,
  Close: 0x8,
  Ping: 0x9,
  Pong: 0xa,
} as const;

export interface RawWebSocketOptions {
  path?: string;
  /** Subprotocols offered; none sends no `Sec-WebSocket-Protocol` header. */
  protocols?: string[];
  headers?: Record<string, string>;
}

/** The server's answer to the upgrade request. */
export interface HandshakeResponse {
  status: number;
  headers: Headers;
  body: string;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A client-side WebSocket over a raw TCP connection. */
export class RawWebSocket implements ByteStream {
  readonly conn: Deno.Conn;
  /** The close code the server sent, once it closed. */
  closeCode: number | undefined;
  #buffer: Uint8Array;
  #message: Uint8Array[] = [];
  #closed = false;

  private constructor(conn: Deno.Conn, leftover: Uint8Array) {
    this.conn = conn;
    this.#buffer = leftover;
  }

  /** Sends the upgrade request; returns the socket when the server switched protocols. */
  static async connect(
    port: number,
    options: RawWebSocketOptions = {},
  ): Promise<{ socket: RawWebSocket | undefined; response: HandshakeResponse }> {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    const key = btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(16))));
    const lines = [
      `GET ${options.path ?? "/mqtt"} HTTP/1.1`,
      `Host: 127.0.0.1:${port}`,
      "Upgrade: websocket",
      "Connection: Upgrade",
      `Sec-WebSocket-Key: ${key}`,
      "Sec-WebSocket-Version: 13",
    ];
    if (options.protocols) lines.push(`Sec-WebSocket-Protocol: ${options.protocols.join(", ")}`);
    for (const [name, value] of Object.entries(options.headers ?? {})) {
      lines.push(`${name}: ${value}`);
    }
    await writeAll(conn, encoder.encode(`${lines.join("\r\n")}\r\n\r\n`));
    let received: Uint8Array = new Uint8Array(0);
    let end = -1;
    while (end === -1) {
      const chunk = new Uint8Array(4096);
      const n = await conn.read(chunk);
      if (n === null) throw new Error("Connection closed during the WebSocket handshake");
      received = concat(received, chunk.subarray(0, n));
      end = indexOfHeaderEnd(received);
    }
    const head = decoder.decode(received.subarray(0, end)).split("\r\n");
    const status = Number(head[0].split(" ")[1]);
    const headers = new Headers();
    for (const line of head.slice(1)) {
      const colon = line.indexOf(":");
      headers.append(line.slice(0, colon).trim(), line.slice(colon + 1).trim());
    }
    const leftover = received.subarray(end + 4);
    if (status !== 101) {
      const body = decoder.decode(leftover);
      conn.close();
      return { socket: undefined, response: { status, headers, body } };
    }
    return { socket: new RawWebSocket(conn, leftover), response: { status, headers, body: "" } };
  }

  /** Sends one frame; client frames are masked (RFC 6455 section 5.3). */
  async sendFrame(
    payload: Uint8Array,
    { opcode = Opcode.Binary, fin = true }: { opcode?: number; fin?: boolean } = {},
  ): Promise<void> {
    const length = payload.length;
    const lengthBytes = length < 126 ? 0 : length < 65536 ? 2 : 8;
    const frame = new Uint8Array(2 + lengthBytes + 4 + length);
    frame[0] = (fin ? 0x80 : 0) | opcode;
    let offset = 2;
    if (lengthBytes === 0) frame[1] = 0x80 | length;
    else if (lengthBytes === 2) {
      frame[1] = 0x80 | 126;
      new DataView(frame.buffer).setUint16(2, length);
      offset = 4;
    } else {
      frame[1] = 0x80 | 127;
      new DataView(frame.buffer).setBigUint64(2, BigInt(length));
      offset = 10;
    }
    const mask = crypto.getRandomValues(new Uint8Array(4));
    frame.set(mask, offset);
    offset += 4;
    for (let i = 0; i < length; i++) frame[offset + i] = payload[i] ^ mask[i & 3];
    await writeAll(this.conn, frame);
  }

  /** Sends `bytes` as one binary frame. */
  async write(bytes: Uint8Array): Promise<number> {
    await this.sendFrame(bytes);
    return bytes.length;
  }

  /** The payload of the next complete message, copied into `buffer`; null once closed. */
  async read(buffer: Uint8Array): Promise<number | null> {
    for (;;) {
      if (this.#message.length > 0) {
        const next = this.#message[0];
        const n = Math.min(next.length, buffer.length);
        buffer.set(next.subarray(0, n));
        if (n === next.length) this.#message.shift();
        else this.#message[0] = next.subarray(n);
        return n;
      }
      if (this.#closed) return null;
      const frame = await this.#readFrame();
      if (frame === undefined) {
        this.#closed = true;
        return null;
      }
      if (frame.opcode === Opcode.Close) {
        this.closeCode = frame.payload.length >= 2
          ? (frame.payload[0] << 8) | frame.payload[1]
          : 1005;
        this.#closed = true;
        // Complete the closing handshake (RFC 6455 section 5.5.1), as a browser would.
        await this.sendFrame(frame.payload.subarray(0, 2), { opcode: Opcode.Close }).catch(
          () => {},
        );
        return null;
      }
      if (frame.opcode === Opcode.Binary || frame.opcode === Opcode.Continuation) {
        this.#message.push(frame.payload);
      }
    }
  }

  close(): void {
    try {
      this.conn.close();
    } catch {
      // Already closed.
    }
  }

  async #readFrame(): Promise<{ opcode: number; payload: Uint8Array } | undefined> {
    const header = await this.#take(2);
    if (!header) return undefined;
    const opcode = header[0] & 0x0f;
    let length = header[1] & 0x7f;
    if (length === 126) {
      const ext = await this.#take(2);
      if (!ext) return undefined;
      length = (ext[0] << 8) | ext[1];
    } else if (length === 127) {
      const ext = await this.#take(8);
      if (!ext) return undefined;
      length = Number(new DataView(ext.buffer, ext.byteOffset).getBigUint64(0));
    }
    const payload = await this.#take(length);
    return payload ? { opcode, payload } : undefined;
  }

  async #take(n: number): Promise<Uint8Array | undefined> {
    while (this.#buffer.length < n) {
      const chunk = new Uint8Array(64 * 1024);
      let read: number | null;
      try {
        read = await this.conn.read(chunk);
      } catch {
        read = null;
      }
      if (read === null) return undefined;
      this.#buffer = concat(this.#buffer, chunk.subarray(0, read));
    }
    const taken = this.#buffer.slice(0, n);
    this.#buffer = this.#buffer.subarray(n);
    return taken;
  }
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  let offset = 0;
  while (offset < bytes.length) offset += await conn.write(bytes.subarray(offset));
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

function indexOfHeaderEnd(bytes: Uint8Array): number {
  for (let i = 0; i + 3 < bytes.length; i++) {
    if (bytes[i] === 13 && bytes[i + 1] === 10 && bytes[i + 2] === 13 && bytes[i + 3] === 10) {
      return i;
    }
  }
  return -1;
}
