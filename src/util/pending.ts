/**
 * A value that comes later, told to its listener without a promise: a promise, its resolving
 * functions and each `.then` reaction are objects of their own, kept alive for as long as the
 * value is awaited. `then` still lets anyone `await` it (a promise is made only for that caller).
 *
 * @module
 */

/** Settled once, with a value; never rejected. */
export class Pending<T> implements PromiseLike<T> {
  #settled = false;
  #value: T | undefined = undefined;
  #listener: ((value: T) => void) | undefined = undefined;
  #more: ((value: T) => void)[] | undefined = undefined;

  /** Whether {@linkcode settle} was called. */
  get settled(): boolean {
    return this.#settled;
  }

  /** Settles with `value` and tells the listeners, in the order they came; later calls do nothing. */
  settle(value: T): void {
    if (this.#settled) return;
    this.#settled = true;
    this.#value = value;
    const listener = this.#listener;
    const more = this.#more;
    this.#listener = undefined;
    this.#more = undefined;
    if (listener !== undefined) listener(value);
    if (more !== undefined) { for (const each of more) each(value); }
  }

  /** Calls `listener` once with the value: at once when settled already, else when it settles. */
  onSettled(listener: (value: T) => void): void {
    if (this.#settled) listener(this.#value as T);
    else if (this.#listener === undefined) this.#listener = listener;
    else (this.#more ??= []).push(listener);
  }

  then<A = T, B = never>(
    onfulfilled?: ((value: T) => A | PromiseLike<A>) | null,
    onrejected?: ((reason: unknown) => B | PromiseLike<B>) | null,
  ): Promise<A | B> {
    return new Promise<T>((resolve) => this.onSettled(resolve)).then(onfulfilled, onrejected);
  }
}
