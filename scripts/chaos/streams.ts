/**
 * Sequence-numbered QoS 1/2 streams for the fault scenarios: a publisher and a subscriber
 * (mqtt.js, persistent sessions, reconnecting by themselves, through haproxy or a list of
 * front-ends they rotate over) and the books that say what was lost.
 *
 * A stream's publisher sends `count` messages whose payload is the sequence number, keeping
 * `window` of them in flight. A message is **acknowledged** when the publisher's PUBACK (QoS 1) or
 * PUBCOMP after a successful PUBREC (QoS 2) says so; a refusal (MQTT 5 reason code 0x80 and up) is
 * counted by reason code and never resent; a 3.1.1 publisher that is disconnected instead resends
 * the message after reconnecting (mqtt.js keeps it in its outgoing store), as MQTT asks. The
 * subscriber counts every sequence number the application sees (for QoS 2 mqtt.js hands a message
 * to the application at PUBREL, once per packet id). **Lost** is acknowledged and never received;
 * **duplicated** is received more than once (QoS 1 allows it, QoS 2 does not).
 *
 * @module
 */

import mqtt, { type IClientOptions, type MqttClient } from "mqtt";

/** Where a client connects: one address (haproxy) or several it rotates over on reconnect. */
export type Servers = { host: string; port: number }[];

/** One sequence-numbered stream. */
export interface StreamSpec {
  /** Names the stream in reports and its clients' ids. */
  name: string;
  qos: 1 | 2;
  /** 5 (MQTT 5) or 4 (3.1.1). */
  protocolVersion: 4 | 5;
  /** Messages to publish. */
  count: number;
  /** Publishes in flight at once (1). */
  window?: number;
  /** Payload bytes beyond the sequence number (0). */
  padding?: number;
}

/** What a stream's books say. */
export interface StreamReport {
  name: string;
  qos: 1 | 2;
  protocolVersion: 4 | 5;
  /** Publishes acknowledged as a success. */
  acknowledged: number;
  /** Publishes refused with a reason code, by code (e.g. `{ "128": 3 }`). */
  refused: Record<string, number>;
  /** Distinct sequence numbers the subscriber received. */
  received: number;
  /** Acknowledged and never received. */
  lost: number;
  /** Received more than once (counted once per extra copy). */
  duplicated: number;
  /** The first sequence numbers lost. */
  missing: number[];
  /** The first sequence numbers received more than once. */
  duplicates: number[];
  /** Received without ever being acknowledged (stored although its publisher heard otherwise). */
  unacknowledgedReceived: number;
  /** Times the publisher and the subscriber connected (1 each without reconnections). */
  connects: { publisher: number; subscriber: number };
  /** Reconnections whose CONNACK said Session Present 0. */
  sessionsNotPresent: number;
}

/** Longest a client may take to connect at first (a failure guard). */
const FIRST_CONNECT_MS = 30_000;
/** Pause between reconnection attempts. */
const RECONNECT_MS = 200;
/** Session Expiry Interval of MQTT 5 clients, seconds. */
const SESSION_EXPIRY_S = 600;

/** mqtt.js options of a persistent, reconnecting client. */
export function persistentOptions(
  clientId: string,
  protocolVersion: 4 | 5,
  servers: Servers,
  more: IClientOptions = {},
): IClientOptions {
  return {
    clientId,
    protocolVersion,
    clean: false,
    servers,
    reconnectPeriod: RECONNECT_MS,
    reconnectOnConnackError: true,
    connectTimeout: 10_000,
    keepalive: 30,
    resubscribe: false,
    ...(protocolVersion === 5 ? { properties: { sessionExpiryInterval: SESSION_EXPIRY_S } } : {}),
    ...more,
  };
}

/** Connects a client and waits for its first CONNACK; errors before it are retried by mqtt.js. */
export function connectClient(options: IClientOptions): Promise<MqttClient> {
  const client = mqtt.connect(options);
  // Refused CONNACKs and dropped connections are expected under faults: mqtt.js reconnects.
  client.on("error", () => {});
  const { promise, resolve, reject } = Promise.withResolvers<MqttClient>();
  const timer = setTimeout(() => {
    client.end(true);
    reject(new Error(`${options.clientId}: no CONNACK within ${FIRST_CONNECT_MS} ms`));
  }, FIRST_CONNECT_MS);
  client.once("connect", () => {
    clearTimeout(timer);
    resolve(client);
  });
  return promise;
}

/** The reason code of a refused publish, or "error" when it failed otherwise. */
function refusalOf(error: unknown): string {
  const code = (error as { code?: unknown })?.code;
  return typeof code === "number" ? String(code) : "error";
}

/** A publisher and a subscriber of one stream, and its books. */
export class SequenceStream {
  readonly spec: StreamSpec;
  readonly topic: string;
  readonly publisher: MqttClient;
  readonly subscriber: MqttClient;
  readonly publisherId: string;
  readonly subscriberId: string;
  readonly acknowledged = new Set<number>();
  readonly refused = new Map<string, number>();
  readonly received = new Map<number, number>();
  readonly connects = { publisher: 0, subscriber: 0 };
  /** Sequence numbers sent so far. */
  sent = 0;
  /** Reconnections whose CONNACK said the session was not there (it should always be). */
  sessionsNotPresent = 0;
  #stopped = false;
  #waiters: (() => void)[] = [];

