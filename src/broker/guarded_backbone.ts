/**
 * The backbone as the engine uses it: every asynchronous call bounded by a timeout, every failure
 * turned into a {@linkcode BackboneError} and reported once to `onFailure` (which counts and logs
 * it). A remote store that hangs then costs a client one refused operation, never a stuck
 * connection, and a rejection never goes unhandled.
 *
 * The timeouts share one timer: every call has the same bound, so pending calls expire in the
 * order they were made and sit in one FIFO.
 *
 * @module
 */

import {
  type Backbone,
  type ConfigStore,
  DONE,
  type InboundKey,
  type MessageBus,
  type NodeRegistry,
  type PublishOutcome,
  type PublishWait,
  type QueueHandle,
  type QueueStore,
  type RetainedStore,
  type SessionStore,
} from "../backbone/backbone.ts";
import { BackboneError } from "../backbone/errors.ts";
import type { Message } from "../domain/types.ts";
import type { Clock, TimerId } from "../util/clock.ts";
import { Fifo } from "../util/fifo.ts";

/** How calls are bounded and failures reported. */
export interface BackboneGuardOptions {
  /** Longest wait for any one call, in ms. */
  timeoutMs: number;
  clock: Clock;
  /** Called once per failed call, with the operation's name (e.g. "sessions.claim"). */
  onFailure(operation: string, error: BackboneError): void;
}

interface PendingCall {
  readonly deadline: number;
  readonly operation: string;
  done: boolean;
  readonly reject: (error: BackboneError) => void;
}

/** Bounds calls in time with one timer. */
class CallGuard {
  readonly #options: BackboneGuardOptions;
  readonly #pending = new Fifo<PendingCall>();
  #timer: TimerId | undefined = undefined;

  constructor(options: BackboneGuardOptions) {
    this.#options = options;
  }

  call<T>(operation: string, start: () => Promise<T>): Promise<T> {
    let promise: Promise<T>;
    try {
      promise = start();
    } catch (error) {
      return this.#thrown(operation, error);
    }
    return promise === DONE ? promise : this.#watch(operation, promise);
  }

  /**
   * `start(a, b, c)`, bounded like {@linkcode call}: for the calls made once per message, which
   * then need no closure of their own.
   */
  callWith<A, B, C, T>(
    operation: string,
    start: (a: A, b: B, c: C) => Promise<T>,
    a: A,
    b: B,
    c: C,
  ): Promise<T> {
    // A promise in, a promise out: callMaybe passes only a non-promise result on as it is.
    return this.callMaybe(operation, start, a, b, c) as Promise<T>;
  }

  /**
   * Like {@linkcode callWith} for a call that may answer with its result itself (it completed at
   * once, in process): such a result is final and passed on as it is.
   */
  callMaybe<A, B, C, T>(
    operation: string,
    start: (a: A, b: B, c: C) => T | Promise<T>,
    a: A,
    b: B,
    c: C,
  ): T | Promise<T> {
    let result: T | Promise<T>;
    try {
      result = start(a, b, c);
    } catch (error) {
      return this.#thrown(operation, error);
    }
    // DONE is checked here, not in #watch: V8 makes #watch's closure context as it enters it,
    // an allocation per acknowledgement for nothing.
    return result instanceof Promise && result !== DONE ? this.#watch(operation, result) : result;
  }

