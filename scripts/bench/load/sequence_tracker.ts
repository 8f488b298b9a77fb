/**
 * Per-subscriber record of the sequence numbers received from each publisher: one bit per sequence
 * number, so duplicates are caught exactly and the gaps (losses) can be counted after the run.
 *
 * @module
 */

/** What one subscriber saw, per publisher, handed back to the coordinator after the run. */
export interface SequenceReport {
  /** All deliveries, duplicates included. */
  received: number;
  /** Deliveries of a sequence number this subscriber had already seen. */
  duplicated: number;
  /** New sequence numbers that arrived after a higher one from the same publisher. */
  outOfOrder: number;
  /** Per publisher: a bitmap of the sequence numbers seen (bit `seq % 8` of byte `seq >> 3`). */
  seen: Uint8Array<ArrayBuffer>[];
}

/** Tracks sequence numbers from a fixed set of publishers. */
export class SequenceTracker {
  #seen: Uint8Array<ArrayBuffer>[];
  #next: Int32Array;
  /** Deliveries per publisher, duplicates included. */
  readonly counts: Int32Array;
  #duplicated = 0;
  #outOfOrder = 0;

  /** @param publishers The number of publishers (indices 0..publishers-1). */
  constructor(publishers: number) {
    this.#seen = Array.from({ length: publishers }, () => new Uint8Array(1024));
    this.#next = new Int32Array(publishers);
    this.counts = new Int32Array(publishers);
  }

  /**
   * Records one delivery.
   *
   * @param publisher The publisher index from the payload.
   * @param sequence The sequence number from the payload.
   */
  record(publisher: number, sequence: number): void {
    let seen = this.#seen[publisher];
    if (seen === undefined) throw new RangeError(`Cannot record delivery: publisher ${publisher}`);
    const byte = sequence >>> 3;
    if (byte >= seen.length) {
      const grown = new Uint8Array(Math.max(byte + 1, seen.length * 2));
      grown.set(seen);
      this.#seen[publisher] = seen = grown;
    }
    const bit = 1 << (sequence & 7);
    this.counts[publisher]++;
    if ((seen[byte] & bit) !== 0) {
      this.#duplicated++;
      return;
    }
    seen[byte] |= bit;
    if (sequence < this.#next[publisher]) this.#outOfOrder++;
    else this.#next[publisher] = sequence + 1;
  }

  /** @returns The report, with bitmaps trimmed to the highest sequence seen. */
  report(): SequenceReport {
    let received = 0;
    for (const count of this.counts) received += count;
    return {
      received,
      duplicated: this.#duplicated,
      outOfOrder: this.#outOfOrder,
      seen: this.#seen.map((bits, index) => bits.slice(0, (this.#next[index] + 7) >>> 3)),
    };
  }
}
