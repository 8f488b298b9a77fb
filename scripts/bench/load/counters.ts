/**
 * Counters shared (SharedArrayBuffer) between the coordinator and all load workers: deliveries per
 * subscriber and publisher, and messages written per publisher. They let QoS 0 publishers hold back when
 * subscribers fall behind (so QoS 0 measures what a broker sustains, not how much it drops), and let the
 * coordinator sample rates without messaging.
 *
 * @module
 */

/** A view of the shared counters. */
export class LoadCounters {
  /** The shared backing store, to hand to workers. */
  readonly buffer: SharedArrayBuffer;
  #cells: Int32Array;
  #publishers: number;
  #subscribers: number;

  /**
   * @param publishers Publishers in the run.
   * @param subscribers Subscribers in the run.
   * @param buffer An existing store (in a worker); a new one when absent.
   */
  constructor(publishers: number, subscribers: number, buffer?: SharedArrayBuffer) {
    const cells = publishers * subscribers + publishers;
    this.buffer = buffer ?? new SharedArrayBuffer(cells * Int32Array.BYTES_PER_ELEMENT);
    this.#cells = new Int32Array(this.buffer);
    this.#publishers = publishers;
    this.#subscribers = subscribers;
  }

  /**
   * Publishes one subscriber's delivery counts.
   *
   * @param subscriber The subscriber index.
   * @param counts Deliveries per publisher.
   */
  setReceived(subscriber: number, counts: Int32Array): void {
    const base = subscriber * this.#publishers;
    for (let publisher = 0; publisher < counts.length; publisher++) {
      Atomics.store(this.#cells, base + publisher, counts[publisher]);
    }
  }

  /**
   * @param publisher The publisher index.
   * @param count Messages written so far.
   */
  setPublished(publisher: number, count: number): void {
    Atomics.store(this.#cells, this.#publishedCell(publisher), count);
  }

  /**
   * Deliveries of `publisher`'s messages to the slowest group (a group's members share the messages).
   *
   * @param publisher The publisher index.
   * @param groups Subscriber indices per delivery group.
   * @returns The count.
   */
  slowestGroupReceived(publisher: number, groups: number[][]): number {
    let slowest = Infinity;
    for (const group of groups) {
      let sum = 0;
      for (const subscriber of group) {
        sum += Atomics.load(this.#cells, subscriber * this.#publishers + publisher);
      }
      if (sum < slowest) slowest = sum;
    }
    return slowest;
  }

  /** @returns All deliveries so far. */
  totalReceived(): number {
    let sum = 0;
    for (let cell = 0; cell < this.#publishers * this.#subscribers; cell++) {
      sum += Atomics.load(this.#cells, cell);
    }
    return sum;
  }

  /** @returns All messages written so far. */
  totalPublished(): number {
    let sum = 0;
    for (let publisher = 0; publisher < this.#publishers; publisher++) {
      sum += Atomics.load(this.#cells, this.#publishedCell(publisher));
    }
    return sum;
  }

  #publishedCell(publisher: number): number {
    return this.#publishers * this.#subscribers + publisher;
  }
}
