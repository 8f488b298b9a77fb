/**
 * Raw-byte attacks on a real broker: a TCP client with no MQTT knowledge that writes bytes and
 * reads every byte the broker answers until it closes, a harness that keeps a well-behaved client
 * connected throughout and proves it is still served afterwards, and the byte shapes of the
 * broker's answers.
 *
 * @module
 */

import assert from "node:assert/strict";
import { PacketType } from "../../src/codec/mod.ts";
import type { ConfigInput } from "../../src/config/mod.ts";
import { startBroker, type TestBroker } from "./broker.ts";
import { TestClient, text } from "./test_client.ts";
import { type Field, frame, props, str, u16 } from "../vectors/mod.ts";

/** How long a read waits before failing the test (a guard, never a delay). */
export const WAIT_MS = 5000;
/** How long a connection the broker must close may stay open (it closes within milliseconds). */
export const CLOSE_WAIT_MS = 2000;

export type Version = 4 | 5;
export const VERSIONS: Version[] = [4, 5];

export const MALFORMED = 0x81;
export const PROTOCOL_ERROR = 0x82;
export const TOPIC_NAME_INVALID = 0x90;
export const PACKET_IDENTIFIER_NOT_FOUND = 0x92;
export const RECEIVE_MAXIMUM_EXCEEDED = 0x93;
export const TOPIC_ALIAS_INVALID = 0x94;
export const PACKET_TOO_LARGE = 0x95;
export const QUOTA_EXCEEDED = 0x97;

export const PINGREQ = [0xc0, 0x00];
export const PINGRESP = [0xd0, 0x00];

/** A TCP connection that sends and reads raw bytes, with no MQTT knowledge at all. */
export class RawClient {
  readonly conn: Deno.Conn;
  /** Resolves when the broker closes the connection (end of stream or reset). */
  readonly closed: Promise<void>;
  #buffer: number[] = [];
  #ended = false;
  #wake: (() => void) | undefined = undefined;

  private constructor(conn: Deno.Conn) {
    this.conn = conn;
    this.closed = this.#readLoop();
  }

  static async open(port: number): Promise<RawClient> {
    return new RawClient(await Deno.connect({ hostname: "127.0.0.1", port }));
  }

  /** Writes all of `data`; false when the broker has already closed the connection. */
  async write(data: Uint8Array | number[]): Promise<boolean> {
    const chunk = data instanceof Uint8Array ? data : new Uint8Array(data);
    try {
      let offset = 0;
      while (offset < chunk.length) offset += await this.conn.write(chunk.subarray(offset));
      return true;
    } catch {
      return false;
    }
  }

  /** Exactly `n` bytes; fails if the connection ends first or nothing comes in time. */
  async read(n: number, timeoutMs = WAIT_MS): Promise<number[]> {
    const deadline = Date.now() + timeoutMs;
    while (this.#buffer.length < n) {
      if (this.#ended) {
        throw new Error(`Connection closed after ${this.#buffer.length} of ${n} bytes`);
      }
      await this.#changed(deadline, `${n} bytes`);
    }
    return this.#buffer.splice(0, n);
  }

  /** One whole MQTT packet (fixed header, remaining length, body) as raw bytes. */
  async readPacket(timeoutMs = WAIT_MS): Promise<number[]> {
    const packet = await this.read(1, timeoutMs);
    let length = 0;
    for (let shift = 0;; shift += 7) {
      const [byte] = await this.read(1, timeoutMs);
      packet.push(byte);
      length += (byte & 0x7f) * 2 ** shift;
      if (byte < 0x80) break;
    }
    packet.push(...await this.read(length, timeoutMs));
    return packet;
  }

  /**
   * Every byte until the broker closes the connection; fails if it stays open. With `expected`,
   * it returns as soon as the bytes stop matching it, so a wrong answer fails at once.
   */
  async readToEnd(timeoutMs = CLOSE_WAIT_MS, expected?: number[]): Promise<number[]> {
    const deadline = Date.now() + timeoutMs;
    while (!this.#ended) {
      if (expected && !isPrefix(this.#buffer, expected)) break;
      await this.#changed(deadline, "the connection to close");
    }
    return this.#buffer.splice(0);
  }

  /** Asserts the broker sends exactly `expected` and then closes the connection. */
  async expectAnswerAndClose(expected: number[], timeoutMs = CLOSE_WAIT_MS): Promise<void> {
    assert.deepEqual(hex(await this.readToEnd(timeoutMs, expected)), hex(expected));
  }

  close(): Promise<void> {
    try {
      this.conn.close();
    } catch {
      // Already closed.
    }
    return this.closed;
  }

  #changed(deadline: number, what: string): Promise<void> {
    const { promise, resolve, reject } = Promise.withResolvers<void>();
    const timer = setTimeout(() => {
      this.#wake = undefined;
      reject(new Error(`Timed out waiting for ${what} (have ${this.#buffer.length} bytes)`));
    }, Math.max(0, deadline - Date.now()));
    this.#wake = () => {
      clearTimeout(timer);
      resolve();
    };
    return promise;
  }