  private constructor(
    spec: StreamSpec,
    topic: string,
    publisher: MqttClient,
    subscriber: MqttClient,
  ) {
    this.spec = spec;
    this.topic = topic;
    this.publisher = publisher;
    this.subscriber = subscriber;
    this.publisherId = publisher.options.clientId!;
    this.subscriberId = subscriber.options.clientId!;
    this.connects.publisher = 1;
    this.connects.subscriber = 1;
    publisher.on("connect", (connack) => {
      this.connects.publisher++;
      if (!connack.sessionPresent) this.sessionsNotPresent++;
    });
    subscriber.on("connect", (connack) => {
      this.connects.subscriber++;
      if (!connack.sessionPresent) this.sessionsNotPresent++;
    });
    subscriber.on("message", (_topic, payload) => {
      const text = payload.toString();
      const space = text.indexOf(" ");
      const seq = Number(space === -1 ? text : text.slice(0, space));
      this.received.set(seq, (this.received.get(seq) ?? 0) + 1);
      this.#wake();
    });
  }

  /**
   * Connects the subscriber (and subscribes, so its session queues from now on) and then the
   * publisher. `run` tells the ids apart between runs sharing one NATS.
   */
  static async open(
    spec: StreamSpec,
    servers: { publisher: Servers; subscriber: Servers },
    run = "",
  ): Promise<SequenceStream> {
    const topic = `chaos/${run}${spec.name}`;
    const subscriber = await connectClient(
      persistentOptions(`${run}${spec.name}-sub`, spec.protocolVersion, servers.subscriber),
    );
    let publisher: MqttClient | undefined;
    try {
      const granted = await subscriber.subscribeAsync(topic, { qos: spec.qos });
      if (granted[0]?.qos !== spec.qos) {
        throw new Error(`${spec.name}: subscription granted ${JSON.stringify(granted)}`);
      }
      publisher = await connectClient(
        persistentOptions(`${run}${spec.name}-pub`, spec.protocolVersion, servers.publisher),
      );
    } catch (error) {
      subscriber.end(true);
      throw error;
    }
    return new SequenceStream(spec, topic, publisher, subscriber);
  }

  /**
   * Publishes messages from the next sequence number up to `until` (the spec's count when
   * absent), `window` at a time; resolves once each is acknowledged or refused. `onSent` is
   * called after every settled publish (a scenario strikes its fault from there).
   */
  async publish(until = this.spec.count, onSettled?: (seq: number) => void): Promise<void> {
    const window = this.spec.window ?? 1;
    const padding = this.spec.padding ? " " + "x".repeat(this.spec.padding - 1) : "";
    const worker = async () => {
      while (this.sent < until && !this.#stopped) {
        const seq = this.sent++;
        try {
          await this.publisher.publishAsync(this.topic, `${seq}${padding}`, { qos: this.spec.qos });
          this.acknowledged.add(seq);
        } catch (error) {
          if (this.#stopped) return;
          const code = refusalOf(error);
          this.refused.set(code, (this.refused.get(code) ?? 0) + 1);
        }
        onSettled?.(seq);
      }
    };
    await Promise.all(Array.from({ length: window }, worker));
  }

  /** Acknowledged sequence numbers the subscriber has not received yet. */
  missing(): number[] {
    return [...this.acknowledged].filter((seq) => !this.received.has(seq)).sort((a, b) => a - b);
  }

  /**
   * Resolves once the subscriber received every acknowledged message, or at `deadline` (epoch
   * ms) with what is still missing.
   */
  async receivedAll(deadline: number): Promise<number[]> {
    for (;;) {
      const missing = this.missing();
      if (missing.length === 0 || Date.now() >= deadline) return missing;
      const { promise, resolve } = Promise.withResolvers<void>();
      this.#waiters.push(resolve);
      const timer = setTimeout(resolve, Math.min(1000, Math.max(0, deadline - Date.now())));
      await promise;
      clearTimeout(timer);
    }
  }

  #wake(): void {
    for (const wake of this.#waiters.splice(0)) wake();
  }

  report(): StreamReport {
    let duplicated = 0;
    let unacknowledgedReceived = 0;
    const duplicates: number[] = [];
    for (const [seq, times] of this.received) {
      duplicated += times - 1;
      if (times > 1 && duplicates.length < 10) duplicates.push(seq);
      if (!this.acknowledged.has(seq)) unacknowledgedReceived++;
    }
    return {
      name: this.spec.name,
      qos: this.spec.qos,
      protocolVersion: this.spec.protocolVersion,
      acknowledged: this.acknowledged.size,
      refused: Object.fromEntries(this.refused),
      received: this.received.size,
      lost: this.missing().length,
      duplicated,
      duplicates: duplicates.sort((a, b) => a - b),
      missing: this.missing().slice(0, 10),
      unacknowledgedReceived,
      connects: { ...this.connects },
      sessionsNotPresent: this.sessionsNotPresent,
    };
  }

  /** Ends both clients (the sessions stay on the broker until they expire). */
  async close(): Promise<void> {
    this.#stopped = true;
    this.#wake();
    await Promise.all([this.publisher.endAsync(true), this.subscriber.endAsync(true)]);
  }
}

/** The books of several streams added up, as `deno task chaos` prints them. */
export interface Totals {
  acknowledged: number;
  received: number;
  lost: number;
  duplicated: number;
  /** Duplicates of QoS 2 streams alone (which must be 0). */
  duplicatedQos2: number;
  refused: number;
}

export function totalsOf(reports: StreamReport[]): Totals {
  const totals: Totals = {
    acknowledged: 0,
    received: 0,
    lost: 0,
    duplicated: 0,
    duplicatedQos2: 0,
    refused: 0,
  };
  for (const report of reports) {
    totals.acknowledged += report.acknowledged;
    totals.received += report.received;
    totals.lost += report.lost;
    totals.duplicated += report.duplicated;
    if (report.qos === 2) totals.duplicatedQos2 += report.duplicated;
    totals.refused += Object.values(report.refused).reduce((a, b) => a + b, 0);
  }
  return totals;
}
