/**
 * Our own MQTT test client: real TCP sockets, our codec, and full control over every packet (no
 * automatic acks, raw bytes on demand). Waiting is event-driven: `next()` resolves when a packet
 * arrives, `closed` when the broker closes the socket.
 *
 * @module
 */

import { encodePacket, PacketDecoder, PacketType } from "../../src/codec/mod.ts";
import type {
  ConnackPacket,
  ConnectPacket,
  Packet,
  Properties,
  ProtocolVersion,
  PublishPacket,
  QoS,
  SubackPacket,
  Subscription,
  UnsubackPacket,
  Will,
} from "../../src/codec/packets.ts";

/** How long `next()` waits before failing the test, so a missing packet fails instead of hanging. */
const DEFAULT_WAIT_MS = 5000;

export interface ConnectOptions {
  clientId?: string;
  version?: ProtocolVersion;
  cleanStart?: boolean;
  keepAlive?: number;
  username?: string;
  password?: string;
  will?: Partial<Will> & { topic: string };
  properties?: Properties;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** The byte stream a test client talks over: a TCP socket, or a WebSocket adapter. */
export type ByteStream = Pick<Deno.Conn, "read" | "write" | "close">;

/** A raw MQTT connection to the broker under test. */
export class TestClient {
  readonly conn: ByteStream;
  version: ProtocolVersion;
  /** Resolves when the broker closes the connection (or it fails). */
  readonly closed: Promise<void>;
  #decoder: PacketDecoder;
  #received: Packet[] = [];
  #waiters: ((packet: Packet | undefined) => void)[] = [];
  #isClosed = false;
  #nextPacketId = 1;

