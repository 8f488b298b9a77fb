/**
 * Runs changes that end in a file write one at a time, so two requests never interleave their
 * in-memory edit and save.
 *
 * @module
 */

/** A queue of asynchronous tasks run in order. */
export class SerialQueue {
  #tail: Promise<unknown> = Promise.resolve();

  /** Runs `task` after every task queued before it; resolves or rejects with its result. */
  run<T>(task: () => Promise<T>): Promise<T> {
    const result = this.#tail.then(task);
    this.#tail = result.catch(() => {});
    return result;
  }
}
