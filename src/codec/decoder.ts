/**
 * The streaming decoder: bytes from the transport in, whole packets out, synchronously.
 *
 * A packet that lies inside one chunk is decoded in place, so its payload is a view into that
 * chunk; this relies on the transport never reusing a chunk it has delivered. A packet split across
 * chunks is gathered as a list of chunk views and copied once, when complete, into a fresh buffer
 * of exactly its size. The decoder never allocates from an announced length: a client announcing
 * 256 MB and sending 10 bytes costs those 10 bytes (plus the chunk they arrived in).
 *
 * @module
 */

import {
  checkFixedHeader,
  decodeBody,
  decodeConnect,
  decodeConnectWithTrailingData,
} from "./decode.ts";
import { malformed, MqttError, protocolError } from "./errors.ts";
import { PACKET_TYPE_NAMES } from "./_names.ts";
import { type ConnectPacket, type Packet, PacketType, type ProtocolVersion } from "./packets.ts";
import { ReasonCode } from "./reason_codes.ts";
import { decodeVarByteInt, varByteIntLength } from "./vbi.ts";

/** Receives the packets a {@linkcode PacketDecoder} decodes. */
export interface PacketHandler {
  /**
   * Called once per packet, in order. Returning `false` stops decoding: the bytes after this
   * packet (and any chunk pushed meanwhile) are kept undecoded until `resume()`, so a handler that
   * cannot take more now holds raw bytes rather than decoded packets.
   */
  onPacket(packet: Packet): boolean | void;
}

/** Options of {@linkcode PacketDecoder}. */
export interface DecoderOptions {
  /** The largest packet accepted, fixed header included, in bytes. */
  maximumPacketSize: number;
  /** The protocol version to decode with until a CONNECT says otherwise (default 4). */
  protocolVersion?: ProtocolVersion;
  /**
   * Accept bytes after the payload of a CONNECT, as some legacy agents send (off by default, when
   * such a CONNECT is malformed). The bytes are offered as
   * {@linkcode PacketDecoder.connectTrailingData}.
   */
  allowConnectTrailingData?: boolean;
  /**
   * `"server"` decodes what a client sends a server: a packet type only a server sends (CONNACK,
   * SUBACK, UNSUBACK, PINGRESP), or AUTH while {@linkcode PacketDecoder.acceptAuth} is off, is a
   * Protocol Error as soon as its first byte arrives, whatever its length or body. Omitted, every
   * packet type is decoded (a client, a test tool).
   */
  role?: "server";
}

/** Packet types a client never sends (MQTT 5 section 2.1.2; 3.1.1 section 2.2.1). */
const SERVER_ONLY_TYPES: ReadonlySet<number> = new Set([
  PacketType.CONNACK,
  PacketType.SUBACK,
  PacketType.UNSUBACK,
  PacketType.PINGRESP,
]);

/** Server role: packets only a server sends are refused (`DecoderOptions.role`). */
const FLAG_SERVER = 1;
/** AUTH packets are accepted (see `PacketDecoder.acceptAuth`). */
const FLAG_ACCEPT_AUTH = 2;
/** `DecoderOptions.allowConnectTrailingData`. */
const FLAG_TRAILING_DATA = 4;
/** A `push` runs, or one threw (then for good). */
const FLAG_BUSY = 8;
/** The handler stopped decoding (`onPacket` returned false) and has not resumed it. */
const FLAG_STOPPED = 16;

/**
 * Decodes a byte stream into packets and hands each one to a {@linkcode PacketHandler}.
 *
 * After `push` throws, whether for bad input or because the handler threw, the decoder is unusable
 * and every later `push` throws a `TypeError`: the connection is to be closed.
 *
 * @example Decode two packets from one chunk
 * ```ts
 * import { PacketDecoder } from "./decoder.ts";
 *
 * const decoder = new PacketDecoder({
 *   onPacket(packet) {
 *     console.log(packet.type);
 *   },
 * }, { maximumPacketSize: 1024 });
 * decoder.push(new Uint8Array([0xc0, 0x00, 0xe0, 0x00])); // logs 12, then 14
 * ```
 */
