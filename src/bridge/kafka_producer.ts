/**
 * The Kafka side of the bridge: a kafkajs producer made from the settings (brokers, TLS, SASL,
 * idempotence, acks, compression, timeouts), records sent as one request grouped by topic, and
 * what a failure means for the bridge.
 *
 * kafkajs retries a failed request a few times itself; past that the bridge's own loop retries
 * with its backoff, on the same producer, so an idempotent producer's sequence numbers carry over
 * and Kafka stores a batch sent again once.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { readFile } from "node:fs/promises";
import {
  CompressionTypes,
  type IHeaders,
  Kafka,
  type KafkaConfig,
  logLevel,
  type Message as KafkaMessage,
  Partitioners,
  type Producer,
  type SASLOptions,
  type TopicMessages,
} from "kafkajs";
import type { Logger } from "../util/logger.ts";
import type { BridgeRecord } from "./records.ts";

/** How the producer reaches Kafka, as `bridge.kafka` in the configuration holds it (ms). */
export interface KafkaProducerSettings {
  brokers: string[];
  clientId: string;
  tls: { enabled: boolean; ca?: string; cert?: string; key?: string };
  sasl: {
    mechanism: "none" | "plain" | "scram-sha-256" | "scram-sha-512";
    username?: string;
    password?: string;
  };
  compression: "none" | "gzip";
  idempotent: boolean;
  acks: "all" | "leader" | "none";
  retry: { initialDelay: number; maxDelay: number };
  connectTimeout: number;
  requestTimeout: number;
}

/**
 * What a failed send means:
 * - `unreachable`: no connection to Kafka (retry);
 * - `refused`: Kafka answered with an error that may pass (a leader moving, a timeout: retry);
 * - `record`: Kafka refuses these records for good (too large, invalid): retrying cannot help;
 * - `producer`: the idempotent producer's sequence is out of step with Kafka (start a new one).
 */
export type SendFailure = "unreachable" | "refused" | "record" | "producer";

/** Kafka errors that say the records themselves can never be stored. */
const RECORD_ERRORS: ReadonlySet<string> = new Set([
  "MESSAGE_TOO_LARGE",
  "RECORD_LIST_TOO_LARGE",
  "INVALID_RECORD",
  "INVALID_TIMESTAMP",
  "INVALID_TOPIC_EXCEPTION",
]);

/** Kafka errors that say the producer id or its sequence numbers are no longer good. */
const PRODUCER_ERRORS: ReadonlySet<string> = new Set([
  "OUT_OF_ORDER_SEQUENCE_NUMBER",
  "INVALID_PRODUCER_EPOCH",
  "UNKNOWN_PRODUCER_ID",
  "INVALID_PRODUCER_ID_MAPPING",
]);

/** kafkajs errors of a connection that could not be made or broke. */
const CONNECTION_ERRORS: ReadonlySet<string> = new Set([
  "KafkaJSConnectionError",
  "KafkaJSConnectionClosedError",
  "KafkaJSBrokerNotFound",
  "KafkaJSRequestTimeoutError",
  "KafkaJSSASLAuthenticationError",
]);

/** Classifies a failed send or connect, looking through kafkajs's wrappers to the cause. */
export function classifyFailure(error: unknown): SendFailure {
  let unreachable = false;
  for (
    let e = error as { name?: string; type?: string; cause?: unknown } | undefined, depth = 0;
    e && depth < 8;
    e = e.cause as typeof e, depth++
  ) {
    if (e.type && RECORD_ERRORS.has(e.type)) return "record";
    if (e.type && PRODUCER_ERRORS.has(e.type)) return "producer";
    if (e.name && CONNECTION_ERRORS.has(e.name)) unreachable = true;
  }
  return unreachable ? "unreachable" : "refused";
}

/** A failure in one line. */
export function describeFailure(error: unknown): string {
  const e = error as { message?: string; cause?: { message?: string } };
  const message = e?.message ?? String(error);
  const cause = e?.cause?.message;
  return cause && cause !== message ? `${message}: ${cause}` : message;
}

const ACKS = { all: -1, leader: 1, none: 0 } as const;

/** kafkajs's own retries of one request, before the bridge's loop takes over. */
const KAFKAJS_RETRIES = 2;

