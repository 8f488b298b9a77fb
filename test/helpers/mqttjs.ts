/**
 * mqtt.js (npm `mqtt`) helpers for interoperability tests: connect with no automatic reconnect,
 * await the CONNACK, collect messages, end every client.
 *
 * @module
 */

import type { Buffer } from "node:buffer";
import mqtt, {
  type IClientOptions,
  type IConnackPacket,
  type IPublishPacket,
  type MqttClient,
} from "mqtt";
import type { TestBroker } from "./broker.ts";

/** How long a test waits for an expected event before failing (a guard, never a delay). */
export const WAIT_MS = 5000;

/** A message as an mqtt.js client receives it. */
export interface Received {
  topic: string;
  payload: Buffer;
  packet: IPublishPacket;
}

/** Connects an mqtt.js client and returns it with its CONNACK and that CONNACK's Session Present. */
export async function connect(
  server: Pick<TestBroker, "port">,
  options: IClientOptions,
): Promise<{ client: MqttClient; sessionPresent: boolean; connack: IConnackPacket }> {
  const client = mqtt.connect(`mqtt://127.0.0.1:${server.port}`, {
    reconnectPeriod: 0, // A failed or dropped connection stays down: tests decide what happens.
    connectTimeout: WAIT_MS,
    keepalive: 60,
    ...options,
  });
  try {
    const connack = await connackOf(client);
    return { client, sessionPresent: connack.sessionPresent, connack };
  } catch (err) {
    await client.endAsync(true);
    throw err;
  }
}

/** Waits for the client's CONNACK. */
export function connackOf(client: MqttClient): Promise<IConnackPacket> {
  const { promise, resolve, reject } = Promise.withResolvers<IConnackPacket>();
  // Only our own listeners are removed: mqtt.js keeps internal "close" and "error" handlers.
  const onConnect = (connack: IConnackPacket) => resolve(connack);
  const onError = (err: Error) => reject(err);
  const onClose = () => reject(new Error("Connection closed before CONNACK"));
  client.once("connect", onConnect);
  client.once("error", onError);
  client.once("close", onClose);
  return promise.finally(() => {
    client.off("connect", onConnect);
    client.off("error", onError);
    client.off("close", onClose);
  });
}

/** Starts collecting the next `count` messages the client receives. */
export function collect(
  client: MqttClient,
  count: number,
  timeoutMs = WAIT_MS,
): Promise<Received[]> {
  const received: Received[] = [];
  return new Promise<Received[]>((resolve, reject) => {
    const onMessage = (topic: string, payload: Buffer, packet: IPublishPacket) => {
      received.push({ topic, payload, packet });
      if (received.length < count) return;
      finish();
      resolve(received);
    };
    const timer = setTimeout(() => {
      finish();
      reject(new Error(`Received ${received.length} of ${count} messages within ${timeoutMs} ms`));
    }, timeoutMs);
    const finish = () => {
      clearTimeout(timer);
      client.off("message", onMessage);
    };
    client.on("message", onMessage);
  });
}

/** Ends every client, even when the test failed half way. */
export async function endAll(clients: (MqttClient | undefined)[]): Promise<void> {
  await Promise.all(clients.map((client) => client?.endAsync(true)));
}