export class PacketDecoder {
  readonly #handler: PacketHandler;
  /**
   * `FLAG_*` bits in one small integer (a server holds a decoder per connection: one field instead
   * of four).
   */
  #flags = 0;
  #maximumPacketSize = 0;
  #protocolVersion: ProtocolVersion;
  #connectTrailingData: Uint8Array | undefined = undefined;
  /** Bytes not decoded yet because the handler stopped decoding, in order (see `resume`). */
  #held: Uint8Array[] | undefined = undefined;

  // An incomplete packet. Its fixed header is gathered in `#header` until complete; the buffer is
  // created when a packet is first split, so an idle connection's decoder holds no ArrayBuffer.
  #header: Uint8Array | undefined = undefined;
  #headerLength = 0;
  /** The remaining length of the incomplete packet, or -1 while its fixed header is incomplete. */
  #bodyLength = -1;
  /** Views of the body bytes received so far, in order; created when a body is first split. */
  #pieces: Uint8Array[] | undefined = undefined;
  #piecesLength = 0;
  /**
   * The chunk holding the packet being handled and where that packet lies in it (see `frame`):
   * the view is made only when asked for, not for every packet (an ack never needs one).
   */
  #frameChunk: Uint8Array | undefined = undefined;
  #frameStart = 0;
  #frameEnd = 0;

  /**
   * @param handler Receives the decoded packets.
   * @param options The decoder options.
   * @throws {RangeError} When `options.maximumPacketSize` is not a positive integer.
   */
  constructor(handler: PacketHandler, options: DecoderOptions) {
    this.#handler = handler;
    this.maximumPacketSize = options.maximumPacketSize;
    this.#protocolVersion = options.protocolVersion ?? 4;
    const server = options.role === "server";
    this.#flags = (options.allowConnectTrailingData ? FLAG_TRAILING_DATA : 0) |
      (server ? FLAG_SERVER : FLAG_ACCEPT_AUTH);
  }

