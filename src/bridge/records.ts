/**
 * Kafka records made from MQTT messages: the key from the mapping's template, the value as the
 * payload (`raw`) or a JSON envelope (`json`), user properties as headers; and the binary form in
 * which the records of one accepted message wait in the outbox.
 *
 * @module
 */

import type { Publisher } from "../domain/sink.ts";
import type { Message } from "../domain/types.ts";
import type { KafkaMapping } from "./mapping.ts";

/** One record for Kafka. */
export interface BridgeRecord {
  /** The mapping that made it (for the metrics). */
  mapping: string;
  /** The Kafka topic. */
  topic: string;
  /** Null: no key. */
  key: Uint8Array | null;
  value: Uint8Array;
  /** Name and value of each header, in order (a name may repeat). */
  headers: [string, string][];
  /** Epoch ms the broker accepted the message (the record's CreateTime). */
  timestamp: number;
}

/** The MQTT 5 properties of a message in the `json` envelope. */
export interface EnvelopeProperties {
  payloadFormatIndicator?: number;
  /** Seconds left of the Message Expiry Interval when the message was accepted. */
  messageExpiryInterval?: number;
  contentType?: string;
  responseTopic?: string;
  /** Base64. */
  correlationData?: string;
  userProperties?: [string, string][];
}

/** The `json` value format. */
export interface Envelope {
  /** The MQTT topic (after `$queue/` for a message published there). */
  topic: string;
  /** How `payload` is written: `utf8` text or `base64`. */
  payloadEncoding: "utf8" | "base64";
  payload: string;
  qos: number;
  retain: boolean;
  /** The publisher's client id; "" for a message the broker made (an admin publish). */
  clientId: string;
  username: string | null;
  properties: EnvelopeProperties;
  /** Epoch ms the broker accepted the message. */
  timestamp: number;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

/** The key a template gives; null when it comes out empty. */
function renderKey(template: string, topic: string, clientId: string, username: string) {
  if (template === "{topic}") return encoder.encode(topic);
  const key = template.replace(
    /\{(topic|clientId|username)\}/g,
    (_, name: string) => name === "topic" ? topic : name === "clientId" ? clientId : username,
  );
  return key === "" ? null : encoder.encode(key);
}

function envelopeProperties(message: Message, now: number): EnvelopeProperties {
  const p = message.properties;
  const out: EnvelopeProperties = {};
  if (p?.payloadFormatIndicator !== undefined) {
    out.payloadFormatIndicator = p.payloadFormatIndicator;
  }
  if (message.expiresAt !== 0) {
    out.messageExpiryInterval = Math.max(0, Math.ceil((message.expiresAt - now) / 1000));
  }
  if (p?.contentType !== undefined) out.contentType = p.contentType;
  if (p?.responseTopic !== undefined) out.responseTopic = p.responseTopic;
  if (p?.correlationData !== undefined) out.correlationData = p.correlationData.toBase64();
  if (p?.userProperties !== undefined) out.userProperties = p.userProperties;
  return out;
}

function envelope(
  mapping: KafkaMapping,
  message: Message,
  topic: string,
  publisher: Publisher | undefined,
  now: number,
): Uint8Array {
  let payload: string | undefined;
  if (mapping.payloadEncoding === "utf8") {
    try {
      payload = strictUtf8.decode(message.payload);
    } catch {
      // Not UTF-8: base64 below, and the envelope says so.
    }
  }
  const value: Envelope = {
    topic,
    payloadEncoding: payload === undefined ? "base64" : "utf8",
    payload: payload ?? message.payload.toBase64(),
    qos: message.qos,
    retain: message.retain,
    clientId: publisher?.clientId ?? message.origin,
    username: publisher?.username ?? null,
    properties: envelopeProperties(message, now),
    timestamp: now,
  };
  return encoder.encode(JSON.stringify(value));
}

/**
 * The record a mapping makes of a message.
 *
 * @param topic The MQTT topic the mapping matched: after `$queue/` for a message published there.
 * @param now Epoch ms the message was accepted.
 */
export function renderRecord(
  mapping: KafkaMapping,
  message: Message,
  topic: string,
  publisher: Publisher | undefined,
  now: number,
): BridgeRecord {
  const clientId = publisher?.clientId ?? message.origin;
  return {
    mapping: mapping.name,
    topic: mapping.kafkaTopic,
    key: renderKey(mapping.key, topic, clientId, publisher?.username ?? ""),
    value: mapping.format === "raw"
      ? message.payload
      : envelope(mapping, message, topic, publisher, now),
    headers: mapping.headers ? message.properties?.userProperties ?? [] : [],
    timestamp: now,
  };
}

// ---- the outbox form ---------------------------------------------------------------------------

const VERSION = 1;

/** Writes into a buffer sized in advance. */
class Writer {
  readonly bytes: Uint8Array;
  readonly #view: DataView;
  #at = 0;