  private constructor(conn: ByteStream, version: ProtocolVersion) {
    this.conn = conn;
    this.version = version;
    this.#decoder = new PacketDecoder({
      onPacket: (packet) => {
        const waiter = this.#waiters.shift();
        if (waiter) waiter(packet);
        else this.#received.push(packet);
      },
    }, { maximumPacketSize: 268_435_460, protocolVersion: version });
    this.closed = this.#readLoop();
  }

  /** Wraps an open byte stream (a TLS connection, a WebSocket) without sending anything. */
  static wrap(conn: ByteStream, version: ProtocolVersion = 4): TestClient {
    return new TestClient(conn, version);
  }

  /** Opens a TCP connection without sending anything. */
  static async open(port: number, version: ProtocolVersion = 4): Promise<TestClient> {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    return new TestClient(conn, version);
  }

  /** Opens a connection, sends CONNECT and waits for CONNACK. */
  static async connect(
    port: number,
    options: ConnectOptions = {},
  ): Promise<{ client: TestClient; connack: ConnackPacket }> {
    const client = await TestClient.open(port, options.version ?? 4);
    const connack = await client.sendConnect(options);
    return { client, connack };
  }

  /** Sends CONNECT and returns the CONNACK. */
  async sendConnect(options: ConnectOptions = {}): Promise<ConnackPacket> {
    await this.sendConnectOnly(options);
    return await this.expect(PacketType.CONNACK);
  }

  /** Sends CONNECT without waiting for the answer (which may be AUTH under enhanced auth). */
  async sendConnectOnly(options: ConnectOptions = {}): Promise<void> {
    const version = options.version ?? this.version;
    this.version = version;
    this.#decoder.protocolVersion = version;
    const packet: ConnectPacket = {
      type: PacketType.CONNECT,
      protocolName: version === 3 ? "MQIsdp" : "MQTT",
      protocolVersion: version,
      cleanStart: options.cleanStart ?? true,
      keepAlive: options.keepAlive ?? 0,
      clientId: options.clientId ?? "",
      username: options.username,
      password: options.password === undefined ? undefined : encoder.encode(options.password),
      will: options.will && {
        topic: options.will.topic,
        payload: options.will.payload ?? new Uint8Array(),
        qos: options.will.qos ?? 0,
        retain: options.will.retain ?? false,
        properties: options.will.properties,
      },
      properties: options.properties,
    };
    await this.send(packet);
  }

  /** Encodes and writes a packet. */
  async send(packet: Packet): Promise<void> {
    await this.sendRaw(encodePacket(packet, this.version));
  }

  /** Writes raw bytes. */
  async sendRaw(bytes: Uint8Array): Promise<void> {
    let offset = 0;
    while (offset < bytes.length) offset += await this.conn.write(bytes.subarray(offset));
  }

  /** Publishes and, for QoS 1/2, completes the flow; returns the final ack. */
  async publish(
    topic: string,
    payload: string | Uint8Array,
    options: { qos?: QoS; retain?: boolean; properties?: Properties; packetId?: number } = {},
  ): Promise<Packet | undefined> {
    const qos = options.qos ?? 0;
    const packetId = qos === 0 ? 0 : options.packetId ?? this.allocatePacketId();
    await this.send({
      type: PacketType.PUBLISH,
      dup: false,
      qos,
      retain: options.retain ?? false,
      topic,
      packetId,
      properties: options.properties,
      payload: typeof payload === "string" ? encoder.encode(payload) : payload,
    });
    if (qos === 0) return undefined;
    if (qos === 1) return await this.expect(PacketType.PUBACK);
    const pubrec = await this.expect(PacketType.PUBREC);
    if (pubrec.reasonCode >= 0x80) return pubrec;
    await this.send({ type: PacketType.PUBREL, packetId, reasonCode: 0, properties: undefined });
    return await this.expect(PacketType.PUBCOMP);
  }

  /** Subscribes and returns the SUBACK. */
  async subscribe(
    filters: string | (Partial<Subscription> & { filter: string })[],
    qos: QoS = 0,
    properties?: Properties,
  ): Promise<SubackPacket> {
    const list = typeof filters === "string" ? [{ filter: filters, qos }] : filters;
    await this.send({
      type: PacketType.SUBSCRIBE,
      packetId: this.allocatePacketId(),
      subscriptions: list.map((s) => ({
        filter: s.filter,
        qos: s.qos ?? qos,
        noLocal: s.noLocal ?? false,
        retainAsPublished: s.retainAsPublished ?? false,
        retainHandling: s.retainHandling ?? 0,
      })),
      properties,
    });
    return await this.expect(PacketType.SUBACK);
  }

  /** Unsubscribes and returns the UNSUBACK. */
  async unsubscribe(filters: string[]): Promise<UnsubackPacket> {
    await this.send({
      type: PacketType.UNSUBSCRIBE,
      packetId: this.allocatePacketId(),
      filters,
      properties: undefined,
    });
    return await this.expect(PacketType.UNSUBACK);
  }

  /** Acknowledges a received QoS 1/2 PUBLISH (PUBACK, or PUBREC then PUBREL/PUBCOMP). */
  async ack(publish: PublishPacket): Promise<void> {
    if (publish.qos === 1) {
      await this.send({
        type: PacketType.PUBACK,
        packetId: publish.packetId,
        reasonCode: 0,
        properties: undefined,
      });
    } else if (publish.qos === 2) {
      await this.send({
        type: PacketType.PUBREC,
        packetId: publish.packetId,
        reasonCode: 0,
        properties: undefined,
      });
      await this.expect(PacketType.PUBREL);
      await this.send({
        type: PacketType.PUBCOMP,
        packetId: publish.packetId,
        reasonCode: 0,
        properties: undefined,
      });
    }
  }

  /** Sends DISCONNECT (optionally with a reason code) and closes. */
  async disconnect(reasonCode = 0, properties?: Properties): Promise<void> {
    await this.send({ type: PacketType.DISCONNECT, reasonCode, properties });
    await this.closed;
  }

  /** The next packet, whatever its type; undefined if the connection closed first. */
  next(timeoutMs = DEFAULT_WAIT_MS): Promise<Packet | undefined> {
    const queued = this.#received.shift();
    if (queued) return Promise.resolve(queued);
    if (this.#isClosed) return Promise.resolve(undefined);
    const { promise, resolve, reject } = Promise.withResolvers<Packet | undefined>();
    const timer = setTimeout(() => {
      const index = this.#waiters.indexOf(waiter);
      if (index >= 0) this.#waiters.splice(index, 1);
      reject(new Error(`No packet within ${timeoutMs} ms`));
    }, timeoutMs);
    const waiter = (packet: Packet | undefined) => {
      clearTimeout(timer);
      resolve(packet);
    };
    this.#waiters.push(waiter);
    return promise;
  }

  /** The next packet, which must be of the given type. */
  async expect<T extends Packet["type"]>(
    type: T,
    timeoutMs = DEFAULT_WAIT_MS,
  ): Promise<Extract<Packet, { type: T }>> {
    const packet = await this.next(timeoutMs);
    if (!packet) throw new Error(`Connection closed while waiting for packet type ${type}`);
    if (packet.type !== type) {
      throw new Error(`Expected packet type ${type}, got ${describe(packet)}`);
    }
    return packet as Extract<Packet, { type: T }>;
  }

  /** Collects `count` PUBLISH packets. */
  async publishes(count: number, timeoutMs = DEFAULT_WAIT_MS): Promise<PublishPacket[]> {
    const list: PublishPacket[] = [];
    while (list.length < count) list.push(await this.expect(PacketType.PUBLISH, timeoutMs));
    return list;
  }

  /**
   * Asserts nothing arrives: sends PINGREQ and requires the PINGRESP to be the next packet (the
   * broker answers in order, so anything queued before it would show up first).
   */
  async expectNothingPending(): Promise<void> {
    await this.send({ type: PacketType.PINGREQ });
    const packet = await this.next();
    if (packet?.type !== PacketType.PINGRESP) {
      throw new Error(`Expected nothing pending, got ${packet ? describe(packet) : "close"}`);
    }
  }

  allocatePacketId(): number {
    const id = this.#nextPacketId;
    this.#nextPacketId = id === 0xffff ? 1 : id + 1;
    return id;
  }

  /** Closes the socket without DISCONNECT (an abnormal close, as far as the broker knows). */
  async destroy(): Promise<void> {
    try {
      this.conn.close();
    } catch {
      // Already closed.
    }
    await this.closed;
  }

  async #readLoop(): Promise<void> {
    try {
      while (true) {
        const buffer = new Uint8Array(64 * 1024);
        const n = await this.conn.read(buffer);
        if (n === null) break;
        this.#decoder.push(buffer.subarray(0, n));
      }
    } catch {
      // Closed locally or reset by the broker: both end the stream.
    }
    this.#isClosed = true;
    try {
      this.conn.close();
    } catch {
      // Already closed.
    }
    for (const waiter of this.#waiters.splice(0)) waiter(undefined);
  }
}

/** UTF-8 text of a payload. */
export function text(payload: Uint8Array): string {
  return decoder.decode(payload);
}

function describe(packet: Packet): string {
  const body = JSON.stringify(packet, (_key, value) => {
    if (value instanceof Uint8Array) return `bytes(${value.length})`;
    return value;
  });
  return body.length > 300 ? `${body.slice(0, 300)}...` : body;
}