  /**
   * Whether AUTH is expected (server role): only after a CONNECT that named an Authentication
   * Method [MQTT-4.12.0-7]. Always true for the client role.
   */
  get acceptAuth(): boolean {
    return (this.#flags & FLAG_ACCEPT_AUTH) !== 0;
  }

  set acceptAuth(accept: boolean) {
    this.#flags = accept ? this.#flags | FLAG_ACCEPT_AUTH : this.#flags & ~FLAG_ACCEPT_AUTH;
  }

  /** The protocol version packets are decoded with; decoding a CONNECT sets it to its level. */
  get protocolVersion(): ProtocolVersion {
    return this.#protocolVersion;
  }

  set protocolVersion(version: ProtocolVersion) {
    this.#protocolVersion = version;
  }

  /** The largest packet accepted, fixed header included; larger ones throw Packet Too Large. */
  get maximumPacketSize(): number {
    return this.#maximumPacketSize;
  }

  set maximumPacketSize(size: number) {
    if (!Number.isInteger(size) || size < 2) {
      throw new RangeError(`Invalid maximum packet size: ${size} is not an integer of 2 or more`);
    }
    this.#maximumPacketSize = size;
  }

  /**
   * While the handler runs for a packet that arrived whole in one chunk, that packet's bytes (a
   * view, fixed header included); undefined otherwise. Lets a PUBLISH be forwarded as it came.
   */
  get frame(): Uint8Array | undefined {
    return this.#frameChunk?.subarray(this.#frameStart, this.#frameEnd);
  }

  /** The bytes held for an incomplete packet. */
  get bufferedBytes(): number {
    return this.#headerLength + this.#piecesLength;
  }

  /**
   * With `allowConnectTrailingData`, the bytes that followed the payload of the last CONNECT
   * decoded (a view), or `undefined` when there were none. Read it while handling the CONNECT.
   */
  get connectTrailingData(): Uint8Array | undefined {
    return this.#connectTrailingData;
  }

  /**
   * Decodes `chunk`, handing every complete packet to the handler before returning (unless the
   * handler stops decoding: then the rest waits for `resume`). Bytes of an incomplete packet are
   * kept for the next call.
   *
   * @param chunk Bytes from the transport; they must not be modified afterwards, as packets keep
   * views into them.
   * @throws {MqttError} Packet Too Large (0x95) as soon as a fixed header announces a packet
   * larger than `maximumPacketSize`; the decoding errors of `decode.ts` otherwise. Packets decoded
   * earlier in the chunk were already handed over.
   * @throws {TypeError} When an earlier call threw.
   */
  push(chunk: Uint8Array): void {
    const flags = this.#flags;
    if ((flags & FLAG_BUSY) !== 0) {
      throw new TypeError("Cannot push to the packet decoder: a previous push threw");
    }
    if ((flags & FLAG_STOPPED) !== 0) {
      if (chunk.length > 0) (this.#held ??= []).push(chunk);
      return;
    }
    this.#flags = flags | FLAG_BUSY;
    this.#decodeChunk(chunk);
    this.#flags &= ~FLAG_BUSY;
  }

  /** Bytes kept undecoded since the handler stopped decoding. */
  get heldBytes(): number {
    let bytes = 0;
    for (const chunk of this.#held ?? []) bytes += chunk.length;
    return bytes;
  }

  /**
   * Decodes what was kept when the handler stopped decoding, until it is all decoded or the
   * handler stops again. Throws as `push` does.
   */
  resume(): void {
    const flags = this.#flags;
    if ((flags & FLAG_STOPPED) === 0) return;
    if ((flags & FLAG_BUSY) !== 0) {
      throw new TypeError("Cannot resume the packet decoder: a previous push threw");
    }
    this.#flags = (flags & ~FLAG_STOPPED) | FLAG_BUSY;
    const held = this.#held;
    while (held !== undefined && held.length > 0 && (this.#flags & FLAG_STOPPED) === 0) {
      this.#decodeChunk(held.shift()!);
    }
    if (this.#held?.length === 0) this.#held = undefined;
    this.#flags &= ~FLAG_BUSY;
  }

  /** The handler stopped decoding: `rest` waits, before anything pushed later, for `resume`. */
  #stop(rest: Uint8Array): void {
    this.#flags |= FLAG_STOPPED;
    if (rest.length > 0) (this.#held ??= []).unshift(rest);
  }

  #decodeChunk(chunk: Uint8Array): void {
    const end = chunk.length;
    let pos = 0;
    if (this.#headerLength !== 0) {
      pos = this.#resume(chunk);
      if (pos < 0) return;
    }
    while (pos < end) {
      const header = chunk[pos];
      this.#checkType(header);
      let remainingLength: number;
      let bodyStart: number;
      // Most packets are under 128 bytes: a one-byte remaining length.
      if (pos + 1 < end && chunk[pos + 1] < 0x80) {
        remainingLength = chunk[pos + 1];
        bodyStart = pos + 2;
      } else {
        remainingLength = decodeVarByteInt(chunk, pos + 1, end);
        if (remainingLength < 0) {
          this.#headerBuffer().set(chunk.subarray(pos, end));
          this.#headerLength = end - pos;
          return;
        }
        bodyStart = pos + 1 + varByteIntLength(remainingLength);
      }
      this.#checkSize(bodyStart - pos, remainingLength);
      const packetEnd = bodyStart + remainingLength;
      if (packetEnd > end) {
        // Only the first byte is needed later; the length counts towards `bufferedBytes`.
        this.#headerBuffer()[0] = header;
        this.#headerLength = bodyStart - pos;
        this.#startBody(header, remainingLength);
        if (bodyStart < end) {
          this.#pieces = [chunk.subarray(bodyStart, end)];
          this.#piecesLength = end - bodyStart;
        }
        return;
      }
      const packet = this.#decodePacket(header, chunk, bodyStart, packetEnd);
      this.#frameChunk = chunk;
      this.#frameStart = pos;
      this.#frameEnd = packetEnd;
      pos = packetEnd;
      const more = this.#handler.onPacket(packet);
      this.#frameChunk = undefined;
      if (more === false) {
        this.#stop(chunk.subarray(pos));
        return;
      }
    }
  }

  /**
   * Continues the incomplete packet with the start of `chunk`. Returns where the rest of `chunk`
   * starts, or -1 when nothing more is to be decoded from it (still incomplete, or stopped).
   */
  #resume(chunk: Uint8Array): number {
    let pos = 0;
    const headerBytes = this.#headerBuffer();
    while (this.#bodyLength < 0) {
      // The first byte came alone at the end of the last chunk: it was checked then.
      if (pos === chunk.length) return -1;
      headerBytes[this.#headerLength++] = chunk[pos++];
      const remainingLength = decodeVarByteInt(headerBytes, 1, this.#headerLength);
      if (remainingLength >= 0) {
        this.#checkSize(this.#headerLength, remainingLength);
        this.#startBody(headerBytes[0], remainingLength);
      }
    }
    const missing = this.#bodyLength - this.#piecesLength;
    if (chunk.length - pos < missing) {
      if (pos < chunk.length) {
        (this.#pieces ??= []).push(chunk.subarray(pos));
        this.#piecesLength += chunk.length - pos;
      }
      return -1;
    }
    const header = headerBytes[0];
    let packet: Packet;
    if (this.#piecesLength === 0) {
      // Only the fixed header was split off: the body lies whole in this chunk.
      packet = this.#decodePacket(header, chunk, pos, pos + missing);
    } else {
      const body = new Uint8Array(this.#bodyLength);
      let offset = 0;
      for (const piece of this.#pieces!) {
        body.set(piece, offset);
        offset += piece.length;
      }
      body.set(chunk.subarray(pos, pos + missing), offset);
      packet = this.#decodePacket(header, body, 0, body.length);
    }
    this.#headerLength = 0;
    this.#bodyLength = -1;
    this.#pieces = undefined;
    this.#piecesLength = 0;
    if (this.#handler.onPacket(packet) === false) {
      this.#stop(chunk.subarray(pos + missing));
      return -1;
    }
    return pos + missing;
  }

  #headerBuffer(): Uint8Array {
    return this.#header ??= new Uint8Array(5);
  }

  /**
   * Refuses a packet by its first byte alone, before its length arrives: the reserved type 0
   * [MQTT-2.1.3-1] is malformed; a type only a server sends, or an AUTH nobody agreed to, is a
   * protocol error (MQTT 5 section 1.2: "unexpected").
   */
  #checkType(header: number): void {
    const type = header >> 4;
    if (type === 0) throw malformed("Invalid fixed header: packet type 0 is reserved");
    const flags = this.#flags;
    if ((flags & FLAG_SERVER) === 0) return;
    if (SERVER_ONLY_TYPES.has(type)) {
      throw protocolError(
        `Cannot accept ${PACKET_TYPE_NAMES[type]} from a client: only a server sends it`,
      );
    }
    if (
      type === PacketType.AUTH && this.#protocolVersion === 5 && (flags & FLAG_ACCEPT_AUTH) === 0
    ) {
      throw protocolError(
        "Cannot accept AUTH: no authentication method was agreed in CONNECT [MQTT-4.12.0-7]",
      );
    }
  }

  /** Refuses a packet larger than the maximum before any of its body is kept. */
  #checkSize(headerLength: number, remainingLength: number): void {
    const size = headerLength + remainingLength;
    if (size > this.#maximumPacketSize) {
      throw new MqttError(
        ReasonCode.PacketTooLarge,
        `Packet too large: ${size} bytes exceeds the maximum of ${this.#maximumPacketSize}`,
      );
    }
  }

  /** Starts gathering the body of a packet that continues in a later chunk. */
  #startBody(header: number, remainingLength: number): void {
    // Refuse a bad first byte now rather than after buffering up to the maximum packet size.
    checkFixedHeader(header, this.#protocolVersion);
    this.#bodyLength = remainingLength;
  }

  #decodePacket(header: number, buf: Uint8Array, start: number, end: number): Packet {
    if (header >> 4 !== PacketType.CONNECT) {
      return decodeBody(header, buf, start, end, this.#protocolVersion);
    }
    const flags = header & 0x0f;
    const body = buf.subarray(start, end);
    let packet: ConnectPacket;
    try {
      if ((this.#flags & FLAG_TRAILING_DATA) !== 0) {
        const decoded = decodeConnectWithTrailingData(flags, body);
        packet = decoded.packet;
        this.#connectTrailingData = decoded.trailingData.length === 0
          ? undefined
          : decoded.trailingData;
      } else {
        packet = decodeConnect(flags, body);
      }
    } catch (error) {
      if (error instanceof MqttError) error.connectLevel = connectLevelOf(body);
      throw error;
    }
    this.#protocolVersion = packet.protocolVersion;
    return packet;
  }
}

/**
 * The protocol level byte of a CONNECT body (after the protocol name), or undefined when the body
 * ends before it.
 */
function connectLevelOf(body: Uint8Array): number | undefined {
  if (body.length < 2) return undefined;
  const at = 2 + ((body[0] << 8) | body[1]);
  return at < body.length ? body[at] : undefined;
}
