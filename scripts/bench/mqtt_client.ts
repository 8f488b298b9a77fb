/**
 * Connection set-up for the load generator: TCP connect, CONNECT/CONNACK, SUBSCRIBE/SUBACK, and a
 * write that loops over partial writes.
 *
 * @module
 */

import { encodeConnect, encodeSubscribe, PacketType } from "./mqtt_packets.ts";
import { PacketReader } from "./mqtt_reader.ts";

/** A connected MQTT client: its socket plus the reader that owns any bytes read past the handshake. */
export interface MqttConnection {
  /** The TCP connection (Nagle disabled). */
  conn: Deno.Conn;
  /** The reader to keep using for this connection. */
  reader: PacketReader;
}

/** Where to connect and as whom. */
export interface ConnectOptions {
  /** Broker address. */
  hostname: string;
  /** Broker port. */
  port: number;
  /** MQTT client identifier. */
  clientId: string;
  /** Read buffer size for the connection's reader. */
  readBufferSize?: number;
}

/**
 * Writes all of `bytes`; `Deno.Conn.write` may write only part of a buffer.
 *
 * @param conn The connection.
 * @param bytes The bytes to write.
 */
export async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  let written = 0;
  while (written < bytes.length) written += await conn.write(bytes.subarray(written));
}

async function expectPacket(client: MqttConnection, type: number): Promise<Uint8Array> {
  let body: Uint8Array | undefined;
  while (body === undefined) {
    const count = await client.reader.readFrom(client.conn, (header, bytes, _view, start, end) => {
      if (body !== undefined || header >> 4 !== type) {
        throw new Error(`Cannot set up client: expected packet type ${type}, got ${header >> 4}`);
      }
      body = bytes.slice(start, end);
    });
    if (count === null) {
      throw new Error(`Cannot set up client: connection closed while waiting for ${type}`);
    }
  }
  return body;
}

/**
 * Opens a TCP connection and completes the MQTT 3.1.1 CONNECT/CONNACK exchange.
 *
 * @param options Address and client id.
 * @returns The connected client.
 */
export async function connectMqtt(options: ConnectOptions): Promise<MqttConnection> {
  const conn = await Deno.connect({ hostname: options.hostname, port: options.port });
  try {
    conn.setNoDelay(true);
    const client = { conn, reader: new PacketReader(options.readBufferSize) };
    await writeAll(conn, encodeConnect(options.clientId));
    const connack = await expectPacket(client, PacketType.connack);
    if (connack[1] !== 0) {
      throw new Error(`Cannot connect "${options.clientId}": CONNACK return code ${connack[1]}`);
    }
    return client;
  } catch (error) {
    conn.close();
    throw error;
  }
}

/**
 * Subscribes to one filter and waits for the SUBACK.
 *
 * @param client The connected client.
 * @param subscription The topic filter and the requested QoS.
 */
export async function subscribeMqtt(
  client: MqttConnection,
  subscription: { filter: string; qos: number },
): Promise<void> {
  const { filter, qos } = subscription;
  await writeAll(client.conn, encodeSubscribe(filter, qos));
  const suback = await expectPacket(client, PacketType.suback);
  if (suback[2] !== qos) {
    throw new Error(`Cannot subscribe to "${filter}": SUBACK granted 0x${suback[2].toString(16)}`);
  }
}