  constructor(size: number) {
    this.bytes = new Uint8Array(size);
    this.#view = new DataView(this.bytes.buffer);
  }

  u8(n: number): void {
    this.#view.setUint8(this.#at, n);
    this.#at += 1;
  }
  u32(n: number): void {
    this.#view.setUint32(this.#at, n);
    this.#at += 4;
  }
  f64(n: number): void {
    this.#view.setFloat64(this.#at, n);
    this.#at += 8;
  }
  raw(bytes: Uint8Array): void {
    this.bytes.set(bytes, this.#at);
    this.#at += bytes.length;
  }
  /** A length (u32) and the bytes. */
  field(bytes: Uint8Array): void {
    this.u32(bytes.length);
    this.raw(bytes);
  }
}

/** Reads what {@linkcode Writer} wrote; throws a RangeError past the end. */
class Reader {
  readonly #bytes: Uint8Array;
  readonly #view: DataView;
  #at = 0;

  constructor(bytes: Uint8Array) {
    this.#bytes = bytes;
    this.#view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  u8(): number {
    return this.#view.getUint8(this.#at++);
  }
  u32(): number {
    const n = this.#view.getUint32(this.#at);
    this.#at += 4;
    return n;
  }
  f64(): number {
    const n = this.#view.getFloat64(this.#at);
    this.#at += 8;
    return n;
  }
  field(): Uint8Array {
    return this.bytes(this.u32());
  }
  bytes(length: number): Uint8Array {
    if (this.#at + length > this.#bytes.length) throw new RangeError("a field runs past the end");
    const bytes = this.#bytes.subarray(this.#at, this.#at + length);
    this.#at += length;
    return bytes;
  }
  text(): string {
    return decoder.decode(this.field());
  }
}

/** Marks a null key (a real key is shorter than 4 GiB). */
const NO_KEY = 0xffff_ffff;

/** The records of one accepted message as one outbox entry. */
export function encodeEntry(records: readonly BridgeRecord[]): Uint8Array {
  const texts = records.map((r) => ({
    mapping: encoder.encode(r.mapping),
    topic: encoder.encode(r.topic),
    headers: r.headers.map(([name, value]) => [encoder.encode(name), encoder.encode(value)]),
  }));
  let size = 1 + 4;
  records.forEach((r, i) => {
    const t = texts[i];
    size += 4 + t.mapping.length + 4 + t.topic.length + 4 + (r.key?.length ?? 0) + 4 +
      r.value.length + 8 + 4;
    for (const [name, value] of t.headers) size += 8 + name.length + value.length;
  });
  const w = new Writer(size);
  w.u8(VERSION);
  w.u32(records.length);
  records.forEach((r, i) => {
    const t = texts[i];
    w.field(t.mapping);
    w.field(t.topic);
    if (r.key === null) w.u32(NO_KEY);
    else w.field(r.key);
    w.field(r.value);
    w.f64(r.timestamp);
    w.u32(t.headers.length);
    for (const [name, value] of t.headers) {
      w.field(name);
      w.field(value);
    }
  });
  return w.bytes;
}

/**
 * The records of an outbox entry.
 *
 * @throws {RangeError} When the entry is not one {@linkcode encodeEntry} wrote.
 */
export function decodeEntry(bytes: Uint8Array): BridgeRecord[] {
  const r = new Reader(bytes);
  const version = r.u8();
  if (version !== VERSION) throw new RangeError(`an outbox entry of version ${version}`);
  const count = r.u32();
  const records: BridgeRecord[] = [];
  for (let i = 0; i < count; i++) {
    const mapping = r.text();
    const topic = r.text();
    const keyLength = r.u32();
    const key = keyLength === NO_KEY ? null : r.bytes(keyLength);
    const value = r.field();
    const timestamp = r.f64();
    const headerCount = r.u32();
    const headers: [string, string][] = [];
    for (let h = 0; h < headerCount; h++) headers.push([r.text(), r.text()]);
    records.push({ mapping, topic, key, value, headers, timestamp });
  }
  return records;
}