function buffer(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Headers as kafkajs takes them: a repeated name becomes a list, in order. */
function headersOf(pairs: [string, string][]): IHeaders | undefined {
  if (pairs.length === 0) return undefined;
  const headers: IHeaders = {};
  for (const [name, value] of pairs) {
    const current = headers[name];
    if (current === undefined) headers[name] = value;
    else if (Array.isArray(current)) current.push(value);
    else headers[name] = [current, value];
  }
  return headers;
}

/** Records grouped by topic (in order of first appearance), each topic's records in order. */
function topicMessages(records: readonly BridgeRecord[]): TopicMessages[] {
  const byTopic = new Map<string, KafkaMessage[]>();
  for (const record of records) {
    let messages = byTopic.get(record.topic);
    if (!messages) byTopic.set(record.topic, messages = []);
    messages.push({
      key: record.key === null ? null : buffer(record.key),
      value: buffer(record.value),
      headers: headersOf(record.headers),
      timestamp: String(record.timestamp),
    });
  }
  return [...byTopic].map(([topic, messages]) => ({ topic, messages }));
}

/** The kafkajs client configuration of the settings (TLS files read here). */
async function kafkaConfig(settings: KafkaProducerSettings, logger: Logger): Promise<KafkaConfig> {
  const { tls, sasl } = settings;
  let ssl: KafkaConfig["ssl"] = false;
  if (tls.enabled) {
    const [ca, cert, key] = await Promise.all(
      [tls.ca, tls.cert, tls.key].map((path) => path === undefined ? undefined : readFile(path)),
    );
    ssl = ca || cert ? { ...(ca ? { ca: [ca] } : {}), ...(cert ? { cert, key } : {}) } : true;
  }
  const log = logger.child({ component: "kafkajs" });
  return {
    clientId: settings.clientId,
    brokers: settings.brokers,
    ssl,
    sasl: sasl.mechanism === "none" ? undefined : {
      mechanism: sasl.mechanism,
      username: sasl.username!,
      password: sasl.password!,
    } as SASLOptions,
    connectionTimeout: settings.connectTimeout,
    requestTimeout: settings.requestTimeout,
    retry: {
      initialRetryTime: settings.retry.initialDelay,
      maxRetryTime: Math.min(settings.retry.maxDelay, 1000),
      retries: KAFKAJS_RETRIES,
    },
    // kafkajs's lines are details of what the bridge logs once per state change: debug only.
    logLevel: logger.level === "debug" ? logLevel.INFO : logLevel.NOTHING,
    logCreator: () => ({ namespace, log: entry }) => {
      const { message, timestamp: _, logger: __, ...fields } = entry as unknown as Record<
        string,
        unknown
      >;
      log.debug(String(message), { namespace, ...fields });
    },
  };
}

/** One kafkajs producer; a new one is made after a sequence error. */
export class KafkaProducer {
  readonly #settings: KafkaProducerSettings;
  readonly #config: KafkaConfig;
  #producer: Producer;

  private constructor(settings: KafkaProducerSettings, config: KafkaConfig) {
    this.#settings = settings;
    this.#config = config;
    this.#producer = this.#make();
  }

  /** A producer of the settings (not connected yet). */
  static async create(settings: KafkaProducerSettings, logger: Logger): Promise<KafkaProducer> {
    return new KafkaProducer(settings, await kafkaConfig(settings, logger));
  }

  #make(): Producer {
    const settings = this.#settings;
    return new Kafka(this.#config).producer({
      idempotent: settings.idempotent,
      // One request at a time keeps the order per partition across retries.
      maxInFlightRequests: 1,
      createPartitioner: Partitioners.DefaultPartitioner,
      retry: this.#config.retry,
    });
  }

  /** Connects (and with idempotence, gets a producer id); rejects when Kafka cannot be reached. */
  connect(): Promise<void> {
    return this.#producer.connect();
  }

  /** Sends records in one request per broker; resolves once Kafka acknowledged them (per acks). */
  async send(records: readonly BridgeRecord[]): Promise<void> {
    await this.#producer.sendBatch({
      topicMessages: topicMessages(records),
      acks: ACKS[this.#settings.acks],
      timeout: this.#settings.requestTimeout,
      compression: this.#settings.compression === "gzip"
        ? CompressionTypes.GZIP
        : CompressionTypes.None,
    });
  }

  /** Replaces the producer with a new one (a new producer id), not connected yet. */
  async renew(): Promise<void> {
    await this.disconnect();
    this.#producer = this.#make();
  }

  /** Closes every connection; a send in flight fails. */
  async disconnect(): Promise<void> {
    await this.#producer.disconnect().catch(() => {});
  }
}
