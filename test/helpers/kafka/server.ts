/**
 * The Kafka test server: a TCP listener, one request at a time per connection (as a Kafka broker
 * mutes a channel while it serves a request), SASL gating, the fault controls tests use, and the
 * record store tests read back. See `mod.ts` for what it implements and where it differs from
 * Kafka.
 *
 * @module
 */

import {
  APIS,
  apiVersionsBody,
  type ConnectionState,
  type InjectedError,
  PRE_AUTH_APIS,
  type ServerState,
} from "./apis.ts";
import { GroupCoordinator } from "./group.ts";
import { type KafkaRecord, Store } from "./log.ts";
import { ApiKey, ErrorCode } from "./protocol.ts";
import { SASL_MECHANISMS, type SaslMechanism, SaslUsers } from "./sasl.ts";
import { MalformedError, Reader, Writer } from "./wire.ts";

/** How the server is set up; every field has a default. */
export interface KafkaTestServerOptions {
  /** Address to listen on and to advertise in Metadata (default 127.0.0.1). */
  hostname?: string;
  /** Port to listen on (default 0: a free port, kept across stop() and start()). */
  port?: number;
  /** This broker's node id (default 1). */
  nodeId?: number;
  /** Cluster id reported in Metadata (default "perch-kafka-test"). */
  clusterId?: string;
  /** Topics that exist from the start, with their partition counts. */
  topics?: Record<string, number>;
  /** Create a topic a Metadata request names and allows creating (default true). */
  autoCreateTopics?: boolean;
  /** Partitions of an auto-created topic (default 1). */
  defaultPartitions?: number;
  /** Require SASL: these users (name to password), over these mechanisms (default all three). */
  sasl?: { users: Record<string, string>; mechanisms?: SaslMechanism[] };
  /** Largest request frame; a larger one closes its connection (default 8 MiB). */
  maxRequestBytes?: number;
  /** Largest record batch a Produce may carry, else MESSAGE_TOO_LARGE (default 1048588, Kafka's). */
  maxBatchBytes?: number;
  /** Speak TLS with this certificate and key (PEM text), as a Kafka SSL listener does. */
  tls?: { cert: string; key: string };
}

/** One request as the server received it. */
export interface RequestLogEntry {
  /** Which connection (1, 2, ... in accept order). */
  connection: number;
  apiKey: number;
  apiVersion: number;
  clientId: string | null;
  /** The SASL user the connection authenticated as, if it has. */
  user: string | undefined;
  /** False when the key or version is not one this server answers (the connection is closed). */
  supported: boolean;
}

/** failNext's options. */
export interface FailOptions {
  /** Produce only: store the records, then answer with the error (a lost acknowledgement). */
  afterAppend?: boolean;
}

interface PendingFailure extends InjectedError {
  remaining: number;
}

/** How long waitForRecords and until wait by default before they reject. */
const DEFAULT_WAIT_MS = 10_000;

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  let at = 0;
  while (at < bytes.length) at += await conn.write(bytes.subarray(at));
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  if (a.length === 0) return b.slice();
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

/** A client that went away mid-request: an ordinary end of its connection, not a problem. */
function peerGone(err: unknown): boolean {
  return err instanceof Deno.errors.BrokenPipe || err instanceof Deno.errors.ConnectionReset ||
    err instanceof Deno.errors.ConnectionAborted;
}

/** A Kafka broker double on a real socket; create it with {@link startKafkaTestServer}. */
export class KafkaTestServer implements AsyncDisposable {
  readonly hostname: string;
  /** Every request received, in order: what the clients actually send. */
  readonly requests: RequestLogEntry[] = [];
  /** What the server refused or failed on (malformed frames, unsupported requests, SASL). */
  readonly problems: string[] = [];

  #port: number;
  #nodeId: number;
  #clusterId: string;
  #autoCreateTopics: boolean;
  #defaultPartitions: number;
  #maxRequestBytes: number;
  #maxBatchBytes: number;
  #sasl: SaslUsers | undefined;
  #store = new Store();
  #groups = new GroupCoordinator();
  #state: ServerState;

  #listener: Deno.Listener | undefined;
  readonly #tls: { cert: string; key: string } | undefined;
  #accepting: Promise<void> = Promise.resolve();
  #connections = new Set<Deno.Conn>();
  #serving = new Set<Promise<void>>();
  #stopped = new AbortController();
  #accepted = 0;
  #refused = 0;