  #thrown<T>(operation: string, error: unknown): Promise<T> {
    const failure = this.#asFailure(operation, error);
    this.#options.onFailure(operation, failure);
    return Promise.reject(failure);
  }

  /** Bounds a promise that is not {@linkcode DONE} (which completed at once, in process). */
  #watch<T>(operation: string, promise: Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const call: PendingCall = {
        deadline: this.#options.clock.now() + this.#options.timeoutMs,
        operation,
        done: false,
        reject,
      };
      this.#pending.push(call);
      if (this.#timer === undefined) this.#arm(this.#options.timeoutMs);
      promise.then((value) => {
        if (call.done) return;
        call.done = true;
        this.#trim();
        resolve(value);
      }, (error) => {
        if (call.done) return; // Already timed out: the late failure was reported then.
        call.done = true;
        this.#trim();
        const failure = this.#asFailure(operation, error);
        this.#options.onFailure(operation, failure);
        reject(failure);
      });
    });
  }

  /** Stops the timer (the broker closes); pending calls settle on their own. */
  stop(): void {
    if (this.#timer !== undefined) this.#options.clock.clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #asFailure(operation: string, error: unknown): BackboneError {
    if (error instanceof BackboneError) return error;
    return new BackboneError("unavailable", `${operation} failed: ${String(error)}`, {
      cause: error,
    });
  }

  /** Drops settled calls from the head, so the FIFO holds only what is still pending. */
  #trim(): void {
    const pending = this.#pending;
    while (pending.length > 0 && pending.peek()!.done) pending.shift();
  }

  #arm(delayMs: number): void {
    this.#timer = this.#options.clock.setTimeout(() => this.#expire(), Math.max(1, delayMs));
  }

  #expire(): void {
    this.#timer = undefined;
    const now = this.#options.clock.now();
    const pending = this.#pending;
    while (pending.length > 0) {
      const call = pending.peek()!;
      if (!call.done && call.deadline > now) break;
      pending.shift();
      if (call.done) continue;
      call.done = true;
      const failure = new BackboneError(
        "timeout",
        `${call.operation} did not answer within ${this.#options.timeoutMs} ms`,
      );
      this.#options.onFailure(call.operation, failure);
      call.reject(failure);
    }
    if (pending.length > 0) this.#arm(pending.peek()!.deadline - now);
  }
}

/** A guarded backbone, and the means to stop its timer. */
export interface GuardedBackbone extends Backbone {
  /** The unguarded backbone underneath. */
  readonly inner: Backbone;
  /** Stops the timeout timer (after the broker closed). */
  stopGuard(): void;
}

const ackOn = (handle: QueueHandle, seq: number) => handle.ack(seq);
const recordOn = (handle: QueueHandle, seq: number, packetId: number) =>
  handle.recordPacketId(seq, packetId);
const releaseOn = (handle: QueueHandle, seq: number) => handle.release(seq);
const publishOn = (messages: MessageBus, message: Message, inbound: InboundKey | undefined) =>
  messages.publish(message, inbound);
const completeOn = (messages: MessageBus, key: InboundKey) => messages.completeInbound(key);

