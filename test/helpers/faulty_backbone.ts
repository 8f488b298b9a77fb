/**
 * A backbone that fails on request, around a real one (the memory backbone): an operation can be
 * made to reject, to hang (never answer), or to answer late, so tests can check what the engine
 * does when a remote store misbehaves.
 *
 * @module
 */

import type { Backbone, QueueHandle } from "../../src/backbone/backbone.ts";
import { BackboneError } from "../../src/backbone/errors.ts";

/** What an operation does instead of (or before) answering. */
export type Fault =
  | { kind: "reject"; error?: Error }
  | { kind: "hang" }
  | { kind: "delay"; ms: number };

/** The parts of the backbone whose methods can fail, by "part.method" names. */
const PARTS = ["sessions", "retained", "messages", "queues", "nodes", "config"] as const;

/** A backbone whose operations fail as told. */
export class FaultyBackbone {
  readonly backbone: Backbone;
  /** Calls made to each operation, including failed ones. */
  readonly calls: Map<string, number> = new Map();
  #faults = new Map<string, Fault>();
  #hanging = new Set<() => void>();

  constructor(inner: Backbone) {
    const wrapped: Record<string, unknown> = {};
    for (const part of PARTS) wrapped[part] = this.#wrap(part, inner[part] as object);
    this.backbone = new Proxy(inner, {
      get: (target, key, receiver) =>
        typeof key === "string" && key in wrapped
          ? wrapped[key]
          : Reflect.get(target, key, receiver),
    });
  }

  /** Makes an operation (e.g. "messages.publish") fail until `heal()`. */
  fail(operation: string, fault: Fault = { kind: "reject" }): void {
    this.#faults.set(operation, fault);
  }

  /** Lets an operation (or every one) answer normally again; hanging calls stay hung. */
  heal(operation?: string): void {
    if (operation === undefined) this.#faults.clear();
    else this.#faults.delete(operation);
  }

  /** Releases hung calls as failures (so nothing stays pending after a test). */
  releaseHung(): void {
    for (const release of this.#hanging) release();
    this.#hanging.clear();
  }

  #wrap(part: string, target: object): object {
    return new Proxy(target, {
      get: (object, key, receiver) => {
        const value = Reflect.get(object, key, receiver);
        if (typeof value !== "function" || typeof key !== "string") return value;
        const operation = `${part}.${key}`;
        return (...args: unknown[]) => this.#call(operation, () => value.apply(object, args));
      },
    });
  }

  #call(operation: string, call: () => unknown): unknown {
    this.calls.set(operation, (this.calls.get(operation) ?? 0) + 1);
    const fault = this.#faults.get(operation);
    if (fault === undefined) return this.#wrapHandle(operation, call());
    switch (fault.kind) {
      case "reject":
        return Promise.reject(
          fault.error ?? new BackboneError("unavailable", `${operation}: injected failure`),
        );
      case "hang":
        return new Promise((_, reject) => {
          this.#hanging.add(() => reject(new BackboneError("unavailable", "released")));
        });
      case "delay":
        return new Promise((resolve) => setTimeout(resolve, fault.ms)).then(call);
    }
  }

  /** Queue handles opened through the wrapper fail as "queues.<method>" too. */
  #wrapHandle(operation: string, result: unknown): unknown {
    if (operation !== "queues.open" || !(result instanceof Promise)) return result;
    return result.then((handle: QueueHandle) => this.#wrap("queues", handle));
  }
}