  #slowMs = 0;
  /** Responses held back by slow(): each re-arms its timer when the delay changes. */
  #delayed = new Set<() => void>();
  #refusing = false;
  #failures = new Map<number, PendingFailure[]>();
  #nextProducerId = 1000;
  #waiters = new Set<() => void>();

  constructor(options: KafkaTestServerOptions, sasl: SaslUsers | undefined) {
    this.hostname = options.hostname ?? "127.0.0.1";
    this.#port = options.port ?? 0;
    this.#nodeId = options.nodeId ?? 1;
    this.#clusterId = options.clusterId ?? "perch-kafka-test";
    this.#autoCreateTopics = options.autoCreateTopics ?? true;
    this.#defaultPartitions = options.defaultPartitions ?? 1;
    this.#maxRequestBytes = options.maxRequestBytes ?? 8 * 1024 * 1024;
    this.#maxBatchBytes = options.maxBatchBytes ?? 1_048_588;
    this.#sasl = sasl;
    this.#tls = options.tls;
    for (const [name, partitions] of Object.entries(options.topics ?? {})) {
      this.#store.create(name, partitions);
    }
    this.#store.onAppend(() => this.#notify());
    const port = () => this.#port;
    const stopped = () => this.#stopped.signal;
    this.#state = {
      store: this.#store,
      nodeId: this.#nodeId,
      host: this.hostname,
      get port() {
        return port();
      },
      clusterId: this.#clusterId,
      autoCreateTopics: this.#autoCreateTopics,
      defaultPartitions: this.#defaultPartitions,
      maxBatchBytes: this.#maxBatchBytes,
      sasl,
      groups: this.#groups,
      get signal() {
        return stopped();
      },
      allocateProducerId: () => this.#nextProducerId++,
    };
  }

  /** The port, fixed at the first start and reused by later ones. */
  get port(): number {
    return this.#port;
  }

  /** `host:port`, the bootstrap list clients take. */
  get bootstrap(): string {
    return `${this.hostname}:${this.#port}`;
  }

  /** Connections accepted and served (not counting refused ones). */
  get acceptedConnections(): number {
    return this.#accepted;
  }

  /** Connections accepted and closed at once while refuse() was on. */
  get refusedConnections(): number {
    return this.#refused;
  }

  /** Listens again (on the same port after a stop()), with every stored record kept. */
  start(): Promise<void> {
    if (this.#listener) return Promise.reject(new Error("the Kafka test server is running"));
    this.#stopped = new AbortController();
    const address = { hostname: this.hostname, port: this.#port };
    const listener = this.#tls
      ? Deno.listenTls({ ...address, ...this.#tls })
      : Deno.listen(address);
    this.#port = (listener.addr as Deno.NetAddr).port;
    this.#listener = listener;
    this.#accepting = this.#accept(listener);
    return Promise.resolve();
  }

  /**
   * Closes the listener and every connection (clients see the broker go down), ends waiting Fetch
   * requests and slowed responses, ends every consumer group membership (as when sessions lapse
   * over a broker restart), and resolves once all of that has finished. The port can be bound
   * again at once; stored records, producer state and committed offsets are kept for start().
   */
  async stop(): Promise<void> {
    const listener = this.#listener;
    if (!listener) return;
    this.#listener = undefined;
    this.#stopped.abort();
    this.#groups.reset();
    listener.close();
    for (const conn of this.#connections) conn.close();
    this.#connections.clear();
    await this.#accepting;
    await Promise.all(this.#serving);
    this.#notify();
  }

  /** Stops for good (the same as stop(); here for `await using`). */
  close(): Promise<void> {
    return this.stop();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /**
   * Delays every response by `ms` (0 turns it off), including responses already held back: they
   * go out `ms` after they were ready, at once if that has passed. A stop() ends every delay.
   */
  slow(ms: number): void {
    this.#slowMs = ms;
    for (const arm of [...this.#delayed]) arm();
  }

  /**
   * Answers the next `count` requests of `apiKey` with `errorCode` (in each partition's or the
   * response's error field) instead of serving them; with `afterAppend` a Produce is stored first.
   */
  failNext(apiKey: number, errorCode: number, count = 1, options: FailOptions = {}): void {
    if (!Number.isInteger(count) || count < 1) throw new RangeError(`failNext count ${count}`);
    const queue = this.#failures.get(apiKey) ?? [];
    queue.push({ errorCode, afterAppend: options.afterAppend ?? false, remaining: count });
    this.#failures.set(apiKey, queue);
  }

  /** While on, accepts connections and closes them at once (a broker that is up but refusing). */
  refuse(on = true): void {
    this.#refusing = on;
  }

  /** Creates a topic (a topic that exists is left as it is). */
  createTopic(name: string, partitions = this.#defaultPartitions): void {
    this.#store.create(name, partitions);
  }

  /** Names of the topics that exist, with their partition counts. */
  topics(): Record<string, number> {
    return Object.fromEntries([...this.#store.topics].map(([name, logs]) => [name, logs.length]));
  }

  /**
   * Records stored for `topic`, in offset order: of one partition, or of all of them one partition
   * after the other. Keys and values are the producer's bytes; duplicates a producer retried are
   * stored once only when it is idempotent, as in Kafka.
   */
  records(topic: string, partition?: number): KafkaRecord[] {
    const logs = this.#store.topics.get(topic) ?? [];
    const chosen = partition === undefined ? logs : logs.filter((log) => log.index === partition);
    return chosen.flatMap((log) => log.records);
  }

  /** The offset `groupId` last committed for a partition, or -1. */
  committedOffset(groupId: string, topic: string, partition: number): number {
    const [committed] = this.#groups.committed(groupId, [{ name: topic, partitions: [partition] }]);
    return committed.partitions[0].offset;
  }

  /** Resolves with records(topic, partition) once it holds at least `count` records. */
  async waitForRecords(
    topic: string,
    count: number,
    options: { timeoutMs?: number; partition?: number } = {},
  ): Promise<KafkaRecord[]> {
    const current = () => this.records(topic, options.partition);
    await this.until(() => current().length >= count, {
      timeoutMs: options.timeoutMs,
      what: () => `${count} records in ${topic} (have ${current().length})`,
    });
    return current();
  }

  /**
   * Resolves once `predicate` holds, checking it now and after every request received and
   * served, append, accepted or refused connection, closed connection and stop (event-driven, no
   * polling); rejects after `timeoutMs`.
   */
  until(
    predicate: () => boolean,
    options: { timeoutMs?: number; what?: () => string } = {},
  ): Promise<void> {
    if (predicate()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const check = () => {
        if (!predicate()) return;
        clearTimeout(timer);
        this.#waiters.delete(check);
        resolve();
      };
      const timer = setTimeout(() => {
        this.#waiters.delete(check);
        reject(
          new Error(
            `Kafka test server: timed out waiting for ${options.what?.() ?? "a condition"}`,
          ),
        );
      }, options.timeoutMs ?? DEFAULT_WAIT_MS);
      this.#waiters.add(check);
    });
  }

  #notify(): void {
    for (const waiter of [...this.#waiters]) waiter();
  }

  #takeFailure(apiKey: number): InjectedError | undefined {
    const queue = this.#failures.get(apiKey);
    const failure = queue?.[0];
    if (!failure) return undefined;
    if (--failure.remaining === 0) queue!.shift();
    return { errorCode: failure.errorCode, afterAppend: failure.afterAppend };
  }

  async #accept(listener: Deno.Listener): Promise<void> {
    for (;;) {
      let conn: Deno.Conn;
      try {
        conn = await listener.accept();
      } catch {
        return; // the listener was closed by stop()
      }
      if (this.#refusing) {
        conn.close();
        this.#refused++;
      } else {
        this.#accepted++;
        this.#connections.add(conn);
        const serving = this.#serve(conn, this.#accepted).finally(() =>
          this.#serving.delete(serving)
        );
        this.#serving.add(serving);
      }
      this.#notify();
    }
  }

  async #serve(conn: Deno.Conn, id: number): Promise<void> {
    const state: ConnectionState = {
      authenticated: this.#sasl === undefined,
      exchange: undefined,
      rawSasl: false,
      user: undefined,
      closeAfterResponse: false,
    };
    const chunk = new Uint8Array(64 * 1024);
    let pending: Uint8Array = new Uint8Array();
    try {
      for (;;) {
        const n = await conn.read(chunk);
        if (n === null) return;
        pending = concat(pending, chunk.subarray(0, n));
        while (pending.length >= 4) {
          const size = new DataView(pending.buffer, pending.byteOffset).getInt32(0);
          if (size < 0 || size > this.#maxRequestBytes) {
            throw new MalformedError(`a frame of ${size} bytes (limit ${this.#maxRequestBytes})`);
          }
          if (pending.length < 4 + size) break;
          const frame = pending.subarray(4, 4 + size);
          pending = pending.subarray(4 + size);
          const response = state.rawSasl
            ? await this.#rawSasl(id, state, frame)
            : await this.#request(id, state, frame);
          if (response === "close") return;
          if (response) {
            await this.#delay();
            await writeAll(conn, response);
          }
          if (state.closeAfterResponse) return;
        }
      }
    } catch (err) {
      if (err instanceof MalformedError) this.problems.push(`connection ${id}: ${err.message}`);
      else if (!this.#stopped.signal.aborted && !peerGone(err)) {
        this.problems.push(`connection ${id}: ${err instanceof Error ? err.stack : err}`);
      }
    } finally {
      if (this.#connections.delete(conn)) conn.close();
      this.#notify();
    }
  }

  /** Serves one request frame: the response frame, null for none, or "close". */
  async #request(
    id: number,
    state: ConnectionState,
    frame: Uint8Array,
  ): Promise<Uint8Array | null | "close"> {
    const r = new Reader(frame);
    const apiKey = r.int16();
    const version = r.int16();
    const correlationId = r.int32();
    const clientId = r.nullableString();
    const api = APIS.get(apiKey);
    const supported = api !== undefined && version >= api.minVersion &&
      version <= api.maxVersion;
    this.requests.push({
      connection: id,
      apiKey,
      apiVersion: version,
      clientId,
      user: state.user,
      supported,
    });
    this.#notify();
    const respond = (body: Writer) =>
      new Writer().int32(4 + body.length).int32(correlationId).raw(body.finish()).finish();

    if (!supported) {
      // Kafka answers an ApiVersions it cannot parse at v0 so the client can downgrade; for any
      // other key or version it has no response format, and closes the connection.
      if (api?.key === ApiKey.ApiVersions) {
        return respond(apiVersionsBody(0, ErrorCode.UNSUPPORTED_VERSION));
      }
      this.problems.push(`connection ${id}: unsupported request key ${apiKey} v${version}`);
      return "close";
    }
    if (api.flexibleFrom !== undefined && version >= api.flexibleFrom) r.skipTags();
    if (!state.authenticated && !PRE_AUTH_APIS.has(apiKey)) {
      this.problems.push(`connection ${id}: ${api.name} before SASL authentication`);
      return "close";
    }
    const injected = this.#takeFailure(apiKey);
    const body = await api.handle(
      { server: this.#state, connection: state, version, clientId, injected },
      r,
    );
    if (r.remaining !== 0) {
      throw new MalformedError(`${r.remaining} bytes after a ${api.name} v${version} request`);
    }
    this.#notify();
    if (state.closeAfterResponse && !state.authenticated) {
      this.problems.push(`connection ${id}: SASL ${api.name} failed`);
    }
    return body ? respond(body) : null;
  }

  /** After SaslHandshake v0: a bare SASL token in, a bare token out; failure closes. */
  async #rawSasl(
    id: number,
    state: ConnectionState,
    token: Uint8Array,
  ): Promise<Uint8Array | "close"> {
    const step = await state.exchange!.step(token);
    if (step.state === "failure") {
      this.problems.push(`connection ${id}: SASL failed: ${step.message}`);
      return "close";
    }
    if (step.state === "success") {
      state.authenticated = true;
      state.exchange = undefined;
      state.rawSasl = false;
      state.user = step.user;
    }
    return new Writer().bytesField(step.response).finish();
  }

  /** Holds a response back for the slow() delay, counted from when it was ready. */
  #delay(): Promise<void> {
    const signal = this.#stopped.signal;
    if (this.#slowMs <= 0 || signal.aborted) return Promise.resolve();
    const readyAt = Date.now();
    return new Promise((resolve) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const done = () => {
        clearTimeout(timer);
        this.#delayed.delete(arm);
        signal.removeEventListener("abort", done);
        resolve();
      };
      const arm = () => {
        clearTimeout(timer);
        const left = readyAt + this.#slowMs - Date.now();
        if (left <= 0) done();
        else timer = setTimeout(done, left);
      };
      this.#delayed.add(arm);
      signal.addEventListener("abort", done);
      arm();
    });
  }
}

/** Starts a Kafka test server on a free port (or `options.port`). */
export async function startKafkaTestServer(
  options: KafkaTestServerOptions = {},
): Promise<KafkaTestServer> {
  const sasl = options.sasl
    ? await SaslUsers.create(options.sasl.users, options.sasl.mechanisms ?? SASL_MECHANISMS)
    : undefined;
  const server = new KafkaTestServer(options, sasl);
  await server.start();
  return server;
}
