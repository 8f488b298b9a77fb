/**
 * The coordinator's handle on one load worker: typed messages, replies awaited by kind, and any worker
 * error turned into a rejection of whatever is being awaited.
 *
 * @module
 */

import type { FromWorker, ToWorker } from "./protocol.ts";

type Reply<K extends FromWorker["kind"]> = Extract<FromWorker, { kind: K }>;

/** A started load worker. */
export class WorkerLink {
  #worker: Worker;
  #waiters = new Map<string, (message: FromWorker) => void>();
  #failed: Promise<never>;
  #fail: (error: Error) => void = () => {};

  constructor() {
    this.#worker = new Worker(new URL("./load_worker.ts", import.meta.url), { type: "module" });
    this.#failed = new Promise((_, reject) => {
      this.#fail = reject;
    });
    this.#failed.catch(() => {});
    this.#worker.onmessage = (event: MessageEvent<FromWorker>) => {
      const message = event.data;
      if (message.kind === "error") this.#fail(new Error(`Load worker failed: ${message.message}`));
      else this.#waiters.get(message.kind)?.(message);
    };
    this.#worker.onerror = (event) => {
      event.preventDefault();
      this.#fail(new Error(`Load worker crashed: ${event.message}`));
    };
  }

  /**
   * Sends a message.
   *
   * @param message The message.
   */
  send(message: ToWorker): void {
    this.#worker.postMessage(message);
  }

  /**
   * Sends a message and waits for the reply of the given kind.
   *
   * @param message The message.
   * @param options The reply kind to wait for and how long.
   * @returns The reply.
   */
  request<K extends FromWorker["kind"]>(
    message: ToWorker,
    options: { reply: K; timeoutMs: number },
  ): Promise<Reply<K>> {
    const { reply, timeoutMs } = options;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const replied = new Promise<Reply<K>>((resolve, reject) => {
      this.#waiters.set(reply, (answer) => resolve(answer as Reply<K>));
      timer = setTimeout(
        () => reject(new Error(`Load worker did not answer "${message.kind}" in ${timeoutMs} ms`)),
        timeoutMs,
      );
    });
    this.send(message);
    return Promise.race([replied, this.#failed]).finally(() => {
      clearTimeout(timer);
      this.#waiters.delete(reply);
    });
  }

  /** Rejects as soon as the worker reports an error. */
  get failed(): Promise<never> {
    return this.#failed;
  }

  /** Terminates the worker. */
  terminate(): void {
    this.#worker.terminate();
  }
}
