/**
 * JetStream publishes, many in flight, without the NATS client's request machinery.
 *
 * A JetStream publish is a core publish with a reply subject; the stream answers on it once the
 * message is stored (a `PubAck`). The client's `js.publish()` makes each one a request of its own:
 * a headers object even when there are none, a timer, an entry in its reply multiplexer and, to
 * cancel the request after its answer, an error with a stack trace. At thousands of QoS 1
 * messages a second that cost more than the publish. Here every publish of a connection shares one
 * reply subscription (`{inbox}.*`, the token being a counter), and one timer sweeps the ones past
 * their timeout (in publish order, so a sweep stops at the first one still in time).
 *
 * What a publish resolves to is what the client's would: the stream's acknowledgement, after the
 * message is stored; an error when the stream refuses, nothing answers (503: no stream captures
 * the subject, or JetStream is off) or the timeout passes. Publishes of one connection reach the
 * server in call order, and the stream stores them in that order.
 *
 * @module
 */

import {
  createInbox,
  headers as makeHeaders,
  type Msg,
  type MsgHdrs,
  type NatsConnection,
  type Subscription,
} from "@nats-io/nats-core";

const decoder = new TextDecoder();

/** Options of one publish (the subset of the client's that this backbone uses). */
export interface JsPublishOptions {
  /** Headers of the message itself (extended with the JetStream ones below). */
  headers?: MsgHdrs;
  /** De-duplication id (`Nats-Msg-Id`), within the stream's duplicate window. */
  msgID?: string;
  /** Per-message TTL (`Nats-TTL`), as the stream takes it ("5s"). */
  ttl?: string;
}

/** The stream's acknowledgement. */
export interface JsPubAck {
  stream: string;
  seq: number;
  duplicate: boolean;
}

/** A failed publish: the stream's error (with its code), no responders, or a timeout. */
export class JsPublishError extends Error {
  readonly code: number | undefined;
  constructor(message: string, name: string, code?: number) {
    super(message);
    this.name = name;
    this.code = code;
  }
}

const STREAM_KEY = new TextEncoder().encode('{"stream":"');
const SEQ_KEY = new TextEncoder().encode('"seq":');
const DUPLICATE_KEY = new TextEncoder().encode('"duplicate":');
const ERROR_KEY = new TextEncoder().encode('"error"');

/** Where `key` starts in `data` at or after `from`, or -1. */
function indexOfBytes(data: Uint8Array, key: Uint8Array, from: number): number {
  const first = key[0];
  const last = data.length - key.length;
  outer: for (
    let i = data.indexOf(first, from);
    i !== -1 && i <= last;
    i = data.indexOf(first, i + 1)
  ) {
    for (let j = 1; j < key.length; j++) if (data[i + j] !== key[j]) continue outer;
    return i;
  }
  return -1;
}

/** The last stream name read from an acknowledgement, and its bytes (one stream: nearly always). */
let lastStream = "";
let lastStreamBytes = new Uint8Array(0);

/**
 * A plain acknowledgement (`{"stream":"…","seq":N}`, perhaps with a domain and
 * `"duplicate":true`) read from its bytes without `JSON.parse`: the stream name as a string
 * reused from the last one, the sequence as digits. Undefined for anything else (an error, or an
 * unexpected shape), which the JSON parser then reads.
 */
function plainAck(data: Uint8Array): JsPubAck | undefined {
  const n = STREAM_KEY.length;
  if (data.length < n + 10) return undefined;
  for (let i = 0; i < n; i++) if (data[i] !== STREAM_KEY[i]) return undefined;
  const end = data.indexOf(0x22, n); // The closing quote: stream names have no quote or escape.
  if (end === -1 || data.indexOf(0x5c, n) !== -1) return undefined;
  const at = indexOfBytes(data, SEQ_KEY, end);
  if (at === -1) return undefined;
  let seq = 0;
  let i = at + SEQ_KEY.length;
  while (data[i] === 0x20) i++;
  const digits = i;
  for (let c = data[i]; c >= 48 && c <= 57; c = data[++i]) seq = seq * 10 + (c - 48);
  if (i === digits || (data[i] !== 0x2c && data[i] !== 0x7d)) return undefined;
  // Only these keys are expected; an error goes to the JSON parser.
  if (indexOfBytes(data, ERROR_KEY, 0) !== -1) return undefined;
  let same = end - n === lastStreamBytes.length;
  for (let j = 0; same && j < lastStreamBytes.length; j++) {
    same = data[n + j] === lastStreamBytes[j];
  }
  if (!same) {
    lastStreamBytes = new Uint8Array(data.subarray(n, end));
    lastStream = decoder.decode(lastStreamBytes);
  }
  // nats-server writes `"duplicate": true` (with a space), which is not left to chance here.
  let duplicate = false;
  let d = indexOfBytes(data, DUPLICATE_KEY, n);
  if (d !== -1) {
    d += DUPLICATE_KEY.length;
    while (data[d] === 0x20) d++;
    duplicate = data[d] === 0x74; // t
  }
  return { stream: lastStream, seq, duplicate };
}