  async #readLoop(): Promise<void> {
    try {
      while (true) {
        const chunk = new Uint8Array(64 * 1024);
        const n = await this.conn.read(chunk);
        if (n === null) break;
        for (let i = 0; i < n; i++) this.#buffer.push(chunk[i]);
        this.#notify();
      }
    } catch {
      // Reset by the broker, or closed here: both end the stream.
    }
    this.#ended = true;
    try {
      this.conn.close();
    } catch {
      // Already closed.
    }
    this.#notify();
  }

  #notify(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }
}

/**
 * A CONNECT built field by field. MQTT 5 ones ask for no problem information, so the broker's
 * DISCONNECT is exactly `e0 01 <reason>`.
 */
export function connectPacket(version: Version, clientId: string): Uint8Array {
  if (version === 4) {
    return frame(
      0x10, // CONNECT, flags 0
      str("MQTT"), // protocol name
      0x04, // protocol level 4 (3.1.1)
      0x02, // connect flags: clean session
      u16(0), // keep alive off
      str(clientId), // payload: client identifier
    );
  }
  return frame(
    0x10, // CONNECT, flags 0
    str("MQTT"), // protocol name
    0x05, // protocol level 5
    0x02, // connect flags: clean start
    u16(0), // keep alive off
    props(0x17, 0x00), // Request Problem Information = 0
    str(clientId), // payload: client identifier
  );
}

/** Properties block for MQTT 5 only: 3.1.1 packets have none. */
export function v5props(version: Version, ...fields: Field[]): number[] {
  return version === 5 ? props(...fields) : [];
}

/**
 * How the broker refuses a CONNECT that does not decode: MQTT 5 gets CONNACK with the reason code
 * and a Reason String (the CONNECT could not say it wants none); 3.1.1 has no code for it and is
 * closed without an answer [MQTT-3.1.4-1] (3.1.1).
 */
export function refusedConnect(version: Version, reasonCode: number, reason: string): number[] {
  return version === 5 ? [...frame(0x20, 0x00, reasonCode, props(0x1f, str(reason)))] : [];
}

/** What the broker sends before closing: a DISCONNECT in MQTT 5, nothing in 3.1.1. */
export function disconnectFor(version: Version, reasonCode: number): number[] {
  return version === 5 ? [0xe0, 0x01, reasonCode] : [];
}

export function isPrefix(values: number[], of: number[]): boolean {
  return values.length <= of.length && values.every((value, i) => value === of[i]);
}

export function hex(values: number[]): string {
  return values.map((b) => b.toString(16).padStart(2, "0")).join(" ");
}

/** The context an attack runs in. */
export interface Attack {
  server: TestBroker;
  /** Opens a raw connection (closed by the harness). */
  open(): Promise<RawClient>;
  /** Opens a raw connection and completes CONNECT/CONNACK with the given protocol level. */
  connect(version: Version, clientId?: string): Promise<RawClient>;
}

/**
 * Runs an attack against a fresh broker while a well-behaved MQTT 5 client ("bystander") is
 * connected, then proves the bystander is still served with a QoS 1 round trip.
 */
export async function underAttack(
  config: ConfigInput | undefined,
  body: (attack: Attack) => Promise<void>,
): Promise<void> {
  const server = startBroker({ config });
  const raws: RawClient[] = [];
  let bystander: TestClient | undefined;
  try {
    bystander = (await TestClient.connect(server.port, { clientId: "bystander", version: 5 }))
      .client;
    assert.deepEqual((await bystander.subscribe("bystander/echo", 1)).reasonCodes, [1]);
    const open = async () => {
      const raw = await RawClient.open(server.port);
      raws.push(raw);
      return raw;
    };
    await body({
      server,
      open,
      async connect(version, clientId = "attacker") {
        const raw = await open();
        assert.ok(await raw.write(connectPacket(version, clientId)));
        const connack = await raw.readPacket();
        assert.equal(connack[0], 0x20, `expected CONNACK, got ${hex(connack)}`);
        assert.equal(connack[3], 0x00, `CONNECT refused: ${hex(connack)}`);
        return raw;
      },
    });
    await roundTrip(bystander);
    await bystander.disconnect();
    bystander = undefined;
  } finally {
    await Promise.all(raws.map((raw) => raw.close()));
    await bystander?.destroy();
    await server.close();
  }
}

/** The bystander publishes QoS 1 to its own subscription: it gets its PUBACK and the message. */
export async function roundTrip(client: TestClient): Promise<void> {
  const packetId = 0x4242;
  await client.send({
    type: PacketType.PUBLISH,
    dup: false,
    qos: 1,
    retain: false,
    topic: "bystander/echo",
    packetId,
    properties: undefined,
    payload: new TextEncoder().encode("still served"),
  });
  const got = [await client.next(), await client.next()];
  const puback = got.find((p) => p?.type === PacketType.PUBACK);
  const publish = got.find((p) => p?.type === PacketType.PUBLISH);
  assert.ok(puback && puback.type === PacketType.PUBACK, "bystander got no PUBACK");
  assert.equal(puback.packetId, packetId);
  assert.equal(puback.reasonCode, 0);
  assert.ok(publish && publish.type === PacketType.PUBLISH, "bystander got no PUBLISH");
  assert.equal(publish.topic, "bystander/echo");
  assert.equal(text(publish.payload), "still served");
  await client.ack(publish);
}