/** Wraps a backbone so that every call is bounded and every failure reported. */
export function guardBackbone(backbone: Backbone, options: BackboneGuardOptions): GuardedBackbone {
  const guard = new CallGuard(options);
  const g = <T>(operation: string, start: () => Promise<T>) => guard.call(operation, start);
  const { sessions, retained, messages, queues, nodes, config } = backbone;

  const guardedSessions: SessionStore = {
    get: (clientId) => g("sessions.get", () => sessions.get(clientId)),
    list: () => g("sessions.list", () => sessions.list()),
    count: () => g("sessions.count", () => sessions.count()),
    put: (record, revision) => g("sessions.put", () => sessions.put(record, revision)),
    claim: (clientId, owner, build, claimOptions) =>
      g("sessions.claim", () => sessions.claim(clientId, owner, build, claimOptions)),
    delete: (clientId, revision) => g("sessions.delete", () => sessions.delete(clientId, revision)),
  };
  const guardedRetained: RetainedStore = {
    set: (message) => g("retained.set", () => retained.set(message)),
    delete: (topic) => g("retained.delete", () => retained.delete(topic)),
    get: (topic) => g("retained.get", () => retained.get(topic)),
    match: (filter) => g("retained.match", () => retained.match(filter)),
    count: () => g("retained.count", () => retained.count()),
  };
  const guardedMessages: MessageBus = {
    listen: (listener) => messages.listen(listener),
    addInterest: (filter, group, stored) =>
      g("messages.addInterest", () => messages.addInterest(filter, group, stored)),
    removeInterest: (filter, group, stored) =>
      g("messages.removeInterest", () => messages.removeInterest(filter, group, stored)),
    forward: (message) => messages.forward(message),
    // A publish waiting for room in process (a PublishWait, not a promise) is passed on as it
    // is: the queue's own rules bound its wait (refused once the subscriber acknowledges nothing
    // for its stuck-subscriber timeout), and a timer entry and promise each were much of what a
    // waiting publish held.
    publish: (message, inbound) =>
      guard.callMaybe("messages.publish", publishOn, messages, message, inbound) as
        | PublishOutcome
        | Promise<PublishOutcome>
        | PublishWait,
    completeInbound: (key) =>
      guard.callMaybe("messages.completeInbound", completeOn, messages, key, undefined),
    openInbound: (clientId) => g("messages.openInbound", () => messages.openInbound(clientId)),
  };
  const guardHandle = (handle: QueueHandle): QueueHandle => ({
    request: (count) => handle.request(count),
    ack: (seq) => guard.callWith("queues.ack", ackOn, handle, seq, undefined),
    recordPacketId: (seq, packetId) =>
      guard.callWith("queues.recordPacketId", recordOn, handle, seq, packetId),
    release: (seq) => guard.callWith("queues.release", releaseOn, handle, seq, undefined),
    nak: (seq) => g("queues.nak", () => handle.nak(seq)),
    close: (pin) => g("queues.close", () => handle.close(pin)),
  });
  const guardedQueues: QueueStore = {
    setFilters: (clientId, filters, limits) =>
      g("queues.setFilters", () => queues.setFilters(clientId, filters, limits)),
    joinGroup: (group, filter, clientId, limits) =>
      g("queues.joinGroup", () => queues.joinGroup(group, filter, clientId, limits)),
    leaveGroup: (group, filter, clientId) =>
      g("queues.leaveGroup", () => queues.leaveGroup(group, filter, clientId)),
    open: (key, consumer) => g("queues.open", () => queues.open(key, consumer)).then(guardHandle),
    drop: (clientId) => g("queues.drop", () => queues.drop(clientId)),
    size: (key) => g("queues.size", () => queues.size(key)),
    totals: () => g("queues.totals", () => queues.totals()),
  };
  const guardedNodes: NodeRegistry = {
    list: () => g("nodes.list", () => nodes.list()),
    isAlive: (nodeId) => g("nodes.isAlive", () => nodes.isAlive(nodeId)),
    onNodeLost: (listener) => nodes.onNodeLost(listener),
    lock: (name, ttlMs) => g("nodes.lock", () => nodes.lock(name, ttlMs)),
    request: (nodeId, method, body) =>
      g(`nodes.request.${method}`, () => nodes.request(nodeId, method, body)),
    serve: (method, handler) => nodes.serve(method, handler),
  };
  const guardedConfig: ConfigStore = {
    get: (key) => g("config.get", () => config.get(key)),
    entry: (key) => g("config.entry", () => config.entry(key)),
    list: (prefix) => g("config.list", () => config.list(prefix)),
    put: (key, value) => g("config.put", () => config.put(key, value)),
    compareAndSet: (key, value, revision) =>
      g("config.compareAndSet", () => config.compareAndSet(key, value, revision)),
    delete: (key) => g("config.delete", () => config.delete(key)),
    watch: (listener) => config.watch(listener),
  };
  return {
    inner: backbone,
    get kind() {
      return backbone.kind;
    },
    get durable() {
      return backbone.durable;
    },
    sessions: guardedSessions,
    retained: guardedRetained,
    messages: guardedMessages,
    queues: guardedQueues,
    nodes: guardedNodes,
    events: backbone.events,
    config: guardedConfig,
    start: (self) => backbone.start(self),
    close: () => backbone.close(),
    stopGuard: () => guard.stop(),
  };
}