interface Waiting {
  resolve: (ack: JsPubAck) => void;
  reject: (error: Error) => void;
  /** When it times out (ms since the epoch). */
  deadline: number;
}

/** Pipelined JetStream publishes on one connection. */
export class JsPublisher {
  readonly #nc: NatsConnection;
  readonly #timeoutMs: number;
  readonly #prefix: string;
  readonly #subscription: Subscription;
  /** By token, in publish order. */
  readonly #waiting = new Map<number, Waiting>();
  #next = 0;
  #sweeper: ReturnType<typeof setInterval> | undefined;
  #closed = false;

  constructor(nc: NatsConnection, timeoutMs: number) {
    this.#nc = nc;
    this.#timeoutMs = timeoutMs;
    this.#prefix = createInbox();
    this.#subscription = nc.subscribe(`${this.#prefix}.*`, {
      callback: (_error, msg) => this.#answered(msg),
    });
  }

  /** Publishes `data` to `subject`; resolves once the stream stored it. */
  publish(subject: string, data: Uint8Array, options: JsPublishOptions = {}): Promise<JsPubAck> {
    if (this.#closed || this.#nc.isClosed()) {
      return Promise.reject(new JsPublishError("the NATS connection is closed", "ClosedError"));
    }
    let h = options.headers;
    if (options.msgID !== undefined || options.ttl !== undefined) {
      h ??= makeHeaders();
      if (options.msgID !== undefined) h.set("Nats-Msg-Id", options.msgID);
      if (options.ttl !== undefined) h.set("Nats-TTL", options.ttl);
    }
    const token = this.#next++;
    return new Promise<JsPubAck>((resolve, reject) => {
      this.#waiting.set(token, { resolve, reject, deadline: Date.now() + this.#timeoutMs });
      this.#sweeper ??= setInterval(() => this.#sweep(), Math.max(20, this.#timeoutMs / 10));
      try {
        this.#nc.publish(subject, data, { reply: `${this.#prefix}.${token}`, headers: h });
      } catch (error) {
        this.#waiting.delete(token);
        reject(error instanceof Error ? error : new Error(String(error)));
      }
    });
  }

  /** Publishes not answered yet. */
  get inFlight(): number {
    return this.#waiting.size;
  }

  #answered(msg: Msg): void {
    // The token is the subject's last token, decimal digits (no string cut out per answer).
    const subject = msg.subject;
    let token = 0;
    for (let i = this.#prefix.length + 1; i < subject.length; i++) {
      token = token * 10 + subject.charCodeAt(i) - 48;
    }
    const waiting = this.#waiting.get(token);
    if (waiting === undefined) return; // Timed out already.
    this.#waiting.delete(token);
    const status = msg.headers?.code ?? 0;
    if (status === 503) {
      waiting.reject(
        new JsPublishError(
          "no responders: no stream captures the subject, or JetStream is not enabled",
          "NoRespondersError",
          503,
        ),
      );
      return;
    }
    const fast = plainAck(msg.data);
    if (fast !== undefined) {
      waiting.resolve(fast);
      return;
    }
    let answer: { stream?: string; seq?: number; duplicate?: boolean; error?: unknown };
    try {
      answer = JSON.parse(decoder.decode(msg.data));
    } catch {
      waiting.reject(new JsPublishError("invalid ack response", "JetStreamError", status));
      return;
    }
    const error = answer.error as { description?: string; err_code?: number } | undefined;
    if (error) {
      waiting.reject(
        new JsPublishError(
          error.description ?? "JetStream error",
          "JetStreamApiError",
          error.err_code,
        ),
      );
    } else if (!answer.stream) {
      waiting.reject(new JsPublishError("invalid ack response", "JetStreamError"));
    } else {
      waiting.resolve({
        stream: answer.stream,
        seq: answer.seq ?? 0,
        duplicate: answer.duplicate === true,
      });
    }
  }

  #sweep(): void {
    const now = Date.now();
    for (const [token, waiting] of this.#waiting) {
      if (waiting.deadline > now) break;
      this.#waiting.delete(token);
      waiting.reject(new JsPublishError("timeout", "TimeoutError"));
    }
    if (this.#waiting.size === 0) {
      clearInterval(this.#sweeper);
      this.#sweeper = undefined;
    }
  }

  /** Fails what is still waiting and stops; later publishes fail at once. */
  close(): void {
    this.#closed = true;
    clearInterval(this.#sweeper);
    this.#sweeper = undefined;
    if (!this.#subscription.isClosed()) this.#subscription.unsubscribe();
    for (const waiting of this.#waiting.values()) {
      waiting.reject(new JsPublishError("the NATS connection is closed", "ClosedError"));
    }
    this.#waiting.clear();
  }
}
